"""Campaign results on the shop that responds: a campaign sends, the simulator advances the
shop with the members' latent responses and writes the true effect, and the results recover it.

One small sample shop is built once; each test works on its own copy (the shop, its store, its
sample folder), on a manual clock.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from archer.campaigns import service
from archer.cli.support import load_home
from archer.clock import ManualClock
from archer.errors import Invalid
from archer.measurement.results import compare_variants, results
from archer.sample import trial
from archer.sample.simulate import simulate, uniform
from archer.store.offers import Coupon
from archer.workspace import Workspace
from support import sample_shop

END, SEND, UNTIL = trial.END, trial.SEND, trial.UNTIL
AUDIENCE = 'lifecycle in ("repeat_buyer", "one_time_buyer", "lapsing", "lost")'
pytestmark = pytest.mark.xdist_group("measure_results")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("responds")
    ws = sample_shop(root, customers=4000, seed=21, clock=ManualClock(SEND), as_of=END, end=END)
    ws.close()
    return root


def copy_of(built: Path, dst: Path) -> tuple[Workspace, ManualClock, Path]:
    shutil.copytree(built, dst)
    clock = ManualClock(SEND)
    return Workspace(load_home(dst / "shop").settings, clock), clock, dst / "sample"


def broadcast(ws: Workspace, clock: ManualClock, *, salt: str, holdout: float = 0.5) -> str:
    """A coupon and an inbox message to every buyer, sent on the sample's next morning."""
    return trial.send(ws, clock, _raw(salt=salt, holdout=holdout))


def _raw(*, salt: str, holdout: float = 0.5) -> dict:
    return trial.coupon_broadcast("comeback", AUDIENCE, salt=salt, holdout=holdout)


@pytest.mark.parametrize("salt", ["a", "b"])
def test_the_reported_uplift_covers_the_true_effect_the_simulator_wrote(built, tmp_path, salt):
    ws, clock, sample = copy_of(built, tmp_path / "c")
    name = broadcast(ws, clock, salt=salt)
    sim = trial.answer(ws, clock, sample)
    truth = json.loads((sample / "truth_campaigns.json").read_text())["campaigns"][name]
    assert sim.campaigns[name] == truth and truth["persuaded"] > 10
    r = results(ws, name)
    t, h = r.arms["treatment"], r.arms["holdout"]
    assert t.runs == truth["treatment"] and h.runs == truth["holdout"]
    # The comparison of the arms is an unbiased estimate of the mean true effect per run:
    # its 95% interval covers the truth, and the treated bought more than the holdout.
    c = r.conversion
    assert c.low <= truth["true_uplift"] <= c.high, (c.to_dict(), truth)
    assert c.diff > 0 and t.buyers > h.buyers
    # Attribution by window counts the treated who bought anyway: more than the effect.
    assert r.attributed["buyers"] == t.buyers > c.diff * t.runs


def test_promotion_cost_is_what_the_store_says_to_the_fen(built, tmp_path):
    ws, clock, sample = copy_of(built, tmp_path / "c")
    name = broadcast(ws, clock, salt="cost")
    trial.answer(ws, clock, sample)
    with ws.session() as s:
        redeemed = s.scalar(
            select(func.count()).where(Coupon.state == "redeemed", Coupon.campaign_id.is_not(None))
        )
        saved_fen = s.scalar(select(func.sum(Coupon.saved_fen)).where(Coupon.state == "redeemed"))
    r = results(ws, name)
    assert redeemed > 0  # the persuaded used their coupon, and some who bought anyway did
    assert round(r.arms["treatment"].coupon_cost * 100) == saved_fen
    assert r.arms["holdout"].promotion_cost == 0  # the holdout is never given anything
    assert r.arms["treatment"].promotion_cost == pytest.approx(saved_fen / 100, abs=0.001)
    # Gross profit is net sales less the goods' cost: margin between 0 and 1.
    assert 0 < r.arms["treatment"].gross_profit < r.arms["treatment"].sales
    assert r.roi == pytest.approx(r.incremental_gross_profit / (saved_fen / 100), rel=1e-3)


