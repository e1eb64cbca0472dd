"""``GET /``: the shop at a glance, as of the last build."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from archer.analytics.overview import overview
from archer.web.auth import CurrentUser
from archer.web.ui import charts, i18n, words
from archer.web.ui.i18n import N_
from archer.web.ui.render import page

router = APIRouter(include_in_schema=False)
# the charts' own words (charts.py), for extraction; shown in the page's language
CHART_WORDS = (N_("Net sales"), N_("Customers"), N_("Active buyers"), N_("New buyers"),
               N_("Registrations"), N_("Frequency & money"), N_("Recency"),
               N_("Months since first purchase"), N_("Members"), N_("Changes"),
               N_("Entered"), N_("Left"))  # fmt: skip


def translated(spec: dict | None, t) -> dict | None:
    """A chart's series names, axes and axis names in the page's language."""
    if spec is None:
        return None
    out = dict(spec)
    for key in ("axes",):
        if key in out:
            out[key] = [t(x) for x in out[key]]
    for key in ("xname", "yname"):
        if out.get(key):
            out[key] = t(out[key])
    if "series" in out:
        out["series"] = [{**x, "name": t(x["name"])} for x in out["series"]]
    return out


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, user: CurrentUser) -> HTMLResponse:
    """KPIs by month, the funnel, lifecycle and stages, the RFM grid, cohorts and CLV."""
    o = overview(request.app.state.ws)
    lang = i18n.lang_of(request)
    t = i18n.translator(lang)
    specs = {}
    if o is not None:
        steps = [{**s, "label": words.label("funnel", s["step"], lang)} for s in o["funnel"]]
        lifecycle = {n: words.label("lifecycle", n, lang) for n in words.WORDS["lifecycle"]}
        stages = {n: words.label("stage", n, lang) for n in words.WORDS["stage"]}
        specs = {
            "kpis": charts.kpis(o["kpis"]),
            "funnel": charts.funnel(steps),
            "lifecycle": charts.shares(o["lifecycle"], lifecycle),
            "stages": charts.shares(o["stages"], stages),
            "rfm": charts.rfm(o["rfm"]),
            "cohorts": charts.cohorts(o["cohorts"]),
            "clv": charts.clv(o["clv"]) if o["clv"] else None,
        }
        specs = {k: translated(v, t) for k, v in specs.items()}
    return page(
        request,
        "overview.html",
        user,
        section="overview",
        lang=lang,
        o=o,
        specs=specs,
        labels=charts.LIFECYCLE_LABELS,
    )
