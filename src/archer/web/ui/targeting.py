"""``/campaigns/{name}/targeting``: coupons targeted by uplift as a page — the budget, the coupon
and the audience to choose among; the expected incremental gross profit against the audience
size for the uplift, RFM and random orders (server-side SVG); what the budget buys by each;
how well the learners fit on held-out customers; the cut-offs; and a button that saves the
chosen group as an audience. The figures are :func:`archer.measurement.targeting.target`'s, as
the CLI and REST show them; this module only parses and draws."""

from __future__ import annotations

import math
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from archer.campaigns.service import UnknownCampaign
from archer.errors import ArcherError, NotFound
from archer.measurement.targeting import MAX_AMONG, MAX_BUDGET
from archer.web.auth import CsrfProtected, CurrentUser
from archer.web.ui import i18n
from archer.web.ui.i18n import N_
from archer.web.ui.render import page, urlpart, user_name

router = APIRouter(include_in_schema=False)
POLICIES = (
    ("uplift", N_("By uplift")),
    ("rfm", N_("By RFM value tier")),
    ("random", N_("At random")),
)
COLOURS = {"uplift": "#0f766e", "rfm": "#d97706", "random": "#52606d"}
FIGURES = (
    ("customers", N_("Customers"), 0),
    ("expected_cost", N_("Expected cost"), 2),
    ("expected_incremental_buyers", N_("Incremental buyers"), 2),
    ("expected_incremental_sales", N_("Incremental sales"), 2),
    ("expected_incremental_profit", N_("Incremental gross profit"), 2),
)
LEARNERS = {
    "two_model": N_("Two models (one per arm)"),
    "transformed_outcome": N_("Transformed outcome"),
    "random": N_("Random order"),
}


def budget_of(text: str, t) -> float:
    """The budget typed in the form, or ValueError with the field's name and its bounds."""
    try:
        v = float(text.strip().replace(",", ""))
    except ValueError:
        v = math.nan
    if not (v > 0) or v > MAX_BUDGET:
        raise ValueError(t("Budget: a number of yuan above 0 and at most 1,000,000,000."))
    return v


