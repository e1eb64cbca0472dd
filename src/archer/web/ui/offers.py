"""``/offers``: coupon templates with what was issued, redeemed, expired, waits in the pool and
cost, a form that defines a new one (满减 / 折扣 / 无门槛; a refusal is shown at its field), and
points — the highest balances and the points that expire within 30 days. Chinese by default
(:mod:`.i18n`)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from archer.errors import ArcherError, Invalid
from archer.offers import coupons, points
from archer.web.auth import CsrfProtected, CurrentUser
from archer.web.ui import i18n
from archer.web.ui.render import page, urlpart, user_name

router = APIRouter(include_in_schema=False)
TOP = 20
SOON_DAYS = 30
FIELDS = ("name", "kind", "threshold", "amount", "rate", "max_saving", "valid_days",
          "valid_until", "per_customer", "total_limit", "budget", "pool")  # fmt: skip
EMPTY_FORM = {**dict.fromkeys(FIELDS, ""), "kind": "threshold", "valid_days": "14",
              "per_customer": "1"}  # fmt: skip
Short = Annotated[str, Form(max_length=40)]


def _render(request: Request, user: Any, status_code: int = 200, **ctx: Any):
    ws = request.app.state.ws
    lang = i18n.lang_of(request)
    r = page(
        request, "offers.html", user, section="offers", status_code=status_code, lang=lang,
        t=i18n.translator(lang), templates_=coupons.summary(ws),
        top=points.top_balances(ws, TOP, soon_days=SOON_DAYS),
        expiring=points.expiring_soon(ws, days=SOON_DAYS, limit=TOP),
        exchange=ws.settings.points, form={**EMPTY_FORM, **ctx.pop("form", {})},
        error=ctx.pop("error", None), defined=ctx.pop("defined", None), **ctx,
    )  # fmt: skip
    return i18n.remember(request, r)


@router.get("/offers", response_class=HTMLResponse)
def offers_page(request: Request, user: CurrentUser, defined: str = ""):
    """Coupon templates with their counts, the form for a new one, and points."""
    return _render(request, user, defined=defined[:100] or None)


def _number(text: str, field: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise Invalid(f"{field}: expected a number, got {text!r}", field=field) from None


def _day_end(text: str, tz) -> datetime | None:
    """A day typed in the form (2026-12-31) as the end of that day in the shop's time zone."""
    if not text.strip():
        return None
    try:
        d = date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(
            f"valid_until: expected a day such as 2026-12-31, got {text!r}", field="valid_until"
        ) from None
    return datetime.combine(d + timedelta(days=1), time(0), tzinfo=tz)


def _or_none(text: str) -> str | None:
    return text.strip() or None


@router.post("/offers/templates", response_class=HTMLResponse)
def define_template(
    request: Request,
    user: CurrentUser,
    _csrf: CsrfProtected,
    name: Annotated[str, Form(max_length=200)] = "",
    kind: Short = "",
    threshold: Short = "",
    amount: Short = "",
    rate: Short = "",
    max_saving: Short = "",
    valid_days: Short = "",
    valid_until: Short = "",
    per_customer: Short = "",
    total_limit: Short = "",
    budget: Short = "",
    pool: Short = "",
):
    """Define a coupon template; a refusal comes back with the form as typed and its field
    marked."""
    ws = request.app.state.ws
    form = {"name": name, "kind": kind, "threshold": threshold, "amount": amount, "rate": rate,
            "max_saving": max_saving, "valid_days": valid_days, "valid_until": valid_until,
            "per_customer": per_customer, "total_limit": total_limit, "budget": budget,
            "pool": pool}  # fmt: skip
    try:
        doc = coupons.define(
            ws, name.strip(), kind=kind, amount=amount.strip() or 0,
            threshold=threshold.strip() or 0, rate=_number(rate, "rate"),
            max_saving=_or_none(max_saving), valid_days=_or_none(valid_days),
            valid_until=_day_end(valid_until, ws.tz), per_customer=_or_none(per_customer),
            total_limit=_or_none(total_limit), budget=_or_none(budget),
            codes="pool" if pool else "generated", user=user_name(user),
        )  # fmt: skip
    except ArcherError as e:
        field, message = e.extra.get("field"), str(e)
        if field and message.startswith(f"{field}: "):
            message = message[len(field) + 2 :]  # the page names the field itself
        error = {"message": message, "field": field}
        return _render(request, user, e.status, form=form, error=error)
    return RedirectResponse(f"/offers?defined={urlpart(doc['name'])}#templates", status_code=303)
