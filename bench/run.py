"""Run every benchmark, print the figures and write them to docs/benchmarks.md.

``.venv/bin/python bench/run.py`` (what ``make bench`` runs) is the full size:
a 10-million-line orders import and a 1-million-customer sample shop. ``--quick``
runs 1M lines and 100k customers to check that everything works; it prints the
figures but writes the report only when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

import bench_audience
import bench_build
import bench_import
import bench_pages
import bench_sample
import report
from harness import BENCH_DIR

FULL = {"lines": 10_000_000, "customers": 1_000_000}
QUICK = {"lines": 1_000_000, "customers": 100_000}
DOCS = BENCH_DIR.parent / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M lines / 100k customers")
    ap.add_argument("--lines", type=int, help="orders in the import benchmark")
    ap.add_argument("--customers", type=int, help="customers in the sample benchmark")
    ap.add_argument(
        "--only",
        choices=("import", "sample", "build", "audience", "pages"),
        help="run one benchmark",
    )
    ap.add_argument("--out", type=Path, help=f"report to write (default {DOCS}, full run only)")
    args = ap.parse_args(argv)
    if args.only == "build":  # its own sizes and its own section of the report
        bench_build.main(
            (["--quick"] if args.quick else [])
            + (["--customers", str(args.customers)] if args.customers else [])
            + (["--out", str(args.out)] if args.out else [])
        )
        return
    if args.only == "audience":  # the built 1M shop; its own section of the report
        bench_audience.main(
            (["--quick"] if args.quick else [])
            + (["--customers", str(args.customers)] if args.customers else [])
            + (["--out", str(args.out)] if args.out else [])
        )
        return
    if args.only == "pages":  # the built 1M shop served; its own section of the report
        bench_pages.main(
            (["--customers", str(args.customers)] if args.customers else [])
            + (["--no-write"] if args.quick else [])
        )
        return
    size = QUICK if args.quick else FULL
    lines = args.lines or size["lines"]
    customers = args.customers or size["customers"]
    out = args.out or (None if args.quick else DOCS)

    console = Console(stderr=True)
    m = report.machine()
    console.print(
        f"[bold]Archer benchmarks[/] on {m.cores} cores, {m.ram_gb:.0f} GB, Python {m.python}, "
        f"DuckDB {m.packages['duckdb']}, pandas {m.packages['pandas']}"
    )
    started = report.now()
    imp = sample = None
    # Every file (GBs at full size) lives in this directory, removed even on failure.
    with tempfile.TemporaryDirectory(prefix="archer-bench-") as tmp:
        if args.only in (None, "import"):
            d = Path(tmp) / "import"
            d.mkdir()
            imp = bench_import.run(lines, d, log=console.log)
        if args.only in (None, "sample"):
            d = Path(tmp) / "sample"
            d.mkdir()
            sample = bench_sample.run(customers, d, log=console.log)

    commit_at_end = report.commit()

    # Wide enough for the tables when the output is a file or a pipe.
    out_console = Console() if sys.stdout.isatty() else Console(width=140)
    if imp is not None:
        out_console.print(
            _table(f"Import of {lines:,} orders", report.IMPORT_HEADERS, report.import_rows(imp))
        )
        if report.stage_rows(imp):
            out_console.print(
                _table(
                    "archer import stages", ["stage", "seconds", "share"], report.stage_rows(imp)
                )
            )
    if sample is not None:
        out_console.print(
            _table(
                f"Sample shop of {customers:,} customers",
                report.SAMPLE_HEADERS,
                report.sample_rows(sample),
            )
        )
    out_console.print(report.interpretation(imp, sample))
    if out is not None:
        text = report.markdown(m, started, report.command_line(), imp, sample, commit_at_end)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + _kept_sections(out), encoding="utf-8")
        console.print(f"report written to {out}")


def _kept_sections(path: Path) -> str:
    """The sections other benchmarks wrote between ``<!-- name:start/end -->`` markers (CLV,
    build, tracking …), kept as they are: this run rewrites only its own part of the page."""
    if not path.exists():
        return ""
    old = path.read_text(encoding="utf-8")
    marked = re.finditer(r"<!-- (\w+):start -->.*?<!-- \1:end -->", old, flags=re.S)
    return "".join(f"\n{m.group(0)}\n" for m in marked)


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    t = Table(title=title)
    for i, h in enumerate(headers):
        t.add_column(h, justify="right" if i else "left", no_wrap=not i)
    for r in rows:
        t.add_row(*r)
    return t


if __name__ == "__main__":
    main()