def curve_svg(c: dict[str, Any], t) -> str:
    """The expected incremental gross profit of the first k customers of each order, against
    k: one line per policy, zero as a line, the chosen size as a dashed mark. Texts escaped."""
    sizes = c["sizes"]
    values = [v for name, _ in POLICIES for v in c[name]]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    n = max(sizes[-1], 1)
    width, height, left, right, top, bottom = 640, 300, 72, 16, 16, 44

    def x(k: float) -> float:
        return round(left + k / n * (width - left - right), 1)

    def y(v: float) -> float:
        return round(top + (hi - v) / (hi - lo) * (height - top - bottom), 1)

    title = t("Expected incremental gross profit against audience size")
    x_label, budget_word = escape(t("Customers given the coupon")), escape(t("The budget"))
    out = [
        f'<svg class="uplift-curve" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" style="max-width:100%;height:auto" '
        f'role="img" aria-label="{escape(title)}" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{y(0)}" x2="{width - right}" y2="{y(0)}" stroke="#9aa5b1"/>',
        f'<text x="{left - 6}" y="{y(0) + 4}" text-anchor="end" fill="#52606d">0</text>',
        f'<text x="{left - 6}" y="{y(hi - pad) + 4}" text-anchor="end" fill="#52606d">'
        f"{hi - pad:,.0f}</text>",
        f'<text x="{x(n)}" y="{height - 26}" text-anchor="end" fill="#52606d">{n:,}</text>',
        f'<text x="{(left + width - right) / 2}" y="{height - 26}" text-anchor="middle" '
        f'fill="#52606d">{x_label}</text>',
    ]
    if lo + pad < 0 and y(lo + pad) - y(0) > 14:  # the lowest value, clear of the 0
        out.append(f'<text x="{left - 6}" y="{y(lo + pad) + 4}" text-anchor="end" '
                   f'fill="#52606d">{lo + pad:,.0f}</text>')  # fmt: skip
    k = c["chosen"]
    out.append(f'<line x1="{x(k)}" y1="{top}" x2="{x(k)}" y2="{height - bottom}" '
               'stroke="#1f2933" stroke-dasharray="4 3"/>')  # fmt: skip
    out.append(f'<text x="{x(k) + 4}" y="{top + 10}" fill="#1f2933">'
               f"{budget_word}: {k:,}</text>")  # fmt: skip
    for i, (name, label) in enumerate(POLICIES):
        pts = " ".join(f"{x(s)},{y(v)}" for s, v in zip(sizes, c[name], strict=True))
        out.append(f'<polyline class="curve-{name}" points="{pts}" fill="none" '
                   f'stroke="{COLOURS[name]}" stroke-width="2"><title>{escape(t(label))}</title>'
                   "</polyline>")  # fmt: skip
        lx = left + i * 170
        out.append(f'<line x1="{lx}" y1="{height - 8}" x2="{lx + 18}" y2="{height - 8}" '
                   f'stroke="{COLOURS[name]}" stroke-width="3"/>'
                   f'<text x="{lx + 24}" y="{height - 4}" fill="#1f2933">{escape(t(label))}'
                   "</text>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def _form(budget: str, coupon: str, audience: str) -> dict[str, str]:
    return {"budget": budget, "coupon": coupon, "audience": audience}


def _show(request, user, name, lang, t, form, *, doc=None, error=None, status_code=200):
    return page(request, "targeting.html", user, section="campaigns", lang=lang, t=t,
                status_code=status_code, name=name, form=form, doc=doc, error=error,
                policies=POLICIES, figures=FIGURES, learners=LEARNERS,
                curve=Markup(curve_svg(doc["curve"], t)) if doc else None)  # fmt: skip


def _choose(request, user, name, budget, coupon, audience, *, save_as=None):
    """The targeting's document, or the page that says why not (a 404 page for no such
    campaign; the form with the error, at the field, otherwise)."""
    from archer.measurement.targeting import target

    lang = i18n.lang_of(request)
    t = i18n.translator(lang)
    form = _form(budget, coupon, audience)
    try:
        value = budget_of(budget, t)
        got = target(request.app.state.ws, name, value, coupon=coupon.strip() or None,
                     among=audience.strip() or None, save=save_as is not None,
                     audience=save_as, user=user_name(user))  # fmt: skip
    except UnknownCampaign as e:
        return None, page(request, "missing.html", user, section="campaigns",
                          status_code=404, title=t("Not found"), message=str(e),
                          back="/campaigns")  # fmt: skip
    except NotFound as e:  # a coupon template or an audience: said at the form
        return None, _show(request, user, name, lang, t, form, error=str(e), status_code=404)
    except ArcherError as e:
        return None, _show(request, user, name, lang, t, form, error=str(e), status_code=e.status)
    except (ValueError, LookupError) as e:  # a query the language refuses is a ValueError
        return None, _show(request, user, name, lang, t, form, error=str(e), status_code=422)
    return got.to_dict(), _show(request, user, name, lang, t, form, doc=got.to_dict())


@router.get("/campaigns/{name}/targeting", response_class=HTMLResponse)
def targeting_page(
    request: Request,
    user: CurrentUser,
    name: str,
    budget: Annotated[str, Query(max_length=30)] = "",
    coupon: Annotated[str, Query(max_length=100)] = "",
    audience: Annotated[str, Query(max_length=MAX_AMONG)] = "",
):
    """The form; with a budget, whom it should go to and what it is expected to earn."""
    if not budget.strip():
        lang = i18n.lang_of(request)
        return _show(request, user, name, lang, i18n.translator(lang),
                     _form("", coupon, audience))  # fmt: skip
    return _choose(request, user, name, budget, coupon, audience)[1]


@router.post("/campaigns/{name}/targeting/save", response_class=HTMLResponse)
def save_targeting(
    request: Request,
    user: CurrentUser,
    _csrf: CsrfProtected,
    name: str,
    budget: Annotated[str, Form(max_length=30)] = "",
    coupon: Annotated[str, Form(max_length=100)] = "",
    audience: Annotated[str, Form(max_length=MAX_AMONG)] = "",
    save_as: Annotated[str, Form(max_length=100)] = "",
):
    """Choose again and save the chosen group as the audience ``save_as``."""
    if not save_as.strip():
        lang = i18n.lang_of(request)
        t = i18n.translator(lang)
        return _show(request, user, name, lang, t, _form(budget, coupon, audience),
                     error=t("Name the audience to save."), status_code=422)  # fmt: skip
    doc, shown = _choose(request, user, name, budget, coupon, audience, save_as=save_as.strip())
    if doc is None:
        return shown
    return RedirectResponse(f"/audiences/{urlpart(save_as.strip())}", status_code=303)
