"""Where the audience count spends its time, and what changes would save (diagnostics).

Run as ``audience/explain.py [HOME]`` (default: a copy of the 1M shop's workspace under
``bench/out/audience-work/``, made once, because one variant adds a table). It prints, and
writes to ``bench/out/audience-explain.json``:

* the phases of one count: opening the warehouse, the compiler's look-ups (as-of day), the
  compile (which checks the query's values against the data: distinct provinces, categories),
  and the one query for the audience and each clause;
* DuckDB's profile (``EXPLAIN ANALYZE`` as JSON) of that query, as ``ibis.to_sql`` gives it:
  the operators that take the most time;
* the count with patched variants, none of them in ``src/``: the anonymous-id map read from a
  table (``customer_identities``, as the build could keep it), the base without the join to
  ``customers`` when no contact field is used, each behaviour predicate's members computed
  once into a temporary table (the clause counts reuse them), and all of them together.

Every variant must give the same counts as ``count()``; each is timed as the median of
``REPEATS`` runs after one warm-up, in this process.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common import harness
from common import shop as build_shop

QUERY = build_shop.AUDIENCE
REPEATS = 3
WORK = harness.OUT / "audience-work"
OUT = harness.OUT / "audience-explain.json"
IDENTITIES = "customer_identities"


def work_copy() -> Path:
    """A writable copy of the 1M shop's workspace (made once)."""
    home = WORK / "shop"
    if not (home / "warehouse.duckdb").exists():
        src = Path(build_shop.prepare(build_shop.FULL_CUSTOMERS)["home"])
        shutil.rmtree(WORK, ignore_errors=True)
        shutil.copytree(src, home, ignore=shutil.ignore_patterns("tmp", "quarantine"))
    return home


def variant_count(settings, *, identities=False, profile_only=False, once=False) -> tuple:
    """``count()``'s steps with the chosen patches: ``(count, clause counts, phases)``."""
    import ibis
    from archer_calls import PROFILE, Compiler, Snapshot, Warehouse, compile_behaviour, parse
    from archer_calls import catalog as cat
    from archer_calls import evaluate as ev
    from archer_calls import tree as t

    class Once(Compiler):
        """Each behaviour predicate's members computed once, into a temporary table."""

        def compile_call(self, n):
            if n.name == cat.REFERENCE or not once:
                return super().compile_call(n)
            sets = self.__dict__.setdefault("_sets", {})
            if n.pos not in sets:
                b = compile_behaviour(self, cat.PREDICATES[n.name], n)
                keep = ~b.condition.fill_null(False) if b.zero_passes else b.condition
                sets[n.pos] = (b, b.measures.filter(keep.fill_null(False)).select("customer_id"))
                sets[n.pos] = (b, sets[n.pos][1].cache())
            b, ids = sets[n.pos]
            inside = self.base.customer_id.isin(ids.customer_id)
            return ~inside if b.zero_passes else inside

    clock = time.perf_counter
    t0 = clock()
    with Warehouse.connect(settings.warehouse_url) as wh:
        t1 = clock()
        snap = Snapshot.at(wh, ev.profile_as_of(wh), settings.tz, today=ev.profile_as_of(wh))
        if identities:
            snap.identity_map = wh.table(IDENTITIES)
        base = wh.table(PROFILE) if profile_only else ev.base_table(wh)
        c = Once(snap, base)
        t2 = clock()
        node = parse(QUERY)
        parts = t.clauses(node)
        conds = [c.compile(node), *(c.compile(p) for p in parts)]
        t3 = clock()
        sums = {f"c{i}": cond.cast("int64").sum() for i, cond in enumerate(conds)}
        agg = c.base.aggregate(n=c.base.count(), **sums)
        row = agg.execute().iloc[0]
        t4 = clock()
        sql = ibis.to_sql(agg, dialect="duckdb")
        for _, ids in c.__dict__.get("_sets", {}).values():
            ids.release()  # the temporary tables, while the connection is open
    phases = {
        "open": t1 - t0,
        "as-of look-up": t2 - t1,
        "compile (value look-ups, temp tables)": t3 - t2,
        "query": t4 - t3,
    }
    return int(row.c0), [int(row[f"c{i + 1}"]) for i in range(len(parts))], phases, str(sql)


def explain(home: Path, sql: str) -> list[dict]:
    """DuckDB's profile of ``sql``: operators by time (top 12)."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    prof = home.parent / "profile.json"
    try:
        con.execute("set enable_progress_bar = false")
        con.sql(sql).fetchall()  # warm
        con.execute("pragma enable_profiling = 'json'")
        con.execute(f"pragma profiling_output = '{prof}'")
        con.sql(sql).fetchall()
    finally:
        con.close()
    doc = json.loads(prof.read_text())
    ops: list[dict] = []

    def walk(n: dict) -> None:
        info = n.get("extra_info", {})
        what = {k: v for k, v in info.items() if k in ("Table", "Conditions", "Groups", "Filters")}
        ops.append(
            {
                "operator": n.get("operator_name", n.get("operator_type", "")).strip(),
                "seconds": round(n.get("operator_timing", 0.0), 3),
                "rows": n.get("operator_cardinality", 0),
                "detail": json.dumps(what, ensure_ascii=False)[:160],
            }
        )
        for ch in n.get("children", []):
            walk(ch)

    for ch in doc.get("children", []):
        walk(ch)
    ops.sort(key=lambda o: -o["seconds"])
    return [{"latency": round(doc.get("latency", 0.0), 3)}, *ops[:12]]


VARIANTS = {
    "count() as it is": {},
    "anonymous-id map from a table": {"identities": True},
    "no join to customers": {"profile_only": True},
    "each predicate's members once": {"once": True},
    "all three": {"identities": True, "profile_only": True, "once": True},
}


def main(home: Path) -> dict:
    import duckdb
    from archer_calls import count

    settings = build_shop.settings_for({"home": str(home)})
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        con.execute("set enable_progress_bar = false")
        con.execute(
            f"create table if not exists {IDENTITIES} as select anonymous_id, "
            "min(customer_id) as person from events where occurred_at < timestamp "
            "'2026-10-31 16:00:00' and anonymous_id is not null and customer_id is not null "
            "group by 1"
        )
        events = con.sql("select count(*) from events").fetchone()[0]
    finally:
        con.close()
    ref = count(settings, QUERY)
    want = (ref["count"], [c["count"] for c in ref["clauses"]])
    out: dict = {"home": str(home), "events": events, "count": want, "variants": {}}
    sql = ""
    for name, kw in VARIANTS.items():
        variant_count(settings, **kw)  # warm-up
        runs = [variant_count(settings, **kw) for _ in range(REPEATS)]
        for n, clauses, _, _ in runs:
            assert (n, clauses) == want, (name, n, clauses, want)
        phases = {k: statistics.median(r[2][k] for r in runs) for k in runs[0][2]}
        total = statistics.median(sum(r[2].values()) for r in runs)
        out["variants"][name] = {"seconds": round(total, 3)} | {
            k: round(v, 3) for k, v in phases.items()
        }
        print(f"{name}: {total:.2f} s  " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
        if not kw:
            sql = runs[0][3]
    out["explain"] = explain(home, sql)
    for o in out["explain"]:
        print(o)
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    return out


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else work_copy())
