"""Coupons targeted by uplift on the shop that responds: a coupon campaign with a 50% holdout
sends, the simulator answers it, the learners learn from its arms, and the choice at a budget
is measured against RFM, random and the oracle with the simulator's truth.

One sample shop (20,000 customers, about 9,800 buyers in the campaign) is built, sent to and
simulated once for the module, on a manual clock.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from archer.clock import ManualClock
from archer.measurement import targeting as tg
from archer.sample import trial
from support import sample_shop

END, SEND = trial.END, trial.SEND
BUDGET = 1500.0
pytestmark = pytest.mark.xdist_group("measure_targeting")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("targeting")
    clock = ManualClock(SEND)
    ws = sample_shop(root, customers=20_000, seed=21, clock=clock, as_of=END, end=END)
    trial.send(ws, clock, trial.coupon_broadcast("past", "purchase_days > 0", salt="t"))
    trial.answer(ws, clock, root / "sample")
    return ws, root


def test_uplift_targeting_beats_rfm_and_random_at_the_same_budget(shop):
    ws, root = shop
    t = tg.target(ws, "past", BUDGET)
    # Learned from the campaign's customers, with features from before it started.
    assert t.features_as_of == "2026-10-31" and t.scored_as_of == "2026-11-20"
    assert t.runs > 9000 and t.held_out > 2000 and t.coupon == "back-20"
    # On the held-out customers the chosen learner orders the persuadable first: its Qini is
    # above a random order's.
    assert t.learners[t.learner]["qini"] > t.learners["random"]["qini"]
    assert t.learners[t.learner]["qini"] > 0
    assert 0 < t.chosen < t.scored and t.expected_cost <= BUDGET
    ev = tg.evaluate_on_simulator(ws, t, sample_dir=root / "sample", channel="inbox")
    for p in ev.values():  # every policy spends (almost) the whole budget, never more
        assert BUDGET * 0.97 <= p.expected_cost <= BUDGET, p
    up, rfm, rnd, oracle = (ev[k].true_incremental_profit for k in ("uplift", "rfm", "random",
                                                                      "oracle"))  # fmt: skip
    assert up > rfm and up > rnd, {k: v.to_dict() for k, v in ev.items()}
    assert oracle >= up
    assert up / oracle > 0.4  # the share of the oracle measured on these seeds: 51.5%


def test_the_choice_is_an_audience(shop, tmp_path):
    from typer.testing import CliRunner

    from archer.cli import app

    ws, _ = shop
    home = str(ws.home)
    ws.close()
    run = CliRunner().invoke
    got = run(app, ["measure", "target", "--campaign", "past", "--budget", "800",
                    "--save-audience", "persuadable", "--home", home, "--json"])  # fmt: skip
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    n = doc["chosen"]
    assert n > 0 and doc["audience"] == f"uplift_rank <= {n}"
    assert doc["saved_audience"] == "persuadable" and doc["expected_cost"] <= 800
    scores = ws.view("uplift_scores")
    chosen = scores[scores.uplift_rank.notna()].sort_values("uplift_rank")
    assert list(chosen.uplift_rank) == list(range(1, n + 1))
    assert (chosen.expected_incremental_profit > 0).all()
    assert chosen.expected_cost.sum() <= 800
    # The audience language reads the ranking: the saved audience is exactly the chosen group.
    got = run(app, ["audience", "count", 'in_audience("persuadable")', "--home", home, "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["count"] == n
    text = run(app, ["measure", "target", "--campaign", "past", "--budget", "800", "--home", home])
    assert text.exit_code == 0 and "Qini" in text.stdout and "uplift_rank <=" in text.stdout
    bad = run(app, ["measure", "target", "--campaign", "past", "--budget", "-5", "--home", home])
    assert bad.exit_code != 0 and "budget" in bad.output
    none = run(app, ["measure", "target", "--campaign", "nope", "--budget", "5", "--home", home])
    assert none.exit_code != 0 and "no campaign named 'nope'" in none.output
    quoted = run(app, ["measure", "target", "--campaign", "past", "--budget", "5",
                       "--save-audience", 'a"b', "--home", home])  # fmt: skip
    assert quoted.exit_code != 0 and "audience name" in quoted.output
    coupon = ["measure", "target", "--campaign", "past", "--budget", "5", "--coupon", "nada"]
    unknown = run(app, [*coupon, "--home", home])
    assert unknown.exit_code != 0 and "no coupon template named 'nada'" in unknown.output


def test_qini_curve_by_hand():
    # Treated outcomes 10, 0, 4; control outcomes 2, 0 — in the order of the score.
    score = [5, 4, 3, 2, 1]
    y = [10, 2, 0, 4, 0]
    w = [1, 0, 1, 1, 0]
    x, q = tg.qini_curve(score, y, w)
    # k=1: Yt=10, no control yet → 10; k=2: 10 − 2·1/1 = 8; k=3: 10 − 2·2/1 = 6;
    # k=4: 14 − 2·3/1 = 8; k=5: 14 − 2·3/2 = 11.
    assert list(q) == [0, 10, 8, 6, 8, 11]
    assert list(x) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    area = np.trapezoid(q, x)
    assert tg.auuc(score, y, w) == pytest.approx(area)
    assert tg.qini(score, y, w) == pytest.approx(area - 11 / 2)


def test_a_random_order_has_a_qini_near_zero_and_the_true_order_a_large_one():
    rng = np.random.default_rng(3)
    n = 20_000
    tau = rng.uniform(0, 1, n)  # the chance of an extra purchase when treated
    w = rng.random(n) < 0.5
    y = (rng.random(n) < 0.1 + w * tau * 0.3).astype(float)
    assert abs(tg.qini(rng.random(n), y, w)) < 60
    assert tg.qini(tau, y, w) > 200


def test_choose_spends_within_the_budget_in_order():
    key = pd.Series([3.0, 1.0, 2.0, 5.0], index=["a", "b", "c", "d"])
    cost = pd.Series([4.0, 1.0, 3.0, 2.0], index=key.index)
    got = tg.choose(key, cost, 9.0)
    assert list(got.index) == ["d", "a", "c"] and got.sum() == 9.0
    got = tg.choose(key, cost, 9.0, positive=[True, True, False, True])
    assert list(got.index) == ["d", "a", "b"]


# -- the choice over REST, on a page, and among an audience's members -----------------------------
SAVED = "big-spenders"
BIG = "net_spent >= 300"


@pytest.fixture(scope="module")
def operated(shop):
    """The shop with an operator (alice), an API key, a saved audience to choose among, and
    the core's answer at a budget of 800 (its scores saved)."""
    from archer.audiences import service as aud
    from archer.store import apikeys, users, utcnow
    from test_web_ui import PASSWORD

    ws, root = shop
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
        _, key = apikeys.create(s, "targeting", created_by="test", now=utcnow())
    aud.save(ws, SAVED, BIG, user="t")
    return ws, key, tg.target(ws, "past", 800.0).to_dict()


