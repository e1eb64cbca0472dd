"""The "import" section of docs/benchmarks.md: the machine, the figures, what they mean."""

from __future__ import annotations

from datetime import datetime

from bench import PEERS, ImportBench

from common import markdown as md
from common.harness import Measured
from common.markdown import fmt_mb, fmt_ratio, memory_ratio, speed_ratio

TARGET_ROWS_PER_S = 1_000_000  # a clean 10M-line file (issue 17)
MEMORY_CEILING_MB = 4 * 1024  # the messy 10M-line file's peak (issue 17)
TARGET_DUCKDB_SHARE = 0.8  # the messy file: archer's rows/s against DuckDB's bare read
TARGET_EVENTS_SECONDS = 40.0  # the 1M-customer shop's events from Parquet

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


def import_rows(b: ImportBench) -> list[list[str]]:
    """One row per contender on the messy file (``pair_rows``)."""
    return pair_rows(b.results)


def pair_rows(runs: list[Measured]) -> list[list[str]]:
    """One row per contender on one file: label, s, rows/s, peak RSS, CPU s, speed and RSS
    ratios against archer (for the others), load."""
    archer = next((m for m in runs if m.name == "archer"), None)
    rows = []
    for m in runs:
        if not m.ok:
            rows.append([m.label, "failed", "", fmt_mb(m.peak_rss_mb), "", "", "", f"{m.load:.1f}"])
            continue
        peer = m.name != "archer" and archer is not None
        rows.append(
            [
                m.label,
                f"{m.seconds:.1f}",
                f"{m.rows_per_s:,.0f}",
                fmt_mb(m.peak_rss_mb),
                f"{m.cpu:.0f}",
                fmt_ratio(speed_ratio(archer, m)) if peer else "",
                fmt_ratio(memory_ratio(archer, m)) if peer else "",
                f"{m.load:.1f}",
            ]
        )
    return rows


def aims(b: ImportBench) -> list[list[str]]:
    """The issue's four aims for imports, each with what this run measured: met or not."""
    out = []
    a, d = b.get("archer"), b.get("duckdb")
    r = speed_ratio(a, d)
    if r is not None:
        met = r >= TARGET_DUCKDB_SHARE and a.peak_rss_mb < MEMORY_CEILING_MB
        out.append(
            [
                f"messy {b.file.lines:,}-line CSV: ≥ {TARGET_DUCKDB_SHARE}× DuckDB's rows/s, "
                "peak < 4 GB",
                f"{r:.2f}×, {fmt_mb(a.peak_rss_mb)}",
                "met" if met else "not met",
            ]
        )
    if b.clean:
        c = b.get("archer", "clean")
        if c.ok and b.clean_file is not None:
            out.append(
                [
                    f"clean {b.clean_file.lines:,}-line CSV: ≥ {TARGET_ROWS_PER_S:,} rows/s",
                    f"{c.rows_per_s:,.0f} rows/s",
                    "met" if c.rows_per_s >= TARGET_ROWS_PER_S else "not met",
                ]
            )
    if b.events:
        e = b.get("archer", "events")
        if e.ok:
            out.append(
                [
                    f"events of the {b.customers:,}-customer shop from Parquet: "
                    f"< {TARGET_EVENTS_SECONDS:.0f} s",
                    f"{e.seconds:.1f} s ({e.rows:,} events)",
                    "met" if e.seconds < TARGET_EVENTS_SECONDS else "not met",
                ]
            )
    return out


def stage_rows(b: ImportBench, run: str = "messy") -> list[list[str]]:
    archer = b.get("archer", run)
    stages: dict[str, float] = archer.detail.get("stages", {}) if archer.ok else {}
    total = archer.seconds or 1.0
    rows = [[s, f"{sec:.1f}", f"{100 * sec / total:.0f}%"] for s, sec in stages.items()]
    rest = total - sum(stages.values())
    if stages:
        rows.append(
            ["(between stages: setup, commit)", f"{rest:.1f}", f"{100 * rest / total:.0f}%"]
        )
    return rows


# -- words ----------------------------------------------------------------------------------------


def interpretation(b: ImportBench) -> str:
    """One paragraph that says plainly what the figures mean, target met or not."""
    parts: list[str] = []
    a = b.get("archer")
    if not a.ok:
        parts.append(f"The archer import failed ({a.error.splitlines()[0]}).")
    else:
        r = speed_ratio(a, b.get("duckdb"))
        verdict = (
            "DuckDB's bare read failed"
            if r is None
            else f"{r:.2f}× the rows/s of DuckDB's bare read on the same file (the aim is "
            f"{TARGET_DUCKDB_SHARE}×: {'met' if r >= TARGET_DUCKDB_SHARE else 'not met'})"
        )
        parts.append(
            f"archer imported the {b.file.lines:,}-line file in {a.seconds:.1f} s, "
            f"{a.rows_per_s:,.0f} rows/s, {verdict}."
        )
        parts.extend(_peer_sentences(b, a))
        parts.append(_memory_sentence(b, a))
        parts.extend(_stage_sentence(a))
        parts.append(_outcome_sentence(b, a))
    loads = [r.load for r in b.results]
    parts.append(md.shared_machine(loads, "; the CPU seconds are less affected"))
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
        f"Peak memory: archer {fmt_mb(a.peak_rss_mb)} ({under} the 4 GB aim "
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


