"""Benchmark: ``archer sync``, the tracking loader, from a full inbox into a warehouse that
already holds the sample shop.

A copy of the imported sample shop (``common/shop.py``: 1,000,000 customers, about 26 million
events) gets a tracking source and an inbox of ``--events`` events (1,000,000) of the tracking
benchmark's shape (``events.py``), stored as the API stores them — the same parsing,
normalisation and ``inbox.append`` in groups of the API writer's size, without HTTP. Then, each
in its own process with its peak memory:

- ``archer``: ``archer sync --json`` (the CLI) until the inbox is empty. Afterwards the
  warehouse must hold exactly the expected new events (every ``bench:<messageId>`` once, no
  other) and new customers, and the inbox nothing;
- ``duckdb``: the same events exported as NDJSON, read with DuckDB's ``read_json`` and inserted
  into the events table of another copy of the same warehouse: a simplified mapping, no key
  checks, no customers — the floor.

Beside them, the rate the loader must keep up with: what the tracking API accepted in its own
benchmark (``bench/out/tracking-results.json`` if there is one, else the tracking section of
docs/benchmarks.md). ``.venv/bin/python bench/run.py --only loader`` writes the "loader" section
of docs/benchmarks.md; ``--quick`` runs 50,000 events into the 20,000-customer shop and writes
to bench/out/benchmarks-quick.md. ``--customers``/``--events`` choose other sizes.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import archer_calls as archer
from events import bodies, copy_workspace

from common import archer_calls as common_archer
from common import markdown as md
from common import results, shop
from common.harness import Measured, log, python_child, report, run_child, said

FULL = {"customers": shop.FULL_CUSTOMERS, "events": 1_000_000}
QUICK = {"customers": shop.QUICK_CUSTOMERS, "events": 50_000}
LABELS = {
    "archer": "archer sync (inbox → warehouse, every check)",
    "duckdb": "DuckDB read_json → events (no checks)",
}


@dataclass
class LoaderBench:
    customers: int
    events: int  # put in the inbox
    shop_events: int  # in the warehouse before
    shop_customers: int
    fill_seconds: float
    inbox_mb: float
    ndjson_mb: float
    results: list[Measured]
    checks: dict = field(default_factory=dict)  # what the warehouse held afterwards
    tracking: dict = field(default_factory=dict)  # the API's accepted rate, and where from
    started: str = ""
    commit: str = ""

    def get(self, name: str) -> Measured:
        return next(r for r in self.results if r.name == name)


def run(
    customers: int, events: int, tmp: Path, *, log: Callable[[str], None] = lambda m: None
) -> LoaderBench:
    started, code = md.started(), md.commit()
    info = shop.prepare(customers, log=log)
    home = copy_workspace(Path(info["home"]), tmp / "shop")
    peer_db = tmp / "peer.duckdb"
    shutil.copyfile(home / "warehouse.duckdb", peer_db)
    log(f"filling the inbox with {events:,} events")
    t0 = time.perf_counter()
    stored = archer.fill_inbox(home, bodies(events))
    fill_s = time.perf_counter() - t0
    if stored != events:
        raise SystemExit(f"the inbox took {stored:,} of {events:,} events")
    log(f"  {fill_s:.1f} s ({events / fill_s:,.0f} events/s)")
    ndjson = tmp / "events.ndjson"
    with ndjson.open("w", encoding="utf-8") as f:
        for body in archer.inbox_bodies(home):
            f.write(body + "\n")
    before = counts(home / "warehouse.duckdb")
    inbox_mb = sum(p.stat().st_size for p in home.glob("archer.db*")) / 1e6

    log("running archer sync")
    m = run_child("archer", LABELS["archer"], sync_command(home))
    if m.ok:
        m.rows = int(m.detail.get("read", 0))
    log(said(m))
    checks = check(home, ndjson, before, events) if m.ok else {}
    if checks and not checks["ok"]:
        m.ok, m.error = False, f"the warehouse does not hold what was sent: {checks}"
    log(f"  {checks}")

    log("running duckdb")
    argv = python_child("loader/bench.py", "child", "duckdb", str(ndjson), str(peer_db))
    d = run_child("duckdb", LABELS["duckdb"], argv)
    log(said(d))
    if d.ok and counts(peer_db)["events"] != before["events"] + events:
        d.ok, d.error = False, "DuckDB's events table did not grow by the events sent"
    return LoaderBench(
        customers=customers,
        events=events,
        shop_events=before["events"],
        shop_customers=before["customers"],
        fill_seconds=round(fill_s, 1),
        inbox_mb=round(inbox_mb, 1),
        ndjson_mb=round(ndjson.stat().st_size / 1e6, 1),
        results=[m, d],
        checks=checks,
        tracking=tracking_rate(),
        started=started,
        commit=code,
    )


def sync_command(home: Path) -> list[str]:
    """``archer sync --json`` as a user runs it: the installed CLI if there is one."""
    cli = common_archer.installed_cli()
    args = ["sync", "--home", str(home), "--json"]
    return [str(cli), *args] if cli is not None else common_archer.cli(*args)


def counts(db: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return {
            t: con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("events", "customers")
        }


def check(home: Path, ndjson: Path, before: dict[str, int], sent: int) -> dict:
    """What the warehouse holds after the sync, against what was sent: nothing lost, nothing
    doubled, nothing else; the new customers are the identified users; the inbox is empty."""
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        sent_ids = (
            "(select 'bench:' || messageId from read_json(?, columns = {messageId: 'VARCHAR'}))"
        )
        total, new, distinct, expected = con.execute(
            "select (select count(*) from events), count(*), count(distinct event_id), "
            f"count(*) filter (where event_id in {sent_ids}) from events "
            "where event_id like 'bench:%'",
            [str(ndjson)],
        ).fetchone()
        identified = con.execute(
            "select count(distinct userId) from read_json(?, "
            "columns = {type: 'VARCHAR', userId: 'VARCHAR'}) where type = 'identify'",
            [str(ndjson)],
        ).fetchone()[0]
        customers = con.execute("select count(*) from customers").fetchone()[0]
    out = {
        "events_added": total - before["events"],
        "bench_events": new,
        "distinct_ids": distinct,
        "ids_sent": expected,
        "customers_added": customers - before["customers"],
        "users_identified": identified,
        "inbox_left": archer.pending(home),
    }
    out["ok"] = (
        out["events_added"] == new == distinct == expected == sent
        and out["customers_added"] == identified
        and out["inbox_left"] == 0
    )
    return out


def tracking_rate() -> dict:
    """Events/s the tracking API accepted: its last full run's figures, else the docs."""
    p = results.path("tracking")
    if p.exists():
        doc = results.load("tracking")
        return {"rate": doc["rate"], "from": str(p.relative_to(md.BENCH_DIR.parent)),
                "started": doc.get("started", "")}  # fmt: skip
    text = md.DOCS.read_text(encoding="utf-8") if md.DOCS.exists() else ""
    sec = re.search(r"<!-- tracking:start -->(.*?)<!-- tracking:end -->", text, re.S)
    row = re.search(r"^\| [\d,]+ \| [\d.]+ \| ([\d,]+) \|", sec.group(1), re.M) if sec else None
    if row is None:
        return {}
    return {"rate": float(row.group(1).replace(",", "")), "from": "docs/benchmarks.md"}


