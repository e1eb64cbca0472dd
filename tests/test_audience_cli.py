"""`archer audience …` as an operator types it: --json documents on stdout, human tables, and
a language error shown with a caret under the place, on stderr with exit code 1."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from archer.audiences import count, members, snapshots
from archer.audiences import service as svc
from archer.cli import app
from archer.cli.audience import default_user
from test_audience_service import DAY1, TRAPS, built_shop

runner = CliRunner()
TRAP = TRAPS["C0000001"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return built_shop(tmp_path_factory)


@pytest.fixture
def ws(shop, tmp_path, monkeypatch):
    """The shared shop with an operational store of this test's own (ARCHER_DATABASE)."""
    url = f"sqlite:///{tmp_path / 'archer.db'}"
    monkeypatch.setenv("ARCHER_DATABASE", url)
    return shop.replace(**{"database": url})


def run(ws, *args: str):
    return runner.invoke(app, ["audience", *args, "--home", str(ws.home)], catch_exceptions=False)


def ok(ws, *args: str):
    r = run(ws, *args)
    assert r.exit_code == 0, r.stderr
    return r


def test_count_json_has_the_size_and_each_clause(ws):
    q = 'total_spent >= 300 and gender = "f"'
    doc = json.loads(ok(ws, "count", q, "--json").stdout)
    assert doc == count(ws, q)
    assert set(doc) >= {"query", "as_of", "count", "clauses"} and doc["as_of"] == DAY1.isoformat()
    assert [c["clause"] for c in doc["clauses"]] == ["total_spent >= 300", 'gender = "f"']
    human = ok(ws, "count", q).stdout
    assert f"{doc['count']:,} of" in human and "total_spent >= 300" in human


def test_a_language_error_points_at_the_place_with_a_caret(ws):
    q = 'total_spent >= 300 and provnce = "Jiangsu"'
    r = run(ws, "count", q, "--json")
    assert r.exit_code == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert "unknown field 'provnce' at 1:24" in lines[0] and "did you mean 'province'" in lines[0]
    assert lines[1] == f"  {q}"
    assert lines[2] == "  " + " " * q.index("provnce") + "^" * len("provnce")


def test_a_syntax_error_on_the_second_line_gets_its_caret_there(ws):
    q = "total_spent >= 300\n  and and"
    r = run(ws, "count", q)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert " at 2:7" in lines[0]
    assert lines[1:3] == ["    and and", "        ^^^"]


def test_save_list_show_members_delete(ws):
    r = ok(ws, "save", "big", "total_spent >= 300", "--description", "spent 300+")
    n = count(ws, "total_spent >= 300")["count"]
    assert "Saved audience big" in r.stdout and f"{n:,} customers" in r.stdout
    doc = json.loads(ok(ws, "save", "big", "total_spent >= 300", "--user", "wang", "--json").stdout)
    assert not doc["created"] and doc["count"] == n
    assert (doc["created_by"], doc["updated_by"]) == (default_user(), "wang")

    listed = json.loads(ok(ws, "list", "--json").stdout)
    assert [a["name"] for a in listed] == ["big"] and listed[0]["description"] == "spent 300+"
    assert "total_spent >= 300" in ok(ws, "list").stdout

    shown = json.loads(ok(ws, "show", "big", "--json").stdout)
    assert shown["count"] == n and shown["query"] == "total_spent >= 300"
    assert f"{n:,} as of {DAY1}" in ok(ws, "show", "big").stdout

    got = json.loads(
        ok(
            ws, "members", "big", "--json", "--limit", "5", "--fields", "province,total_spent"
        ).stdout
    )
    expected = members(ws, "total_spent >= 300", fields=["province", "total_spent"], limit=5)
    assert got == [
        {"customer_id": r.customer_id, "province": r.province, "total_spent": r.total_spent}
        for r in expected.itertuples()
    ]
    assert len(json.loads(ok(ws, "members", "big", "--json").stdout)) == n
    screen = ok(ws, "members", "big").stdout
    assert expected.customer_id.iloc[0] in screen and ("… and more" in screen) == (n > 20)

    assert json.loads(ok(ws, "delete", "big", "--json").stdout)["deleted"]["name"] == "big"
    assert json.loads(ok(ws, "list", "--json").stdout) == []
    assert "No saved audiences yet" in ok(ws, "list").stdout


def test_a_broken_query_is_not_saved(ws):
    r = run(ws, "save", "bad", 'total_spent >= "abc"')
    assert r.exit_code == 1 and "^" in r.stderr and "total_spent" in r.stderr
    assert json.loads(ok(ws, "list", "--json").stdout) == []


