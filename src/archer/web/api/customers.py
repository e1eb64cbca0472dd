"""Profiles: ``GET /api/customers`` (filtered by the audience language, paginated) and
``GET /api/customers/{id}`` (one profile)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from archer.audiences import members
from archer.audiences.service import resolver
from archer.customers.describe import load_profile
from archer.plain import records
from archer.web.api.common import (
    Cursor,
    Limit,
    Page,
    core,
    offset_of,
    page,
    plain,
    refuse_nul,
)

router = APIRouter(tags=["customers"])
EVERYONE = "customer_id is not null"
DEFAULT_FIELDS = ("name", "lifecycle", "stage", "rfm_segment", "total_spent")
MAX_QUERY = 20_000


class CustomerPublic(BaseModel):
    """One customer's profile: every column of ``customer_profile`` (docs/profile.md)."""

    model_config = ConfigDict(extra="allow")
    customer_id: str


class CustomerRow(BaseModel):
    """A customer in a list: the id and the fields asked for."""

    model_config = ConfigDict(extra="allow")
    customer_id: str


def fields_of(text: str | None, default: tuple[str, ...] = ()) -> list[str]:
    if text is None:
        return list(default)
    return [f.strip() for f in text.split(",") if f.strip()][:50]


def _members_page(ws, query: str, fields: list[str], offset: int, limit: int):
    df = members(ws, query, fields=fields, limit=offset + limit + 1, resolve=resolver(ws))
    rows = records(df.iloc[offset:], days=True)
    return rows[:limit], len(rows) > limit


@router.get("/customers")
async def list_customers(
    request: Request,
    query: Annotated[
        str | None,
        Query(max_length=MAX_QUERY, description="An audience: who to list (default: everyone)."),
    ] = None,
    fields: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated profile fields.")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[CustomerRow]:
    """The customers a query selects, by id, with a few of their fields."""
    offset = offset_of(cursor)
    q = query if query and query.strip() else EVERYONE
    ws = request.app.state.ws
    rows, more = await core(_members_page, ws, q, fields_of(fields, DEFAULT_FIELDS), offset, limit)
    return page(request, rows, offset, limit, more)


@router.get("/customers/{customer_id}")
async def get_customer(request: Request, customer_id: str) -> CustomerPublic:
    """One customer's profile."""
    refuse_nul(customer_id, "the customer id")
    doc: dict[str, Any] = await core(load_profile, request.app.state.ws, customer_id)
    return CustomerPublic(**plain(doc))
