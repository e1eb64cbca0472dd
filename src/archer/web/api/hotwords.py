"""``GET /api/hotwords``: the site-search hot words of a festival window or a period (the same
document as ``archer hotwords --json``, :func:`archer.analytics.hotwords.hotwords_report`);
``GET /api/themes/plan``: the theme plan of a festival (``archer theme plan --json``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from archer.analytics.hotwords import MAX_TOP, MIN_COUNT, hotwords_report
from archer.web.api.common import core, plain

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


@router.get("/themes/plan", tags=["themes"])
async def theme_plan(
    request: Request,
    festival: Annotated[str, Query(max_length=40)],
    words: Annotated[list[str] | None, Query(max_length=10)] = None,
    as_of: Day = None,
    top: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """The theme plan of a festival's next window (``archer theme plan --json``): words,
    categories, the target group with its reach, products, stock risk and send windows."""
    from archer.themes import plan

    doc = await core(plan, request.app.state.ws, festival, words, as_of=as_of, top=top)
    return plain(doc)
