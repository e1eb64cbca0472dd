"""Saved audiences on a real shop: definitions in a real SQLite store with who and when,
members from a real DuckDB warehouse, exports a spreadsheet cannot be tricked by, and
membership snapshots whose history agrees with set differences computed here."""

from __future__ import annotations

import csv
import shutil
from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from archer.audiences import AudienceError, count, explain, members, snapshots
from archer.audiences import service as svc
from archer.clock import ManualClock
from archer.ingest.importer import import_file
from archer.pipeline import build
from archer.sample import generate
from archer.schema import LOAD_ORDER
from archer.store import audiences as store_audiences
from archer.workspace import Workspace, open_workspace
from conftest import NOW
from support import workspace

DAY1, DAY2 = date(2026, 9, 30), date(2026, 10, 31)
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
# Names a spreadsheet would run as formulas, written into the shop's own customers.
TRAPS = {
    "C0000001": '=HYPERLINK("http://evil.example","x")',
    "C0000002": "+86 138 0000 0000",
    "C0000003": "-2+3",
    "C0000004": "@SUM(A1)",
    "C0000005": "-10",  # text, although it reads like a number
    "C0000006": "王芳",
}


def make_shop(tmp_path_factory, name: str, customers: int, traps: dict[str, str] | None = None):
    d = tmp_path_factory.mktemp(name)
    generate(d / "sample", customers=customers, seed=3, fmt="parquet")
    if traps:
        f = d / "sample" / "customers.parquet"
        c = pd.read_parquet(f)
        for cid, text in traps.items():
            c.loc[c.customer_id == cid, "name"] = text
        c.to_parquet(f, index=False)
    ws = workspace(d / "shop")
    for t in LOAD_ORDER:
        assert import_file(ws, t, d / "sample" / f"{t}.parquet", now=NOW).rejected == 0
    return ws


_built: dict[str, Workspace] = {}


