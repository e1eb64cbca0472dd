"""The "loader" section of docs/benchmarks.md: the figures, the checks, what they mean. The
section ends with ``findings.md`` (written by hand: what ``explain.py`` showed)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import LoaderBench

from common import markdown as md
from common.markdown import fmt_mb, fmt_ratio, speed_ratio

AIM = 50_000  # events/s, the aim
FINDINGS = Path(__file__).with_name("findings.md")
HEADERS = ["", "events", "seconds", "events/s", "peak RSS", "CPU s", "archer speed ÷ this", "load"]


def rows(b: LoaderBench) -> list[list[str]]:
    archer = b.get("archer")
    out = []
    for m in b.results:
        if not m.ok:
            out.append([m.label, "failed", "", "", fmt_mb(m.peak_rss_mb), "", "", f"{m.load:.1f}"])
            continue
        ratio = "" if m.name == "archer" else fmt_ratio(speed_ratio(archer, m))
        out.append(
            [
                m.label,
                f"{m.rows:,}",
                f"{m.seconds:.1f}",
                f"{m.rows_per_s:,.0f}",
                fmt_mb(m.peak_rss_mb),
                f"{m.cpu:.1f}",
                ratio,
                f"{m.load:.1f}",
            ]
        )
    rate = b.tracking.get("rate")
    if rate:
        keep_up = archer.rows_per_s / rate if archer.ok else None
        out.append(["tracking API, accepted (its own run)", "", "", f"{rate:,.0f}", "", "", "", ""])
        out[-1][6] = fmt_ratio(keep_up)
    return out


def verdicts(b: LoaderBench) -> str:
    a = b.get("archer")
    if not a.ok:
        return f"The sync failed: {a.error.splitlines()[0] if a.error else 'no report'}."
    rate = a.rows_per_s
    said = [
        f"`archer sync` loaded {a.rows:,} events at {rate:,.0f} events/s: the aim of "
        f"{AIM:,} events/s is {'met' if rate >= AIM else 'NOT met'}"
        + ("" if rate >= AIM else f" ({rate / AIM:.0%} of it)")
    ]
    api = b.tracking.get("rate")
    if api:
        said.append(
            f"it is {rate / api:.1f}× the {api:,.0f} events/s the tracking API accepted "
            f"({b.tracking['from']}), so under a steady load at that rate the inbox "
            + ("drains faster than it fills" if rate >= api else "grows without bound")
        )
    d = b.get("duckdb")
    if d.ok:
        said.append(
            f"DuckDB's bare `read_json` into the events table, the floor, ran at "
            f"{d.rows_per_s:,.0f} events/s: archer, with its checks, the customers and the "
            f"mapping, at {fmt_ratio(speed_ratio(a, d))} of that speed"
        )
    return "; ".join(said) + "."


def check_sentence(b: LoaderBench) -> str:
    c = b.checks
    if not c:
        return ""
    if not c["ok"]:
        return f"**The check failed**: {json.dumps(c)}."
    return (
        f"Afterwards the warehouse held exactly the {c['bench_events']:,} events sent, each "
        f"once under its `bench:<messageId>` id and none other ({c['events_added']:,} rows "
        f"added to the events table), {c['customers_added']:,} new customers (the users the "
        f"identify calls named), and the inbox was empty."
    )


def markdown(b: LoaderBench) -> str:
    a = b.get("archer")
    lines = [
        "## Tracking loader: `archer sync`, inbox → warehouse",
        "",
        f"- Run: {b.started}, commit {b.commit}",
        f"- Shop: the {b.customers:,}-customer sample shop, imported "
        f"({b.shop_events:,} events, {b.shop_customers:,} customers before the sync)",
        f"- Inbox: {b.events:,} events in batches of 100 of the tracking benchmark's shape "
        f"(pages, product views, cart adds, an identify per batch), stored as the API stores "
        f"them without HTTP in {b.fill_seconds:.0f} s; the store {b.inbox_mb:,.0f} MB, "
        f"the same events as NDJSON {b.ndjson_mb:,.0f} MB",
        md.machine_line(md.machine()),
        "",
        *md.md_table(HEADERS, rows(b)),
        "",
        verdicts(b),
        check_sentence(b),
        "",
        "Each contender ran in its own process (peak RSS is its own); archer's seconds are the "
        "sync's own (`seconds` in `archer sync --json`: opening the warehouse, every chunk, the "
        "inbox delete, the message-id pruning), without the interpreter's start. DuckDB read the "
        "NDJSON export of the same events into a copy of the same warehouse with a simplified "
        "mapping: no key check, no customers, the properties as sent. The tracking API's rate "
        "comes from its own benchmark on the same machine, not from this run. "
        + md.shared_machine([m.load for m in b.results]),
        "",
        f"Run with `{md.command('loader')}`.",
    ]
    if a.ok and a.detail.get("tables"):
        t = a.detail["tables"]
        per = ", ".join(
            f"{k} {v['inserted']:,} inserted, {v['updated']:,} updated, "
            f"{v['unchanged']:,} unchanged"
            for k, v in t.items()
        )
        lines[-1:-1] = [f"The sync's own account: {per}.", ""]
    if FINDINGS.exists():
        lines += ["", FINDINGS.read_text(encoding="utf-8").strip()]
    return "\n".join(lines)


def text(b: LoaderBench) -> str:
    doc = {
        "shop": {"customers": b.customers, "events": b.shop_events},
        "inbox": b.events,
        "contenders": {
            m.name: {
                "ok": m.ok,
                "events": m.rows,
                "seconds": m.seconds,
                "events_per_s": round(m.rows_per_s),
                "peak_rss_mb": round(m.peak_rss_mb),
                "cpu": round(m.cpu, 1),
            }
            for m in b.results
        },
        "tracking_api": b.tracking,
        "checks": b.checks,
    }
    return json.dumps(doc, indent=2)
