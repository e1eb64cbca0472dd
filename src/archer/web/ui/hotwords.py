"""``/hotwords``: the site-search hot words of a festival window or a period — rising words with
their test, top words with where they lead (viewers, buyers, conversion, categories, products)
and top phrases. Every query is text the page escapes (the Jinja2 environment autoescapes)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from archer.analytics.hotwords import MAX_TOP, hotwords_report
from archer.errors import Invalid
from archer.web.auth import CurrentUser
from archer.web.ui import i18n
from archer.web.ui.render import page

router = APIRouter(include_in_schema=False)
FESTIVALS = ("11.11", "6.18", "12.12", "spring_festival", "mothers_day", "qixi", "mid_autumn",
             "valentines", "womens_day", "520")  # fmt: skip


@router.get("/hotwords", response_class=HTMLResponse)
def hotwords_page(
    request: Request,
    user: CurrentUser,
    festival: Annotated[str | None, Query(max_length=40)] = None,
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
    top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 20,
):
    """The hot words of the chosen festival's latest window (11.11 by default) or period."""
    ws = request.app.state.ws
    lang = i18n.lang_of(request)
    t = i18n.translator(lang)
    if not festival and not (start and end):
        festival = "11.11"
    error, doc = None, None
    try:
        doc = hotwords_report(ws, festival=festival or None, start=start, end=end, top=top)
    except Invalid as e:  # a bad festival or period: said on the page, with the form
        error = str(e)
    r = page(
        request, "hotwords.html", user, section="hotwords", lang=lang, t=t, doc=doc,
        error=error, festival=festival or "", start=start, end=end, top=top,
        festivals=FESTIVALS,
    )  # fmt: skip
    return i18n.remember(request, r)