def built_shop(tmp_path_factory) -> Workspace:
    """The sample shop built as of DAY1, made once per test process and shared with the CLI
    tests (which only read its profile); each test gets its own store (``ws``)."""
    if "shop" not in _built:
        _built["shop"] = make_shop(tmp_path_factory, "audience-shop", customers=400, traps=TRAPS)
        build(_built["shop"], DAY1)
    return _built["shop"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return built_shop(tmp_path_factory)


@pytest.fixture
def ws(shop, tmp_path):
    """The shared warehouse with a fresh, empty operational store of its own."""
    return shop.replace(**{"database": f"sqlite:///{tmp_path / 'archer.db'}"})


def ids(df: pd.DataFrame) -> set[str]:
    return set(df.customer_id)


def test_save_list_show_delete_with_who_and_when(ws):
    doc = svc.save(ws, "big", "total_spent >= 300", user="li", description="spent 300+", now=T0)
    assert doc["created"] and doc["count"] == count(ws, "total_spent >= 300")["count"] > 0
    assert doc["as_of"] == DAY1.isoformat()
    svc.save(ws, "jiangsu", 'province = "Jiangsu"', user="wang", now=T0 + timedelta(hours=1))
    assert [a["name"] for a in svc.list_audiences(ws)] == ["big", "jiangsu"]
    got = svc.get(ws, "big")
    assert got == {
        "name": "big",
        "query": "total_spent >= 300",
        "description": "spent 300+",
        "created_by": "li",
        "created_at": "2026-11-02T08:00:00+00:00",
        "updated_by": "li",
        "updated_at": "2026-11-02T08:00:00+00:00",
    }
    assert svc.delete(ws, "big")["name"] == "big"
    assert [a["name"] for a in svc.list_audiences(ws)] == ["jiangsu"]
    with pytest.raises(svc.UnknownAudience, match="no saved audience 'big'"):
        svc.get(ws, "big")
    with pytest.raises(svc.UnknownAudience, match="did you mean 'jiangsu'"):
        svc.delete(ws, "jiangsu2")


def test_an_update_keeps_who_created_it_and_the_description(ws):
    svc.save(ws, "big", "total_spent >= 300", user="li", description="300+", now=T0)
    later = T0 + timedelta(days=2)
    doc = svc.save(ws, "big", "total_spent >= 500", user="wang", now=later)
    assert not doc["created"] and doc["count"] == count(ws, "total_spent >= 500")["count"]
    got = svc.get(ws, "big")
    assert (got["query"], got["description"]) == ("total_spent >= 500", "300+")
    assert (got["created_by"], got["created_at"]) == ("li", T0.isoformat())
    assert (got["updated_by"], got["updated_at"]) == ("wang", later.isoformat())
    assert len(svc.list_audiences(ws)) == 1


@pytest.mark.parametrize(
    "query, message",
    [
        ('provnce = "Jiangsu"', "did you mean 'province'"),
        ('total_spent >= "abc"', "total_spent"),
        ("total_spent >= ", "ends too early"),
        ('in_audience("nobody")', "no saved audience 'nobody'"),
        ('in_audience("broken")', "refers to itself"),  # the audience being saved
        ("", "empty"),
    ],
)
def test_a_broken_query_is_never_saved(ws, query, message):
    with pytest.raises(AudienceError, match=message):
        svc.save(ws, "broken", query, user="li", now=T0)
    assert svc.list_audiences(ws) == []


def test_a_cycle_through_saved_audiences_is_refused_and_the_old_definition_kept(ws):
    svc.save(ws, "a", "total_spent >= 300", user="li", now=T0)
    svc.save(ws, "b", 'in_audience("a") and gender = "f"', user="li", now=T0)
    with pytest.raises(AudienceError, match="refers to itself"):
        svc.save(ws, "a", 'in_audience("b")', user="li", now=T0)
    assert svc.get(ws, "a")["query"] == "total_spent >= 300"


def test_a_chain_of_references_1000_deep_is_refused_with_its_depth(ws):
    """Each link is a valid audience; the chain is too long to follow: a clear error (not a
    RecursionError), whether counted, saved on top, or listed."""
    with ws.session(write=True) as s:  # stored directly: saving each link counts the chain
        prev = "total_spent >= 0"
        for i in range(1000):
            store_audiences.put(s, f"link{i}", prev, description=None, user="li", now=T0)
            prev = f'in_audience("link{i}")'
    with pytest.raises(AudienceError, match=r"nest more than \d+ deep") as e:
        count(ws, prev, resolve=svc.resolver(ws))
    assert "link999 → link998" in e.value.message and len(e.value.message) < 400
    with pytest.raises(AudienceError, match="nest more than"):
        svc.save(ws, "top", prev, user="li", now=T0)
    with pytest.raises(AudienceError, match="nest more than"):
        svc.count_of(ws, "link999")
    assert svc.count_of(ws, "link5")["count"] == count(ws, "total_spent >= 0")["count"]


def test_bad_names_and_users_are_refused(ws):
    with pytest.raises(ValueError, match="contains"):
        svc.save(ws, 'say "vip"', "total_spent >= 1", user="li")
    with pytest.raises(ValueError, match="user is empty"):
        svc.save(ws, "vip", "total_spent >= 1", user=" ")
    assert svc.list_audiences(ws) == []


def test_references_resolve_from_the_store_and_block_deleting(ws):
    svc.save(ws, "big", "total_spent >= 300", user="li", now=T0)
    svc.save(ws, "women", 'gender = "f"', user="li", now=T0)
    svc.save(ws, "big_men", 'in_audience("big") and not in_audience("women")', user="li", now=T0)
    svc.save(ws, "uses_big_men", 'in_audience("big_men")', user="li", now=T0)
    expected = ids(members(ws, "total_spent >= 300")) - ids(members(ws, 'gender = "f"'))
    assert ids(svc.members_of(ws, "big_men")) == expected
    assert ids(svc.members_of(ws, "uses_big_men")) == expected
    resolve = svc.resolver(ws)
    assert resolve("women") == 'gender = "f"'
    with pytest.raises(KeyError):
        resolve("nobody")
    with pytest.raises(svc.AudienceInUse, match="'big' is used by 'big_men'"):
        svc.delete(ws, "big")
    with pytest.raises(svc.AudienceInUse, match="used by 'uses_big_men'"):
        svc.delete(ws, "big_men")
    svc.delete(ws, "uses_big_men")
    svc.delete(ws, "big_men")
    svc.delete(ws, "big")
    assert [a["name"] for a in svc.list_audiences(ws)] == ["women"]


def test_members_and_explain_of_a_saved_audience(ws):
    q = 'total_spent >= 300 and province in ("Jiangsu", "Zhejiang", "Shanghai")'
    svc.save(ws, "east", q, user="li", now=T0)
    got = svc.members_of(ws, "east", fields=["province", "total_spent"])
    assert list(got.columns) == ["customer_id", "province", "total_spent"]
    assert ids(got) == ids(members(ws, q)) and len(got) > 0
    assert list(got.customer_id) == sorted(got.customer_id)
    assert len(svc.members_of(ws, "east", limit=3)) == 3
    inside, outside = got.customer_id.iloc[0], "C0000002"
    assert outside not in ids(got)
    yes = svc.explain_member(ws, "east", inside)
    no = svc.explain_member(ws, "east", outside)
    assert yes["member"] and not no["member"] and yes["query"] == q
    assert yes == {"audience": "east", "query": q, **explain(ws, q, inside)}
    assert [c["result"] for c in yes["clauses"]] == [True, True]


def test_csv_export_defuses_formulas_and_keeps_numbers(ws, tmp_path):
    cids = ", ".join(f'"{c}"' for c in TRAPS)
    svc.save(ws, "traps", f"customer_id in ({cids})", user="li", now=T0)
    doc = svc.export(ws, "traps", tmp_path / "out" / "traps.csv", ["name", "total_spent"])
    assert doc["rows"] == len(TRAPS) and doc["format"] == "csv"
    assert doc["fields"] == ["customer_id", "name", "total_spent"]
    with open(tmp_path / "out" / "traps.csv", encoding="utf-8-sig", newline="") as f:
        rows = {r["customer_id"]: r for r in csv.DictReader(f)}
    assert rows["C0000001"]["name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows["C0000002"]["name"] == "'+86 138 0000 0000"
    assert rows["C0000003"]["name"] == "'-2+3"
    assert rows["C0000004"]["name"] == "'@SUM(A1)"
    assert rows["C0000005"]["name"] == "'-10"
    assert rows["C0000006"]["name"] == "王芳"  # nothing to defuse, and Chinese intact
    for r in rows.values():
        float(r["total_spent"])  # numbers stay numbers
    assert (tmp_path / "out" / "traps.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_only_text_cells_are_escaped():
    df = pd.DataFrame({"t": ["-5", "=1", "ok", None], "n": [-5.0, 1.0, 2.5, None]})
    safe = svc._csv_safe(df)
    assert list(safe.t[:3]) == ["'-5", "'=1", "ok"] and safe.t[3] is None
    assert safe.n.tolist()[:3] == [-5.0, 1.0, 2.5]  # a negative number is not text
    assert svc.escape_cell(-5) == -5 and svc.escape_cell("\rx") == "'\rx"
    assert svc.escape_cell("\tx") == "'\tx"  # (the importer trims these, other sources may not)


def test_parquet_export_keeps_values_and_types(ws, tmp_path):
    cids = ", ".join(f'"{c}"' for c in TRAPS)
    svc.save(ws, "traps", f"customer_id in ({cids})", user="li", now=T0)
    doc = svc.export(ws, "traps", tmp_path / "traps.parquet", ["name", "total_spent"])
    got = pd.read_parquet(tmp_path / "traps.parquet").set_index("customer_id")
    assert doc["format"] == "parquet" and len(got) == len(TRAPS)
    assert got.loc["C0000001", "name"] == TRAPS["C0000001"]  # the raw value, typed columns
    assert pd.api.types.is_float_dtype(got.total_spent)
    with pytest.raises(ValueError, match=".csv or .parquet"):
        svc.export(ws, "traps", tmp_path / "traps.xlsx")
    assert not list(tmp_path.glob(".*.tmp"))


# -- snapshots over two builds ----------------------------------------------------------------
AUDIENCES = {
    "recent": "days_since_last_purchase <= 30",  # people enter and leave
    "big": "total_spent >= 300",  # only grows
    "big_women": 'in_audience("big") and gender = "f"',
    "nobody": "total_spent < 0",  # always empty, still has a history
}


@pytest.fixture(scope="module")
def two_days(shop, tmp_path_factory):
    """A copy of the shop: snapshots on DAY1 (standalone) and DAY2 (the build hook)."""
    home = tmp_path_factory.mktemp("audience-history") / "shop"
    shutil.copytree(shop.home, home, ignore=shutil.ignore_patterns("archer.db*"))
    ws = open_workspace(home)
    for name, q in AUDIENCES.items():
        svc.save(ws, name, q, user="li", now=T0)
    sets = {}
    first = snapshots.snapshot_memberships(ws, DAY1, now=T0)
    sets[DAY1] = {n: ids(svc.members_of(ws, n)) for n in AUDIENCES}
    later = Workspace(ws.settings, ManualClock(T0 + timedelta(days=31)))
    second = build(later, DAY2).audiences
    sets[DAY2] = {n: ids(svc.members_of(ws, n)) for n in AUDIENCES}
    return ws, sets, first, second


def test_snapshots_hold_each_days_members(two_days):
    ws, sets, first, second = two_days
    assert first["as_of"] == DAY1.isoformat() and second["as_of"] == DAY2.isoformat()
    assert first["audiences"] == {n: len(sets[DAY1][n]) for n in AUDIENCES}
    assert second["audiences"] == {n: len(sets[DAY2][n]) for n in AUDIENCES}
    con = duckdb.connect(str(ws.home / "warehouse.duckdb"), read_only=True)
    try:
        m = con.sql("select * from audience_memberships").df()
        s = con.sql("select * from audience_snapshots").df()
    finally:
        con.close()
    for day in (DAY1, DAY2):
        for name in AUDIENCES:
            rows = m[(m.audience == name) & (pd.to_datetime(m.as_of).dt.date == day)]
            assert set(rows.customer_id) == sets[day][name] and rows.customer_id.is_unique
    assert len(s) == 2 * len(AUDIENCES)  # one row per audience and day, the empty one too
    assert sets[DAY1]["recent"] - sets[DAY2]["recent"]  # the data really has leavers


def test_history_agrees_with_set_differences(two_days):
    ws, sets, _, _ = two_days
    for name in AUDIENCES:
        a, b = sets[DAY1][name], sets[DAY2][name]
        assert snapshots.history(ws, name) == [
            {"as_of": DAY1.isoformat(), "size": len(a), "entered": len(a), "left": 0},
            {"as_of": DAY2.isoformat(), "size": len(b), "entered": len(b - a), "left": len(a - b)},
        ], name


def test_changes_name_who_entered_and_who_left(two_days):
    ws, sets, _, _ = two_days
    a, b = sets[DAY1]["recent"], sets[DAY2]["recent"]
    got = snapshots.changes(ws, "recent")
    assert got["as_of"] == DAY2.isoformat() and got["previous"] == DAY1.isoformat()
    assert got["entered"] == sorted(b - a) and got["left"] == sorted(a - b)
    assert got["size"] == len(b)
    first = snapshots.changes(ws, "recent", DAY1)
    assert first["previous"] is None and first["entered"] == sorted(a) and first["left"] == []
    with pytest.raises(LookupError, match="no snapshot of 'recent' on 2026-10-01"):
        snapshots.changes(ws, "recent", date(2026, 10, 1))


def test_snapshotting_a_day_again_replaces_it_and_skips_broken_audiences(two_days):
    ws, sets, _, second = two_days
    with ws.session(write=True) as s:  # a definition the language no longer accepts
        store_audiences.put(s, "stale", "old_field > 1", description=None, user="x", now=T0)
    try:
        again = snapshots.snapshot_memberships(ws, now=T0)
        assert again["audiences"] == second["audiences"]
        assert "unknown field 'old_field'" in again["errors"]["stale"]
        assert [h["size"] for h in snapshots.history(ws, "recent")] == [
            len(sets[DAY1]["recent"]),
            len(sets[DAY2]["recent"]),
        ]
        with pytest.raises(ValueError, match="built as of 2026-10-31, not 2026-09-30"):
            snapshots.snapshot_memberships(ws, DAY1)
    finally:
        svc.delete(ws, "stale")
    with pytest.raises(svc.UnknownAudience):  # deleted and never snapshotted
        snapshots.history(ws, "stale")


def test_the_build_hook_goes_on_when_the_store_cannot_be_read(shop, tmp_path):
    bad = shop.replace(**{"database": "nosuchdb://x/y"})
    got = build(bad, DAY1).audiences
    assert got["as_of"] == DAY1.isoformat() and "cannot use the database URL" in got["errors"][""]


def test_history_of_unknown_and_of_new_audiences(two_days):
    ws, _, _, _ = two_days
    with pytest.raises(svc.UnknownAudience, match="did you mean 'recent'"):
        snapshots.history(ws, "recnt")
    svc.save(ws, "fresh", "total_spent >= 1000", user="li", now=T0)
    try:
        assert snapshots.history(ws, "fresh") == []
        with pytest.raises(LookupError, match="no snapshots yet"):
            snapshots.changes(ws, "fresh")
    finally:
        svc.delete(ws, "fresh")
