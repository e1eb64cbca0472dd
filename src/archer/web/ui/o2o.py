"""``/o2o``: offline group-buy events — the list, and for the chosen one (the latest by
default) the funnel per channel: sign-ups → check-ins → buyers → orders → sales, customer unit
price and cost per sign-up, attendee and order, with a chart. Chinese by default
(:mod:`.i18n`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from archer.measurement import o2o
from archer.web.auth import CurrentUser
from archer.web.ui import i18n
from archer.web.ui.i18n import N_
from archer.web.ui.render import page

router = APIRouter(include_in_schema=False)
STEPS = ("signups", "checkins", "buyers", "orders")

# the channels' words, for extraction
CHANNELS = (N_("forum"), N_("qq"), N_("wechat"), N_("sem"), N_("site"), N_("walk-in"),
            N_("coupon"), N_("total"))  # fmt: skip
STEP_WORDS = {"signups": N_("Sign-ups"), "checkins": N_("Check-ins"), "buyers": N_("Buyers"),
              "orders": N_("Orders")}  # fmt: skip


def chart(doc: dict[str, Any], t) -> dict[str, Any]:
    """Grouped bars per channel: sign-ups, check-ins, buyers, orders."""
    rows = doc["channels"]
    return {
        "kind": "bars",
        "categories": [t(r["channel"]) for r in rows],
        "series": [{"name": t(STEP_WORDS[k]), "data": [r[k] for r in rows]} for k in STEPS],
    }


@router.get("/o2o", response_class=HTMLResponse)
def o2o_page(
    request: Request,
    user: CurrentUser,
    event: Annotated[str | None, Query(max_length=100)] = None,
):
    """The events, and the funnel of one of them."""
    ws = request.app.state.ws
    lang = i18n.lang_of(request)
    t = i18n.translator(lang)
    events = o2o.list_events(ws)
    chosen = event or (events[0]["name"] if events else None)
    doc = o2o.report(ws, chosen) if chosen else None  # an unknown one: the not-found page
    return page(
        request,
        "o2o.html",
        user,
        section="o2o",
        lang=lang,
        events=events,
        doc=doc,
        spec=chart(doc, t) if doc else None,
    )
