"""Where the build's queries spend their time: each part of the profile, run alone under
DuckDB's profiler, with its hottest operators.

``.venv/bin/python bench/build/explain.py HOME [AS_OF]`` opens the workspace's warehouse read
only, builds the same Ibis expressions as ``archer build`` for the parts that depend on the
canonical tables alone, compiles each with ``ibis.to_sql`` and runs it with DuckDB's JSON
profiling on; it prints, per part, the seconds and the operators that took the most time.
A diagnostic for bench/build/bench.py's findings, not part of the report.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common import shop as build_shop


def parts(s, rules) -> dict:
    from archer_calls import lifecycle as lc
    from archer_calls import preferences as pref

    f = s.paid_orders()
    days = f.select("customer_id", day=f.pay_day).distinct()
    return {
        "order facts (all orders)": s.order_facts(),
        "order summary": lc.order_summary(s),
        "behaviour summary (events)": lc.behaviour_summary(s),
        "refund summary": lc.refund_summary(s),
        "category scores": pref.category_scores(s, rules),
        "purchase gaps": lc.purchase_gaps(s),
        "price bands": pref.price_bands(s),
        "festival: purchase days per buyer": days.group_by("customer_id").aggregate(n=days.count()),
        "habits": pref.habits(s),
    }


def operators(node: dict, out: list) -> None:
    name = node.get("operator_name") or node.get("operator_type") or node.get("name", "?")
    t = node.get("operator_timing", node.get("timing", 0.0)) or 0.0
    rows = node.get("operator_cardinality", node.get("cardinality", 0))
    extra = node.get("extra_info", {})
    what = ""
    if isinstance(extra, dict):
        what = " ".join(
            str(v) for k, v in extra.items() if k in ("Aggregates", "Groups", "Join Type")
        )
    out.append((float(t), name, rows, what[:90]))
    for c in node.get("children", []):
        operators(c, out)


def main(home: Path, as_of: date) -> None:
    import ibis
    from archer_calls import Snapshot, Warehouse

    settings = build_shop.settings_for({"home": str(home)})
    con = ibis.duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    wh = Warehouse(con, settings.warehouse_url, "duckdb")
    s = Snapshot.at(wh, as_of, settings.tz, today=as_of)
    raw = con.con
    with tempfile.TemporaryDirectory() as d:
        prof = Path(d) / "profile.json"
        for label, expr in parts(s, settings.profile).items():
            sql = ibis.to_sql(expr, dialect="duckdb")
            raw.execute("SET enable_profiling='json'")
            raw.execute(f"SET profiling_output='{prof}'")
            t0 = time.perf_counter()
            n = raw.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
            sec = time.perf_counter() - t0
            raw.execute("SET enable_profiling='no_output'")
            doc = json.loads(prof.read_text())
            ops: list = []
            operators(doc, ops)
            ops.sort(reverse=True)
            peak = doc.get("system_peak_buffer_memory", 0) / 2**20
            print(f"\n{label}: {sec:.2f} s, {n:,} rows, peak buffer memory {peak:,.0f} MB")
            for t, name, rows, what in ops[:5]:
                print(f"    {t:6.2f} s  {name:<22} {rows:>12,}  {what}")
    con.disconnect()


if __name__ == "__main__":
    home = Path(sys.argv[1]) if len(sys.argv) > 1 else build_shop.home(build_shop.FULL_CUSTOMERS)
    main(home, date.fromisoformat(sys.argv[2]) if len(sys.argv) > 2 else build_shop.AS_OF)
