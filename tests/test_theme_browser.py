"""The theme planner page in a real browser (Debian's Chromium driven by Playwright, a real
uvicorn server on loopback), in Chinese and in English: 11.11's rising words ticked, a product
removed and another added by searching, the broadcast refused while it may oversell and created
once confirmed; no internal state name shown. The screenshots are docs/img/themes_*.png
(docs/themes.md)."""

from __future__ import annotations

import pytest

from archer.web import create_app
from test_app_browser_i18n import DOCS_IMG, no_internal_names, signed_in
from test_theme_page import theme_shop
from test_web_ui import Server, expect

pytestmark = pytest.mark.xdist_group("browser")
WORDS = {
    "zh": {"h1": "主题活动策划", "rising": "上升", "added": "手动添加", "refused": "可能超卖"},
    "en": {"h1": "Theme planner", "rising": "rising", "added": "added", "refused": "may oversell"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = theme_shop(tmp_path_factory.mktemp("theme-browser"))
    with Server(create_app(ws, sync_every=None)) as s:
        yield s


def shot(p, section: str, name: str) -> None:
    p.locator(section).scroll_into_view_if_needed()
    p.locator(section).screenshot(path=str(DOCS_IMG / f"themes_{name}.png"))


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_planning_11_11_in_the_browser(browser, server, lang):
    w = WORDS[lang]
    p = signed_in(browser, server, "zh-CN" if lang == "zh" else "en-US")
    p.context.set_default_timeout(120_000)  # each step re-plans on a machine shared with others
    p.context.set_default_navigation_timeout(120_000)
    try:
        p.goto(f"{server.url}/themes?lang={lang}")
        expect(p.locator("h1")).to_have_text(w["h1"])
        expect(p.locator("header nav a[aria-current=page]")).to_have_attribute("href", "/themes")
        rising = p.locator("#words label.rising")
        expect(rising.first).to_contain_text(w["rising"])
        expect(rising.first.locator("input")).to_be_checked()
        expect(p.locator("#group-count")).not_to_have_text("0")
        no_internal_names(p, f"/themes ({lang})")
        p.screenshot(path=str(DOCS_IMG / f"themes_{lang}_page.png"), full_page=False)
        shot(p, "#words", f"{lang}_words")
        shot(p, "#group", f"{lang}_group")

        rows = p.locator("#products-table tbody tr")
        first = rows.first.get_attribute("data-product")
        rows.first.locator("button[name=remove_one]").click()
        expect(p.locator(f'#products-table tr[data-product="{first}"]')).to_have_count(0)
        p.fill("#find", "P0019")
        p.locator("button[name=search]").click()
        p.locator('#found button[value="P00190"]').click()
        added = p.locator('#products-table tr[data-product="P00190"]')
        expect(added).to_contain_text(w["added"])
        expect(p.locator(f'#products-table tr[data-product="{first}"]')).to_have_count(0)
        no_internal_names(p, f"/themes products ({lang})")
        shot(p, "#products", f"{lang}_products")
        shot(p, "#windows", f"{lang}_windows")

        p.fill("#name", f"theme-1111-{lang}")
        p.fill("#holdout", "20")
        expect(p.locator("#oversell")).to_be_visible()
        p.locator("#create-form button[type=submit]").click()
        expect(p.locator("#create-error")).to_contain_text(w["refused"])
        shot(p, "#create", f"{lang}_refused")
        p.check("#confirm_oversell")
        p.locator("#create-form button[type=submit]").click()
        p.wait_for_url(f"{server.url}/campaigns/theme-1111-{lang}")
        expect(p.locator("main")).to_contain_text(f"theme-1111-{lang}")
        no_internal_names(p, f"the theme broadcast ({lang})")
    finally:
        p.context.close()
