"""11.11 on the sample shop, end to end: the planner finds the festival's planted hot words rising
in last year's window, suggests a group, products and their stock risk; the plan becomes an
e-mail broadcast with a holdout (sent through a real SMTP server on loopback), the clock moves
past the festival, the simulator's orders come back, the shop is rebuilt, and the results count
the treated and the holdout's buyers and sales."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from archer.campaigns import service
from archer.clock import ManualClock
from archer.festivals import RULES_BY_KEY
from archer.measurement.results import results
from archer.sample.simulate import simulate
from archer.themes import plan
from archer.themes.broadcast import create_broadcast
from support import sample_shop

# last year's 11.11 (and the days before it, its baseline) and the year up to this one's
START, END = date(2025, 10, 1), date(2026, 10, 29)
NOW = datetime(2026, 10, 30, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, the day after the sample
UNTIL = date(2026, 11, 20)
pytestmark = pytest.mark.xdist_group("theme_scenario")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenario")
    ws = sample_shop(root, customers=2000, seed=7, start=START, end=END, as_of=END,
                     clock=ManualClock(NOW))  # fmt: skip
    yield ws, root / "sample"
    ws.close()


def test_11_11_from_hot_words_to_results(shop, smtp_sink):
    ws, sample = shop
    clock = ws.clock
    doc = plan(ws, "11.11", top=5)
    assert doc["evidence"] == {"start": "2025-10-31", "end": "2025-11-11"}
    assert doc["target"] == {"start": "2026-10-31", "end": "2026-11-11", "day": "2026-11-11"}
    planted = set(RULES_BY_KEY["singles_day"].hot_words)
    assert planted & set(doc["rising"]) and set(doc["words"]) & planted
    assert doc["group"]["count"] > 100 and doc["products"]
    assert all(p["risk"] in ("ok", "low_stock", "at_risk", "oversell") for p in doc["products"])

    caps_off = ws.settings.campaigns.model_copy(update={"caps": {}})
    ws = ws.replace(smtp=smtp_sink.settings(), campaigns=caps_off)
    create_broadcast(ws, doc, "theme-1111", user="olga", holdout=0.5,
                     confirm_oversell=bool(doc["oversold"]))  # fmt: skip
    d = service.get(ws, "theme-1111")["definition"]
    send_at = datetime.fromisoformat(d["send_at"]).replace(tzinfo=ws.tz)
    assert d["holdout"] == 0.5 and send_at.date() == date(2026, 10, 31)
    service.set_status(ws, "theme-1111", "active")
    clock.set(send_at.astimezone(UTC))
    for _ in range(4):
        service.run_round(ws)
        clock.advance(hours=6)
    c = service.get(ws, "theme-1111")
    sent = sum(st.get("sent", 0) for st in c["ledger"]["messages"].get("treatment", {}).values())
    assert sent > 0 and len(smtp_sink.messages()) == sent

    clock.set(datetime(2026, 11, 21, tzinfo=UTC))
    simulate(ws, UNTIL, sample_dir=sample)  # the orders come back, and the shop is rebuilt
    r = results(ws, "theme-1111")
    t, h = r.arms["treatment"], r.arms["holdout"]
    assert t.runs > 0 and h.runs > 0 and t.runs + h.runs == doc["group"]["count"]
    assert t.buyers > 0 and h.buyers > 0 and t.sales > 0 and h.sales > 0
    assert t.buyers / t.runs >= 0 and r.conversion is not None
