"""The profile page's timeline query on the events table: as stored, sorted by customer, indexed.

Reads the 1M shop's warehouse read-only and measures ``events where customer_id = ? order by
occurred_at desc limit 100`` (what ``customers_data.timeline`` runs) warm, median over 12
customers, on the table as built and on copies in a scratch file (removed afterwards): as is,
sorted by ``(customer_id, occurred_at)`` (zone maps then skip all but a row group or two),
and with an ART index on ``customer_id``. Needs ~1.5 GB free in the temp directory.

    .venv/bin/python bench/pages/events_layout.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common import shop as build_shop

Q = (
    "select type, occurred_at, product_id, category, query, source from {t} "
    "where customer_id = ? order by occurred_at desc limit 100"
)


def timed(con, sql: str, ids: list[str]) -> float:
    xs = []
    for i in ids:
        con.execute(sql, [i]).fetchall()
        t0 = time.perf_counter()
        con.execute(sql, [i]).fetchall()
        xs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(xs)


def main() -> None:
    src = build_shop.home(build_shop.FULL_CUSTOMERS) / "warehouse.duckdb"
    c = duckdb.connect(str(src), read_only=True)
    c.execute("set enable_progress_bar = false")
    sample = "select customer_id from customer_profile using sample 12 rows"
    ids = [r[0] for r in c.sql(sample).fetchall()]
    print(f"events as built: {timed(c, Q.format(t='events'), ids):.0f} ms")
    c.close()
    with tempfile.TemporaryDirectory(prefix="pages-events-") as d:
        dst = duckdb.connect(str(Path(d) / "copy.duckdb"))
        dst.execute("set enable_progress_bar = false")
        dst.execute(f"attach '{src}' as w (read_only)")
        dst.execute("create table ev as select * from w.events")
        print(f"copy as is: {timed(dst, Q.format(t='ev'), ids):.0f} ms")
        dst.execute("create table evs as select * from w.events order by customer_id, occurred_at")
        print(f"sorted by customer_id: {timed(dst, Q.format(t='evs'), ids):.0f} ms")
        dst.execute("create index ev_customer on ev(customer_id)")
        print(f"ART index on customer_id: {timed(dst, Q.format(t='ev'), ids):.0f} ms")
        dst.close()


if __name__ == "__main__":
    main()
