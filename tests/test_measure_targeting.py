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
    assert up / oracle > 0.4  # the share of the oracle measured on these seeds: about 51%


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
