"""Consent and suppressions: a customer's decisions per channel and purpose (with where they
came from and their history), changed through the API; the suppression list by address."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from archer.messaging import consent as svc
from archer.store.consent import CHANNELS, PURPOSES
from archer.web.api.common import Cursor, Limit, Page, core, offset_of, page
from archer.workspace import Workspace

router = APIRouter(tags=["consent"])
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Purpose = Literal[PURPOSES]  # type: ignore[valid-type]
CustomerId = Annotated[str, Field(min_length=1, max_length=200)]


class ConsentUpdate(BaseModel):
    channel: Channel
    purpose: Purpose = "marketing"
    granted: bool
    evidence: Annotated[str | None, Field(max_length=2000)] = None


class ConsentPublic(BaseModel):
    customer_id: str
    channel: str
    purpose: str
    granted: bool
    source: str
    evidence: str | None = None
    updated_at: str


class ConsentChange(BaseModel):
    channel: str
    purpose: str
    granted: bool
    source: str
    evidence: str | None = None
    at: str


class CustomerConsent(BaseModel):
    customer_id: str
    consent: list[ConsentPublic]
    history: list[ConsentChange]


class SuppressionCreate(BaseModel):
    channel: Channel
    address: Annotated[str, Field(min_length=1, max_length=320)]
    reason: Literal["bounce", "complaint", "unsubscribe", "manual"] = "manual"


class SuppressionPublic(BaseModel):
    channel: str
    address: str
    reason: str
    source: str | None = None
    created_at: str


def _ws(request: Request) -> Workspace:
    return request.app.state.ws


@router.get("/consent/{customer_id}")
async def get_consent(request: Request, customer_id: str) -> CustomerConsent:
    """A customer's recorded decisions (none: the imported opt-in flags and the workspace's
    `[campaigns] consent` rule decide) and every change, oldest first."""
    return CustomerConsent(**await core(svc.of_customer, _ws(request), customer_id))


@router.put("/consent/{customer_id}")
async def set_consent(request: Request, customer_id: str, body: ConsentUpdate) -> ConsentPublic:
    """Record a decision: it beats the imported flag, and is re-checked when each message goes."""
    doc = await core(
        svc.set_consent, _ws(request), customer_id, body.channel, body.granted,
        purpose=body.purpose, source="api", evidence=body.evidence,
    )  # fmt: skip
    return ConsentPublic(**doc)


@router.get("/suppressions")
async def list_suppressions(
    request: Request,
    channel: Annotated[Channel | None, Query()] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[SuppressionPublic]:
    """Suppressed addresses, newest first."""
    offset = offset_of(cursor)
    rows = await core(svc.suppressions, _ws(request), channel, limit=limit + 1, offset=offset)
    return page(request, rows[:limit], offset, limit, len(rows) > limit)


@router.post("/suppressions", status_code=201)
async def add_suppression(request: Request, body: SuppressionCreate) -> SuppressionPublic:
    """Suppress an address on a channel, whoever it belongs to (kept if it is already)."""
    doc = await core(svc.suppress, _ws(request), body.channel, body.address, reason=body.reason,
                     source="api")  # fmt: skip
    return SuppressionPublic(**doc)


@router.delete("/suppressions/{channel}/{address}")
async def delete_suppression(request: Request, channel: Channel, address: str) -> dict[str, Any]:
    """Let an address receive messages on the channel again."""
    return await core(svc.unsuppress, _ws(request), channel, address)
