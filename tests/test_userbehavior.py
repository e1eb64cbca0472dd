"""The Tianchi UserBehavior log (issue 12, item 3) and the general pieces behind its preset:
``--map-values``, event ids made from the row, epoch times, headerless files with a column
list; and buy events in the funnel's bought steps when a shop has no orders (item 4).

The log's fixture, ``tests/data/userbehavior_sample.csv``, is written by
``tests/data/make_userbehavior.py`` in the documented layout (see tests/data/README.md).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archer.analytics.funnel import NOTES
from archer.analytics.reports import funnel_report
from archer.cli import app
from archer.schema import PROFILE
from conftest import rows, run_import, write
from support import workspace

LOG = Path(__file__).parent / "data" / "userbehavior_sample.csv"
SHANGHAI = timedelta(hours=8)
COLUMNS = "customer_id,product_id,category,type,occurred_at"
TYPES = "type:pv=view,cart=cart_add,fav=favorite,buy=purchase"


def archer(*args: str) -> dict:
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def fails(*args: str) -> str:
    """The one-line error of a refused command (no traceback)."""
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code != 0 and isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r.output


def plain_count(path: Path) -> dict:
    """What the file says, counted with the csv module alone."""
    with open(path, newline="", encoding="utf-8") as f:
        lines = [tuple(row) for row in csv.reader(f)]
    did: dict[str, set[str]] = defaultdict(set)
    buy_days: dict[str, set] = defaultdict(set)
    for user, _item, _cat, kind, ts in lines:
        did[kind].add(user)
        if kind == "buy":
            buy_days[user].add((datetime.fromtimestamp(int(ts), UTC) + SHANGHAI).date())
    return {
        "lines": len(lines),
        "events": len(set(lines)),  # a line given twice is one event
        "users": {ln[0] for ln in lines},
        "items": {ln[1]: ln[2] for ln in lines},
        "did": did,
        "repeat_buyers": {u for u, days in buy_days.items() if len(days) >= 2},
        "last": max(int(ln[4]) for ln in lines),
    }


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    home = tmp_path_factory.mktemp("ub") / "shop"
    ws = workspace(home)
    cmd = ("import", "events", str(LOG), "--preset", "taobao-userbehavior", "--home", str(home))
    first, second = archer(*cmd), archer(*cmd)
    return ws, first, second


def test_the_log_imports_with_one_command_and_again_without_change(imported):
    ws, first, second = imported
    n = plain_count(LOG)
    assert n["lines"] == 1796 and n["events"] == 1795  # the fixture has one line twice
    assert first["rows_read"] == n["lines"] and first["rejected"] == 0
    t = first["tables"]
    assert t["events"]["inserted"] == n["events"] and t["events"]["repeats"] == 1
    assert t["customers"]["inserted"] == len(n["users"])
    assert t["products"]["inserted"] == len(n["items"])
    assert first["summary"]["buy"] == sum(1 for r in open(LOG) if ",buy," in r)
    # The same file again: every row is already there, nothing added or changed.
    assert (second["inserted"], second["updated"], second["rejected"]) == (0, 0, 0)
    assert second["unchanged"] == first["inserted"]
    assert second["counts"] == first["counts"]
    assert second["counts"]["events"] == n["events"]


def test_events_carry_the_logs_values(imported):
    ws, _, _ = imported
    ev = rows(ws, "events")
    kinds = {"pv": "view", "cart": "cart_add", "fav": "favorite", "buy": "purchase"}
    with open(LOG, newline="") as f:
        # Unix seconds are an instant: stored as UTC, whatever the shop's zone.
        want = {
            (u, i, c, kinds[k], datetime.fromtimestamp(int(ts), UTC).replace(tzinfo=None))
            for u, i, c, k, ts in csv.reader(f)
        }
    got = {(e["customer_id"], e["product_id"], e["category"], e["type"], e["occurred_at"])
           for e in ev}  # fmt: skip
    assert got == want and len(ev) == len(want)
    assert all(e["event_id"].startswith("ev-") and len(e["event_id"]) == 23 for e in ev)
    products = {p["product_id"]: p["category"] for p in rows(ws, "products")}
    assert products == plain_count(LOG)["items"]


def test_the_funnel_counts_who_viewed_carted_and_bought_as_the_file_does(imported):
    ws, _, _ = imported
    n = plain_count(LOG)
    doc = funnel_report(ws)
    assert doc["as_of"] == (datetime.fromtimestamp(n["last"], UTC) + SHANGHAI).date().isoformat()
    row = doc["rows"][0]
    did = n["did"]
    assert row["registered"] == len(n["users"])
    assert row["did_view"] == len(did["pv"])
    assert row["did_cart"] == len(did["cart"])
    # Bought: the people with a buy, counted from the purchase events (no orders imported).
    assert row["ordered"] == row["paid"] == len(did["buy"]) > 0
    assert row["repeated"] == len(n["repeat_buyers"]) > 0
    assert row["carted"] == len(did["cart"] | did["buy"])  # reached: carted or later
    assert row["viewed"] == len(did["pv"] | did["cart"] | did["buy"])
    assert doc["notes"] == [NOTES["visitors"]]  # only the visits are unknown


def test_the_profile_counts_the_logs_buyers_and_forecasts_nothing_from_nine_days(imported):
    """Each buy is a paid order of the profile (no orders imported): the buyers of the file
    are the buyers of the lifecycle, and the repeat buyers those who bought on two days or
    more; nine days of buying are too few for the customer-base models, which say so."""
    ws, _, _ = imported
    n = plain_count(LOG)
    doc = archer("build", "--home", str(ws.home))
    assert any("need at least 28 days" in note for note in doc["models"]["notes"])
    profile = {p["customer_id"]: p for p in rows(ws, PROFILE)}
    assert set(profile) == n["users"]
    buyers = {c for c, p in profile.items() if p["paid_orders"]}
    assert buyers == n["did"]["buy"]
    repeat = {c for c, p in profile.items() if (p["purchase_days"] or 0) >= 2}
    assert repeat == n["repeat_buyers"]
    states = {p["lifecycle"] for c, p in profile.items() if c in buyers}
    assert states <= {"one_time_buyer", "repeat_buyer", "lapsing", "lost"}, states
    assert all(profile[c]["lifecycle"] != "one_time_buyer" for c in repeat)
    assert all(p["p_alive"] is None for p in profile.values())


def test_a_plain_import_with_the_general_options_makes_the_same_events(imported, tmp_path):
    """The preset is the general pieces: the same file, headerless with a column list, its
    values mapped and its times epoch seconds (as ``%s``), gives the very same event ids."""
    ws, first, _ = imported
    r = archer("import", "events", str(LOG), "--no-header", "--columns", COLUMNS,
               "--map-values", TYPES, "--date-format", "%s", "--home", str(ws.home))  # fmt: skip
    assert (r["inserted"], r["updated"], r["rejected"]) == (0, 0, 0)
    assert r["unchanged"] == first["tables"]["events"]["inserted"]
    assert any("no event_id" in note for note in r["notes"])


def test_an_unlisted_value_is_refused_with_file_line_field_and_the_values_expected(ws, tmp_path):
    f = write(tmp_path / "log.csv", "1,10,7,pv,1511600000\n2,11,7,clikc,1511600001\n"
              "3,12,7,BUY,1511600002\n")  # fmt: skip
    r = CliRunner().invoke(app, ["import", "events", str(f), "--no-header", "--columns", COLUMNS,
                                 "--map-values", TYPES, "--date-format", "epoch",
                                 "--home", str(ws.home)])  # fmt: skip
    assert r.exit_code == 0, r.output
    # The summary counts alike problems together; the quarantine (named after the file)
    # has the line, the field, the value and the values expected.
    assert "1 × events: type is not one of pv, cart, fav, buy" in r.output
    q = next(ws.settings.quarantine_dir.glob("*-events-log-*.csv"))
    assert q.name in r.output.replace("\n", "")
    said = "type: clikc is not one of pv, cart, fav, buy (--map-values)"
    with open(q, encoding="utf-8") as fh:
        (bad,) = list(csv.DictReader(fh))
    assert bad["line"] == "2" and said in bad["reason"] and bad["type"] == "clikc"
    assert {e["type"] for e in rows(ws, "events")} == {"view", "purchase"}  # BUY: any case


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("type", "expected COLUMN:VALUE=stored"),
        ("type:pv", "'pv' is not VALUE=stored"),
        ("type:pv=view,pv=cart_add", "'pv' is mapped to both 'view' and 'cart_add'"),
        ("kind:pv=view", "events has no column 'kind'"),
        ("query:a=b", "the file fills no column 'query' of events"),
    ],
)
def test_a_wrong_map_values_is_one_line(ws, tmp_path, spec, said):
    f = write(tmp_path / "log.csv", "1,10,7,pv,1511600000\n")
    out = fails("import", "events", str(f), "--no-header", "--columns", COLUMNS,
                "--map-values", spec, "--home", str(ws.home))  # fmt: skip
    assert said in out.replace("\n", " ")


def test_epoch_milliseconds_and_seconds(ws, tmp_path):
    ms = write(tmp_path / "ms.csv", "u1,p1,c1,view,1511600000123\n")
    r = run_import(ws, "events", ms, header=False, columns=COLUMNS, date_format="epoch_ms")
    assert r.rejected == 0
    (e,) = rows(ws, "events")
    assert e["occurred_at"] == datetime(2017, 11, 25, 8, 53, 20, 123000)
    s = write(tmp_path / "s.csv", "u1,p1,c1,view,1511600000\n")
    assert (
        run_import(ws, "events", s, header=False, columns=COLUMNS, date_format="%s").rejected == 0
    )
    assert {e["occurred_at"] for e in rows(ws, "events")} == {
        datetime(2017, 11, 25, 8, 53, 20, 123000),
        datetime(2017, 11, 25, 8, 53, 20),
    }


def test_a_headerless_file_with_another_number_of_columns_is_refused(ws, tmp_path):
    six = write(tmp_path / "six.csv", "1,10,7,pv,1511600000,x\n")
    out = fails("import", "events", str(six), "--no-header", "--columns", COLUMNS,
                "--home", str(ws.home))  # fmt: skip
    assert f"{six}: line 1 has 6 fields" in out.replace("\n", "")
    assert "5 columns are named: customer_id, product_id, category" in out.replace("\n", "")
    out = fails("import", "events", str(six), "--preset", "taobao-userbehavior",
                "--home", str(ws.home))  # fmt: skip
    assert "line 1 has 6 fields" in out and "user_id, item_id, category_id" in out
    assert fails("import", "events", str(six), "--no-header", "--home", str(ws.home))
    assert rows(ws, "events") == []
    # A later line that does not split into the columns is quarantined with its line.
    mixed = write(tmp_path / "mixed.csv", "1,10,7,pv,1511600000\n2,11,7,pv\n")
    r = run_import(ws, "events", mixed, header=False, columns=COLUMNS, date_format="epoch",
                   map_values=[TYPES])  # fmt: skip
    assert (r.inserted, r.rejected) == (1, 1)
    assert "2,malformed CSV row: missing columns" in Path(r.quarantine).read_text()


def test_ids_from_the_row_ignore_the_order_of_columns_but_not_the_content(ws, tmp_path):
    a = write(tmp_path / "a.csv", "customer_id,type,occurred_at\nu1,view,2024-05-01 10:00\n")
    b = write(tmp_path / "b.csv", "occurred_at,customer_id,type\n2024-05-01 10:00,u1,view\n"
              "2024-05-01 10:00,u1,cart_add\n")  # fmt: skip
    assert run_import(ws, "events", a).inserted == 1
    r = run_import(ws, "events", b)
    assert (r.inserted, r.unchanged) == (1, 1)


def test_with_orders_imported_the_orders_alone_count_as_bought(ws, tmp_path):
    """A purchase event is not also an order: with an orders table, the bought steps count
    orders (here: u2's), not u1's purchase event."""
    ev = write(tmp_path / "e.csv", "u1,p1,c1,buy,1511600000\nu2,p1,c1,pv,1511600000\n")
    assert run_import(ws, "events", ev, header=False, columns=COLUMNS, date_format="epoch",
                      map_values=[TYPES]).rejected == 0  # fmt: skip
    assert funnel_report(ws)["rows"][0]["paid"] == 1
    o = write(tmp_path / "o.csv", "order_id,customer_id,created_at,paid_at,goods_amount\n"
              "o1,u2,2017-11-25 10:00,2017-11-25 10:01,50\n")  # fmt: skip
    assert run_import(ws, "orders", o).rejected == 0
    row = funnel_report(ws)["rows"][0]
    assert (row["ordered"], row["paid"], row["net_sales"]) == (1, 1, 50.0)