def test_unknown_and_referenced_audiences_are_refused(ws):
    ok(ws, "save", "big", "total_spent >= 300")
    ok(ws, "save", "big_women", 'in_audience("big") and gender = "f"')
    r = run(ws, "delete", "big")
    assert r.exit_code == 1 and "used by 'big_women'" in r.stderr
    r = run(ws, "show", "bgi")
    assert r.exit_code == 1 and "no saved audience 'bgi'" in r.stderr and "'big'" in r.stderr
    for cmd in ("members", "history", "delete", "explain"):
        r = run(ws, cmd, "nobody", *(["C0000001"] if cmd == "explain" else []))
        assert r.exit_code == 1 and "no saved audience 'nobody'" in r.stderr, cmd


def test_export_csv_and_parquet(ws, tmp_path):
    ok(ws, "save", "trap", 'customer_id in ("C0000001", "C0000002")')
    f = tmp_path / "trap.csv"
    doc = json.loads(ok(ws, "export", "trap", str(f), "--fields", "name,email", "--json").stdout)
    assert doc == {
        "audience": "trap",
        "path": str(f),
        "format": "csv",
        "rows": 2,
        "fields": ["customer_id", "name", "email"],
    }
    with open(f, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["name"] == "'" + TRAP
    out = ok(ws, "export", "trap", str(tmp_path / "trap.parquet")).stdout
    assert "Wrote 2 customers" in out
    r = run(ws, "export", "trap", str(tmp_path / "trap.json"))
    assert r.exit_code == 1 and ".csv or .parquet" in r.stderr


def test_explain_says_each_clause_with_a_mark(ws):
    q = 'total_spent >= 300 and gender = "f"'
    ok(ws, "save", "rich_women", q)
    inside = members(ws, q).customer_id.iloc[0]
    outside = next(c for c in members(ws, "total_spent < 300").customer_id)
    yes = json.loads(ok(ws, "explain", "rich_women", inside, "--json").stdout)
    assert yes["member"] and yes["audience"] == "rich_women"
    assert [c["result"] for c in yes["clauses"]] == [True, True]
    text = ok(ws, "explain", "rich_women", outside).stdout
    assert f"{outside} is not in rich_women" in text
    assert "✗ total_spent >= 300: total_spent is" in text
    r = run(ws, "explain", "rich_women", "NOPE")
    assert r.exit_code == 1 and "NOPE" in r.stderr


def test_history_and_changes(ws):
    ok(ws, "save", "recent", "days_since_last_purchase <= 30")
    assert "No snapshots of recent yet" in ok(ws, "history", "recent").stdout
    snap = snapshots.snapshot_memberships(ws)
    n = snap["audiences"]["recent"]
    doc = json.loads(ok(ws, "history", "recent", "--json").stdout)
    assert doc == {
        "audience": "recent",
        "history": [{"as_of": DAY1.isoformat(), "size": n, "entered": n, "left": 0}],
    }
    assert DAY1.isoformat() in ok(ws, "history", "recent").stdout
    ch = json.loads(ok(ws, "changes", "recent", "--as-of", DAY1.isoformat(), "--json").stdout)
    assert ch["previous"] is None and len(ch["entered"]) == n and ch["left"] == []
    assert f"+{n:,} entered" in ok(ws, "changes", "recent").stdout
    r = run(ws, "changes", "recent", "--as-of", "2026-10-01")
    assert r.exit_code == 1 and "no snapshot of 'recent' on 2026-10-01" in r.stderr


COMMANDS = "count save list show delete members export explain history changes".split()


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_explains_itself(cmd):
    r = runner.invoke(app, ["audience", cmd, "--help"])
    assert r.exit_code == 0 and "--home" in r.stdout and "--json" in r.stdout


def test_the_guide_names_every_command_option_and_function():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "audiences-guide.md").read_text()
    group = typer.main.get_command(app).commands["audience"]
    assert sorted(group.commands) == sorted(COMMANDS)
    for name, cmd in group.commands.items():
        assert f"`archer audience {name}" in guide, name
        for p in cmd.params:
            for opt in p.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in guide, (name, opt)
    for fn in set(re.findall(r"service\.(\w+)\(", guide)):
        assert callable(getattr(svc, fn)), fn
    for fn in set(re.findall(r"snapshots\.(\w+)\(", guide)):
        assert callable(getattr(snapshots, fn)), fn
