"""Rendering the operator's pages: one Jinja2 environment (autoescape on), the layout's
context (who is signed in, the CSRF token, the navigation) and the filters the pages share."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
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
    env.filters.update(number=number, percent=percent, urlpart=urlpart)
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
