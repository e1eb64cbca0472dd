"""The "Audience count" section of docs/benchmarks.md (``audience`` markers), and the same
figures as text. The section ends with ``findings.md``: what the diagnostics of
``explain.py`` found and what changed in ``src/`` since (written by hand)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bench import AIM_SECONDS, QUERY, AudienceBench

from common import markdown as common
from common.harness import Measured

HEADERS = ["contender", "events", "cold s", "warm s", "peak RSS", "CPU s", "load"]
FINDINGS = Path(__file__).with_name("findings.md")


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
    parts.append(common.shared_machine([m.load for m in (a, p) if m is not None]))
    return " ".join(x for x in parts if x)


def text(b: AudienceBench) -> str:
    lines = ["  ".join(HEADERS), *("  ".join(r) for r in rows(b)), "", interpretation(b)]
    return "\n".join(lines)


def markdown(b: AudienceBench) -> str:
    when = datetime.fromisoformat(b.started) if b.started else common.now()
    m = common.machine()
    shop = b.shop
    listed = ", ".join(f"{k} {v:,}" for k, v in shop.get("rows", {}).items())
    built = (
        f"; its profile was built first in {b.profile_built['seconds']:.0f} s"
        if b.profile_built.get("built")
        else "; its profile, as of "
        f"{shop.get('as_of', '2026-10-31')}, was already built by the build benchmark"
    )
    lines = [
        "## Audience count",
        "",
        f"- Run: {when:%Y-%m-%d %H:%M} UTC, commit {b.commit or m.commit}, command "
        f"`{common.command('audience')}`",
        common.machine_line(m),
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
        *common.md_table(HEADERS, rows(b)),
        "",
        "Archer's figures are `archer.audiences.count()` in a fresh process (imports left "
        "out): cold is its first count, warm the median of the next ones in the same process. "
        "Each count opens the warehouse, checks the query's values against the data, and runs "
        "one query for the audience and each clause alone, as `archer audience count` does. "
        "pandas (`bench/audience/pandas_count.py`) reads the columns it needs with DuckDB `.df()` "
        "and computes the same five clauses, the anonymous-id linking included; its warm "
        "figure is its compute alone once the frames are in memory (median of 3). Peak RSS "
        "and CPU s are the whole process; load is the 1-minute load average when the "
        "contender started.",
        "",
        interpretation(b),
        "",
    ]
    if FINDINGS.exists():
        lines.append(FINDINGS.read_text(encoding="utf-8"))
    return "\n".join(lines)
