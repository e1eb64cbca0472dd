"""The "Audience count" section of docs/benchmarks.md, and the same figures as text.

The section sits between ``<!-- audience:start -->`` and ``<!-- audience:end -->`` and is
replaced alone, so the sections other benchmarks write are kept.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import report as common
from bench_audience import AIM_SECONDS, QUERY, AudienceBench
from harness import Measured

START, END = "<!-- audience:start -->", "<!-- audience:end -->"
HEADERS = ["contender", "events", "cold s", "warm s", "peak RSS", "CPU s", "load"]
EXPLAINED = Path(__file__).parent / "out" / "audience-explain.json"  # audience_explain.py
PROPOSALS = """\
What would bring the warm count under the aim (proposals for `src/archer/`, not made here;
each measured above as a patch of the count in `bench/audience_explain.py`):

1. **Keep the anonymous-id map as a built table.** `Snapshot.identities()` groups every
   event carrying both ids at each count: two full scans of `events` (one for the audience,
   one for its behaviour clause alone) and their group-bys are the largest operators of the
   query, and they grow with the events. The build already stages this map
   (`profile.py`, stage "identities") and drops it; keeping it as `customer_identities` and
   setting `Snapshot.identity_map` from it when present removes that work from every count.
2. **Compute each behaviour predicate's members once per count.** `count()` sums the
   audience and each clause in one query, but the audience's `IN (subquery)` and the
   clause's identical one are planned and run twice (DuckDB does not share them). Staging
   each predicate's member ids first (an Ibis `.cache()` temporary table, or
   `Warehouse.stage`) and referring to it from both halves halves the behaviour work.
3. **Join `customers` only when a query names one of its fields.** The base table always
   joins the 1M-row `customers` for the contact columns; no clause here uses them. The value
   check of `province` also runs its `distinct` over that joined base: reading it from the
   profile alone cut the compile step (value look-ups) by about two thirds.
