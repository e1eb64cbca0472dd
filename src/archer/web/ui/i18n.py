"""The pages' words in Simplified Chinese or English, with Babel's message catalogues.

Templates and Python write the English text and mark it for gettext — ``{{ _("…") }}`` or its
alias ``{{ t("…") }}`` in a template, ``t("…")`` / ``N_("…")`` in Python; ``make po`` extracts the
marked texts (``babel.cfg``) into ``src/archer/locale/archer.pot`` and merges them into
``zh_CN/LC_MESSAGES/archer.po``, where the Chinese is written. The ``.mo`` is compiled at
install (the Makefile) and at build time (``setup.py``); if it is missing or older than its
``.po`` (a fresh checkout, an edited catalogue) it is compiled in memory here, so the pages never
show a stale catalogue.

The language of a page: ``?lang=zh|en``, remembered in the ``archer_lang`` cookie, else the
shop's ``language`` setting (Chinese by default for a shop selling in CNY)."""

from __future__ import annotations

import functools
import gettext as _gettext
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from fastapi import Request
from starlette.responses import Response

LANGS = ("zh", "en")
DEFAULT = "zh"
COOKIE = "archer_lang"
DOMAIN = "archer"
LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
CATALOGUES = {"zh": "zh_CN"}  # the language → its catalogue folder (English is the source)
LOCALES = {"zh": "zh_Hans_CN", "en": "en_US"}  # the language → Babel's locale for formatting


def N_(text: str) -> str:
    """Mark a text for extraction where it is defined; translated where it is shown."""
    return text


def _compiled(po: Path, mo: Path) -> Translations:
    """The catalogue from ``mo`` if it is at least as new as ``po``, else compiled in memory."""
    if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as f:
            return Translations(f, domain=DOMAIN)
    with po.open("rb") as f:
        catalog = read_po(f, domain=DOMAIN)  # the locale is in its header
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


@functools.cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The catalogue of ``lang`` (English: the texts as written)."""
    folder = CATALOGUES.get(lang)
    if folder is None:
        return NullTranslations()
    messages = LOCALE_DIR / folder / "LC_MESSAGES"
    return _compiled(messages / f"{DOMAIN}.po", messages / f"{DOMAIN}.mo")


def translator(lang: str) -> Callable[[str], str]:
    """``gettext`` in ``lang``, for Python code that builds words for a page (charts, titles)."""
    gettext = translations(lang if lang in LANGS else DEFAULT).gettext
    return lambda text: gettext(text) if text else text


def locale(lang: str) -> Locale:
    return Locale.parse(LOCALES.get(lang, LOCALES["en"]))


def default_lang(settings: Any) -> str:
    """The shop's language: its ``language`` setting, else Chinese for a shop selling in CNY."""
    chosen = getattr(settings, "language", "") or ""
    if chosen in LANGS:
        return chosen
    return "zh" if getattr(settings, "currency", "CNY") == "CNY" else "en"


def lang_of(request: Request) -> str:
    """The page's language: ``?lang=``, else the remembered one, else the shop's."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(COOKIE)
    if kept in LANGS:
        return kept
    settings = getattr(getattr(request.app, "state", None), "settings", None)
    return default_lang(settings) if settings is not None else DEFAULT


def remember(request: Request, response: Response) -> Response:
    """Keep a language asked for with ``?lang=`` for the next pages (once per response)."""
    asked = request.query_params.get("lang")
    if asked in LANGS and request.cookies.get(COOKIE) != asked:
        cookie = f"{COOKIE}={asked}".encode()
        if any(v.startswith(cookie) for k, v in response.raw_headers if k == b"set-cookie"):
            return response
        secure = request.url.scheme == "https"
        response.set_cookie(
            COOKIE, asked, max_age=365 * 24 * 3600, httponly=True, samesite="lax", secure=secure
        )
    return response


# -- the templates' gettext: the language is the page's ``lang`` ---------------------------------
def _lang(context: jinja2.runtime.Context) -> str:
    lang = context.get("lang")
    return lang if lang in LANGS else "en"


@jinja2.pass_context
def _gettext_in(context: jinja2.runtime.Context, text: str) -> str:
    if not text:  # gettext("") is the catalogue's header
        return text
    return translations(_lang(context)).gettext(str(text))


@jinja2.pass_context
def _ngettext_in(context: jinja2.runtime.Context, one: str, many: str, n: int) -> str:
    return translations(_lang(context)).ngettext(one, many, n)


def install(env: jinja2.Environment) -> None:
    """Jinja2's i18n extension in ``env`` with the page's language; ``t`` is ``gettext`` too
    (older pages and the ones being written call it)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_gettext_in, _ngettext_in, newstyle=False)  # type: ignore[attr-defined]
    env.globals["t"] = _gettext_in
