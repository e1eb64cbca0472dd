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
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import archer_calls as archer
from events import bodies, copy_workspace

from common import shop
from common.harness import log


class Timers:
    """Start and end of every call to the loader's stages, from either thread; installed
    around the loader's functions, removed after."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []  # (stage, start, end)
        self._undo: list = []

    def wrap(self, owner: object, name: str, stage: str, by_table: bool = False) -> None:
        real = getattr(owner, name)

        @functools.wraps(real)
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                label = f"{stage} {a[1]}" if by_table else stage  # f(wh, table, …)
                self.calls.append((label, t0, time.perf_counter()))

        setattr(owner, name, timed)
        self._undo.append((owner, name, real))

    def wrap_cm(self, owner: object, name: str, stage: str) -> None:
        real = getattr(owner, name)

        @contextlib.contextmanager
        def timed(*a, **k):
            t0 = time.perf_counter()
            with real(*a, **k):
                yield
            self.calls.append((stage, t0, time.perf_counter()))

        setattr(owner, name, timed)
        self._undo.append((owner, name, real))

    def undo(self) -> None:
        for owner, name, real in reversed(self._undo):
            setattr(owner, name, real)

    def each(self, stage: str) -> list[float]:
        return [e - s for st, s, e in self.calls if st == stage]

    def total(self, stage: str) -> float:
        return sum(self.each(stage))


def install() -> Timers:
    from archer.store import inbox
    from archer.tracking import loader
    from archer.warehouse import Warehouse

    t = Timers()
    t.wrap(loader, "_read_and_map", "read and map")
    t.wrap(inbox, "next_bodies", "read inbox")
    t.wrap_cm(Warehouse, "transaction", "warehouse transaction")
    t.wrap(loader, "_event_table", "events to Arrow")
    t.wrap(loader, "_append_new", "check keys, append", by_table=True)
    t.wrap(Warehouse, "upsert", "upsert", by_table=True)
    t.wrap(inbox, "remove_through", "inbox delete")
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


def key_check(home: Path, n: int = 100_000) -> tuple[float, float]:
    """Seconds DuckDB takes to find which of ``n`` new ids (shaped like the benchmark's) the
    events table holds, as the table is now: against every stored id, and against those
    between the new ids' least and greatest only (what the loader asks). Medians of three."""
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("set enable_progress_bar = false")
        con.execute(
            "create temp table ids as select 'bench:K0-b' || (range // 100)::varchar || '-' || "
            "(range % 100)::varchar as event_id from range(?)",
            [n],
        )
        lo, hi = con.execute("select min(event_id), max(event_id) from ids").fetchone()
        every = "select count(*) from ids semi join events using (event_id)"
        ranged = (
            "select count(*) from ids semi join (select event_id from events "
            "where event_id between ? and ?) e using (event_id)"
        )
        took: dict[str, list[float]] = {every: [], ranged: []}
        for _ in range(3):
            for q, args in ((every, []), (ranged, [lo, hi])):
                t0 = time.perf_counter()
                con.execute(q, args).fetchone()
                took[q].append(time.perf_counter() - t0)
    return sorted(took[every])[1], sorted(took[ranged])[1]


def _in_tx(stage: str) -> bool:
    return stage.startswith(("events to Arrow", "check keys", "upsert"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=shop.QUICK_CUSTOMERS)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, help="events per chunk (default: the loader's)")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile of the main thread, top 30 by own time"
    )
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
    print(
        f"  finding which of 100,000 new ids the {after:,} events hold: {check_s[0]:.3f} s, "
        f"{check_s[1]:.3f} s within their range"
    )
    t = timers
    first = min(s for _, s, _ in t.calls)
    last = max(e for st, _, e in t.calls if st == "inbox delete")
    main_busy = t.total("warehouse transaction") + t.total("inbox delete")
    print("  the worker thread (the next chunk, while the main thread writes this one):")
    for stage in ("read and map", "read inbox"):
        print(f"    {stage:<44} {t.total(stage):7.2f} s")
    print("  the main thread:")
    lines = {
        "warehouse transaction (with its commit)": t.total("warehouse transaction"),
        **{f"  {st}": t.total(st) for st in sorted({c[0] for c in t.calls}) if _in_tx(st)},
        "inbox delete": t.total("inbox delete"),
        "waiting for the worker": last - first - main_busy,
        "outside the chunks (open, count, prune)": wall - (last - first),
    }
    for stage, v in lines.items():
        print(f"    {stage:<44} {v:7.2f} s {100 * v / wall:4.0f}%")
    print("  per chunk (s): read, map (worker); to Arrow, events, transaction, delete (main)")
    rows = zip(
        t.each("read inbox"),
        t.each("read and map"),
        t.each("events to Arrow"),
        t.each("check keys, append events"),
        t.each("warehouse transaction"),
        t.each("inbox delete"),
        strict=False,
    )
    for i, (rd, rm, arrow, ev, tx, dl) in enumerate(rows):
        cells = [rd, rm - rd, arrow, ev, tx, dl]
        print(f"    {i:3}  " + "  ".join(f"{x:6.2f}" for x in cells))
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())


if __name__ == "__main__":
    main()
