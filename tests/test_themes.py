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
from archer.themes.planner import _rank, _risk, _words, find_products, send_times
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


def test_products_out_of_stock_come_after_those_in_stock():
    import pandas as pd

    rows = [  # the best converter has none left; a weaker one has stock
        ("P1", 0, 50, 40),
        ("P2", 25, 50, 10),
        ("P3", None, 50, 5),
        ("P4", 0, 50, 30),
    ]
    df = pd.DataFrame([
        {"product_id": pid, "name": pid, "category": "home", "list_price": 100.0,
         "unit_cost": 50.0, "stock": stock, "viewers": viewers, "buyers": buyers,
         "fest_buyers": 0, "fest_units": 0, "depth": 0.1}
        for pid, stock, viewers, buyers in rows
    ])  # fmt: skip
    assert [p["product_id"] for p in _rank(df, 2, [], [])] == ["P2", "P3"]  # unknown stock: kept
    assert [p["product_id"] for p in _rank(df, 3, [], [])] == ["P2", "P3", "P1"]
    # Added by hand, a product with none left stays in the selection (and is flagged later).
    assert [p["product_id"] for p in _rank(df, 1, ["P4"], [])] == ["P2", "P4"]


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


# -- the operator's inputs on the command line and over REST ---------------------------------------
RANGE = {"start": date(2026, 10, 31), "end": date(2026, 11, 11)}


@pytest.fixture(scope="module")
def picks(shop):
    """A range plan, one of its products to remove, a catalogue product outside it to add and an
    edited group: the inputs the CLI and the API are checked against the core with."""
    base = plan(shop, **RANGE, as_of=AS_OF, top=3)
    chosen = {p["product_id"] for p in base["products"]}
    extra = next(p["product_id"] for p in find_products(shop, "p0", limit=50)
                 if p["product_id"] not in chosen)  # fmt: skip
    return {"add": [extra], "remove": [base["products"][0]["product_id"]],
            "query": "festival_buyer and email_reachable"}  # fmt: skip


def _same(doc):
    return json.loads(json.dumps(doc, ensure_ascii=False, default=str))


