"""``GET /api/hotwords``: the site-search hot words of a festival window or a period (the same
document as ``archer hotwords --json``, :func:`archer.analytics.hotwords.hotwords_report`);
``GET /api/themes/plan`` (or ``POST`` with the same fields as a JSON body, for a long target
group): the theme plan of a festival or a date range, with the operator's words, products added
and removed and target group (``archer theme plan --json``); ``GET /api/themes/products``: the
catalogue searched for products to add (``archer theme products --json``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from archer.analytics.hotwords import MAX_TOP, MIN_COUNT, hotwords_report
from archer.themes import planner
from archer.web.api.common import core, plain
from archer.web.api.problems import Problem

router = APIRouter(tags=["hotwords"])
Day = Annotated[date | None, Query(description="A local day, YYYY-MM-DD.")]


@router.get("/hotwords")
async def hotwords(
    request: Request,
    festival: Annotated[str | None, Query(max_length=40)] = None,
    start: Day = None,
    end: Day = None,
    baseline_start: Day = None,
    baseline_end: Day = None,
    as_of: Day = None,
    top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 20,
    min_count: Annotated[int, Query(ge=1, le=1_000_000)] = MIN_COUNT,
) -> dict[str, Any]:
    """Top words and phrases, rising words against the baseline, and where each word leads."""
    doc = await core(
        hotwords_report, request.app.state.ws, as_of=as_of, festival=festival, start=start,
        end=end, baseline_start=baseline_start, baseline_end=baseline_end, top=top,
        min_count=min_count,
    )  # fmt: skip
    return plain(doc)


Word = Annotated[str, Field(max_length=200)]  # the core cleans and cuts each to 30 characters
ProductId = Annotated[str, Field(max_length=planner.MAX_ID_CHARS)]
Words = Annotated[list[Word] | None, Query(max_length=planner.MAX_WORDS)]
Ids = Annotated[list[ProductId] | None, Query(max_length=planner.MAX_EDITS)]


class PlanRequest(BaseModel):
    """The inputs of a theme plan: a festival, or a range ``start`` … ``end``."""

    model_config = ConfigDict(extra="forbid")
    festival: Annotated[str | None, Field(max_length=40)] = None
    start: date | None = None
    end: date | None = None
    words: Annotated[list[Word] | None, Field(max_length=planner.MAX_WORDS)] = None
    add: Annotated[list[ProductId] | None, Field(max_length=planner.MAX_EDITS)] = None
    remove: Annotated[list[ProductId] | None, Field(max_length=planner.MAX_EDITS)] = None
    query: Annotated[str | None, Field(max_length=planner.MAX_QUERY_CHARS)] = None
    as_of: date | None = None
    top: Annotated[int, Field(ge=1, le=planner.MAX_PRODUCTS)] = 10


def _refused(field: str, detail: str) -> Problem:
    return Problem(422, f"{field}: {detail}", kind="invalid", title="Invalid input", field=field)


async def _plan(request: Request, r: PlanRequest) -> dict[str, Any]:
    if r.festival and (r.start or r.end):
        raise _refused("festival", "give a festival or a range (start and end), not both")
    if not r.festival:
        for field, day in (("start", r.start), ("end", r.end)):
            if day is None:
                raise _refused(field, "expected a festival, or a range with a start and an end")
    doc = await core(
        planner.plan, request.app.state.ws, r.festival, r.words, start=r.start, end=r.end,
        as_of=r.as_of, top=r.top, add=r.add, remove=r.remove, query=r.query,
    )  # fmt: skip
    return plain(doc)


@router.get("/themes/plan", tags=["themes"])
async def theme_plan(
    request: Request,
    festival: Annotated[str | None, Query(max_length=40)] = None,
    start: Day = None,
    end: Day = None,
    words: Words = None,
    add: Ids = None,
    remove: Ids = None,
    query: Annotated[str | None, Query(max_length=planner.MAX_QUERY_CHARS)] = None,
    as_of: Day = None,
    top: Annotated[int, Query(ge=1, le=planner.MAX_PRODUCTS)] = 10,
) -> dict[str, Any]:
    """The theme plan of a festival's next window or of a date range (``archer theme plan
    --json``): words, categories, the target group with its reach (``query``: the operator's
    own instead of the suggested), products (``add`` / ``remove``: product ids), stock risk
    and send windows. A target group that cannot be read is a 400 with its line and column."""
    args = PlanRequest(festival=festival, start=start, end=end, words=words, add=add,
                       remove=remove, query=query, as_of=as_of, top=top)  # fmt: skip
    return await _plan(request, args)


@router.post("/themes/plan", tags=["themes"])
async def theme_plan_post(request: Request, body: PlanRequest) -> dict[str, Any]:
    """The same plan with its inputs as a JSON body (a long target group fits a body better
    than a URL)."""
    return await _plan(request, body)


@router.get("/themes/products", tags=["themes"])
async def theme_products(
    request: Request,
    search: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=planner.MAX_PRODUCTS)] = 20,
) -> dict[str, Any]:
    """Products whose id or name holds ``search`` (case-insensitive), to add to a plan."""
    found = await core(planner.find_products, request.app.state.ws, search, limit=limit)
    return {"items": plain(found), "limit": limit}
