"""Audiences: list, create, read, update, delete; count a query while it is typed; members,
explain, export download, history and changes of a saved audience."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from archer.audiences import count, snapshots
from archer.audiences import service as svc
from archer.web.api.common import (
    Cursor,
    Limit,
    Page,
    core,
    offset_of,
    page,
    page_of_list,
    plain,
)
from archer.web.api.customers import _members_page, fields_of
from archer.web.api.problems import Problem
from archer.web.auth import ApiPrincipal
from archer.workspace import Workspace

router = APIRouter(tags=["audiences"])
QUERY_MAX = 20_000
NAME_MAX = 100
Query_ = Annotated[str, Field(min_length=1, max_length=QUERY_MAX)]
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]


class AudienceCreate(BaseModel):
    name: Name
    query: Query_
    description: Annotated[str | None, Field(max_length=2000)] = None


class AudienceUpdate(BaseModel):
    query: Query_ | None = None
    description: Annotated[str | None, Field(max_length=2000)] = None


class AudiencePublic(BaseModel):
    name: str
    query: str
    description: str | None = None
    created_by: str
    created_at: str
    updated_by: str
    updated_at: str


class AudienceSaved(AudiencePublic):
    count: int
    as_of: str


class CountRequest(BaseModel):
    query: Query_


class ClauseCount(BaseModel):
    clause: str
    count: int


class AudienceCount(BaseModel):
    query: str
    as_of: str
    count: int
    customers: int
    clauses: list[ClauseCount]


class HistoryDay(BaseModel):
    as_of: str
    size: int
    entered: int
    left: int


class AudienceChanges(BaseModel):
    audience: str
    as_of: str
    previous: str | None
    size: int
    entered: list[str]
    left: list[str]


def _ws(request: Request) -> Workspace:
    return request.app.state.ws


@router.get("/audiences")
async def list_audiences(
    request: Request, limit: Limit = 100, cursor: Cursor = None
) -> Page[AudiencePublic]:
    """The saved audiences, by name."""
    everything = await core(svc.list_audiences, _ws(request))
    return page_of_list(request, everything, cursor, limit)


@router.post("/audiences", status_code=201)
async def create_audience(
    request: Request, body: AudienceCreate, who: ApiPrincipal, response: Response
) -> AudienceSaved:
    """Save a new audience (checked by counting it first); 409 if the name is taken."""
    doc = await core(
        svc.create,
        _ws(request),
        body.name,
        body.query,
        user=who.actor,
        description=body.description,
    )
    response.headers["Location"] = f"/api/audiences/{quote(body.name, safe='')}"
    return AudienceSaved(**doc)


@router.post("/audiences/count")
async def count_query(request: Request, body: CountRequest) -> AudienceCount:
    """How many customers a query selects and how many each top-level clause does (fast
    enough to call while the query is typed). A query that cannot be read is a 400 with its
    ``line``, ``column`` and ``suggestions``."""
    ws = _ws(request)
    resolve = await core(svc.resolver, ws)
    return AudienceCount(**await core(count, ws, body.query, resolve=resolve))


@router.get("/audiences/{name}")
async def get_audience(request: Request, name: str) -> AudiencePublic:
    return AudiencePublic(**await core(svc.get, _ws(request), name))


@router.put("/audiences/{name}")
async def update_audience(
    request: Request, name: str, body: AudienceUpdate, who: ApiPrincipal
) -> AudienceSaved:
    """Change the query and/or the description of a saved audience."""
    ws = _ws(request)
    current = await core(svc.get, ws, name)
    doc = await core(
        svc.save,
        ws,
        name,
        body.query if body.query is not None else current["query"],
        user=who.actor,
        description=body.description,
    )
    return AudienceSaved(**doc)


@router.delete("/audiences/{name}")
async def delete_audience(request: Request, name: str) -> AudiencePublic:
    """Delete a saved audience (409 while another refers to it); its history is kept."""
    return AudiencePublic(**await core(svc.delete, _ws(request), name))


@router.get("/audiences/{name}/count")
async def count_audience(request: Request, name: str) -> AudienceCount:
    doc = await core(svc.count_of, _ws(request), name)
    doc.pop("audience", None)
    return AudienceCount(**doc)


@router.get("/audiences/{name}/members")
async def audience_members(
    request: Request,
    name: str,
    fields: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[dict[str, Any]]:
    """The members of a saved audience, by id, with the fields asked for."""
    offset = offset_of(cursor)
    ws = _ws(request)
    a = await core(svc.get, ws, name)
    rows, more = await core(_members_page, ws, a["query"], fields_of(fields), offset, limit)
    return page(request, rows, offset, limit, more)


@router.get("/audiences/{name}/explain/{customer_id}")
async def explain_member(request: Request, name: str, customer_id: str) -> dict[str, Any]:
    """Why a customer is in the audience or not: each clause with their values."""
    ws = _ws(request)
    await core(svc.get, ws, name)  # an unknown audience is a 404 before anything else
    try:
        doc = await core(svc.explain_member, ws, name, customer_id)
    except Problem as p:
        if p.kind == "audience-language" and "no customer" in p.detail:
            raise Problem(
                404, f"no customer {customer_id!r} in the profile", kind="not-found"
            ) from None
        raise
    return plain(doc)


def _export(ws, name: str, fmt: str, fields: list[str] | None) -> tuple[Path, dict]:
    work = Path(tempfile.mkdtemp(prefix="export-", dir=ws.home))
    try:
        doc = svc.export(ws, name, work / f"members.{fmt}", fields=fields or None)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work, doc


@router.get("/audiences/{name}/export", response_class=FileResponse)
async def export_audience(
    request: Request,
    name: str,
    format: Literal["csv", "parquet"] = "csv",
    fields: Annotated[str | None, Query(max_length=2000)] = None,
) -> FileResponse:
    """Download the members as CSV (UTF-8 with BOM, formula-safe) or Parquet."""
    work, doc = await core(_export, _ws(request), name, format, fields_of(fields))
    media = "text/csv; charset=utf-8" if format == "csv" else "application/vnd.apache.parquet"
    return FileResponse(
        doc["path"],
        media_type=media,
        filename=f"{name}.{format}",
        headers={"X-Rows": str(doc["rows"])},
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )


@router.get("/audiences/{name}/history")
async def audience_history(
    request: Request, name: str, limit: Limit = 100, cursor: Cursor = None
) -> Page[HistoryDay]:
    """Size per build day, with how many entered and left since the build before."""
    days = await core(snapshots.history, _ws(request), name)
    return page_of_list(request, days, cursor, limit)


@router.get("/audiences/{name}/changes")
async def audience_changes(
    request: Request, name: str, as_of: date | None = None
) -> AudienceChanges:
    """Who entered and who left on a build day (default: the latest)."""
    return AudienceChanges(**await core(snapshots.changes, _ws(request), name, as_of))