"""


def rows(b: AudienceBench) -> list[list[str]]:
    out = [_archer_row(b.archer, b.events)]
    if b.pandas is not None:
        p = b.pandas
        if p.ok:
            d = p.detail
            out.append(
                [
                    p.label,
                    f"{b.events:,}",
                    f"{p.seconds:.1f} (read {d['read_seconds']:.1f} + compute "
                    f"{p.seconds - d['read_seconds']:.1f})",
                    f"{d['compute_seconds']:.2f} (compute, frames in memory)",
                    common.fmt_mb(p.peak_rss_mb),
                    f"{p.cpu:.0f}",
                    f"{p.load:.1f}",
                ]
            )
        else:
            out.append([p.label, f"{b.events:,}", "failed", "", common.fmt_mb(p.peak_rss_mb)])
    if b.large.get("archer"):
        m = Measured(**b.large["archer"])
        out.append(_archer_row(m, b.large["events"]))
    return out


def _archer_row(m: Measured, events: int) -> list[str]:
    if not m.ok:
        return [m.label, f"{events:,}", "failed", "", common.fmt_mb(m.peak_rss_mb), "", ""]
    d = m.detail
    return [
        m.label,
        f"{events:,}",
        f"{d['cold_seconds']:.2f}",
        f"{m.seconds:.2f} (of {', '.join(f'{t:.2f}' for t in d['warm_all'])})",
        common.fmt_mb(m.peak_rss_mb),
        f"{m.cpu:.0f}",
        f"{m.load:.1f}",
    ]


def interpretation(b: AudienceBench) -> str:
    a = b.archer
    if not a.ok:
        return f"Archer's count failed ({a.error.splitlines()[0]})."
    d = a.detail
    met = "meeting" if a.seconds < AIM_SECONDS else "NOT meeting"
    parts = [
        f"On {b.customers:,} customers and {b.events:,} events, `count()` answered "
        f"{a.rows:,} customers (clauses alone: {', '.join(f'{n:,}' for n in d['clauses'])}) "
        f"in {d['cold_seconds']:.2f} s cold and {a.seconds:.2f} s warm: {met} the aim of "
        f"under {AIM_SECONDS:.0f} s warm."
    ]
    p = b.pandas
    if p is not None and p.ok:
        same = (
            "Both give the same count and the same count for every clause"
            if b.agree
            else f"They DISAGREE: pandas gives {p.rows:,} ({p.detail.get('clauses')})"
        )
        parts.append(
            f"pandas by hand took {p.seconds:.1f} s from nothing ({p.detail['read_seconds']:.1f}"
            f" s to read the columns) and {p.detail['compute_seconds']:.2f} s to compute once "
            f"the frames are in memory, with a peak of {common.fmt_mb(p.peak_rss_mb)} against "
            f"Archer's {common.fmt_mb(a.peak_rss_mb)}: Archer cold is "
            f"{common.fmt_ratio(b.ratio_cold)} as fast as pandas from nothing, Archer warm "
            f"{common.fmt_ratio(b.ratio_warm)} as fast as pandas' compute alone. {same}."
        )
    elif p is not None:
        parts.append(f"The pandas contender failed ({p.error.splitlines()[0]}).")
    if b.large.get("archer"):
        m = Measured(**b.large["archer"])
        if m.ok:
            met = "meeting" if m.seconds < AIM_SECONDS else "NOT meeting"
            parts.append(
                f"On the copy with {b.large['events']:,} events, Archer counted "
                f"{m.rows:,} customers in {m.detail['cold_seconds']:.2f} s cold and "
                f"{m.seconds:.2f} s warm ({met} the aim)."
            )
    loads = [m.load for m in (a, p) if m is not None]
    if max(loads) > (os.cpu_count() or 1) * 0.75:
        parts.append(
            f"The machine was shared while this ran (1-minute load up to {max(loads):.1f} on "
            f"{os.cpu_count()} cores), so the seconds are pessimistic."
        )
    return " ".join(parts)


def text(b: AudienceBench) -> str:
    lines = ["  ".join(HEADERS), *("  ".join(r) for r in rows(b)), "", interpretation(b)]
    return "\n".join(lines)


def markdown(b: AudienceBench) -> str:
    when = datetime.fromisoformat(b.started) if b.started else datetime.now(UTC)
    m = common.machine()
    pk = m.packages
    shop = b.shop
    listed = ", ".join(f"{k} {v:,}" for k, v in shop.get("rows", {}).items())
    built = (
        f"; its profile was built first in {b.profile_built['seconds']:.0f} s"
        if b.profile_built.get("built")
        else "; its profile, as of "
        f"{shop.get('as_of', '2026-10-31')}, was already built by the build benchmark"
    )
    lines = [
        START,
        "## Audience count",
        "",
        f"- Run: {when:%Y-%m-%d %H:%M} UTC, commit {b.commit or m.commit}, command "
        "`.venv/bin/python bench/bench_audience.py` (also `bench/run.py --only audience`)",
        f"- Machine: {m.cores} cores ({m.cpu}), {m.ram_gb:.1f} GB RAM; Python {m.python}, "
        f"DuckDB {pk['duckdb']}, Ibis {pk['ibis-framework']}, pandas {pk['pandas']}",
        f"- Data: the build benchmark's shop, `archer sample --customers {b.customers:,} "
        f"--seed {shop.get('seed')}` ({listed}){built}. It has {b.events / 1e6:.0f} million "
        "events, not the 100 million the issue names: the generator makes about 26 per "
        "customer"
        + (
            f"; the last row is a copy with {b.large['events'] / 1e6:.0f} million events "
            f"({b.large['how']})"
            if b.large.get("archer")
            else ""
        ),
        f"- Audience: `{QUERY}`",
        "",
        *common._md_table(HEADERS, rows(b)),
        "",
        "Archer's figures are `archer.audiences.count()` in a fresh process (imports left "
        "out): cold is its first count, warm the median of the next ones in the same process. "
        "Each count opens the warehouse, checks the query's values against the data, and runs "
        "one query for the audience and each clause alone, as `archer audience count` does. "
        "pandas (`bench/audience_pandas.py`) reads the columns it needs with DuckDB `.df()` "
        "and computes the same five clauses, the anonymous-id linking included; its warm "
        "figure is its compute alone once the frames are in memory (median of 3). Peak RSS "
        "and CPU s are the whole process; load is the 1-minute load average when the "
        "contender started.",
        "",
        interpretation(b),
        "",
    ]
    lines += findings()
    lines.append(END)
    return "\n".join(lines)


def findings() -> list[str]:
    """The diagnostics of ``bench/audience_explain.py`` (its last run) and the proposals."""
    if not EXPLAINED.exists():
        return []
    doc = json.loads(EXPLAINED.read_text(encoding="utf-8"))
    variants: dict[str, dict] = doc["variants"]
    phases = [k for k in next(iter(variants.values())) if k != "seconds"]
    base = variants["count() as it is"]["seconds"]
    table = [
        [
            name,
            f"{v['seconds']:.2f}",
            *(f"{v[k]:.2f}" for k in phases),
            f"{base / v['seconds']:.1f}×",
        ]
        for name, v in variants.items()
    ]
    latency, *ops = doc["explain"]
    op_rows = [[o["operator"], f"{o['seconds']:.2f}", f"{o['rows']:,}", o["detail"]] for o in ops]
    return [
        "### Where the time goes",
        "",
        f"`bench/audience_explain.py` on a copy of the shop ({doc['events']:,} events), in one "
        "process: the count as `count()` makes it, then with patched variants (none in "
        "`src/`), each the median of 3 after a warm-up, all giving the same counts. It ran "
        "on the same shared machine, so compare the rows with each other rather than with "
        "the table above.",
        "",
        *common._md_table(["variant", "seconds", *phases, "faster"], table),
        "",
        f"DuckDB's profile (`EXPLAIN ANALYZE`) of the query `count()` runs, as `ibis.to_sql` "
        f"gives it ({latency['latency']:.2f} s), its costliest operators:",
        "",
        *common._md_table(["operator", "seconds", "rows out", "what"], op_rows[:8]),
        "",
        PROPOSALS,
    ]


def write_section(path: Path, section: str) -> None:
    """Replace the section between the markers in ``path`` (or append it)."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: section, old)
    else:
        new = old.rstrip("\n") + "\n\n" + section
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")
