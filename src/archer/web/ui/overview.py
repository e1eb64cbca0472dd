"""``GET /``: the shop at a glance, as of the last build."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from archer.analytics.overview import overview
from archer.web.auth import CurrentUser
from archer.web.ui import charts
from archer.web.ui.render import page

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, user: CurrentUser) -> HTMLResponse:
    """KPIs by month, the funnel, lifecycle and stages, the RFM grid, cohorts and CLV."""
    o = overview(request.app.state.ws)
    specs = {}
    if o is not None:
        specs = {
            "kpis": charts.kpis(o["kpis"]),
            "funnel": charts.funnel(o["funnel"]),
            "lifecycle": charts.shares(o["lifecycle"], charts.LIFECYCLE_LABELS),
            "stages": charts.shares(o["stages"]),
            "rfm": charts.rfm(o["rfm"]),
            "cohorts": charts.cohorts(o["cohorts"]),
            "clv": charts.clv(o["clv"]) if o["clv"] else None,
        }
    return page(
        request,
        "overview.html",
        user,
        section="overview",
        o=o,
        specs=specs,
        labels=charts.LIFECYCLE_LABELS,
    )