# -- the section ----------------------------------------------------------------------------------


def text(b: ImportBench) -> str:
    """The figures for the terminal."""
    lines = [f"Import of {b.file.lines:,} orders", "  ".join(IMPORT_HEADERS)]
    lines += ["  ".join(r) for r in import_rows(b)]
    if stage_rows(b):
        lines += ["", "archer import stages:", *("  ".join(r) for r in stage_rows(b))]
    for run, rows in (("clean file", b.clean), ("events from Parquet", b.events)):
        if rows:
            lines += ["", run + ":", *("  ".join(r) for r in pair_rows(rows))]
    lines += ["", "aims:", *("  ".join(r) for r in aims(b))]
    return "\n".join([*lines, "", interpretation(b)])


def markdown(b: ImportBench) -> str:
    m = md.machine()
    pk = m.packages
    code = f"commit {b.commit or m.commit}"
    at_end = b.commit_end or m.commit
    if b.commit and at_end != b.commit:
        # Others commit while a long run goes on: say so rather than name one version.
        code = f"commit {b.commit} at the start and {at_end} at the end"
    when = datetime.fromisoformat(b.started) if b.started else md.now()
    f = b.file
    lines = [
        f"- Run: {when:%Y-%m-%d %H:%M} UTC, {code}, command `{md.command('import')}`",
        "- Reproduce: `make bench` (runs `.venv/bin/python bench/run.py`, every subject);"
        " `bench/run.py --quick` is a small check that writes to bench/out/benchmarks-quick.md",
        f"- Machine: {m.cores} cores ({m.cpu}), {m.ram_gb:.1f} GB RAM, {m.system}",
        f"- Python {m.python}, DuckDB {pk['duckdb']}, pandas {pk['pandas']}, "
        f"pyarrow {pk['pyarrow']}, NumPy {pk['numpy']}, Ibis {pk['ibis-framework']}",
        "",
        f"## Import of a {f.lines:,}-line orders CSV",
        "",
        f"`bench/import/make_orders.py` writes {f.lines:,} orders ({f.bytes / 1e6:,.0f} MB, "
        "UTF-8, shop-local times, half the places and statuses in Chinese) with about 0.1% bad "
        f"rows by construction: {f.expected_rejected:,} to reject and "
        f"{f.expected_repeats:,} identical copies to take once.",
        "",
        *md.md_table(IMPORT_HEADERS, import_rows(b)),
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
            *md.md_table(["stage", "seconds", "share"], stage_rows(b)),
            "",
        ]
    if b.clean and b.clean_file is not None:
        lines += [
            f"## The same {b.clean_file.lines:,} orders without a bad row",
            "",
            f"{b.clean_file.bytes / 1e6:,.0f} MB: no row to refuse and no id given twice, "
            "so archer reads the file once and nothing more.",
            "",
            *md.md_table(IMPORT_HEADERS, pair_rows(b.clean)),
            "",
        ]
        if stage_rows(b, "clean"):
            lines += [*md.md_table(["stage", "seconds", "share"], stage_rows(b, "clean")), ""]
    if b.events:
        lines += [
            f"## The {b.customers:,}-customer sample shop's events from Parquet",
            "",
            f"`archer sample --customers {b.customers:,} --seed 1 --format parquet` writes "
            "events.parquet; archer imports it into an empty workspace (every check, "
            "repeated ids) and DuckDB reads it into a table.",
            "",
            *md.md_table(IMPORT_HEADERS, pair_rows(b.events)),
            "",
        ]
        if stage_rows(b, "events"):
            lines += [*md.md_table(["stage", "seconds", "share"], stage_rows(b, "events")), ""]
    if aims(b):
        lines += [
            "## The aims (issue 17)",
            "",
            *md.md_table(["aim", "measured", ""], aims(b)),
            "",
        ]
    lines += [
        "## What it means",
        "",
        interpretation(b),
        "",
        "## How it is measured",
        "",
        "Every contender runs in a fresh process started by a small launcher "
        "(`bench/common/harness.py`), which reads the contender's own `ru_maxrss` with "
        "`os.wait4`: `getrusage(RUSAGE_CHILDREN)` would report the largest earlier contender, "
        "and Linux carries a parent's peak into its child, so the launcher is kept tiny. The "
        "orders file is written once per run and read by every contender from the page cache. "
        "The pandas script is `bench/import/pandas_checked.py`: text columns, `pd.to_datetime` "
        "with the ISO format, `pd.to_numeric(errors='coerce')`, repeated ids, Asia/Shanghai → "
        "UTC, canonical places and statuses, good rows to Parquet and bad ones to a CSV "
        "with reasons. Temporary files live in a directory under /tmp that is removed at "
        "the end.",
    ]
    return "\n".join(lines)