def test_simulating_again_to_the_same_day_changes_nothing_and_a_later_day_extends(built, tmp_path):
    ws, clock, sample = copy_of(built, tmp_path / "c")
    name = broadcast(ws, clock, salt="again")
    first = trial.answer(ws, clock, sample, date(2026, 11, 10))
    orders_then = pd.read_csv(ws.home / "simulated" / "orders.csv")
    again = simulate(ws, date(2026, 11, 10), sample_dir=sample)
    assert again.to_dict() == first.to_dict()
    with ws.warehouse() as wh:
        n_sim = wh.table("orders").filter(wh.table("orders").order_id.startswith("B")).count()
        assert n_sim.execute() == (orders_then.order_id.str[0] == "B").sum()
    later = simulate(ws, UNTIL, sample_dir=sample)
    orders_later = pd.read_csv(ws.home / "simulated" / "orders.csv")
    # The baseline of the earlier period is unchanged by extending it: the same orders.
    early = orders_later[orders_later.created_at < "2026-11-11"]
    assert set(early.order_id) >= set(orders_then.order_id[orders_then.order_id.str[0] == "B"])
    assert later.orders > first.orders
    assert results(ws, name).arms["treatment"].runs == first.campaigns[name]["treatment"]


def test_draws_depend_on_the_key_alone():
    keys = [f"c{i}" for i in range(2000)]
    u = uniform(5, "respond", keys)
    assert list(uniform(5, "respond", keys[::-1])) == list(u[::-1])
    assert 0.45 < u.mean() < 0.55 and u.min() >= 0 and u.max() < 1
    assert not (uniform(6, "respond", keys) == u).all()


def test_cli_results_and_simulate(built, tmp_path):
    from typer.testing import CliRunner

    from archer.cli import app

    ws, clock, sample = copy_of(built, tmp_path / "c")
    name = broadcast(ws, clock, salt="cli")
    ws.close()
    home = str(tmp_path / "c" / "shop")
    run = CliRunner().invoke
    sim = ["sample", "simulate", "--home", home, "--sample", str(sample)]
    got = run(app, [*sim, "--until", "2026-11-15", "--json"])
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    assert doc["campaigns"][name]["enrolled"] > 0 and doc["orders"] > 0
    got = run(app, ["campaign", "results", name, "--home", home, "--json"])
    assert got.exit_code == 0, got.output
    res = json.loads(got.stdout)
    assert set(res["arms"]) == {"treatment", "holdout"}
    assert res["uplift"]["conversion"]["verdict"] in ("higher", "not distinguishable from zero")
    got = run(app, ["campaign", "results", name, "--home", home])
    assert "conversion" in got.stdout and "attributed (not caused)" in got.stdout
    bad = run(app, ["campaign", "results", name, "--home", home, "--window", "soon"])
    assert bad.exit_code != 0 and "window" in bad.output
    missing = run(app, ["campaign", "results", "nope", "--home", home])
    assert missing.exit_code != 0 and "no campaign named 'nope'" in missing.output
    bad_day = run(app, [*sim, "--until", "soon"])
    assert bad_day.exit_code != 0 and "--until" in bad_day.output


def test_every_figure_per_step_channel_and_arm_adds_up(built, tmp_path):
    ws, clock, sample = copy_of(built, tmp_path / "c")
    name = broadcast(ws, clock, salt="parts")
    trial.answer(ws, clock, sample)
    r = results(ws, name)
    doc = r.to_dict()
    t, h = r.arms["treatment"], r.arms["holdout"]
    assert t.units >= t.orders >= t.buyers > 0 and doc["arms"]["treatment"]["enrolled"] == t.runs
    # An existing customer base: nobody registers after entering a broadcast.
    assert t.registered == h.registered == 0
    # The one message step, on the inbox: every run reached it (the holdout: would have).
    step = doc["by_step"]["news"]
    assert step["channel"] == "inbox" and list(doc["by_channel"]) == ["inbox"]
    for arm, a in (("treatment", t), ("holdout", h)):
        assert step["arms"][arm]["reached"] == a.reached
        assert doc["by_channel"]["inbox"]["arms"][arm] == step["arms"][arm]
    assert step["messages"]["sent"] == t.reached
    assert step["messages"]["skipped"] >= h.runs
    assert step["conversion"]["n_treated"] == t.reached
    assert doc["window"] == "14d" and doc["window_source"] == "default"
    # The CLI prints units and the per-step table.
    assert r.variants is None and doc["by_variant"] == {}


