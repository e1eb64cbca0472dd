"""What the API's routes share: calling the core off the event loop with its errors turned into
problem details, plain JSON values, and pagination.

Pagination: every list takes ``limit`` (page size) and ``cursor`` (opaque, from the previous
page's ``next``) and answers ``{"items": [...], "limit", "next"}``; ``next`` is the URL of the
following page, ``null`` on the last one. A cursor stands for at most
:data:`MAX_OFFSET`; anything else is a 400.

Texts the routes hand the core (ids, names, queries) never contain a NUL character: a NUL can
name nothing, and the warehouse's SQL cannot carry it, so :func:`core` refuses it with a 400.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from archer.audiences import AudienceError
from archer.campaigns.definition import CampaignError
from archer.errors import ArcherError
from archer.plain import plain  # noqa: F401  (the one converter; routes import it from here)
from archer.web.api.problems import Problem, from_error

T = TypeVar("T")
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000_000  # the furthest a cursor may point: a billion rows into a list

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page (1 to 1000).")]
Cursor = Annotated[str | None, Query(max_length=64, description="From the previous page's `next`.")]


class Page(BaseModel, Generic[T]):
    """One page of a list: its items, the page size, and the URL of the next page (or null)."""

    items: list[T]
    limit: int
    next: str | None = None


def language_problem(e: AudienceError, status: int = 400) -> Problem:
    return Problem(
        status,
        str(e),
        kind="audience-language",
        title="The audience cannot be read",
        message=e.message,
        line=e.line,
        column=e.column,
        start=e.start,
        end=e.end,
        suggestions=list(e.suggestions),
    )


def problem_of(e: Exception) -> Problem | None:
    """The answer for an error the core raises for bad input or a missing thing, else None."""
    if isinstance(e, Problem):
        return e
    if isinstance(e, AudienceError):
        return language_problem(e)
    if isinstance(e, CampaignError):
        return Problem(
            422, str(e), kind="campaign-definition", title="The campaign is not valid",
            problems=e.problems,
        )  # fmt: skip
    if isinstance(e, ArcherError):
        return from_error(e)
    if isinstance(e, LookupError):
        return Problem(404, str(e).strip("'\""), kind="not-found")
    if isinstance(e, ValueError):
        return Problem(422, str(e), kind="invalid-value", title="Invalid value")
    return None


def refuse_nul(value: str, what: str) -> None:
    """A 400 if ``value`` contains a NUL character (``what`` names it: "the customer id")."""
    if "\x00" in value:
        raise Problem(
            400,
            f"{what} contains a NUL character (\\0, at character {value.index(chr(0)) + 1}),"
            " which nothing in Archer can contain",
            kind="invalid-value",
            title="Invalid value",
        )


async def core(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread; the core's input errors become problems.

    A text argument with a NUL is a 400 before any work. An expression too deeply nested for
    the libraries the core calls (``RecursionError``) is a 422, answered without a traceback:
    the audience language bounds its nesting, this is the net under it.
    """
    for v in (*args, *kwargs.values()):
        if isinstance(v, str):
            refuse_nul(v, "a text of the request")
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except RecursionError:
        raise Problem(
            422,
            "the request nests too deeply to evaluate: write it more simply",
            kind="too-deep",
            title="Too deeply nested",
        ) from None
    except Exception as e:
        p = problem_of(e)
        if p is None:
            raise
        raise p from None


# -- pagination -----------------------------------------------------------------------------------
def offset_of(cursor: str | None) -> int:
    """The position a cursor stands for; a cursor this API did not give is a 400."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        kind, _, n = text.partition(":")
        if kind == "o" and n.isdigit() and len(n) <= len(str(MAX_OFFSET)):
            if int(n) <= MAX_OFFSET:
                return int(n)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Problem(
        400,
        f"the cursor {cursor!r} is not one this API gave: start again without a cursor",
        kind="invalid-cursor",
    )


def cursor_for(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode("ascii")).decode("ascii").rstrip("=")


def next_url(request: Request, offset: int) -> str:
    url = request.url.include_query_params(cursor=cursor_for(offset))
    return url.path + "?" + url.query


def page(request: Request, items: list[Any], offset: int, limit: int, more: bool) -> dict:
    """A page of ``items`` (already cut to ``limit``) that started at ``offset``."""
    return {
        "items": items,
        "limit": limit,
        "next": next_url(request, offset + limit) if more else None,
    }


def page_of_list(request: Request, everything: list[Any], cursor: str | None, limit: int) -> dict:
    """A page of a list the core gives whole (small lists: audiences, history, views' rows)."""
    offset = offset_of(cursor)
    chunk = everything[offset : offset + limit]
    return page(request, chunk, offset, limit, offset + limit < len(everything))
