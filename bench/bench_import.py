"""Benchmark: ``archer import orders`` of a large CSV beside what a user would do instead.

Contenders, each in its own process on the same file in the same run:

- ``archer``: ``import_file`` into a fresh workspace (typing, every check, places,
  duplicate keys, upsert into DuckDB, quarantine CSV of the rejected rows);
- ``pandas``: plain ``pandas.read_csv(path)``, what a user first reaches for (no
  checks at all);
- ``pandas-checked``: a pandas script doing comparable work (read as text, parse
  times and amounts, flag bad values and repeated keys, Asia/Shanghai to UTC,
  canonical places and statuses, good rows to Parquet, bad rows to a CSV);
- ``duckdb``: DuckDB's own ``read_csv`` into a table: the engine archer runs on,
  without any checks, as the floor.

Run one contender: ``bench_import.py child NAME CSV WORKDIR`` (``run.py`` does this).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import Measured, python_child, report, run_child
from make_orders import OrdersFile, make_orders

LABELS = {
    "archer": "archer import (checked, into DuckDB)",
    "pandas": "pandas.read_csv(path)",
    "pandas-checked": "pandas, comparable checks → Parquet",
    "duckdb": "DuckDB read_csv → table (no checks)",
}
PEERS = ("pandas", "pandas-checked", "duckdb")


@dataclass
class ImportBench:
    file: OrdersFile
    results: list[Measured]

    def get(self, name: str) -> Measured:
        return next(r for r in self.results if r.name == name)


def run(lines: int, tmp: Path, *, log: Callable[[str], None] = lambda m: None) -> ImportBench:
    """Write the orders file into ``tmp`` and run every contender on it."""
    csv = tmp / "orders.csv"
    log(f"writing {lines:,} orders to {csv}")
    f = make_orders(csv, lines)
    log(f"  {f.bytes / 1e6:,.0f} MB in {f.seconds:.1f} s")
    results = []
    for name in LABELS:
        work = tmp / f"work-{name}"
        work.mkdir()
        log(f"running {name}")
        m = run_child(
            name, LABELS[name], python_child("bench_import.py", "child", name, str(csv), str(work))
        )
        log(f"  {m.seconds:.1f} s, {m.peak_rss_mb:,.0f} MB" if m.ok else f"  failed: {m.error}")
        results.append(m)
        shutil.rmtree(work, ignore_errors=True)
    csv.unlink()
    return ImportBench(f, results)


# -- the contenders (run in the child process) ------------------------------------------------


def child_archer(csv: Path, work: Path) -> None:
    from archer.config import init_workspace
    from archer.ingest.importer import import_file

    settings = init_workspace(work / "shop")
    stages: dict[str, list[float]] = {}
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter() - started
        seen = stages.setdefault(stage, [now, now])
        seen[1] = now

    r = import_file(settings, "orders", csv, progress=progress)
    seconds = time.perf_counter() - started
    report(
        seconds,
        r.rows_read,
        kept=r.inserted + r.updated + r.unchanged,
        rejected=r.rejected,
        repeats=sum(t.repeats for t in r.tables.values()),
        stages={s: round(b - a, 3) for s, (a, b) in stages.items()},
    )


def child_pandas(csv: Path, work: Path) -> None:
    import pandas as pd

    started = time.perf_counter()
    df = pd.read_csv(csv)
    report(time.perf_counter() - started, len(df))


def child_duckdb(csv: Path, work: Path) -> None:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(work / "plain.duckdb"))
    con.read_csv(str(csv)).create("orders")
    rows = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    con.close()
    report(time.perf_counter() - started, rows)


def child_pandas_checked(csv: Path, work: Path) -> None:
    from pandas_checked import check_orders

    started = time.perf_counter()
    rows, kept, rejected = check_orders(csv, work / "orders.parquet", work / "rejected.csv")
    report(time.perf_counter() - started, rows, kept=kept, rejected=rejected)


CHILDREN: dict[str, Callable[[Path, Path], None]] = {
    "archer": child_archer,
    "pandas": child_pandas,
    "pandas-checked": child_pandas_checked,
    "duckdb": child_duckdb,
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child", help="run one contender and print its JSON report")
    c.add_argument("name", choices=sorted(CHILDREN))
    c.add_argument("csv", type=Path)
    c.add_argument("work", type=Path)
    args = ap.parse_args(argv)
    CHILDREN[args.name](args.csv, args.work)


if __name__ == "__main__":
    sys.exit(main())
