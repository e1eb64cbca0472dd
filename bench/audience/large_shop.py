"""A copy of the benchmark shop with about 100 million events, for the audience count.

The generator makes about 26 events per customer, so the 1,000,000-customer shop has 26
million; the issue asks for a count over 100 million. This copies the imported workspace
(``bench/common/shop.py``) with its built profile to ``bench/out/audience-shop-<events>M/`` and
appends ``COPIES - 1`` replicas of every event with a new ``event_id`` (``<id>~r<k>``): the same
members, devices (anonymous ids), products and times, so every customer's behaviour is
``COPIES`` times as dense and the anonymous-id map is as large as before. The profile is not
rebuilt: the audience's profile fields keep the 26M-event values, its behaviour predicates
read the replicated events. Made once and kept (``shop.json``), like the shop it copies.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common import shop as build_shop
from common.harness import OUT

COPIES = 4
HOW = (
    f"every event of the shop replicated {COPIES}× with new event ids: the same members, "
    f"devices, products and times, so each customer's behaviour is {COPIES}× as dense; the "
    "profile is the original's"
)


def prepare(shop: dict, *, log: Callable[[str], None] = lambda m: None) -> str:
    """The copy's workspace home (made now if missing)."""
    events = shop["rows"]["events"] * COPIES
    root = OUT / f"audience-shop-{round(events / 1e6)}M"
    home = root / "shop"
    marker = root / "shop.json"
    if marker.exists():
        log(f"reusing the {events:,}-event copy in {root}")
        return str(home)
    import duckdb

    shutil.rmtree(root, ignore_errors=True)
    log(f"copying {shop['home']} to {home}")
    t0 = time.perf_counter()
    shutil.copytree(shop["home"], home, ignore=shutil.ignore_patterns("tmp", "quarantine"))
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        con.execute("set enable_progress_bar = false")
        cols = [r[0] for r in con.sql("describe events").fetchall()]
        for k in range(1, COPIES):
            log(f"  replica {k} of the events")
            picked = ", ".join(
                f"event_id || '~r{k}'" if c == "event_id" else f'"{c}"' for c in cols
            )
            con.execute(f"insert into events select {picked} from events where event_id "
                        "not like '%~r%'")  # fmt: skip
        con.execute("checkpoint")
        n = con.sql("select count(*) from events").fetchone()[0]
    finally:
        con.close()
    info = {
        "home": str(home),
        "events": n,
        "copies": COPIES,
        "seconds": round(time.perf_counter() - t0, 1),
        "from": shop["home"],
    }
    marker.write_text(json.dumps(info, indent=2))
    log(f"  {n:,} events in {info['seconds']} s")
    return str(home)


if __name__ == "__main__":
    from common.harness import log

    info = build_shop.prepare(build_shop.FULL_CUSTOMERS)
    print(prepare(info, log=log))
    print(OUT.resolve())
