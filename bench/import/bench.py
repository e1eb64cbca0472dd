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

``.venv/bin/python bench/run.py --only import`` (or this file) writes 10 million lines and
rewrites the "import" section of docs/benchmarks.md; ``--quick`` runs 200,000 lines and writes
to bench/out/benchmarks-quick.md. One contender alone: ``import/bench.py child NAME CSV WORKDIR``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from make_orders import OrdersFile, make_orders

from common import markdown as md
from common import results
from common.harness import Measured, log, python_child, report, run_child, said

FULL_LINES = 10_000_000
QUICK_LINES = 200_000
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
    started: str = ""
    commit: str = ""  # the code measured, at the start of the run
    commit_end: str = ""  # and at its end (others may commit while a long run goes on)

    def get(self, name: str) -> Measured:
        return next(r for r in self.results if r.name == name)


def run(lines: int, tmp: Path, *, log: Callable[[str], None] = lambda m: None) -> ImportBench:
    """Write the orders file into ``tmp`` and run every contender on it."""
    started, code = md.started(), md.commit()
    csv = tmp / "orders.csv"
    log(f"writing {lines:,} orders to {csv}")
    f = make_orders(csv, lines)
    log(f"  {f.bytes / 1e6:,.0f} MB in {f.seconds:.1f} s")
    measured = []
    for name in LABELS:
        work = tmp / f"work-{name}"
        work.mkdir()
        log(f"running {name}")
        argv = python_child("import/bench.py", "child", name, str(csv), str(work))
        m = run_child(name, LABELS[name], argv)
        log(said(m))
        measured.append(m)
        shutil.rmtree(work, ignore_errors=True)
    csv.unlink()
    return ImportBench(f, measured, started, code, md.commit())


# -- the contenders (run in the child process) ------------------------------------------------


def child_archer(csv: Path, work: Path) -> None:
    from common import archer_calls as archer

    settings = archer.init_workspace(work / "shop")
    stages: dict[str, list[float]] = {}
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter() - started
        seen = stages.setdefault(stage, [now, now])
        seen[1] = now

    r = archer.import_file(settings, "orders", csv, progress=progress)
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


def load_results() -> ImportBench:
    doc = results.load("import")
    doc["file"] = OrdersFile(**{**doc["file"], "path": Path(doc["file"]["path"])})
    doc["results"] = [Measured(**m) for m in doc["results"]]
    return ImportBench(**doc)


def main(argv: list[str] | None = None) -> None:
    ap = md.parser(__doc__, f"{QUICK_LINES:,} lines")
    ap.add_argument("--lines", type=int, help="orders in the file")
    args = ap.parse_args(argv)
    import report as section

    out = md.target(args.quick, args.out)
    if args.render:
        b = load_results()
    else:
        lines = args.lines or (QUICK_LINES if args.quick else FULL_LINES)
        # Every file (GBs at full size) lives in this directory, removed even on failure.
        with tempfile.TemporaryDirectory(prefix="archer-bench-import-") as tmp:
            b = run(lines, Path(tmp), log=log)
        results.save("import", asdict(b), quick=args.quick)
    md.publish(out, "import", section.text(b), section.markdown(b))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        name, csv, work = sys.argv[2:5]
        CHILDREN[name](Path(csv), Path(work))
    else:
        main()
