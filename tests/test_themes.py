"""The theme planner on the sample shop: for 11.11 the planted words, a group in the audience
language with its reach, products with discount and margin left, stock risk and send windows;
with no search data it falls back to the festival's buyers and says so."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, time

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from archer.audiences import members
from archer.cli import app
from archer.errors import Invalid
from archer.festivals import RULES_BY_KEY
from archer.themes import plan
from archer.themes.planner import _risk, _words, send_times
from support import sample_shop

START, END, AS_OF = date(2025, 6, 1), date(2025, 11, 30), date(2025, 11, 30)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws = sample_shop(tmp_path_factory.mktemp("themes"), customers=3000, seed=7, start=START,
                     end=END, as_of=AS_OF)  # fmt: skip
    yield ws
    ws.close()


def _no_searches(sample):
    path = sample / "events.parquet"
    t = pq.read_table(path)
    pq.write_table(t.filter(pc.not_equal(t["type"].cast("string"), "search")), path)


@pytest.fixture(scope="module")
def silent(tmp_path_factory):
    ws = sample_shop(tmp_path_factory.mktemp("silent"), customers=1500, seed=7, start=START,
                     end=END, as_of=AS_OF, edit=_no_searches)  # fmt: skip
    yield ws
    ws.close()


def test_the_11_11_plan_takes_the_planted_words_and_builds_a_group(shop):
    doc = plan(shop, "11.11", as_of=AS_OF, top=8)
    assert doc["evidence"] == {"start": "2025-10-31", "end": "2025-11-11"}
    assert doc["target"]["day"] == "2026-11-11" and doc["search_data"] and not doc["notes"]
    assert doc["words"] and set(doc["words"]) <= {"满减", "双11预售", "11.11", "deals", "双11",
                                                  "双十一"}  # fmt: skip
    assert set(RULES_BY_KEY["singles_day"].hot_words) & set(doc["rising"])
    g = doc["group"]
    assert 'searched("双11", within = 31d)' in g["query"] and "festival_buyer" in g["query"]
    assert 0 < g["count"] <= 3000
    assert 0 < g["reach"]["email"] <= g["count"] and 0 < g["reach"]["sms"] <= g["count"]
    assert 0 < len(doc["products"]) <= 8
    for p in doc["products"]:
        assert p["category"] in doc["categories"]
        assert 0 <= p["discount_depth"] < 1
        assert p["margin_left"] <= p["margin"] + 1e-9
        lo, hi = p["units_interval"]
        assert lo <= p["expected_units"] <= hi
        assert p["risk"] in ("ok", "low_stock", "at_risk", "oversell", "unknown")


def test_chosen_words_steer_the_categories(shop):
    doc = plan(shop, "双十一", ["羽绒服"], as_of=AS_OF, top=3)
    assert doc["words"] == ["羽绒服"] and doc["categories"][0] == "apparel"
    assert all(p["category"] in doc["categories"] for p in doc["products"])


def test_send_windows_at_the_groups_preferred_hours_and_sms_inside_the_legal_window(shop):
    doc = plan(shop, "11.11", as_of=AS_OF, top=1)
    m = members(shop, doc["group"]["query"], fields=["preferred_hour"])
    hours = Counter(int(h) for h in m.preferred_hour.dropna())
    assert doc["preferred_hours"]["used"] and doc["preferred_hours"]["known"] == sum(hours.values())
    email = [w["at"] for w in doc["send_windows"] if w["channel"] == "email"]
    first = max(hours, key=lambda h: (hours[h], -h))  # the group's most common hour
    assert f"2026-10-31T{first:02d}:00:00" in email and len(email) in (2, 4)
    assert {w["source"] for w in doc["send_windows"]} == {"profiles"}
    for w in doc["send_windows"]:
        if w["channel"] == "sms":
            at = time.fromisoformat(w["at"][11:])
            assert w["quiet_hours"] == "22:00-08:00" and time(8) <= at < time(22)


def test_send_times_by_hand():
    quiet = "22:00-08:00"
    few = Counter({21: 29})  # under MIN_HOURS: the shop's reading hours
    assert send_times(few, quiet) == ([time(7, 30), time(17)], time(10), "default")
    assert send_times(None, None) == ([time(7, 30), time(17)], time(10), "default")
    # most read at 23:00 (quiet for SMS), then 22:00 (quiet), then 20:00; 9:00 is 10 h away
    hours = Counter({23: 40, 22: 30, 20: 20, 9: 10})
    email, sms, source = send_times(hours, quiet)
    assert email == [time(9), time(23)] and sms == time(20) and source == "profiles"
    # every preferred hour quiet: SMS falls back to two hours after the quiet hours end
    assert send_times(Counter({23: 50, 2: 50}), quiet)[1] == time(10)
    # no hour four hours from the first: one e-mail a day
    assert send_times(Counter({20: 40, 21: 30}), quiet)[0] == [time(20)]


def test_no_search_data_falls_back_to_the_festival_buyers_and_says_so(silent):
    doc = plan(silent, "11.11", as_of=AS_OF, top=5)
    assert not doc["search_data"] and doc["words"] == []
    assert "no search data" in doc["notes"][0]
    assert doc["categories"] and doc["products"] and "searched" not in doc["group"]["query"]
    assert doc["group"]["count"] > 0


def test_stock_risk_by_hand():
    p = {"fest_buyers": 50, "fest_units": 100, "stock": 0}
    # group = customers: 50 expected buyers × 2 units; 95 % of Poisson(50) is 37 … 64.
    risks = [_risk([{**p, "stock": s}], 1000, 1000)[0] for s in (10, 120, 150, 300, None)]
    assert [r["risk"] for r in risks] == ["oversell", "at_risk", "low_stock", "ok", "unknown"]
    assert risks[0]["expected_units"] == 100.0 and risks[0]["units_interval"] == [74.0, 128.0]


def test_words_are_bounded_and_cleaned():
    assert _words(['双十一"\\', " ＤＥＡＬＳ ", "双十一"]) == ["双十一", "deals"]
    assert _words(["x" * 500]) == ["x" * 30]
    with pytest.raises(Invalid, match="at most 10"):
        _words([str(i) for i in range(11)])


def test_the_cli_plans_in_json_and_refuses_an_unknown_festival(shop):
    home = str(shop.settings.home)
    r = CliRunner().invoke(app, ["theme", "plan", "--home", home, "--festival", "11.11",
                                 "--as-of", "2025-11-30", "--top", "2", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["products"]) == 2
    bad = CliRunner().invoke(app, ["theme", "plan", "--home", home, "--festival", "nope"])
    assert bad.exit_code == 1 and "unknown" in bad.stderr


# -- the plan as a broadcast with a holdout ------------------------------------------------------
def test_the_plan_becomes_a_draft_broadcast_with_a_holdout(shop):
    from archer.campaigns import service
    from archer.themes.broadcast import create_broadcast

    doc = plan(shop, "11.11", as_of=AS_OF, top=3)
    doc["oversold"] = []
    made = create_broadcast(shop, doc, "theme-1111", user="olga", holdout=0.2)
    got = service.get(shop, "theme-1111")
    assert made["name"] == got["name"] == "theme-1111" and got["kind"] == "broadcast"
    assert got["status"] == "draft"
    d = got["definition"]
    assert d["holdout"] == 0.2 and d["trigger"]["audience"] == doc["group"]["query"]
    first = doc["send_windows"][0]
    assert first["channel"] == "email" and d["send_at"].startswith(first["at"][:16])
    assert first["at"].startswith("2026-10-31T")


def test_an_oversold_plan_needs_a_confirmation_that_is_recorded(shop):
    from archer.campaigns import service
    from archer.errors import Conflict
    from archer.themes.broadcast import create_broadcast

    doc = plan(shop, "11.11", as_of=AS_OF, top=3)
    doc["oversold"] = [doc["products"][0]["product_id"]]  # as if its stock were short
    with pytest.raises(Conflict, match="may oversell"):
        create_broadcast(shop, doc, "theme-over", user="olga")
    with pytest.raises(LookupError):
        service.get(shop, "theme-over")
    create_broadcast(shop, doc, "theme-over", user="olga", channel="sms", confirm_oversell=True)
    desc = service.get(shop, "theme-over")["definition"]["description"]
    assert "oversell confirmed by olga at " in desc and doc["oversold"][0] in desc


def test_the_api_answers_the_plan(shop):
    from fastapi.testclient import TestClient

    from archer.store import apikeys, utcnow
    from archer.web import create_app

    with shop.session(write=True) as s:
        _, key = apikeys.create(s, "plan", created_by="test", now=utcnow())
    c = TestClient(create_app(shop, sync_every=None, round_every=None))
    auth = {"Authorization": f"Bearer {key}"}
    r = c.get("/api/themes/plan", params={"festival": "11.11", "as_of": "2025-11-30",
                                          "words": ["羽绒服"], "top": 2}, headers=auth)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["words"] == ["羽绒服"] and len(r.json()["products"]) == 2
    bad = c.get("/api/themes/plan", params={"festival": "nope"}, headers=auth)
    assert bad.status_code == 422 and "unknown" in bad.text
    assert c.get("/api/themes/plan", params={"festival": "11.11"}).status_code == 401
