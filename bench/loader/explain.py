"""Where ``archer sync`` spends its time: the loader's stages per chunk, and a cProfile.

Copies the imported sample shop, fills its inbox (as bench.py does), then runs
``archer.tracking.loader.sync`` in this process with timers around its stages: reading the
inbox, the warehouse transaction (the writes per table and the commit), the inbox delete; the
rest of each chunk is decoding and mapping in Python. A line per chunk shows how the cost of
writing grows with the events already in the warehouse.

    .venv/bin/python bench/loader/explain.py --customers 100000 --events 200000 [--profile]

Run by hand; it writes nothing but its temporary copy (removed at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import archer_calls as archer
from events import bodies, copy_workspace

from common import shop
from common.harness import log

STAGES = ("read inbox", "warehouse transaction", "inbox delete")


class Timers:
    """Seconds per stage, per chunk; installed around the loader's calls, removed after."""

    def __init__(self) -> None:
        self.chunks: list[dict[str, float]] = []
        self.tables: dict[str, float] = defaultdict(float)
        self._undo: list = []

    def add(self, stage: str, seconds: float) -> None:
        if stage == "read inbox":
            self.chunks.append({"start": time.perf_counter() - seconds})
        self.chunks[-1][stage] = self.chunks[-1].get(stage, 0.0) + seconds
        if stage == "inbox delete":
            self.chunks[-1]["end"] = time.perf_counter()

    def wrap(self, owner: object, name: str, stage: str | None = None, by_arg: bool = False):
        real = getattr(owner, name)

        @functools.wraps(real)
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                dt = time.perf_counter() - t0
                if by_arg:
                    self.tables[a[1]] += dt  # Warehouse.method(self, table, …)
                else:
                    self.add(stage or name, dt)

        setattr(owner, name, timed)
        self._undo.append((owner, name, real))

    def wrap_cm(self, owner: object, name: str, stage: str) -> None:
        real = getattr(owner, name)

        @contextlib.contextmanager
        def timed(*a, **k):
            t0 = time.perf_counter()
            with real(*a, **k):
                yield
            self.add(stage, time.perf_counter() - t0)

        setattr(owner, name, timed)
        self._undo.append((owner, name, real))

    def undo(self) -> None:
        for owner, name, real in reversed(self._undo):
            setattr(owner, name, real)


def install() -> Timers:
    from archer.store import inbox
    from archer.warehouse import Warehouse

    t = Timers()
    t.wrap(inbox, "next_bodies", "read inbox")
    t.wrap(inbox, "remove_through", "inbox delete")
    t.wrap_cm(Warehouse, "transaction", "warehouse transaction")
    t.wrap(Warehouse, "upsert", by_arg=True)
    return t


def events_in(home: Path) -> int:
    with shop.warehouse(home) as con:
        return con.sql("select count(*) from events").fetchone()[0]


def rekey(home: Path) -> None:
    """Every stored event's id as ``bench:<md5 of the id>``: the ids of a tracked site are
    random, so every row group's min and max span the new ids and no scan can be skipped."""
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute(
            "create or replace table events as "
            "select 'bench:' || md5(event_id) as event_id, * exclude (event_id) from events"
        )
        con.execute("checkpoint")


def key_check(home: Path, n: int = 100_000) -> float:
    """Seconds DuckDB takes to find which of ``n`` new ids the events table holds (the check
    the loader makes for each chunk), as the table is now: the median of three."""
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("set enable_progress_bar = false")
        con.execute(
            "create temp table ids as select 'bench:' || md5('new' || range::varchar) as "
            "event_id from range(?)",
            [n],
        )
        took = []
        for _ in range(3):
            t0 = time.perf_counter()
            con.execute("select count(*) from ids semi join events using (event_id)").fetchone()
            took.append(time.perf_counter() - t0)
    return sorted(took)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=shop.QUICK_CUSTOMERS)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, help="events per chunk (default: the loader's)")
    ap.add_argument("--profile", action="store_true", help="cProfile, top 30 by own time")
    ap.add_argument(
        "--rekey",
        action="store_true",
        help="give the shop's events ids like a tracked site's ('bench:' and a hash), so that "
        "DuckDB's min/max of a row group cannot tell a chunk's new ids from the stored ones",
    )
    a = ap.parse_args()
    info = shop.prepare(a.customers, log=log)
    tmp = Path(tempfile.mkdtemp(prefix="archer-bench-loader-explain-"))
    try:
        home = copy_workspace(Path(info["home"]), tmp / "shop")
        if a.rekey:
            rekey(home)
        t0 = time.perf_counter()
        n = archer.fill_inbox(home, bodies(a.events))
        log(f"inbox filled with {n:,} events in {time.perf_counter() - t0:.1f} s")
        before = events_in(home)
        timers = install()
        prof = cProfile.Profile() if a.profile else None
        kw = {"chunk": a.chunk} if a.chunk else {}
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        r = archer.sync(home, **kw)
        if prof:
            prof.disable()
        wall = time.perf_counter() - t0
        timers.undo()
        after = events_in(home)
        check_s = key_check(home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rate = r.read / wall
    print(f"{r.read:,} events in {wall:.2f} s: {rate:,.0f} events/s ({a.customers:,}-customer")
    print(f"  shop, {before:,} events before, {after:,} after, chunks of {a.chunk or 'default'})")
    print(f"  the key check of 100,000 new ids against the {after:,} events: {check_s:.3f} s")
    totals = {s: sum(c.get(s, 0.0) for c in timers.chunks) for s in STAGES}
    chunks_s = sum(c.get("end", c["start"]) - c["start"] for c in timers.chunks)
    totals["decode and map (rest of the chunk)"] = chunks_s - sum(totals.values())
    totals["outside the chunks (open, count, prune)"] = wall - chunks_s
    for s, v in totals.items():
        print(f"  {s:<42} {v:7.2f} s {100 * v / wall:4.0f}%")
    for name, v in timers.tables.items():
        print(f"    upsert {name:<35} {v:7.2f} s")
    print("  per chunk: read, map, warehouse, delete (s)")
    for i, c in enumerate(timers.chunks):
        total = c.get("end", c["start"]) - c["start"]
        rest = total - sum(c.get(s, 0.0) for s in STAGES)
        cells = [c.get("read inbox", 0), rest, c.get("warehouse transaction", 0)]
        print(f"    {i:3}  " + "  ".join(f"{x:6.2f}" for x in [*cells, c.get("inbox delete", 0)]))
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())


if __name__ == "__main__":
    main()
