"""docs/benchmarks.md, one section per subject, and what every section says the same way.

Each subject writes only its own section, between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``; the rest of the page is left as it is, so a subject can be re-run alone.
A full-size run writes to docs/benchmarks.md; a ``--quick`` run never does: its sections go to
``bench/out/benchmarks-quick.md`` (ignored by git) unless ``--out`` names another file.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from common.harness import BENCH_DIR, Measured

DOCS = BENCH_DIR.parent / "docs" / "benchmarks.md"
QUICK_DOCS = BENCH_DIR / "out" / "benchmarks-quick.md"
PACKAGES = ("duckdb", "pandas", "pyarrow", "numpy", "ibis-framework")
HEAD = """\
# Benchmarks

Each capability is run at scale beside what a user would use instead, in one run,
and the ratio reported. This file is written by `bench/run.py`; do not edit it by hand.
"""


def target(quick: bool, out: Path | None) -> Path:
    """Where a run's sections go: ``out`` if given, else the docs (full size) or the quick file.

    A quick run's figures must not replace the recorded full-size ones, so a quick run aimed at
    docs/benchmarks.md stops here.
    """
    path = out or (QUICK_DOCS if quick else DOCS)
    if quick and path.resolve() == DOCS.resolve():
        raise SystemExit(f"a --quick run does not write {DOCS}: its figures are not the record")
    return path


def write_section(path: Path, name: str, body: str) -> None:
    """Put ``body`` between the ``name`` markers in ``path``, or append it as a new section."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.strip(chr(10))}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() else HEAD
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: section, old)
    else:
        new = old.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    out = ["| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# -- figures --------------------------------------------------------------------------------------


def speed_ratio(archer: Measured, peer: Measured) -> float | None:
    """How many times faster archer is than ``peer`` (below 1: slower)."""
    if not (archer.ok and peer.ok) or archer.seconds <= 0:
        return None
    return peer.seconds / archer.seconds


def memory_ratio(archer: Measured, peer: Measured) -> float | None:
    if not (archer.ok and peer.ok) or peer.peak_rss_mb <= 0:
        return None
    return archer.peak_rss_mb / peer.peak_rss_mb


def fmt_mb(mb: float) -> str:
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def shared_machine(loads: list[float], tail: str = "") -> str:
    """The sentence that warns of a busy machine (load above 3/4 of the cores), else ""."""
    cores = os.cpu_count() or 1
    if not loads or max(loads) <= cores * 0.75:
        return ""
    return (
        f"The machine was shared while this ran (1-minute load up to {max(loads):.1f} on "
        f"{os.cpu_count()} cores), so the seconds are pessimistic{tail}."
    )


# -- the machine and the code measured -------------------------------------------------------------


@dataclass
class Machine:
    cores: int
    ram_gb: float
    cpu: str
    system: str
    python: str
    packages: dict[str, str]
    commit: str


def machine() -> Machine:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return Machine(
        cores=os.cpu_count() or 0,
        ram_gb=ram,
        cpu=_cpu_model(),
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        packages={p: _version(p) for p in PACKAGES},
        commit=commit(),
    )


def machine_line(m: Machine) -> str:
    """``- Machine: …`` as the build and audience sections give it."""
    pk = m.packages
    return (
        f"- Machine: {m.cores} cores ({m.cpu}), {m.ram_gb:.1f} GB RAM; Python {m.python}, "
        f"DuckDB {pk['duckdb']}, Ibis {pk['ibis-framework']}, pandas {pk['pandas']}"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def commit() -> str:
    """The checked-out commit, and whether the measured code (src, bench) differs from it."""
    try:
        git = ["git", "-C", str(BENCH_DIR.parent)]
        sha = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src", "bench"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    if sha.returncode != 0:
        return "unknown"
    return sha.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def now() -> datetime:
    return datetime.now(UTC)


def started() -> str:
    """When a run began (UTC, ISO format to the minute), as the results files keep it."""
    return now().isoformat(timespec="minutes")


def command(subject: str, *flags: str) -> str:
    """The command that reproduces a subject's section, as the section names it."""
    return " ".join([".venv/bin/python bench/run.py --only", subject, *flags])


# -- every subject's command line and its end -----------------------------------------------------


def parser(doc: str | None, quick: str) -> argparse.ArgumentParser:
    """A subject's command line: ``--quick`` (what it runs), ``--out`` and ``--render``."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    ap.add_argument("--quick", action="store_true", help=f"{quick}; to {QUICK_DOCS.name}")
    ap.add_argument("--out", type=Path, help=f"report to update (default {DOCS.name})")
    ap.add_argument("--render", action="store_true", help="rewrite the section from the last run")
    return ap


def publish(out: Path, name: str, text: str, body: str) -> None:
    """Print the figures, write the section ``name`` to ``out``, say where."""
    print(text, flush=True)
    write_section(out, name, body)
    print(f"{name} section written to {out}", file=sys.stderr, flush=True)
