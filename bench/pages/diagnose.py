"""Where a page's time goes: the diagnostics behind the findings of ``pages/bench.py``.

In-process, on the same workspace (the 1M shop), nothing changed in it:

1. the cost of opening the warehouse (``Warehouse.connect`` + close), which every data
   function of the pages does on its own, several times per request;
2. the profile page's parts for 10 customers (warm: each part run twice, the second timed):
   ``load_profile``, ``contact``, ``timeline`` and its three queries, ``audiences_of``;
3. the same with one connection to the warehouse held open for the whole run: DuckDB's
   Python module then hands every ``connect`` the same database instance, so its catalog
   and buffer pool survive between requests (what a per-process shared connection would do);
4. cProfile of a few warm requests through ``TestClient`` (signed in as the benchmark's
   operator): a profile page and the five-clause live count, the top functions.

    .venv/bin/python bench/pages/diagnose.py [--customers 1000000] [--top 25]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from bench import PASSWORD, USER, ensure_operator, pick_customers

from common import shop as build_shop

FIVE_CLAUSES = build_shop.AUDIENCE


def ms(f, *a, **kw) -> float:
    t0 = time.perf_counter()
    f(*a, **kw)
    return (time.perf_counter() - t0) * 1000


def parts(settings, ids: list[str]) -> dict[str, float]:
    """Median warm ms of each part of the customer page over ``ids``."""
    import ibis
    from archer_calls import Warehouse, browse, describe
    from archer_calls import customers_data as data

    def newest(table: str, at: str):
        """The timeline's query on one table: the customer's newest 100 rows."""

        def query(cid):
            with Warehouse.connect(settings.warehouse_url) as wh:
                t = wh.table(table)
                t.filter(t.customer_id == ibis.literal(cid, "string")).order_by(
                    ibis.desc(t[at])
                ).limit(100).to_pyarrow()

        return query

    def open_close(_cid):
        Warehouse.connect(settings.warehouse_url).close()

    funcs = {
        "open + close the warehouse": open_close,
        "load_profile": lambda c: describe.load_profile(settings, c),
        "contact": lambda c: data.contact(settings, c),
        "timeline (3 queries)": lambda c: data.timeline(settings, c),
        "  timeline: orders query": newest("orders", "created_at"),
        "  timeline: events query": newest("events", "occurred_at"),
        "audiences_of": lambda c: browse.audiences_of(settings, c),
    }
    out = {}
    for name, f in funcs.items():
        times = []
        for cid in ids:
            f(cid)
            times.append(ms(f, cid))
        out[name] = statistics.median(times)
    return out


def client(settings):
    from archer_calls import create_app
    from fastapi.testclient import TestClient

    c = TestClient(create_app(settings, sync_every=None), headers={"Accept": "text/html"})
    c.__enter__()
    page = c.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post(
        "/login",
        data={"username": USER, "password": PASSWORD, "csrf": csrf, "next": "/"},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    token = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/audiences").text).group(1)
    return c, token


def profiled(label: str, f, top: int) -> str:
    f()  # warm
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    for _ in range(3):
        f()
    pr.disable()
    wall = (time.perf_counter() - t0) * 1000 / 3
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s).strip_dirs().sort_stats("cumulative")
    st.print_stats(top)
    return f"### {label}: {wall:.0f} ms per request under cProfile\n{s.getvalue()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=build_shop.FULL_CUSTOMERS)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    home = build_shop.home(args.customers)
    ensure_operator(home, print)
    from archer_calls import Warehouse, load_settings

    settings = load_settings(home)
    picked = pick_customers(home, 10, seed=7)
    ids = [c["id"] for c in picked]

    print("## parts of the customer page, median warm ms over 10 customers")
    each = parts(settings, ids)
    with Warehouse.connect(settings.warehouse_url):  # held open: the instance is shared
        held = parts(settings, ids)
    print(f"{'part':32} {'own connect':>12} {'one held open':>14}")
    for k in each:
        print(f"{k:32} {each[k]:12.1f} {held[k]:14.1f}")

    from archer_calls import audience_service as svc
    from archer_calls import browse, count, describe, overview
    from archer_calls import customers_data as data

    def customer_page(cid=ids[0]):
        describe.load_profile(settings, cid)
        data.contact(settings, cid)
        data.timeline(settings, cid)
        browse.audiences_of(settings, cid)

    def five():
        count(settings, FIVE_CLAUSES, resolve=svc.resolver(settings))

    c, token = client(settings)
    with contextlib.ExitStack() as stack:
        stack.callback(c.__exit__, None, None, None)
        hdr = {"X-CSRF-Token": token, "Origin": "http://testserver"}
        walls = {
            f"GET /customers/{ids[0]}": lambda: c.get(f"/customers/{ids[0]}"),
            "POST /ui/audiences/count (five clauses)": lambda: c.post(
                "/ui/audiences/count", json={"query": FIVE_CLAUSES}, headers=hdr
            ),
            "GET / (overview)": lambda: c.get("/"),
        }
        print("## whole requests through TestClient, warm, median of 5 (ms)")
        for k, f in walls.items():
            f()
            print(f"{k:45} {statistics.median(ms(f) for _ in range(5)):8.0f}")
    # The routes run in a worker thread, out of cProfile's sight: their work, called here.
    print(profiled("the customer page's data (4 functions)", customer_page, args.top))
    print(profiled("count() of the five clauses", five, args.top))
    print(profiled("overview()", lambda: overview(settings), args.top))


if __name__ == "__main__":
    main()
