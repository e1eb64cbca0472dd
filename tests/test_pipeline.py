"""The build as a pipeline: published all at once, or not at all.

A build is killed (SIGKILL, in a child process) at several points — while the profile is
computed, while the shop views are written, and inside the publishing transaction after some
tables were swapped in and after the audience snapshots were written — and every derived table
must then be exactly what the previous build published, with no stray table left.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest

from archer.audiences import service as svc
from archer.pipeline import Build, Step, build, default_steps, last_build
from archer.schema import BUILD_LOG, DERIVED, MEMBERSHIPS, PROFILE, SNAPSHOTS
from archer.warehouse import STRAY_PREFIXES
from support import sample_shop

DAY1, DAY2 = date(2026, 9, 30), date(2026, 10, 31)
pytestmark = pytest.mark.xdist_group("pipeline")

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import date
    import archer
    from archer.pipeline import build

    home, stage, at, day = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    def report(s, done, total):
        if s == stage and done >= at:
            os.kill(os.getpid(), signal.SIGKILL)

    build(archer.open(home), date.fromisoformat(day), report)
    sys.exit(3)  # the kill point was never reached
    """
)


def fingerprints(home: Path) -> dict[str, tuple[int, str]]:
    """Each derived table's row count and a digest of its sorted rows."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        have = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        out = {}
        for name in DERIVED:
            if name in have:
                out[name] = con.execute(
                    f"select count(*), md5(coalesce(string_agg(x, chr(10) order by x), '')) "
                    f'from (select t::varchar as x from "{name}" t)'
                ).fetchone()
        return out
    finally:
        con.close()


def strays(home: Path) -> list[str]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        names = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
    finally:
        con.close()
    return [n for n in names if n.startswith(STRAY_PREFIXES)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws = sample_shop(tmp_path_factory.mktemp("pipeline"), customers=300, seed=8, as_of=DAY1)
    svc.save(ws, "recent", "days_since_last_purchase <= 60", user="test")
    build(ws, DAY1)  # with the audience's first day of history
    return ws


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage, at",
    [
        ("profile", 3),  # computing the profile's parts
        ("shop views", 2),  # two shop views staged
        ("publish", 3),  # inside the transaction: three tables swapped in
        ("publish", 9),  # inside it: every table swapped in and the audiences snapshotted
    ],
)
def test_a_build_killed_anywhere_leaves_the_previous_build_whole(shop, stage, at, tmp_path):
    ws = shop
    before = fingerprints(ws.home)
    assert set(before) >= {PROFILE, MEMBERSHIPS, SNAPSHOTS, BUILD_LOG, "shop_kpis"}
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    run = subprocess.run(
        [sys.executable, str(child), str(ws.home), stage, str(at), DAY2.isoformat()],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    assert fingerprints(ws.home) == before
    with ws.warehouse() as wh:  # the next process to open the warehouse sweeps what was left
        assert last_build(wh)["as_of"] == DAY1
    assert strays(ws.home) == []


@pytest.mark.slow
def test_a_complete_build_changes_what_the_killed_ones_did_not(shop, tmp_path_factory):
    """The check above can fail: a build that finishes does change every fingerprint it
    should (the profile's day, the views, a new day of audience history)."""
    import shutil

    home = tmp_path_factory.mktemp("pipeline-full") / "shop"
    shutil.copytree(shop.home, home)
    from archer import open as open_ws

    ws = open_ws(home)
    before = fingerprints(home)
    result = build(ws, DAY2)
    after = fingerprints(home)
    assert result.as_of == DAY2 and result.audiences["as_of"] == DAY2.isoformat()
    changed = {n for n in after if after[n] != before.get(n)}
    assert {PROFILE, "shop_kpis", MEMBERSHIPS, SNAPSHOTS, BUILD_LOG} <= changed
    assert strays(home) == []


def test_steps_are_named_in_order_and_a_package_adds_its_own(shop, tmp_path_factory):
    import shutil

    from archer import open as open_ws

    assert [s.name for s in default_steps()] == [
        "profile",
        "shop views",
        "offers",
        "campaign ledger",
        "audience snapshots",
    ]
    home = tmp_path_factory.mktemp("pipeline-steps") / "shop"
    shutil.copytree(shop.home, home)
    ws = open_ws(home)
    seen: dict[str, int] = {}

    def extra(b: Build) -> dict:
        # a later step sees the profile this build computed (staged) and writes its own table
        seen["profile"] = int(b.table(PROFILE).count().execute())
        b.write("extra_table", b.table(PROFILE).select("customer_id"))
        return {"extra": True}

    result = build(ws, DAY1, steps=[*default_steps()[:2], Step("extra", extra)])
    assert result.steps["extra"] == {"extra": True}
    with ws.warehouse() as wh:
        assert int(wh.table("extra_table").count().execute()) == seen["profile"] > 0


def test_a_failing_step_publishes_nothing(shop, tmp_path_factory):
    import shutil

    from archer import open as open_ws

    home = tmp_path_factory.mktemp("pipeline-fail") / "shop"
    shutil.copytree(shop.home, home)
    ws = open_ws(home)
    before = fingerprints(home)

    def broken(b: Build) -> dict:
        raise RuntimeError("step failed (injected)")

    with pytest.raises(RuntimeError, match="injected"):
        build(ws, DAY2, steps=[*default_steps()[:2], Step("broken", broken)])
    assert fingerprints(home) == before and strays(home) == []