def _api(ws, key):
    from fastapi.testclient import TestClient

    from archer.web import create_app

    app = create_app(ws, sync_every=None, round_every=None)
    return TestClient(app, follow_redirects=False, headers={"Authorization": f"Bearer {key}"})


def test_rest_targeting_answers_what_the_core_does(operated):
    from archer.audiences import service as aud

    ws, key, core = operated
    c = _api(ws, key)
    before = ws.view("uplift_scores")
    got = c.get("/api/campaigns/past/targeting", params={"budget": 800})
    assert got.status_code == 200, got.text
    assert got.json() == json.loads(json.dumps(core))
    # GET writes nothing: the scores are the last saved choice's.
    pd.testing.assert_frame_equal(ws.view("uplift_scores"), before)
    # The answer: the choice beside RFM and random at the same budget, the fit, the cut-offs,
    # the curve.
    cmp = core["compared"]
    assert cmp["uplift"]["customers"] == core["chosen"]
    assert cmp["uplift"]["expected_incremental_profit"] == core["expected_incremental_profit"]
    for other in ("rfm", "random"):
        assert cmp[other]["expected_cost"] <= 800
        assert cmp["uplift"]["expected_incremental_profit"] > cmp[other][
            "expected_incremental_profit"]  # fmt: skip
    assert core["expected_incremental_buyers"] > 0 and core["expected_incremental_sales"] > 0
    assert set(core["learners"]) == {"two_model", "transformed_outcome", "random"}
    cut, curve = core["cutoffs"], core["curve"]
    assert cut["rank"] == core["chosen"] and cut["last_profit_per_yuan"] > 0
    assert cut["next_profit_per_yuan"] <= cut["last_profit_per_yuan"]
    assert cut["peak_customers"] >= core["chosen"]
    assert curve["sizes"][0] == 0 and curve["sizes"][-1] == core["scored"]
    assert {core["chosen"], cut["peak_customers"]} <= set(curve["sizes"])
    assert len(curve["sizes"]) <= tg.CURVE_POINTS + 4
    at = curve["sizes"].index(core["chosen"])
    assert curve["uplift"][at] == pytest.approx(core["expected_incremental_profit"], abs=0.05)
    top = max(curve["uplift"])
    assert top == pytest.approx(cut["peak_expected_incremental_profit"], abs=0.05)

    # Bounded inputs: a 422 naming the field, before any work; the core's refusals by status.
    def problem(r, status):
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        return r.json()

    for bad in ({"budget": -5}, {"budget": 0}, {"budget": 1e10}, {"budget": "lots"}, {}):
        doc = problem(c.get("/api/campaigns/past/targeting", params=bad), 422)
        assert [e["field"] for e in doc["errors"]] == ["query.budget"], doc
    doc = problem(c.get("/api/campaigns/past/targeting",
                        params={"budget": 5, "coupon": "x" * 101}), 422)  # fmt: skip
    assert doc["errors"][0]["field"] == "query.coupon"
    doc = problem(c.get("/api/campaigns/past/targeting",
                        params={"budget": 5, "coupon": "nada"}), 404)  # fmt: skip
    assert "no coupon template named 'nada'" in doc["detail"]
    doc = problem(c.get("/api/campaigns/nope/targeting", params={"budget": 5}), 404)
    assert "no campaign named 'nope'" in doc["detail"]
    doc = problem(c.get("/api/campaigns/past/targeting",
                        params={"budget": 5, "audience": "net_spent >= "}), 400)  # fmt: skip
    assert doc["line"] == 1 and "column" in doc
    anon = _api(ws, "ak_forged")
    assert anon.get("/api/campaigns/past/targeting", params={"budget": 5}).status_code == 401

    # POST saves the choice as an audience: the same answer, written.
    post = lambda body: c.post("/api/campaigns/past/targeting", json=body)  # noqa: E731
    doc = problem(post({"budget": 800}), 422)
    assert [e["field"] for e in doc["errors"]] == ["save_as"]
    doc = problem(post({"budget": -1, "save_as": "x", "extra": 1}), 422)
    assert {e["field"] for e in doc["errors"]} == {"budget", "extra"}
    doc = problem(post({"budget": 800, "save_as": 'a"b'}), 422)
    assert "audience name" in doc["detail"]
    saved = post({"budget": 800, "save_as": "rest-persuadable"})
    assert saved.status_code == 201, saved.text
    assert saved.json() == {**json.loads(json.dumps(core)), "saved_audience": "rest-persuadable"}
    assert aud.count_of(ws, "rest-persuadable")["count"] == core["chosen"]
    assert aud.get(ws, "rest-persuadable")["created_by"] == "key:targeting"


