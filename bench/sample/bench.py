"""Benchmark: ``archer sample --customers N``, the synthetic shop, run as a user runs it.

The CLI runs in its own process (``.venv/bin/archer`` beside this interpreter), so the
time includes start-up and imports, as a user would see it. There is no peer to set
it beside: no other tool writes a shop whose purchases follow a known BG/NBD truth,
so the figures stand alone (rows written per second and peak memory).

``.venv/bin/python bench/run.py --only sample`` (or this file) runs 1,000,000 customers and
rewrites the "sample" section of docs/benchmarks.md; ``--quick`` runs 20,000.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common import archer_calls as archer
from common import markdown as md
from common import results
from common.harness import Measured, log, python_child, run_child, said

FULL_CUSTOMERS = 1_000_000
QUICK_CUSTOMERS = 20_000
HEADERS = ["command", "seconds", "rows written", "rows/s", "peak RSS", "CPU s", "load"]


@dataclass
class SampleBench:
    customers: int
    result: Measured
    files: dict[str, int]  # rows written per file
    bytes: int
    started: str = ""
    commit: str = ""


def command(customers: int, out: Path, seed: int = 1) -> list[str]:
    """The installed ``archer`` CLI if there is one, else ``generate()`` through Python."""
    args = ["--customers", str(customers), "--seed", str(seed), "--out", str(out)]
    cli = archer.installed_cli()
    if cli is not None:
        return [str(cli), "sample", *args, "--json"]
    return python_child("sample/bench.py", "child", *args)


def run(customers: int, tmp: Path) -> SampleBench:
    started, code = md.started(), md.commit()
    out = tmp / "sample"
    argv = command(customers, out)
    log(f"running {' '.join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))}")
    m = run_child("sample", f"archer sample --customers {customers:,}", argv)
    files = {k: int(v) for k, v in m.detail.get("rows", {}).items()}
    m.rows = sum(files.values())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.exists() else 0
    log(said(m))
    shutil.rmtree(out, ignore_errors=True)
    return SampleBench(customers, m, files, size, started, code)


def child(argv: list[str]) -> None:
    """Fallback without the CLI: call ``generate()`` and report like ``archer sample --json``."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    rows = archer.generate_sample(a.out, a.customers, a.seed)
    print(json.dumps({"rows": rows}))  # timed by the parent, start-up included, as the CLI


# -- the section ----------------------------------------------------------------------------------


def rows(s: SampleBench) -> list[list[str]]:
    m = s.result
    if not m.ok:
        return [[m.label, "failed", "", "", md.fmt_mb(m.peak_rss_mb), "", f"{m.load:.1f}"]]
    return [
        [
            m.label,
            f"{m.seconds:.1f}",
            f"{m.rows:,}",
            f"{m.rows_per_s:,.0f}",
            md.fmt_mb(m.peak_rss_mb),
            f"{m.cpu:.0f}",
            f"{m.load:.1f}",
        ]
    ]


def interpretation(s: SampleBench) -> str:
    m = s.result
    if not m.ok:
        return f"`archer sample` failed ({m.error.splitlines()[0] if m.error else 'no report'})."
    return (
        f"`archer sample --customers {s.customers:,}` wrote {m.rows:,} rows "
        f"({s.bytes / 1e6:,.0f} MB) in {m.seconds:.1f} s with a peak of "
        f"{md.fmt_mb(m.peak_rss_mb)}."
    )


def text(s: SampleBench) -> str:
    return "\n".join(["  ".join(HEADERS), *("  ".join(r) for r in rows(s)), interpretation(s)])


def markdown(s: SampleBench) -> str:
    when = datetime.fromisoformat(s.started) if s.started else md.now()
    lines = [
        f"## `archer sample --customers {s.customers:,}`",
        "",
        f"- Run: {when:%Y-%m-%d %H:%M} UTC, commit {s.commit or md.commit()}, command "
        f"`{md.command('sample')}`",
        "",
        *md.md_table(HEADERS, rows(s)),
        "",
    ]
    if s.files:
        listed = ", ".join(f"{k} {v:,}" for k, v in s.files.items())
        lines += [
            f"Rows per file: {listed}; {s.bytes / 1e6:,.0f} MB on disk. Seconds are the "
            "whole CLI process, start-up included. No peer: no other tool writes a shop "
            "with a known BG/NBD truth behind it.",
            "",
        ]
    lines.append(interpretation(s))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = md.parser(__doc__, f"{QUICK_CUSTOMERS:,} customers")
    ap.add_argument("--customers", type=int, help="customers of the shop")
    args = ap.parse_args(argv)
    out = md.target(args.quick, args.out)
    if args.render:
        doc = results.load("sample")
        s = SampleBench(**{**doc, "result": Measured(**doc["result"])})
    else:
        customers = args.customers or (QUICK_CUSTOMERS if args.quick else FULL_CUSTOMERS)
        with tempfile.TemporaryDirectory(prefix="archer-bench-sample-") as tmp:
            s = run(customers, Path(tmp))
        results.save("sample", asdict(s), quick=args.quick)
    md.publish(out, "sample", text(s), markdown(s))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2:])
    else:
        main()
