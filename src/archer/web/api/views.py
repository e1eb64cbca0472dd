"""The shop's views: ``/api/views/funnel|cohorts|affinities|recommendations|kpis``.

Each answers the core report (:mod:`archer.analytics.reports`) with its options and ``as_of``;
its ``rows`` are paginated like every list (``limit``, ``cursor``, ``next``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from archer.analytics import reports
from archer.web.api.common import Cursor, core, page_of_list, plain

router = APIRouter(prefix="/views", tags=["views"])
RowLimit = Annotated[int, Query(ge=1, le=10_000, description="Rows per page.")]
AsOf = Annotated[date | None, Query(description="The day to compute as of (default: today).")]
Name = Annotated[str | None, Query(max_length=100)]


def _answer(request: Request, doc: dict[str, Any], limit: int, cursor: str | None) -> dict:
    rows = page_of_list(request, plain(doc.pop("rows")), cursor, limit)
    return {**plain(doc), "rows": rows["items"], "limit": limit, "next": rows["next"]}


@router.get("/funnel")
async def funnel(
    request: Request,
    as_of: AsOf = None,
    by: Literal["channel", "month"] | None = None,
    limit: RowLimit = 1000,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The funnel from visit to repeat purchase, for the whole shop or ``by`` acquisition
    channel or registration month."""
    doc = await core(reports.funnel_report, request.app.state.ws, as_of, by)
    return _answer(request, doc, limit, cursor)


@router.get("/cohorts")
async def cohorts(
    request: Request,
    as_of: AsOf = None,
    by: Literal["first_purchase", "registration"] = "first_purchase",
    months: Annotated[int | None, Query(ge=1, le=240)] = None,
    limit: RowLimit = 1000,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Monthly cohorts and how many of each came back in the months after."""
    doc = await core(reports.cohorts_report, request.app.state.ws, as_of, by, months)
    return _answer(request, doc, limit, cursor)


@router.get("/affinities")
async def affinities(
    request: Request,
    as_of: AsOf = None,
    level: Literal["category", "product"] = "category",
    scope: Literal["order", "customer"] = "order",
    window_days: Annotated[int, Query(ge=1, le=3650)] = 30,
    min_support: Annotated[float, Query(ge=0, le=1)] = 0.001,
    top: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    limit: RowLimit = 1000,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """What is bought together: support, confidence and lift of each pair."""
    doc = await core(
        reports.affinities_report,
        request.app.state.ws,
        as_of,
        level,
        scope,
        window_days,
        min_support,
        top,
    )
    return _answer(request, doc, limit, cursor)


@router.get("/recommendations")
async def recommendations(
    request: Request,
    as_of: AsOf = None,
    k: Annotated[int, Query(ge=1, le=50)] = 3,
    scope: Literal["order", "customer"] = "customer",
    window_days: Annotated[int, Query(ge=1, le=3650)] = 30,
    min_support: Annotated[float, Query(ge=0, le=1)] = 0.001,
    customer: Name = None,
    top: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    limit: RowLimit = 1000,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The next categories to offer each customer, from the basket affinities."""
    doc = await core(
        reports.recommendations_report,
        request.app.state.ws,
        as_of,
        k,
        scope,
        window_days,
        min_support,
        customer,
        top,
    )
    return _answer(request, doc, limit, cursor)


@router.get("/kpis")
async def kpis(
    request: Request,
    as_of: AsOf = None,
    grain: Literal["day", "week", "month"] = "month",
    last: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    limit: RowLimit = 1000,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Sales, orders, customers, refunds, gross profit … per period."""
    doc = await core(reports.kpis_report, request.app.state.ws, as_of, grain, last)
    return _answer(request, doc, limit, cursor)
