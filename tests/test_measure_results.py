"""Campaign results on the shop that responds: a campaign sends, the simulator advances the
shop with the members' latent responses and writes the true effect, and the results recover it.

One small sample shop is built once; each test works on its own copy (the shop, its store, its
sample folder), on a manual clock.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from archer.campaigns import service
from archer.cli.support import load_home
from archer.clock import ManualClock
from archer.measurement.results import results
from archer.offers import coupons
from archer.sample.simulate import simulate, uniform
from archer.store.offers import Coupon
from archer.workspace import Workspace
from support import sample_shop

END = date(2026, 10, 31)
SEND = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, the day after the sample
UNTIL = date(2026, 11, 20)
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
    coupons.define(ws, "back-20", kind="threshold", threshold=99, amount=20, valid_days=14)
    raw = service.apply_settings(service.template("newsletter"), [
        "name=comeback", f"holdout={holdout}", f"salt={salt}", f"trigger.audience='{AUDIENCE}'",
        "send_at=2026-11-01T10:00:00", "send_until=2026-11-02T10:00:00",
    ])  # fmt: skip
    raw["windows"] = []
    raw["steps"] = [
        {"id": "give", "type": "coupon", "template": "back-20"},
        {"id": "news", "type": "message", "channel": "inbox", "subject": "回来看看",
         "text": "{{ coupon.label }} {{ coupon.code }}"},
    ]  # fmt: skip
    service.create(ws, raw, user="t", start=True)
    for _ in range(4):
        service.run_round(ws)
        clock.advance(hours=6)
    return raw["name"]


@pytest.mark.parametrize("salt", ["a", "b"])
def test_the_reported_uplift_covers_the_true_effect_the_simulator_wrote(built, tmp_path, salt):
    ws, clock, sample = copy_of(built, tmp_path / "c")
    name = broadcast(ws, clock, salt=salt)
    clock.set(datetime(2026, 11, 21, tzinfo=UTC))
    sim = simulate(ws, UNTIL, sample_dir=sample)
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
    clock.set(datetime(2026, 11, 21, tzinfo=UTC))
    simulate(ws, UNTIL, sample_dir=sample)
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
    clock.set(datetime(2026, 11, 21, tzinfo=UTC))
    first = simulate(ws, date(2026, 11, 10), sample_dir=sample)
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