def test_goal_within_is_the_default_window(built, tmp_path):
    ws, clock, sample = copy_of(built, tmp_path / "c")
    raw = _raw(salt="goal")
    raw["goal_within"] = "7d"
    trial.send(ws, clock, raw)
    trial.answer(ws, clock, sample)
    r = results(ws, "comeback")
    assert (r.window, r.window_source) == ("7d", "goal_within")
    wide = results(ws, "comeback", window="14d")
    assert wide.window_source == "option"
    assert wide.arms["treatment"].orders >= r.arms["treatment"].orders
    bad = _raw(salt="bad")
    bad["name"], bad["goal_within"] = "too-long", "400d"
    with pytest.raises(Invalid, match="goal_within.*expected a duration from 1h to 366d"):
        service.create(ws, bad, user="t")
    bad["goal_within"] = "soon"
    with pytest.raises(Invalid, match="goal_within"):
        service.create(ws, bad, user="t")


def test_variants_are_reported_each_and_compared_with_the_first(built, tmp_path):
    ws, clock, sample = copy_of(built, tmp_path / "c")
    raw = _raw(salt="ab")
    raw["variants"] = [{"name": "plain"}, {"name": "warm"}]
    raw["steps"][1]["variants"] = {"warm": {"subject": "好久不见", "text": "{{ coupon.code }}"}}
    trial.send(ws, clock, raw)
    trial.answer(ws, clock, sample)
    r = results(ws, "comeback")
    assert list(r.by_variant) == ["plain", "warm"]
    # Each variant's report adds up to the campaign's, arm by arm.
    for arm in ("treatment", "holdout"):
        for key in ("runs", "buyers", "orders", "units"):
            got = sum(v["arms"][arm][key] for v in r.by_variant.values())
            assert got == getattr(r.arms[arm], key), (arm, key)
    v = r.variants
    assert v["control"] == "plain" and len(v["comparisons"]) == 1
    c = v["comparisons"][0]
    plain, warm = (r.by_variant[x]["arms"]["treatment"] for x in ("plain", "warm"))
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        warm["buyers"], warm["runs"], plain["buyers"], plain["runs"], method="newcomb"
    )
    assert c["conversion"]["low"] == pytest.approx(low) and c["conversion"][
        "high"
    ] == pytest.approx(high)
    assert c["sales_per_run"]["method"] == "welch"
    # A campaign of a few thousand cannot see a 20% rise: no winner is called.
    has = min(plain["runs"], warm["runs"])
    assert v["has_per_variant"] == has < v["needed_per_variant"]
    assert v["winner"] is None and not v["ready"]
    assert (
        v["verdict"] == f"no winner yet: needs {v['needed_per_variant']:,} per variant, has {has:,}"
    )
    from archer.measurement.stats import mde_rate

    n = v["needed_per_variant"]
    assert (
        mde_rate(n, n, v["baseline"]) <= 0.2 * v["baseline"] < mde_rate(n - 1, n - 1, v["baseline"])
    )
    # The same in the CLI and over REST.
    from typer.testing import CliRunner

    from archer.cli import app

    ws.close()
    got = CliRunner().invoke(app, ["campaign", "results", "comeback", "--home",
                                   str(tmp_path / "c" / "shop")])  # fmt: skip
    assert got.exit_code == 0, got.output
    assert "no winner yet: needs" in got.stdout and "variant warm" in got.stdout


def test_a_variant_wins_only_at_the_size_it_needs():
    rng = np.random.default_rng(3)

    def runs(variant: str, n: int, rate: float) -> pd.DataFrame:
        buyer = rng.random(n) < rate
        sales = np.where(buyer, 100.0, 0.0)
        return pd.DataFrame({"variant": variant, "buyer": buyer, "sales": sales,
                             "gross_profit": sales * 0.4})  # fmt: skip

    small = pd.concat([runs("a", 500, 0.05), runs("b", 500, 0.10)])
    v = compare_variants(small, ["a", "b"])
    assert v["winner"] is None and v["verdict"].startswith("no winner yet: needs")
    big = pd.concat([runs("a", 20_000, 0.05), runs("b", 20_000, 0.10)])
    v = compare_variants(big, ["a", "b"])
    assert v["ready"] and v["winner"] == "b" and v["verdict"].startswith("b wins")
    same = pd.concat([runs("a", 20_000, 0.05), runs("b", 20_000, 0.05)])
    v = compare_variants(same, ["a", "b"])
    assert v["ready"] and v["winner"] is None and v["verdict"].startswith("no winner: ")
    none = pd.concat([runs("a", 100, 0.0), runs("b", 100, 0.1)])
    assert compare_variants(none, ["a", "b"])["verdict"].startswith("no winner yet: the first")
    with pytest.raises(Invalid, match="min_lift"):
        compare_variants(big, ["a", "b"], min_lift=0)
