"""``/themes``: the theme planner (:mod:`archer.themes`) as a page. The operator chooses a
festival or a date range, ticks hot words (the rising ones marked), edits the suggested target
group, removes products or adds them by id or name, reads the stock risk and the send windows,
and creates the broadcast with a holdout (``POST /themes/broadcast``). The whole plan lives in
one GET form — every change re-plans in the core; this module only reads the form and renders.
A selection that may oversell is refused unless the confirmation box is ticked, and the core
records that confirmation with the broadcast."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from archer.audiences import AudienceError
from archer.errors import ArcherError, Conflict, Invalid
from archer.themes import planner
from archer.themes.broadcast import create_broadcast
from archer.web.auth import CsrfProtected, CurrentUser
from archer.web.ui import i18n
from archer.web.ui.errors import placed
from archer.web.ui.hotwords import FESTIVALS
from archer.web.ui.i18n import N_
from archer.web.ui.render import page, urlpart, user_name

router = APIRouter(include_in_schema=False)
Words = Annotated[list[str] | None, Query(max_length=planner.MAX_WORDS)]
Ids = Annotated[list[str] | None, Query(max_length=planner.MAX_EDITS)]
Text = Annotated[str, Query(max_length=planner.MAX_QUERY_CHARS)]
FESTIVAL_NAMES = {
    "11.11": N_("Singles' Day (11.11)"), "6.18": N_("6.18 mid-year sale"),
    "12.12": N_("Double 12 (12.12)"), "spring_festival": N_("Spring Festival"),
    "mothers_day": N_("Mother's Day"), "qixi": N_("Qixi"), "mid_autumn": N_("Mid-Autumn"),
    "valentines": N_("Valentine's Day"), "womens_day": N_("Women's Day"), "520": N_("520"),
}  # fmt: skip
NOTES = (
    N_("no search data in the evidence window: the group and the products come from the "
       "festival's buyers and their categories"),
    N_("the words led to no category: using the categories the festival's buyers bought most"),
)  # fmt: skip
RISKS = {
    "ok": N_("Enough stock"), "low_stock": N_("Low stock"), "at_risk": N_("May run short"),
    "oversell": N_("Will oversell"), "unknown": N_("Stock unknown"),
}  # fmt: skip
OVERSELL = N_(
    "Not created: the selection may oversell. Remove those products, or tick the "
    "confirmation to create the broadcast anyway. Products:"
)
SOURCES = {"profiles": N_("the group's preferred hours"), "default": N_("the shop's defaults")}


def _basis(args: dict[str, Any]) -> str:
    """What a plan is of: its festival or its range (the picks are kept while it stays)."""
    return args["festival"] or f"{args['start']}/{args['end']}"


def _day(text: str, what: str) -> date | None:
    """A day of the form (the browser sends an empty date input as ``""``)."""
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"{what} {text!r}: expected a day as YYYY-MM-DD") from None


def _inputs(
    festival: str, start: date | None, end: date | None, words: list[str] | None,
    picked: str, query: str, suggested: str, add: list[str] | None, remove: list[str] | None,
    top: int, add_one: str = "", remove_one: str = "", basis: str = "",
) -> dict[str, Any]:  # fmt: skip
    """The planner's arguments from the form: a date range wins over the festival; words
    ticked (none ticked after a submit is none, not the default); the query only when the
    operator changed the suggested one; the products added and removed so far (hidden fields)
    and the one of the button pressed (``add_one`` / ``remove_one``). Another festival or
    range than the form's ``basis`` starts afresh (its words, group and products)."""
    ranged = bool(start and end)
    chosen = {"festival": None if ranged else (festival or "11.11"),
              "start": start if ranged else None, "end": end if ranged else None}  # fmt: skip
    if basis and basis != _basis(chosen):
        words, picked, query, add, remove, add_one, remove_one = None, "", "", [], [], "", ""
    add, remove = list(add or []), list(remove or [])
    if add_one.strip():
        add, remove = [*add, add_one.strip()], [r for r in remove if r != add_one.strip()]
    if remove_one.strip():
        add, remove = [a for a in add if a != remove_one.strip()], [*remove, remove_one.strip()]
    q = query.strip()
    return {
        **chosen,
        "words": list(words or []) if picked else None,
        "query": q if q and q != suggested.strip() else None,
        "add": list(dict.fromkeys(add)), "remove": list(dict.fromkeys(remove)), "top": top,
    }  # fmt: skip


