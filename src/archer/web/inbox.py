"""The shop's inbox for the shop's own site: ``GET /v1/inbox/{customer}`` lists a member's
messages (newest first, a page at a time, with the unread count) and
``POST /v1/inbox/{customer}/{message_id}/read`` marks one read, so the site can show "my
messages" in its member centre.

Like the tracking API, a request authenticates with a tracking source's write key (the HTTP
Basic user name) — the site's server should call it, not the visitor's browser, since a page
that carries the key lets its holder read any member's inbox. Errors are problem details in the
tracking API's form.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool

from archer.errors import ArcherError
from archer.messaging import inbox
from archer.web.api.common import next_url, offset_of
from archer.web.tracking import Problem, _authenticate, _basic_user

router = APIRouter(tags=["shop inbox"])
PAGE = 20


async def _source(request: Request) -> None:
    key = _basic_user(request)
    await run_in_threadpool(_authenticate, request, key)


async def _call(fn, *args, **kw) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kw)
    except ArcherError as e:
        raise Problem(e.status, e.title, str(e), code=e.kind.replace("-", "_")) from None


@router.get("/v1/inbox/{customer_id}")
async def read_inbox(
    request: Request,
    customer_id: str,
    limit: Annotated[int, Query(ge=1, le=inbox.MAX_PAGE)] = PAGE,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """A member's messages, newest first: ``{items, total, unread, limit, next}``."""
    await _source(request)
    offset = offset_of(cursor)
    if offset > inbox.MAX_OFFSET:
        raise Problem(400, "Bad Request", "the cursor is past the end of any inbox")
    doc = await _call(inbox.read, request.app.state.ws, customer_id, limit=limit, offset=offset)
    more = doc.pop("more")
    return {**doc, "limit": limit, "next": next_url(request, offset + limit) if more else None}


@router.post("/v1/inbox/{customer_id}/{message_id}/read")
async def mark_read(request: Request, customer_id: str, message_id: str) -> dict[str, Any]:
    """Mark a message read (again: it keeps the first time it was read)."""
    await _source(request)
    return await _call(inbox.mark_read, request.app.state.ws, customer_id, message_id)


def install(app: FastAPI) -> None:
    app.include_router(router)