def test_the_choice_is_drawn_only_from_an_audience(operated):
    from typer.testing import CliRunner

    from archer.audiences.evaluate import members
    from archer.cli import app

    ws, key, _ = operated
    inside = set(members(ws, BIG).customer_id.astype(str))
    assert 0 < len(inside) < 20_000
    # A budget large enough to take every persuadable buyer: still only the audience's.
    t = tg.target(ws, "past", 10**6, among=SAVED, save=False)
    chosen = t.scores.index[t.scores.uplift_rank.notna()].astype(str)
    assert t.among == SAVED and t.among_members == len(inside)
    assert 0 < t.chosen == len(chosen) <= t.scored <= len(inside)
    assert set(chosen) <= inside and set(t.scores.index.astype(str)) <= inside
    # The query itself chooses the same customers as the saved audience's name.
    q = tg.target(ws, "past", 800.0, among=BIG, save=False).to_dict()
    by_name = tg.target(ws, "past", 800.0, among=SAVED, save=False).to_dict()
    assert {k: v for k, v in q.items() if k != "among"} == {
        k: v for k, v in by_name.items() if k != "among"}  # fmt: skip
    # REST's audience= is the core's among.
    got = _api(ws, key).get("/api/campaigns/past/targeting",
                            params={"budget": 800, "audience": BIG})  # fmt: skip
    assert got.status_code == 200 and got.json() == json.loads(json.dumps(q))
    # The CLI's --audience, saving the choice: the saved audience lies inside.
    home = str(ws.home)
    ws.close()
    run = CliRunner().invoke
    got = run(app, ["measure", "target", "--campaign", "past", "--budget", "800", "--audience",
                    SAVED, "--save-audience", "big-persuadable", "--home", home,
                    "--json"])  # fmt: skip
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    assert doc["among_members"] == len(inside) and doc["chosen"] == by_name["chosen"]
    got = run(app, ["audience", "count", f'in_audience("big-persuadable") and not ({BIG})',
                    "--home", home, "--json"])  # fmt: skip
    assert got.exit_code == 0 and json.loads(got.stdout)["count"] == 0
    text = run(app, ["measure", "target", "--campaign", "past", "--budget", "800", "--audience",
                     SAVED, "--home", home])  # fmt: skip
    assert text.exit_code == 0, text.output
    assert f"Chosen only among the {len(inside):,} members of {SAVED}" in text.stdout
    assert "rfm" in text.stdout and "random" in text.stdout and "Cut-off" in text.stdout
    bad = run(app, ["measure", "target", "--campaign", "past", "--budget", "5", "--audience",
                    "net_spent >=", "--home", home])  # fmt: skip
    assert bad.exit_code == 1 and "the query ends too early" in bad.output, bad.output
    assert "net_spent >=\n" in bad.output and "^" in bad.output  # the place, marked


