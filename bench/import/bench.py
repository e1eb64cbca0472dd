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

Then, beside DuckDB's bare read each time: the same orders without a bad row (archer's
fast case: nothing refused, nothing read twice), and the events of the 1,000,000-customer
sample shop from Parquet (``archer import events events.parquet`` against
``read_parquet`` into a table).

``.venv/bin/python bench/run.py --only import`` (or this file) writes 10 million lines and
rewrites the "import" section of docs/benchmarks.md; ``--quick`` runs 200,000 lines and a
20,000-customer shop and writes to bench/out/benchmarks-quick.md. One contender alone:
``import/bench.py child NAME FILE WORKDIR`` (NAME as in ``CHILDREN``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from make_orders import OrdersFile, make_orders

from common import archer_calls, results
from common import markdown as md
from common.harness import Measured, log, python_child, report, run_child, said

FULL_LINES = 10_000_000
QUICK_LINES = 200_000
FULL_CUSTOMERS = 1_000_000  # the sample shop whose events are imported from Parquet
QUICK_CUSTOMERS = 20_000
LABELS = {
    "archer": "archer import (checked, into DuckDB)",
    "pandas": "pandas.read_csv(path)",
    "pandas-checked": "pandas, comparable checks → Parquet",
    "duckdb": "DuckDB read_csv → table (no checks)",
}
PEERS = ("pandas", "pandas-checked", "duckdb")
# The clean file and the sample shop's events: archer beside DuckDB's bare read.
CLEAN = {"archer": "archer import (checked, into DuckDB)", "duckdb": LABELS["duckdb"]}
EVENTS = {
    "archer": "archer import events (checked, into DuckDB)",
    "duckdb": "DuckDB read_parquet → table (no checks)",
}


@dataclass
class ImportBench:
    file: OrdersFile
    results: list[Measured]
    started: str = ""
    commit: str = ""  # the code measured, at the start of the run
    commit_end: str = ""  # and at its end (others may commit while a long run goes on)
    clean_file: OrdersFile | None = None  # the same orders without a bad row
    clean: list[Measured] = field(default_factory=list)
    customers: int = 0  # the sample shop whose events.parquet is imported
    events: list[Measured] = field(default_factory=list)

    def get(self, name: str, run: str = "messy") -> Measured:
        got = {"messy": self.results, "clean": self.clean, "events": self.events}[run]
        return next(r for r in got if r.name == name)


def run(
    lines: int, customers: int, tmp: Path, *, log: Callable[[str], None] = lambda m: None
) -> ImportBench:
    """Write the orders files and the sample shop into ``tmp``; run every contender on them."""
    started, code = md.started(), md.commit()
    csv = tmp / "orders.csv"
    log(f"writing {lines:,} orders to {csv}")
    f = make_orders(csv, lines)
    log(f"  {f.bytes / 1e6:,.0f} MB in {f.seconds:.1f} s")
    measured = _contenders(LABELS, csv, tmp, "", log)
    csv.unlink()
    log(f"writing {lines:,} orders without a bad row")
    cf = make_orders(csv, lines, clean=True)
    clean = _contenders(CLEAN, csv, tmp, "clean-", log)
    csv.unlink()
    shop = tmp / "shop"
    log(f"writing the {customers:,}-customer sample shop as Parquet")
    rows = archer_calls.generate_sample(shop, customers, seed=1, fmt="parquet")
    log(f"  {rows['events']:,} events")
    events = _contenders(EVENTS, shop / "events.parquet", tmp, "events-", log)
    shutil.rmtree(shop, ignore_errors=True)
    return ImportBench(f, measured, started, code, md.commit(), cf, clean, customers, events)


def _contenders(
    labels: dict[str, str], path: Path, tmp: Path, prefix: str, log: Callable[[str], None]
) -> list[Measured]:
    measured = []
    for name, label in labels.items():
        work = tmp / f"work-{prefix}{name}"
        work.mkdir()
        log(f"running {prefix}{name}")
        argv = python_child("import/bench.py", "child", prefix + name, str(path), str(work))
        m = run_child(name, label, argv)
        log(said(m))
        measured.append(m)
        shutil.rmtree(work, ignore_errors=True)
    return measured


# -- the contenders (run in the child process) ------------------------------------------------


def child_archer(csv: Path, work: Path, table: str = "orders") -> None:
    from common import archer_calls as archer

    settings = archer.init_workspace(work / "shop")
    stages: dict[str, list[float]] = {}
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter() - started
        seen = stages.setdefault(stage, [now, now])
        seen[1] = now

    r = archer.import_file(settings, table, csv, progress=progress)
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


def child_duckdb(path: Path, work: Path) -> None:
    """DuckDB's own reader (CSV or Parquet) into a table of a database file, no checks."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(work / "plain.duckdb"))
    read = con.read_parquet if path.suffix == ".parquet" else con.read_csv
    read(str(path)).create("rows")
    rows = con.execute("SELECT count(*) FROM rows").fetchone()[0]
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
    "clean-archer": child_archer,
    "clean-duckdb": child_duckdb,
    "events-archer": lambda path, work: child_archer(path, work, "events"),
    "events-duckdb": child_duckdb,
}


def load_results() -> ImportBench:
    doc = results.load("import")

    def orders_file(d: dict | None) -> OrdersFile | None:
        return None if d is None else OrdersFile(**{**d, "path": Path(d["path"])})

    doc["file"] = orders_file(doc["file"])
    doc["clean_file"] = orders_file(doc.get("clean_file"))
    for run in ("results", "clean", "events"):
        doc[run] = [Measured(**m) for m in doc.get(run, [])]
    return ImportBench(**doc)


def main(argv: list[str] | None = None) -> None:
    ap = md.parser(__doc__, f"{QUICK_LINES:,} lines, {QUICK_CUSTOMERS:,} customers")
    ap.add_argument("--lines", type=int, help="orders in the file")
    ap.add_argument("--customers", type=int, help="customers of the sample shop (its events)")
    args = ap.parse_args(argv)
    import report as section

    out = md.target(args.quick, args.out)
    if args.render:
        b = load_results()
    else:
        lines = args.lines or (QUICK_LINES if args.quick else FULL_LINES)
        customers = args.customers or (QUICK_CUSTOMERS if args.quick else FULL_CUSTOMERS)
        # Every file (GBs at full size) lives in this directory, removed even on failure.
        with tempfile.TemporaryDirectory(prefix="archer-bench-import-") as tmp:
            b = run(lines, customers, Path(tmp), log=log)
        results.save("import", asdict(b), quick=args.quick)
    md.publish(out, "import", section.text(b), section.markdown(b))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        name, csv, work = sys.argv[2:5]
        CHILDREN[name](Path(csv), Path(work))
    else:
        main()
