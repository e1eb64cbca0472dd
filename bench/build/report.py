"""The "Customer profile build" section of docs/benchmarks.md (``build`` markers), and the same
figures as text."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bench import MEMORY_TARGET_MB, TARGET_RATIO, TARGET_SECONDS, BuildBench

from common import markdown as common
from common.harness import Measured

FINDINGS = Path(__file__).with_name("findings.md")

HEADERS = [
    "contender",
    "customers",
    "seconds",
    "peak RSS",
    "CPU s",
    "Archer speed ÷ pandas",
    "load",
]


def rows(b: BuildBench) -> list[list[str]]:
    out = [_row(b.archer, b.customers, "")]
    if b.pandas_customers != b.customers:
        out.append(_row(b.archer_small, b.pandas_customers, ""))
    if b.archer_small.ok and b.same_parts_seconds:
        out.append(
            [
                "archer build: only the parts pandas computes (from its stage times)",
                f"{b.pandas_customers:,}",
                f"{b.same_parts_seconds:.1f}",
                "",
                "",
                "",
                "",
            ]
        )
    out.append(
        _row(
            b.pandas,
            b.pandas_customers,
            f"{common.fmt_ratio(b.ratio)} (same parts: {common.fmt_ratio(b.same_parts_ratio)})",
        )
    )
    return out


def _row(m: Measured, customers: int, ratio: str) -> list[str]:
    if not m.ok:
        return [m.label, f"{customers:,}", "failed", common.fmt_mb(m.peak_rss_mb), "", "", ""]
    return [
        m.label,
        f"{customers:,}",
        f"{m.seconds:.1f}",
        common.fmt_mb(m.peak_rss_mb),
        f"{m.cpu:.0f}",
        ratio,
        f"{m.load:.1f}",
    ]


STAGE_HEADERS = ["part", "seconds", "CPU s", "share of seconds"]


def stage_rows(m: Measured) -> list[list[str]]:
    """The parts of 0.1 s or more, in the build's order; the rest summed on one line."""
    stages: dict[str, float] = m.detail.get("stages", {}) if m.ok else {}
    cpu: dict[str, float] = m.detail.get("stages_cpu", {})
    total = m.seconds or 1.0
    rows = [
        [s, f"{sec:.1f}", f"{cpu.get(s, 0.0):.1f}", f"{100 * sec / total:.0f}%"]
        for s, sec in stages.items()
        if sec >= 0.1
    ]
    small = [s for s, sec in stages.items() if sec < 0.1]
    if small:
        sec = sum(stages[s] for s in small)
        c = sum(cpu.get(s, 0.0) for s in small)
        rows.append([f"{len(small)} smaller steps", f"{sec:.1f}", f"{c:.1f}", ""])
    return rows


def interpretation(b: BuildBench) -> str:
    parts: list[str] = []
    a = b.archer
    if not a.ok:
        parts.append(f"The build on {b.customers:,} customers failed ({a.error.splitlines()[0]}).")
    else:
        fast = "meeting" if a.seconds < TARGET_SECONDS else "NOT meeting"
        small = "within" if a.peak_rss_mb < MEMORY_TARGET_MB else "NOT within"
        parts.append(
            f"`archer build` computed the profile of {b.customers:,} customers in "
            f"{a.seconds:.1f} s with a peak of {common.fmt_mb(a.peak_rss_mb)}: {fast} the aim "
            f"of well under {TARGET_SECONDS} s, {small} {MEMORY_TARGET_MB // 1024} GB."
        )
        stages: dict[str, float] = a.detail.get("stages", {})
        if stages:
            top = sorted(stages.items(), key=lambda kv: -kv[1])[:2]
            said = " and ".join(
                f"{k[1:-1] if k.startswith('(') else k} ({v:.1f} s, {v / a.seconds:.0%})"
                for k, v in top
            )
            parts.append(f"The slowest parts are {said}.")
    p, s = b.pandas, b.archer_small
    if p.ok and s.ok:
        r = b.ratio or 0.0
        verdict = "meeting" if r >= TARGET_RATIO else "NOT meeting"
        compute = p.detail.get("compute_seconds", 0.0)
        parts.append(
            f"On {b.pandas_customers:,} customers, plain pandas took {p.seconds:.1f} s "
            f"({p.detail.get('read_seconds', 0.0):.1f} s to read the tables, {compute:.1f} s "
            f"to compute) for RFM and lifecycle alone, against {s.seconds:.1f} s for Archer's "
            f"whole profile: Archer is {r:.2f}× as fast ({verdict} the {TARGET_RATIO:.0f}× "
            "aim), with "
            f"{common.fmt_mb(s.peak_rss_mb)} against {common.fmt_mb(p.peak_rss_mb)} of memory."
        )
        if b.same_parts_seconds:
            r2 = b.same_parts_ratio or 0.0
            parts.append(
                f"The parts of Archer's build that compute what pandas computes (main category, "
                f"order and behaviour summaries, thresholds, RFM scores) took "
                f"{b.same_parts_seconds:.1f} s of it: {r2:.1f}× as fast as pandas on like "
                "work."
            )
    elif not p.ok:
        parts.append(f"The pandas contender failed ({p.error.splitlines()[0]}).")
    parts.append(_agreement(b))
    parts.append(common.shared_machine([m.load for m in (b.archer, b.archer_small, b.pandas)]))
    return " ".join(x for x in parts if x)