def _signed_in(ws):
    import re

    from fastapi.testclient import TestClient

    from archer.web import create_app
    from test_web_ui import PASSWORD

    c = TestClient(create_app(ws, sync_every=None, round_every=None), follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"username": "alice", "password": PASSWORD,
                                  "csrf": token}).status_code == 303  # fmt: skip
    return c, token


def test_the_targeting_page_shows_what_the_core_answers(operated):
    import re
    from html import unescape

    from archer.audiences import service as aud
    from archer.web.ui.render import number

    ws, _, core = operated
    c, _ = _signed_in(ws)
    assert 'href="/campaigns/past/targeting"' in c.get("/campaigns/past/results?lang=en").text
    empty = c.get("/campaigns/past/targeting?lang=en")
    assert empty.status_code == 200 and 'id="budget"' in empty.text and "data-figure" not in (
        empty.text)  # fmt: skip
    page = c.get("/campaigns/past/targeting", params={"budget": "800", "lang": "en"})
    assert page.status_code == 200, page.text
    shown = {k: unescape(v).strip() for k, v in
             re.findall(r'data-figure="([^"]+)">([^<]*)<', page.text)}  # fmt: skip
    assert shown["chosen"] == number(core["chosen"])
    for k in ("expected_cost", "expected_incremental_buyers", "expected_incremental_sales",
              "expected_incremental_profit"):  # fmt: skip
        assert shown[k] == number(core[k], 2), k
    for p, d in core["compared"].items():
        assert shown[f"{p}.customers"] == number(d["customers"])
        assert shown[f"{p}.expected_incremental_profit"] == number(
            d["expected_incremental_profit"], 2)  # fmt: skip
    for lname, d in core["learners"].items():
        assert shown[f"qini.{lname}"] == number(d["qini"], 2)
    text = unescape(page.text)
    assert text.count('<svg class="uplift-curve"') == 1 and text.count("<polyline") == 3
    assert f"{number(core['chosen'])} of {number(core['scored'])} buyers chosen" in text
    assert core["audience"] in text and 'name="csrf"' in text
    zh = c.get("/campaigns/past/targeting", params={"budget": "800", "lang": "zh"}).text
    assert "按增量定向发券" in zh and "同样的预算，三种选法" in zh and "Budget" not in zh
    # Refusals are pages with the field named, not tracebacks.
    for bad in ("-5", "lots", "1e12"):
        r = c.get("/campaigns/past/targeting", params={"budget": bad, "lang": "en"})
        assert r.status_code == 422 and "Budget: a number of yuan above 0" in r.text
    r = c.get("/campaigns/past/targeting", params={"budget": "5", "coupon": "nada"})
    assert r.status_code == 404 and "nada" in unescape(r.text)
    assert c.get("/campaigns/nope/targeting", params={"budget": "5"}).status_code == 404
    r = c.get("/campaigns/past/targeting", params={"budget": "5", "audience": "net_spent >="})
    assert r.status_code == 422 and 'id="targeting-error"' in r.text
    # Saving needs the CSRF token; with it, the chosen group becomes an audience.
    form = {"budget": "800", "coupon": "", "audience": "", "save_as": "page-persuadable"}
    assert c.post("/campaigns/past/targeting/save", data=form).status_code == 403
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/campaigns/past/targeting/save", data={**form, "csrf": token})
    assert r.status_code == 303 and r.headers["location"] == "/audiences/page-persuadable"
    assert aud.count_of(ws, "page-persuadable")["count"] == core["chosen"]
    assert aud.get(ws, "page-persuadable")["created_by"] == "alice"