def _render(
    request: Request, user: Any, args: dict[str, Any], *, find: str = "", status_code: int = 200,
    error: str | None = None, form: dict[str, Any] | None = None, plan_error: str | None = None,
):  # fmt: skip
    ws = request.app.state.ws
    lang = i18n.lang_of(request)
    doc, query_error, found = None, None, []
    try:
        try:
            if plan_error is None:
                doc = planner.plan(ws, **args)
        except AudienceError as e:  # the operator's query: said at its place, the suggested used
            query_error = placed(args["query"], e)
            doc = planner.plan(ws, **{**args, "query": None})
            doc["group"]["query"] = args["query"]
    except ArcherError as e:
        plan_error = str(e)
    if find.strip():
        found = planner.find_products(ws, find)
    rows: list[dict[str, Any]] = []
    if doc:  # the chosen words, the rising ones, then the top ones
        counts = {r["word"]: r["searchers"] for r in doc["top_words"]}
        for w in [*doc["words"], *doc["rising"][:30], *counts]:
            if w not in {r["word"] for r in rows}:
                rows.append({"word": w, "rising": w in doc["rising"], "searchers": counts.get(w),
                             "checked": w in doc["words"]})  # fmt: skip
    r = page(
        request, "themes.html", user, section="themes", status_code=status_code, lang=lang,
        t=i18n.translator(lang), doc=doc, args=args, basis=_basis(args), word_rows=rows,
        find=find, found=found,
        festivals=FESTIVALS, festival_names=FESTIVAL_NAMES, risks=RISKS, sources=SOURCES,
        query_error=query_error, plan_error=plan_error, error=error,
        form={"name": "", "channel": "email", "holdout": "10", "confirm": False, **(form or {})},
    )  # fmt: skip
    return i18n.remember(request, r)


@router.get("/themes", response_class=HTMLResponse)
def themes_page(
    request: Request,
    user: CurrentUser,
    festival: Annotated[str, Query(max_length=40)] = "",
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
    words: Words = None,
    picked: Annotated[str, Query(max_length=1)] = "",
    query: Text = "",
    suggested: Text = "",
    add: Ids = None,
    remove: Ids = None,
    add_one: Annotated[str, Query(max_length=planner.MAX_ID_CHARS)] = "",
    remove_one: Annotated[str, Query(max_length=planner.MAX_ID_CHARS)] = "",
    find: Annotated[str, Query(max_length=200)] = "",
    basis: Annotated[str, Query(max_length=60)] = "",
    top: Annotated[int, Query(ge=1, le=planner.MAX_PRODUCTS)] = 10,
):
    """The plan of the chosen festival (11.11 at first) or range, as the form asks."""
    try:
        first, last = _day(start, "from"), _day(end, "to")
    except Invalid as e:
        args = _inputs(festival, None, None, None, "", "", "", None, None, top)
        return _render(request, user, args, status_code=e.status, plan_error=str(e))
    args = _inputs(festival, first, last, words, picked, query, suggested, add, remove, top,
                   add_one, remove_one, basis)  # fmt: skip
    return _render(request, user, args, find=find if not add_one else "")


@router.post("/themes/broadcast", response_class=HTMLResponse)
def create_theme_broadcast(
    request: Request,
    user: CurrentUser,
    _csrf: CsrfProtected,
    festival: Annotated[str, Form(max_length=40)] = "",
    start: Annotated[str, Form(max_length=10)] = "",
    end: Annotated[str, Form(max_length=10)] = "",
    words: Annotated[list[str] | None, Form(max_length=planner.MAX_WORDS)] = None,
    picked: Annotated[str, Form(max_length=1)] = "",
    query: Annotated[str, Form(max_length=planner.MAX_QUERY_CHARS)] = "",
    suggested: Annotated[str, Form(max_length=planner.MAX_QUERY_CHARS)] = "",
    add: Annotated[list[str] | None, Form(max_length=planner.MAX_EDITS)] = None,
    remove: Annotated[list[str] | None, Form(max_length=planner.MAX_EDITS)] = None,
    top: Annotated[int, Form(ge=1, le=planner.MAX_PRODUCTS)] = 10,
    name: Annotated[str, Form(max_length=200)] = "",
    channel: Annotated[str, Form(max_length=10)] = "email",
    holdout: Annotated[str, Form(max_length=20)] = "10",
    confirm_oversell: Annotated[str, Form(max_length=10)] = "",
):
    """Re-plan from the form and create the broadcast as a draft; an oversold selection needs
    the confirmation box (recorded with the broadcast). A refusal comes back on the page."""
    ws = request.app.state.ws
    try:
        first, last = _day(start, "from"), _day(end, "to")
    except Invalid as e:
        args = _inputs(festival, None, None, None, "", "", "", None, None, top)
        return _render(request, user, args, status_code=e.status, plan_error=str(e))
    args = _inputs(festival, first, last, words, picked, query, suggested, add, remove, top)
    keep = {"name": name, "channel": channel, "holdout": holdout, "confirm": bool(confirm_oversell)}
    try:
        if not name.strip():
            raise Invalid("give the broadcast a name")
        try:
            share = float(holdout) / 100
        except ValueError:
            raise Invalid(f"holdout: expected a percentage from 0 to 90, got {holdout!r}") from None
        if not 0 <= share <= 0.9:
            raise Invalid(f"holdout: expected a percentage from 0 to 90, got {holdout!r}")
        doc = planner.plan(ws, **args)
        if (
            doc["oversold"] and not confirm_oversell
        ):  # the core refuses too; said in the page's words
            t = i18n.translator(i18n.lang_of(request))
            raise Conflict(t(OVERSELL) + " " + ", ".join(doc["oversold"]))
        create_broadcast(ws, doc, name.strip(), user=user_name(user), channel=channel,
                         holdout=share, confirm_oversell=bool(confirm_oversell))  # fmt: skip
    except (ArcherError, AudienceError) as e:
        status = e.status if isinstance(e, ArcherError) else 422
        return _render(request, user, args, status_code=status, error=str(e), form=keep)
    return RedirectResponse(f"/campaigns/{urlpart(name.strip())}", status_code=303)