def _agreement(b: BuildBench) -> str:
    g = b.agreement
    if not g:
        return ""
    cols = [k for k in g if k not in ("archer", "pandas", "unmatched")]
    bad = [f"{k} on {g[k]:,}" for k in cols if g[k]]
    head = (
        f"Both give {g['archer']:,} customers"
        if g["archer"] == g["pandas"] and not g["unmatched"]
        else f"Archer gives {g['archer']:,} customers, pandas {g['pandas']:,} "
        f"({g['unmatched']:,} unmatched)"
    )
    if not bad:
        return f"{head}, with the same {', '.join(cols)} for every one."
    return f"{head}; they differ in {', '.join(bad)} customers."


def text(b: BuildBench) -> str:
    lines = [f"{'  '.join(HEADERS)}"]
    lines += ["  ".join(r) for r in rows(b)]
    if stage_rows(b.archer):
        lines += ["", f"stages of archer build on {b.customers:,} customers:"]
        lines += ["  ".join(r) for r in stage_rows(b.archer)]
    lines += ["", interpretation(b)]
    return "\n".join(lines)


def markdown(b: BuildBench, started: str) -> str:
    when = datetime.fromisoformat(started) if started else common.now()
    m = common.machine()
    shop = b.shop
    imp = shop.get("import_seconds", {})
    listed = ", ".join(f"{k} {v:,}" for k, v in shop.get("rows", {}).items())
    lines = [
        "## Customer profile build",
        "",
        f"- Run: {when:%Y-%m-%d %H:%M} UTC, commit {b.commit or m.commit}, command "
        f"`{common.command('build')}` (`--quick` is a 20,000-customer check)",
        common.machine_line(m),
        f"- Data: `archer sample --customers {b.customers:,} --seed {shop.get('seed')}` "
        f"({listed}), imported once from Parquet in {sum(imp.values()):.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in imp.items())}) into a "
        f"{shop.get('warehouse_bytes', 0) / 1e9:.1f} GB warehouse kept under `bench/out/`; "
        "the import is not part of the figures",
        "",
        *common.md_table(HEADERS, rows(b)),
        "",
        "Seconds are `build()` alone, from opening the warehouse to its summary counts "
        "(interpreter start-up and imports left out); peak RSS and CPU s are the whole "
        "process; load is the 1-minute load average when the contender started. pandas "
        "(`bench/build/pandas_rfm.py`) reads the columns it needs from the same warehouse with "
        "DuckDB `.df()` and computes only RFM and the lifecycle state with the learned lapse "
        "thresholds (with each buyer's main category, which they need), while Archer's build "
        "computes and writes the whole profile (preferences, price bands, festival test, "
        "habits, CLV scores, flags) and the shop views (KPIs, funnel, cohorts, affinities, "
        "recommendations). The row “only the parts pandas computes” sums the build's own "
        "parts that give the same answers; its ratio compares like work.",
        "",
    ]
    if stage_rows(b.archer):
        lines += [
            f"Where the build of {b.customers:,} customers spends its time: each part it "
            "computes once into a temporary table or writes, timed around `Warehouse.stage` "
            "and `Build.write`; lines in parentheses are the Python work between two "
            "parts. CPU s counts every thread, so it is less disturbed by a shared machine.",
            "",
            *common.md_table(STAGE_HEADERS, stage_rows(b.archer)),
            "",
        ]
    lines += [interpretation(b), ""]
    if FINDINGS.exists():
        lines.append(FINDINGS.read_text(encoding="utf-8"))
    return "\n".join(lines)