def test_the_cli_plans_a_range_with_products_and_group_by_hand_as_the_core_does(shop, picks):
    home = str(shop.settings.home)
    r = CliRunner().invoke(app, [
        "theme", "plan", "--home", home, "--from", "2026-10-31", "--to", "2026-11-11",
        "--as-of", "2025-11-30", "--top", "3", "--add", picks["add"][0], "--remove",
        picks["remove"][0], "--query", picks["query"], "--json",
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got == _same(plan(shop, **RANGE, as_of=AS_OF, top=3, **picks))
    ids = [p["product_id"] for p in got["products"]]
    assert picks["add"][0] in ids and picks["remove"][0] not in ids
    assert got["group"]["edited"] and got["group"]["query"] == picks["query"]
    assert got["range"] == {"start": "2026-10-31", "end": "2026-11-11"}
    words = CliRunner().invoke(app, [
        "theme", "plan", "--home", home, "--from", "2026-10-31", "--to", "2026-11-11",
        "--as-of", "2025-11-30", "--top", "3", "--remove", picks["remove"][0],
    ])  # fmt: skip
    assert words.exit_code == 0, words.output
    assert "Theme 2026-10-31 – 2026-11-11" in words.stdout and "Removed: " in words.stdout


@pytest.mark.parametrize(("args", "says"), [
    (["--festival", "11.11", "--from", "2026-10-31", "--to", "2026-11-11"], "not both"),
    (["--from", "2026-10-31"], "both --from and --to"),
    ([], "choose a festival"),
    (["--from", "31.10.2026", "--to", "2026-11-11"], "--from '31.10.2026': expected a date"),
    (["--festival", "11.11", "--add", "NO-SUCH"], "no product NO-SUCH"),
])  # fmt: skip
def test_the_cli_refuses_bad_plan_inputs_in_one_line(shop, args, says):
    r = CliRunner().invoke(app, ["theme", "plan", "--home", str(shop.settings.home), *args])
    assert r.exit_code == 1 and says in r.stderr and "Traceback" not in r.output, r.output


def test_a_bad_group_on_the_cli_is_placed_like_the_audience_language_places_it(shop):
    r = CliRunner().invoke(app, [
        "theme", "plan", "--home", str(shop.settings.home), "--festival", "11.11", "--as-of",
        "2025-11-30", "--top", "1", "--query", "festival_buyer and fstival_buyer",
    ])  # fmt: skip
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    lines = r.stderr.splitlines()
    assert "fstival_buyer" in lines[0] and "festival_buyer" in lines[0]  # with the suggestion
    caret = next(i for i, line in enumerate(lines) if line.strip().startswith("^"))
    text = lines[caret - 1]
    assert text.strip() == "festival_buyer and fstival_buyer"
    assert text[lines[caret].index("^") :].startswith("fstival_buyer")


def test_the_cli_searches_products_and_creates_the_plan_it_was_given(shop, picks):
    from archer.campaigns import service

    home = str(shop.settings.home)
    r = CliRunner().invoke(app, ["theme", "products", "--home", home, picks["add"][0], "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == find_products(shop, picks["add"][0])
    assert json.loads(r.stdout)[0]["product_id"] == picks["add"][0]
    table = CliRunner().invoke(app, ["theme", "products", "--home", home, picks["add"][0]])
    assert table.exit_code == 0 and picks["add"][0] in table.stdout
    none = CliRunner().invoke(app, ["theme", "products", "--home", home, "zzz-nothing"])
    assert none.exit_code == 0 and "No product" in none.stdout
    made = CliRunner().invoke(app, [
        "theme", "plan", "--home", home, "--from", "2026-10-31", "--to", "2026-11-11",
        "--as-of", "2025-11-30", "--top", "3", "--add", picks["add"][0], "--query",
        picks["query"], "--create", "theme-range", "--confirm-oversell", "--json",
    ])  # fmt: skip
    assert made.exit_code == 0, made.output
    d = service.get(shop, "theme-range")["definition"]
    assert d["trigger"]["audience"] == picks["query"]
    assert picks["add"][0] in json.dumps(d, ensure_ascii=False)  # the message names it


@pytest.fixture(scope="module")
def api(shop):
    """An API client with a key (one per module: key names are unique)."""
    from fastapi.testclient import TestClient

    from archer.store import apikeys, utcnow
    from archer.web import create_app

    with shop.session(write=True) as s:
        _, key = apikeys.create(s, "plan-inputs", created_by="test", now=utcnow())
    c = TestClient(create_app(shop, sync_every=None, round_every=None))
    c.headers["Authorization"] = f"Bearer {key}"
    yield c
    c.close()


def test_the_api_plans_a_range_by_hand_exactly_as_the_core(shop, api, picks):
    c = api
    params = {"start": "2026-10-31", "end": "2026-11-11", "as_of": "2025-11-30", "top": 3,
              **picks}  # fmt: skip
    r = c.get("/api/themes/plan", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == _same(plan(shop, **RANGE, as_of=AS_OF, top=3, **picks))
    body = c.post("/api/themes/plan", json=params)
    assert body.status_code == 200, body.text
    assert body.json() == r.json()
    found = c.get("/api/themes/products", params={"search": picks["add"][0]})
    assert found.status_code == 200
    assert found.json()["items"] == _same(find_products(shop, picks["add"][0]))


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"festival": "11.11", "start": "2026-10-31", "end": "2026-11-11"}, 422, "festival"),
    ({"start": "2026-10-31"}, 422, "end"),
    ({}, 422, "start"),
    ({"festival": "11.11", "add": [f"P{i}" for i in range(51)]}, 422, "add"),
    ({"festival": "11.11", "remove": ["x" * 101]}, 422, "remove"),
    ({"festival": "11.11", "words": ["w"] * 11}, 422, "words"),
    ({"festival": "11.11", "query": "x" * 20_001}, 422, "query"),
    ({"festival": "11.11", "as_of": "2025-11-30", "query": "festival_buyer and ("}, 400, "column"),
])  # fmt: skip
def test_the_api_bounds_the_plan_inputs_and_names_the_field(api, params, status, field):
    c = api
    r = c.post("/api/themes/plan", json=params)
    assert r.status_code == status and field in r.text, r.text
    assert "Traceback" not in r.text
    if "query" in params and len(params["query"]) < 100:
        assert r.json()["line"] == 1 and r.json()["column"] >= 19


def test_the_api_products_search_is_bounded(api):
    c = api
    assert c.get("/api/themes/products", params={"search": "x" * 201}).status_code == 422
    assert c.get("/api/themes/products", params={"search": "p", "limit": 51}).status_code == 422
    assert c.get("/api/themes/products", params={"search": "zzz-nothing"}).json()["items"] == []
    many = c.get("/api/themes/plan", params={"festival": "11.11", "add": ["P1"] * 51})
    assert many.status_code == 422 and many.json()["errors"][0]["field"] == "query.add"
