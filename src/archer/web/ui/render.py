"""Rendering the operator's pages: one Jinja2 environment (autoescape on), the layout's
context (who is signed in, the CSRF token, the navigation) and the filters the pages share."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from archer.web.auth import csrf_token
from archer.web.ui import i18n, words
from archer.web.ui.i18n import N_

HERE = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

NAV = (
    ("overview", "/", N_("Overview")),
    ("customers", "/customers", N_("Customers")),
    ("audiences", "/audiences", N_("Audiences")),
    ("campaigns", "/campaigns", N_("Campaigns")),
    ("offers", "/offers", N_("Offers")),
    ("o2o", "/o2o", N_("Group-buys")),
    ("hotwords", "/hotwords", N_("Hot words")),
    ("themes", "/themes", N_("Theme planner")),
    ("data", "/data", N_("Data")),
)


def number(v: Any, digits: int = 0) -> str:
    """``12,345`` / ``1,234.50``; a missing value is an en dash."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float | Decimal):
        return f"{v:,.{digits}f}"
    return str(v)


def percent(v: Any, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}%}"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _locale(context: Any) -> Any:
    return i18n.locale(context.get("lang") or "en")


@jinja2.pass_context
def local_number(context: Any, v: Any, digits: int = 0) -> str:
    """A number in the page's locale (Babel): ``12,345`` / ``1,234.50``; missing: an en dash."""
    if _missing(v):
        return "–"
    if isinstance(v, bool):
        t = i18n.translator(context.get("lang") or "en")
        return t("yes") if v else t("no")
    if not isinstance(v, int | float | Decimal):
        return str(v)
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(v, format=pattern, locale=_locale(context))


@jinja2.pass_context
def local_percent(context: Any, v: Any, digits: int = 0) -> str:
    if _missing(v):
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    return format_percent(v, format=pattern, locale=_locale(context))


@jinja2.pass_context
def money(context: Any, v: Any, digits: int = 2) -> str:
    """An amount in the shop's currency, as the page's locale writes it (``¥1,234.50``)."""
    if _missing(v):
        return "–"
    return format_currency(
        v, context.get("currency") or "CNY", locale=_locale(context), currency_digits=False,
        format="¤#,##0" + ("." + "0" * digits if digits > 0 else ""),
    )  # fmt: skip


def _as_datetime(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.strip())
        except ValueError:
            return None
    return v


@jinja2.pass_context
def day(context: Any, v: Any) -> str:
    """A calendar day in the page's locale (``2026年9月30日`` / ``Sep 30, 2026``)."""
    d = _as_datetime(v)
    if isinstance(d, datetime):
        d = d.astimezone(context.get("tz")).date() if d.tzinfo and context.get("tz") else d.date()
    if not isinstance(d, date):
        return "" if v is None else str(v)
    return format_date(d, format="medium", locale=_locale(context))


@jinja2.pass_context
def moment(context: Any, v: Any) -> str:
    """A time in the shop's time zone and the page's locale, to the minute. A time with a zone
    is converted; one without is taken as the shop's local time already."""
    d = _as_datetime(v)
    if not isinstance(d, datetime):
        return "" if v is None else str(v)
    tz = context.get("tz")
    if d.tzinfo and tz is not None:
        d = d.astimezone(tz)
    loc = _locale(context)
    return f"{format_date(d.date(), format='medium', locale=loc)} {d:%H:%M}"


def urlpart(v: Any) -> str:
    """A value as one path segment or query value (``/`` and ``?`` escaped too)."""
    return quote(str(v), safe="")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every name, query and value is escaped, whatever the file suffix
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=local_number,
        percent=local_percent,
        money=money,
        day=day,
        moment=moment,
        urlpart=urlpart,
    )
    i18n.install(env)
    words.install(env)
    return env


templates = Jinja2Templates(env=_env())


def page(
    request: Request, template: str, user: Any, /, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` inside the layout, for the signed-in ``user``."""
    section = context.pop("section", "")
    lang = context.pop("lang", None) or i18n.lang_of(request)
    other = "en" if lang == "zh" else "zh"
    base = {
        "lang": lang,
        "other_lang": other,
        "switch_lang": f"{request.url.path}?{request.url.include_query_params(lang=other).query}",
        "user": user,
        "user_name": user_name(user),
        "csrf": csrf_token(request),
        "nav": NAV,
        "section": section,
        "shop": request.app.state.settings.shop_name,
        "currency": request.app.state.settings.currency,
        "tz": request.app.state.settings.tz,
        "timezone": request.app.state.settings.timezone,
    }
    response = templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )
    return i18n.remember(request, response)


def user_name(user: Any) -> str:
    for attr in ("name", "username", "login"):
        v = getattr(user, attr, None)
        if isinstance(v, str) and v:
            return v
    return str(user)
