"""The pages' message catalogues: every text marked for translation in the templates and the
pages' Python has its Chinese, the compiled catalogue says what its .po says, a missing or stale
.mo is compiled in memory, and the templates translate by the page's language."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import jinja2
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from archer.web.ui import i18n

ROOT = Path(__file__).resolve().parents[1]
PO = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "archer.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "t": None, "N_": None}
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def extracted() -> dict[str, list[str]]:
    """Each msgid the extraction config (babel.cfg) finds, with where."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f, "babel.cfg")
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def catalogue():
    with PO.open("rb") as f:
        return read_po(f, locale="zh_CN")


def test_every_marked_text_has_its_chinese():
    found = extracted()
    assert len(found) > 150  # the extraction config does find the pages' texts
    cat = catalogue()
    untranslated = []
    for msgid, where in sorted(found.items()):
        m = cat.get(msgid)
        if m is None or not m.string or m.fuzzy:
            untranslated.append(f"{msgid!r} ({where[0]})")
    assert not untranslated, "no Chinese in the .po (run `make po` and translate):\n" + "\n".join(
        untranslated
    )


def test_translations_keep_their_placeholders():
    for m in catalogue():
        if m.id and m.string:
            assert sorted(PLACEHOLDER.findall(m.id)) == sorted(PLACEHOLDER.findall(m.string)), m.id


def test_the_compiled_catalogue_matches_the_po(tmp_path):
    """The .mo the install compiled (or, on a checkout with none yet, one compiled here as the
    build does) holds exactly the .po's translations."""
    mo = PO.with_suffix(".mo")
    if not mo.is_file():
        setup = {"__file__": str(ROOT / "setup.py")}
        exec((ROOT / "setup.py").read_text().split("class ")[0], setup)  # its compile step
        shutil.copytree(i18n.LOCALE_DIR, tmp_path / "locale")
        setup["compile_catalogues"](tmp_path / "locale")
        mo = tmp_path / "locale" / "zh_CN" / "LC_MESSAGES" / "archer.mo"
    assert mo.stat().st_mtime >= PO.stat().st_mtime, "the .mo is older than the .po: make mo"
    with mo.open("rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    written = {m.id: m.string for m in catalogue() if m.id and m.string and not m.fuzzy}
    assert compiled == written


def test_a_missing_or_stale_mo_is_compiled_in_memory(tmp_path):
    po = tmp_path / "archer.po"
    mo = tmp_path / "archer.mo"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Overview"\nmsgstr "总览"\n',
        encoding="utf-8",
    )
    assert i18n._compiled(po, mo).gettext("Overview") == "总览"  # no .mo at all
    mo.write_bytes(b"not a catalogue")
    os.utime(mo, (1, 1))  # older than the .po: not read
    assert i18n._compiled(po, mo).gettext("Overview") == "总览"


def test_templates_translate_by_the_page_language():
    env = jinja2.Environment(autoescape=True)
    i18n.install(env)
    tpl = env.from_string(
        '{{ _("Overview") }}|{{ t("Campaigns") }}|{% trans page_no=n, pages=5 %}'
        "Page {{ page_no }} of {{ pages }}{% endtrans %}|{{ t(x) }}"
    )
    marked = "<b>not marked up</b>"
    escaped = "&lt;b&gt;not marked up&lt;/b&gt;"
    assert tpl.render(lang="zh", n=2, x=marked) == f"概览|营销活动|第 2 页，共 5 页|{escaped}"
    assert tpl.render(lang="en", n=2, x=marked) == f"Overview|Campaigns|Page 2 of 5|{escaped}"
    assert escaped in tpl.render(lang="zh", n=marked, x="")  # a value in a trans block too
    assert tpl.render().startswith("Overview|")  # no language: the texts as written


def test_the_language_setting_is_validated(tmp_path):
    from pydantic import ValidationError

    from archer.config import Settings, describe

    assert Settings(home=tmp_path, language="zh_CN").language == "zh"
    assert Settings(home=tmp_path, language=" EN ").language == "en"
    assert i18n.default_lang(Settings(home=tmp_path)) == "zh"  # a CNY shop
    assert i18n.default_lang(Settings(home=tmp_path, currency="usd")) == "en"
    with pytest.raises(ValidationError) as e:
        Settings(home=tmp_path, language="fr")
    assert "setting language: language must be zh (Simplified Chinese) or en, got 'fr'" in (
        describe(e.value)
    )


def test_numbers_days_times_and_money_in_the_page_locale_and_shop_zone():
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from archer.web.ui.render import templates

    tpl = templates.env.from_string(
        "{{ 1234.5|money }}|{{ 1234567|number }}|{{ 0.256|percent(1) }}|{{ '2026-09-30'|day }}"
        "|{{ at|moment }}|{{ none|money }}|{{ 'not a day'|day }}"
    )
    at = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    shanghai = {"currency": "CNY", "tz": ZoneInfo("Asia/Shanghai"), "at": at}
    assert tpl.render(lang="zh", **shanghai) == (
        "¥1,234.50|1,234,567|25.6%|2026年9月30日|2026年11月2日 09:30|–|not a day"
    )
    assert tpl.render(lang="en", **shanghai) == (
        "CN¥1,234.50|1,234,567|25.6%|Sep 30, 2026|Nov 2, 2026 09:30|–|not a day"
    )
    new_york = {"currency": "USD", "tz": ZoneInfo("America/New_York"), "at": at}
    assert tpl.render(lang="en", **new_york).startswith("$1,234.50|")
    assert "Nov 1, 2026 20:30" in tpl.render(lang="en", **new_york)  # the shop's day


def test_an_empty_text_is_not_the_catalogue_header():
    env = jinja2.Environment(autoescape=True)
    i18n.install(env)
    assert env.from_string('[{{ _("") }}|{{ t(x) }}]').render(lang="zh", x="") == "[|]"
    assert i18n.translator("zh")("") == ""