def test_the_targeting_page_in_a_real_browser(operated, browser):
    """Chromium draws the page in English and in Chinese and saves the Chinese one as
    docs/img/targeting_zh.png (docs/measure.md shows it)."""
    from pathlib import Path

    from archer.web import create_app
    from test_web_ui import Server, expect, new_page, sign_in

    ws, _, core = operated
    img = Path(__file__).resolve().parents[1] / "docs" / "img"
    with Server(create_app(ws, sync_every=None, round_every=None)) as server:
        p = new_page(browser, server)  # in English
        sign_in(p)
        p.goto(p.base + "/campaigns/past/results")
        p.click("#targeting-link")
        p.wait_for_url(p.base + "/campaigns/past/targeting")
        expect(p.locator("h1")).to_contain_text("Coupons targeted by uplift")
        p.fill("#budget", "800")
        p.click("#choose")
        expect(p.locator('[data-figure="chosen"]')).to_have_text(f"{core['chosen']:,}")
        expect(p.locator("svg.uplift-curve")).to_be_visible()
        expect(p.locator("#policy-rfm")).to_contain_text("By RFM value tier")
        p.goto(p.base + "/campaigns/past/targeting?budget=800&lang=zh")
        expect(p.locator("h1")).to_contain_text("按增量定向发券")
        expect(p.locator("svg.uplift-curve")).to_be_visible()
        expect(p.locator("#policy-random")).to_contain_text("随机")
        p.screenshot(path=str(img / "targeting_zh.png"), full_page=True)
        p.fill("#save_as", "浏览器选中")
        p.click("#save-audience")
        p.wait_for_url("**/audiences/*")
        expect(p.locator("h1")).to_contain_text("浏览器选中")
        p.context.close()
