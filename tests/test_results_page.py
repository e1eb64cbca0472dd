"""The results page, ``/campaigns/{name}/results``, over HTTP for a campaign on the shop that
responds (two variants, a holdout, the simulator's answers): every figure it shows is the one
``results()`` reports, in Chinese and English, and a campaign with no such name is a 404."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient

from archer.measurement.results import results
from archer.sample import trial
from archer.store import users, utcnow
from archer.web import create_app
from archer.web.ui.render import number, percent
from test_measure_results import _raw, built, copy_of  # noqa: F401 (the fixture)
from test_web_ui import PASSWORD

pytestmark = pytest.mark.xdist_group("measure_results")


def shown(html: str) -> dict[str, str]:
    """The figures the page marks with ``data-figure``: name → the text shown."""
    return {k: unescape(v).strip() for k, v in
            re.findall(r'data-figure="([^"]+)">([^<]*)<', html)}  # fmt: skip


@pytest.fixture(scope="module")
def simulated(built, tmp_path_factory):  # noqa: F811
    """A two-variant campaign with a holdout, answered by the simulator; an operator."""
    ws, clock, sample = copy_of(built, tmp_path_factory.mktemp("page") / "c")
    raw = _raw(salt="page")
    raw["variants"] = [{"name": "plain"}, {"name": "warm"}]
    trial.send(ws, clock, raw)
    trial.answer(ws, clock, sample)
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
    return ws


def test_the_results_page_shows_what_results_reports(simulated):
    ws = simulated
    c = TestClient(create_app(ws, sync_every=None, round_every=None), follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"username": "alice", "password": PASSWORD,
                                  "csrf": token}).status_code == 303  # fmt: skip

    assert 'href="/campaigns/comeback/results"' in c.get("/campaigns/comeback").text
    page = c.get("/campaigns/comeback/results?lang=en")
    assert page.status_code == 200, page.text
    doc = results(ws, "comeback").to_dict()
    got = shown(page.text)
    for arm, a in doc["arms"].items():
        assert got[f"{arm}.runs"] == number(a["runs"])
        assert got[f"{arm}.buyers"] == number(a["buyers"])
        assert got[f"{arm}.units"] == number(a["units"])
        assert got[f"{arm}.sales"] == number(a["sales"], 2)
        assert got[f"{arm}.gross_profit"] == number(a["gross_profit"], 2)
        assert got[f"{arm}.promotion_cost"] == number(a["promotion_cost"], 2)
        assert got[f"{arm}.conversion"] == percent(a["conversion"], 2)
        assert got[f"step.news.{arm}.reached"] == number(
            doc["by_step"]["news"]["arms"][arm]["reached"]
        )
        for v, r in doc["by_variant"].items():
            assert got[f"variant.{v}.{arm}.runs"] == number(r["arms"][arm]["runs"])
    assert got["incremental_gross_profit"] == number(doc["incremental_gross_profit"], 2)
    assert got["promotion_cost"] == number(doc["arms"]["treatment"]["promotion_cost"], 2)
    assert got["roi"] == number(doc["roi"], 2)
    conv = doc["uplift"]["conversion"]
    assert got["conversion_diff"] == got["conversion.diff"] == f"{conv['diff'] * 100:+.2f}"
    assert got["sales_per_run.diff"] == f"{doc['uplift']['sales_per_run']['diff']:+,.2f}"
    assert got["attributed.buyers"] == number(doc["attributed"]["buyers"])
    assert got["attributed.sales"] == number(doc["attributed"]["sales"], 2)
    cmp = doc["variants"]["comparisons"][0]
    assert got["compare.warm.diff"] == f"{cmp['conversion']['diff'] * 100:+.2f}"
    # The verdicts in words, the attribution labelled, the intervals drawn.
    text = unescape(page.text)
    assert doc["variants"]["verdict"] in text and "no winner yet: needs" in text
    assert f"Interval (95%) {conv['low'] * 100:+.2f}" in text and conv["verdict"] in text
    assert "Attributed by window (not caused)" in text
    assert text.count('<svg class="intervals"') >= 4  # three differences, steps, variants
    assert '"kind": "bars"' in text
    # In Chinese by default.
    zh = c.get("/campaigns/comeback/results?lang=zh").text
    assert "增量毛利" in zh and "按窗口归因（非因果）" in zh and shown(zh) == got
    assert f"尚无胜者：每个版本需要 {doc['variants']['needed_per_variant']:,} 次运行" in zh
    # Refusals are pages, not tracebacks.
    assert c.get("/campaigns/nope/results").status_code == 404
    bad = c.get("/campaigns/comeback/results?window=soon")
    assert bad.status_code == 422 and "window" in bad.text


def test_the_results_page_in_a_real_browser(simulated, browser):
    """Chromium draws the page (the bars by app.js under the app's CSP, the intervals as
    SVG) and saves a screenshot beside the other pages' (tests/screenshots/)."""
    from test_web_ui import SHOTS, Server, expect, new_page, sign_in

    SHOTS.mkdir(exist_ok=True)
    with Server(create_app(simulated, sync_every=None, round_every=None)) as server:
        p = new_page(browser, server)
        sign_in(p)
        p.goto(p.base + "/campaigns/comeback")
        p.click("#results-link")
        p.wait_for_url(p.base + "/campaigns/comeback/results")
        expect(p.locator("h1")).to_contain_text("Results")  # the tests' pages: English
        p.goto(p.base + "/campaigns/comeback/results?lang=zh")
        expect(p.locator("h1")).to_contain_text("效果")
        expect(p.locator("#arms-chart svg").first).to_be_visible()
        assert p.locator("svg.intervals").count() >= 4
        expect(p.locator("#variants-verdict")).to_contain_text("尚无胜者")
        p.screenshot(path=str(SHOTS / "app-campaign-results.png"), full_page=True)
        p.context.close()
