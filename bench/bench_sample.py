"""Benchmark: ``archer sample --customers N``, the synthetic shop, run as a user runs it.

The CLI runs in its own process (``.venv/bin/archer`` beside this interpreter), so the
time includes start-up and imports, as a user would see it. There is no peer to set
it beside: no other tool writes a shop whose purchases follow a known BG/NBD truth,
so the figures stand alone (rows written per second and peak memory).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import Measured, python_child, run_child


@dataclass
class SampleBench:
    customers: int
    result: Measured
    files: dict[str, int]  # rows written per file
    bytes: int


def command(customers: int, out: Path, seed: int = 1) -> list[str]:
    """The installed ``archer`` CLI if there is one, else ``generate()`` through Python."""
    cli = Path(sys.executable).with_name("archer")
    args = ["--customers", str(customers), "--seed", str(seed), "--out", str(out)]
    if cli.exists():
        return [str(cli), "sample", *args, "--json"]
    return python_child("bench_sample.py", "child", *args)


def run(customers: int, tmp: Path, *, log: Callable[[str], None] = lambda m: None) -> SampleBench:
    out = tmp / "sample"
    argv = command(customers, out)
    log(f"running {' '.join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))}")
    m = run_child("sample", f"archer sample --customers {customers:,}", argv)
    files = {k: int(v) for k, v in m.detail.get("rows", {}).items()}
    m.rows = sum(files.values())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.exists() else 0
    log(f"  {m.seconds:.1f} s, {m.peak_rss_mb:,.0f} MB" if m.ok else f"  failed: {m.error}")
    shutil.rmtree(out, ignore_errors=True)
    return SampleBench(customers, m, files, size)


def child(argv: list[str]) -> None:
    """Fallback without the CLI: call ``generate()`` and report like ``archer sample --json``."""
    import argparse
    import json

    from archer.sample import generate

    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    rows = generate(a.out, customers=a.customers, seed=a.seed)
    print(json.dumps({"rows": rows}))  # timed by the parent, start-up included, as the CLI


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(sys.argv[2:])
