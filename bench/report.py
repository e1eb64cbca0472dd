"""The benchmark report: the machine, the figures as tables, and what they mean."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench_import import PEERS, ImportBench
from bench_sample import SampleBench
from harness import BENCH_DIR, Measured

TARGET_ROWS_PER_S = 1_000_000
MEMORY_CEILING_MB = 10 * 1024  # "a 10M-line file must not need 10 GB"
PACKAGES = ("duckdb", "pandas", "pyarrow", "numpy", "ibis-framework")


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


# -- figures ------------------------------------------------------------------------------------


def speed_ratio(archer: Measured, peer: Measured) -> float | None:
    """How many times faster archer is than ``peer`` (below 1: slower)."""
    if not (archer.ok and peer.ok) or archer.seconds <= 0:
        return None
    return peer.seconds / archer.seconds


def memory_ratio(archer: Measured, peer: Measured) -> float | None:
    if not (archer.ok and peer.ok) or peer.peak_rss_mb <= 0:
        return None
    return archer.peak_rss_mb / peer.peak_rss_mb


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def fmt_mb(mb: float) -> str:
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def import_rows(b: ImportBench) -> list[list[str]]:
    """One row per contender: label, s, rows/s, peak RSS, CPU s, speed and RSS ratios, load."""
    archer = b.get("archer")
    rows = []
    for m in b.results:
        if not m.ok:
            rows.append([m.label, "failed", "", fmt_mb(m.peak_rss_mb), "", "", "", f"{m.load:.1f}"])
            continue
        is_peer = m.name in PEERS
        rows.append(
            [
                m.label,
                f"{m.seconds:.1f}",
                f"{m.rows_per_s:,.0f}",
                fmt_mb(m.peak_rss_mb),
                f"{m.cpu:.0f}",
                fmt_ratio(speed_ratio(archer, m)) if is_peer else "",
                fmt_ratio(memory_ratio(archer, m)) if is_peer else "",
                f"{m.load:.1f}",
            ]
        )
    return rows


IMPORT_HEADERS = [
    "contender",
    "seconds",
    "rows/s",
    "peak RSS",
    "CPU s",
    "archer speed ÷ peer",
    "archer RSS ÷ peer",
    "load",
]


def stage_rows(b: ImportBench) -> list[list[str]]:
    archer = b.get("archer")
    stages: dict[str, float] = archer.detail.get("stages", {}) if archer.ok else {}
    total = archer.seconds or 1.0
    rows = [[s, f"{sec:.1f}", f"{100 * sec / total:.0f}%"] for s, sec in stages.items()]
    rest = total - sum(stages.values())
    if stages:
        rows.append(
            ["(between stages: setup, commit)", f"{rest:.1f}", f"{100 * rest / total:.0f}%"]
        )
    return rows


def sample_rows(s: SampleBench) -> list[list[str]]:
    m = s.result
    if not m.ok:
        return [[m.label, "failed", "", "", fmt_mb(m.peak_rss_mb), "", f"{m.load:.1f}"]]
    return [
        [
            m.label,
            f"{m.seconds:.1f}",
            f"{m.rows:,}",
            f"{m.rows_per_s:,.0f}",
            fmt_mb(m.peak_rss_mb),
            f"{m.cpu:.0f}",
            f"{m.load:.1f}",
        ]
    ]


SAMPLE_HEADERS = ["command", "seconds", "rows written", "rows/s", "peak RSS", "CPU s", "load"]


# -- words ----------------------------------------------------------------------------------------


def interpretation(b: ImportBench | None, s: SampleBench | None) -> str:
    """One paragraph that says plainly what the figures mean, target met or not."""
    parts: list[str] = []
    if b is not None:
        a = b.get("archer")
        if not a.ok:
            parts.append(f"The archer import failed ({a.error.splitlines()[0]}).")
        else:
            verdict = (
                f"meeting the {TARGET_ROWS_PER_S:,} rows/s target"
                if a.rows_per_s >= TARGET_ROWS_PER_S
                else f"below the {TARGET_ROWS_PER_S:,} rows/s target "
                f"(it reaches {a.rows_per_s / TARGET_ROWS_PER_S:.0%} of it)"
            )
            parts.append(
                f"archer imported the {b.file.lines:,}-line file in {a.seconds:.1f} s, "
                f"{a.rows_per_s:,.0f} rows/s, {verdict}."
            )
            parts.extend(_peer_sentences(b, a))
            parts.append(_memory_sentence(b, a))
            parts.extend(_stage_sentence(a))
            parts.append(_outcome_sentence(b, a))
    if s is not None and s.result.ok:
        m = s.result
        parts.append(
            f"`archer sample --customers {s.customers:,}` wrote {m.rows:,} rows "
            f"({s.bytes / 1e6:,.0f} MB) in {m.seconds:.1f} s with a peak of "
            f"{fmt_mb(m.peak_rss_mb)}."
        )
    loads = [r.load for r in (b.results if b else [])] + ([s.result.load] if s else [])
    if loads and max(loads) > (os.cpu_count() or 1) * 0.75:
        parts.append(
            f"The machine was shared while this ran (1-minute load up to {max(loads):.1f} "
            f"on {os.cpu_count()} cores), so the seconds are pessimistic; the CPU seconds "
            "are less affected."
        )
    return " ".join(p for p in parts if p)


def _peer_sentences(b: ImportBench, a: Measured) -> list[str]:
    out = []
    words = {
        "pandas": "Plain `pandas.read_csv`, which checks nothing,",
        "pandas-checked": "The pandas script doing comparable checks and writing Parquet",
        "duckdb": "DuckDB's own `read_csv` into a table, the engine archer runs on without checks,",
    }
    for name in PEERS:
        p = b.get(name)
        r = speed_ratio(a, p)
        if r is None:
            out.append(f"{words[name]} failed ({p.error.splitlines()[0]}).")
            continue
        how = f"{r:.2f}× as fast" if r >= 1 else f"{1 / r:.1f}× slower"
        out.append(f"{words[name]} took {p.seconds:.1f} s: archer is {how}.")
    return out


def _memory_sentence(b: ImportBench, a: Measured) -> str:
    peers = ", ".join(f"{n} {fmt_mb(b.get(n).peak_rss_mb)}" for n in PEERS if b.get(n).peak_rss_mb)
    under = "under" if a.peak_rss_mb < MEMORY_CEILING_MB else "OVER"
    return (
        f"Peak memory: archer {fmt_mb(a.peak_rss_mb)} ({under} the 10 GB ceiling "
        f"for a 10M-line file), against {peers}."
    )


def _stage_sentence(a: Measured) -> list[str]:
    stages: dict[str, float] = a.detail.get("stages", {})
    if not stages:
        return []
    top, sec = max(stages.items(), key=lambda kv: kv[1])
    rest = a.seconds - sec
    return [
        f"The slowest stage of the import is “{top}”: {sec:.1f} s, "
        f"{sec / a.seconds:.0%} of the total; everything else together takes {rest:.1f} s "
        f"({a.rows / rest:,.0f} rows/s)."
        if rest > 0
        else ""
    ]


def _outcome_sentence(b: ImportBench, a: Measured) -> str:
    got = a.detail.get("rejected")
    want = b.file.expected_rejected
    same = "as built into the file" if got == want else f"where the file holds {want:,}"
    pc = b.get("pandas-checked")
    other = f"; the pandas script rejected {pc.detail.get('rejected', 0):,}" if pc.ok else ""
    return f"archer rejected {got:,} rows, {same}{other}."


# -- Markdown -----------------------------------------------------------------------------------


def markdown(
    m: Machine,
    when: datetime,
    command: str,
    b: ImportBench | None,
    s: SampleBench | None,
    commit_at_end: str | None = None,
) -> str:
    pk = m.packages
    code = f"commit {m.commit}"
    if commit_at_end and commit_at_end != m.commit:
        # Others commit while a long run goes on: say so rather than name one version.
        code = f"commit {m.commit} at the start and {commit_at_end} at the end"
    lines = [
        "# Benchmarks",
        "",
        "Each capability is run at scale beside what a user would use instead, in one run,",
        "and the ratio reported. This file is written by `bench/run.py`; do not edit it by hand.",
        "",
        f"- Run: {when:%Y-%m-%d %H:%M} UTC, {code}, command `{command}`",
        "- Reproduce: `make bench` (runs `.venv/bin/python bench/run.py`);"
        " `bench/run.py --quick` is a 1M-line / 100k-customer check",
        f"- Machine: {m.cores} cores ({m.cpu}), {m.ram_gb:.1f} GB RAM, {m.system}",
        f"- Python {m.python}, DuckDB {pk['duckdb']}, pandas {pk['pandas']}, "
        f"pyarrow {pk['pyarrow']}, NumPy {pk['numpy']}, Ibis {pk['ibis-framework']}",
        "",
    ]
    if b is not None:
        f = b.file
        lines += [
            f"## Import of a {f.lines:,}-line orders CSV",
            "",
            f"`bench/make_orders.py` writes {f.lines:,} orders ({f.bytes / 1e6:,.0f} MB, UTF-8, "
            "shop-local times, half the places and statuses in Chinese) with about 0.1% bad "
            f"rows by construction: {f.expected_rejected:,} to reject and "
            f"{f.expected_repeats:,} identical copies to take once.",
            "",
            *_md_table(IMPORT_HEADERS, import_rows(b)),
            "",
            "Ratios are archer ÷ peer: speed above 1× means archer is faster, RSS above 1× "
            "means archer needs more memory. Seconds are the work alone (no interpreter "
            "start-up or imports); CPU s is user + system time of the whole process; load is "
            "the 1-minute load average when the contender started.",
            "",
        ]
        if stage_rows(b):
            lines += [
                "Where archer's import spends its time (from its progress callback):",
                "",
                *_md_table(["stage", "seconds", "share"], stage_rows(b)),
                "",
            ]
    if s is not None:
        lines += [f"## `archer sample --customers {s.customers:,}`", ""]
        lines += [*_md_table(SAMPLE_HEADERS, sample_rows(s)), ""]
        if s.files:
            listed = ", ".join(f"{k} {v:,}" for k, v in s.files.items())
            lines += [
                f"Rows per file: {listed}; {s.bytes / 1e6:,.0f} MB on disk. Seconds are the "
                "whole CLI process, start-up included. No peer: no other tool writes a shop "
                "with a known BG/NBD truth behind it.",
                "",
            ]
    lines += [
        "## What it means",
        "",
        interpretation(b, s),
        "",
        "## How it is measured",
        "",
        "Every contender runs in a fresh process started by a small launcher "
        "(`bench/harness.py`), which reads the contender's own `ru_maxrss` with `os.wait4`: "
        "`getrusage(RUSAGE_CHILDREN)` would report the largest earlier contender, and Linux "
        "carries a parent's peak into its child, so the launcher is kept tiny. The orders file is "
        "written once per run and read by every contender from the page cache. The "
        "pandas script is `bench/pandas_checked.py`: text columns, `pd.to_datetime` with "
        "the ISO format, `pd.to_numeric(errors='coerce')`, repeated ids, Asia/Shanghai → "
        "UTC, canonical places and statuses, good rows to Parquet and bad ones to a CSV "
        "with reasons. Temporary files live in a directory under /tmp that is removed at "
        "the end.",
        "",
    ]
    return "\n".join(lines)


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    right = [i > 0 for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    return (".venv/bin/python bench/run.py " + args).strip()


def now() -> datetime:
    return datetime.now(UTC)