# -- the peer (run in the child process) --------------------------------------------------------

# The spec names the sent events use, as archer maps them (archer.tracking.loader.SPEC_TYPES);
# other names are only lower-cased: the floor, not a loader.
PEER_SQL = """
insert into events
select
    'bench:' || messageId,
    userId,
    anonymousId,
    case type
        when 'track' then case lower(event)
            when 'product viewed' then 'view' when 'product added' then 'cart_add'
            else lower(event) end
        when 'page' then 'visit' when 'screen' then 'visit'
        else type end,
    cast(replace(timestamp, 'Z', '') as timestamp),
    properties ->> '$.product_id',
    properties ->> '$.category',
    properties ->> '$.query',
    context ->> '$.campaign.source',
    context ->> '$.campaign.medium',
    context ->> '$.campaign.name',
    cast(coalesce(properties, traits) as varchar)
from read_json(?, columns = {
    messageId: 'VARCHAR', type: 'VARCHAR', event: 'VARCHAR', userId: 'VARCHAR',
    anonymousId: 'VARCHAR', timestamp: 'VARCHAR', properties: 'JSON', traits: 'JSON',
    context: 'JSON'})
"""


def child_duckdb(ndjson: Path, db: Path) -> None:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute("set enable_progress_bar = false")
    n = con.execute(PEER_SQL, [str(ndjson)]).fetchone()[0]
    con.close()
    report(time.perf_counter() - started, n)


def load_results() -> LoaderBench:
    doc = results.load("loader")
    doc["results"] = [Measured(**m) for m in doc["results"]]
    return LoaderBench(**doc)


def main(argv: list[str] | None = None) -> None:
    ap = md.parser(__doc__, f"{QUICK['events']:,} events, {QUICK['customers']:,}-customer shop")
    ap.add_argument("--customers", type=int, help="the sample shop's size (default 1,000,000)")
    ap.add_argument("--events", type=int, help="events in the inbox (default 1,000,000)")
    args = ap.parse_args(argv)
    import report as section

    size = QUICK if args.quick else FULL
    customers = args.customers or size["customers"]
    events = args.events or size["events"]
    # A run at another size than the full one is a check: never the recorded figures.
    quick = args.quick or (customers, events) != (FULL["customers"], FULL["events"])
    out = md.target(args.quick if args.render else quick, args.out)
    if args.render:
        b = load_results()
    else:
        # The copies (GBs at full size) live in this directory, removed even on failure.
        with tempfile.TemporaryDirectory(prefix="archer-bench-loader-") as tmp:
            b = run(customers, events, Path(tmp), log=log)
        results.save("loader", asdict(b), quick=quick)
    md.publish(out, "loader", section.text(b), section.markdown(b))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        name, ndjson, db = sys.argv[2:5]
        {"duckdb": child_duckdb}[name](Path(ndjson), Path(db))
    else:
        main()
