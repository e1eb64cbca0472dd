"""Page render times of the web app on the 1,000,000-customer shop (issue 6: p95 < 500 ms warm).

Uses the build benchmark's shop (``bench/common/shop.py``, with its built profile and shop
tables; built first when missing). An operator ``bench-pages`` is made there when missing
(``archer user create``); nothing else in the workspace is changed by the benchmark itself
(signing in stores a session, as it does for anyone). For each page a fresh ``archer serve``
(loader off: ``--sync-every 0``) is started on a free loopback port, httpx signs in as a
browser does, and requests go one at a time over one keep-alive connection; the time is the
client's, from sending the request to the last byte of the answer.

* overview: ``GET /`` — the first request after start (*cold*), then ``--repeats`` more (warm);
* a profile: ``GET /customers/<id>`` for 50 customers (25 buyers, 25 who never ordered),
  each once (its first view; the very first is *cold*), then each twice more (warm);
* an audience count: ``POST /ui/audiences/count`` (the editor's live count) for 20 queries,
  the audience benchmark's five-clause one and simpler ones, each once then twice more;
* a search: ``GET /customers?q=…`` (count + the first page of members) for 5 queries.

*Cold* here means a fresh server process (nothing in DuckDB's buffers, no imports done yet);
the operating system's file cache may hold the warehouse. ``bench/pages/diagnose.py`` holds
the diagnostics (cProfile in-process with TestClient) behind the findings.

    .venv/bin/python bench/run.py --only pages [--quick]
    .venv/bin/python bench/pages/bench.py [--repeats 20] [--no-write] [--quick]

Results go to the "Pages" section of docs/benchmarks.md (between ``pages`` markers), followed by
``findings.md`` (written by hand); ``--quick`` (the 20,000-customer shop, 10 customers, 5
overview repeats) writes to bench/out/benchmarks-quick.md.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common import archer_calls as archer_cli
from common import markdown as md
from common import results
from common import shop as build_shop
from common.harness import BENCH_DIR, log
from common.server import Serve

FIVE_CLAUSES = build_shop.AUDIENCE
ROOT = BENCH_DIR.parent
FINDINGS = Path(__file__).with_name("findings.md")
USER, PASSWORD = "bench-pages", "bench-pages-password-1"
AIM_MS = 500.0
CUSTOMERS = 50
# The quick check: the small shop, 10 profiles, 5 overview repeats, the first 8 counts and the
# first 3 searches.
QUICK = {"customers": build_shop.QUICK_CUSTOMERS, "profiles": 10, "repeats": 5, "queries": (8, 3)}
WARM_EACH = 2  # warm repeats of each customer / query after its first request

# 20 live counts: the audience benchmark's five clauses, the editor's examples, simpler ones.
COUNT_QUERIES = [
    FIVE_CLAUSES,
    'lifecycle in ("lapsing", "lost") and net_spent >= 300',
    'stage = "loyal" and email_reachable',
    'bought(category = "tea", within = 90d) and not bought(within = 14d)',
    "has_open_cart and not has_unpaid_order",
    "total_spent >= 200",
    'province = "Guangdong"',
    'lifecycle = "repeat_buyer"',
    'rfm_segment = "Champions" and sms_reachable',
    'value_tier in ("high", "top") and churn_risk = "high"',
    'top_category = "skincare" and net_spent >= 500',
    "days_since_last_purchase >= 60 and days_since_last_purchase <= 180",
    'acquisition_channel = "live_stream" and n_orders >= 2',
    "birthday_soon and email_reachable",
    'viewed(category = "skincare", within = 30d, count >= 2)',
    'bought(category = "snacks", within = 30d)',
    "viewed(within = 7d) and not bought(within = 90d)",
    'province in ("Jiangsu", "Zhejiang", "Shanghai") and stage = "target"',
    "has_favorites and not has_open_cart and total_spent >= 100",
    'bought(category = "baby", within = 180d, count >= 2) and email_reachable',
]
SEARCH_QUERIES = [
    "",
    'lifecycle = "lapsing"',
    'stage = "loyal" and email_reachable',
    'bought(category = "tea", within = 90d)',
    FIVE_CLAUSES,
]


def pct(xs: list[float], q: float) -> float:
    """The nearest-rank percentile (p95 of 20 samples: the 19th)."""
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, -(-int(q * 1000) * len(xs) // 1000) - 1))]


def archer(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = archer_cli.cli(*args, "--home", str(home))
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)


def ensure_operator(home: Path, log) -> bool:
    """Make the benchmark's operator when missing; True when it was made now."""
    listed = archer(home, "user", "list", "--json")
    if listed.returncode == 0 and USER in listed.stdout:
        return False
    made = archer(home, "user", "create", USER, "--password-stdin", stdin=PASSWORD + "\n")
    if made.returncode != 0:
        raise SystemExit(f"could not create the operator {USER}: {made.stdout}{made.stderr}")
    log(f"operator {USER} created in {home}")
    return True


def pick_customers(home: Path, n: int = CUSTOMERS, seed: int = 6) -> list[dict]:
    """Half buyers, half people who never ordered, spread over the shop (read before serving)."""
    with build_shop.warehouse(home) as con:
        rows = con.sql(
            "select customer_id, n_orders from customer_profile using sample 2000 rows"
        ).fetchall()
    rng = random.Random(seed)
    rng.shuffle(rows)
    buyers = [r for r in rows if (r[1] or 0) > 0][: n // 2]
    others = [r for r in rows if not (r[1] or 0)][: n - len(buyers)]
    mixed = [x for pair in zip(buyers, others, strict=False) for x in pair]
    return [{"id": cid, "orders": int(k or 0)} for cid, k in mixed]


class Server:
    """``archer serve`` on a free loopback port, and an httpx client signed in to it."""

    def __init__(self, home: Path):
        self.serve = Serve(home)
        self.base = self.serve.base
        self.client = httpx.Client(base_url=self.base, timeout=120, headers={"Accept": "text/html"})
        login = self.client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        r = self.client.post(
            "/login",
            data={"username": USER, "password": PASSWORD, "csrf": csrf, "next": "/"},
            headers={"Origin": self.base},
        )
        if r.status_code != 303:
            raise RuntimeError(f"sign-in failed: {r.status_code} {r.text[:300]}")

    def timed(self, method: str, path: str, **kw) -> tuple[float, httpx.Response]:
        t0 = time.perf_counter()
        r = self.client.request(method, path, **kw)
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return ms, r

    def count(self, query: str) -> tuple[float, httpx.Response]:
        headers = {"X-CSRF-Token": self.token(), "Origin": self.base, "Accept": "application/json"}
        return self.timed("POST", "/ui/audiences/count", json={"query": query}, headers=headers)

    def token(self) -> str:
        """The CSRF token the pages carry (what the editor's script sends)."""
        if not hasattr(self, "_token"):
            page = self.client.get("/audiences").text
            m = re.search(r'name="csrf-token" content="([^"]+)"', page) or re.search(
                r'name="csrf" value="([^"]+)"', page
            )
            self._token = m.group(1)
        return self._token

    def close(self) -> None:
        self.client.close()
        self.serve.stop()


def _summary(cold: float, first: list[float], warm: list[float], **extra) -> dict:
    return {
        "cold_ms": cold,
        "first_p50_ms": pct(first, 0.5),
        "first_max_ms": max(first),
        "first_n": len(first),
        "warm_p50_ms": pct(warm, 0.5),
        "warm_p95_ms": pct(warm, 0.95),
        "warm_max_ms": max(warm),
        "warm_n": len(warm),
        "met": pct(warm, 0.95) < AIM_MS,
        **extra,
    }


def bench_overview(home: Path, repeats: int, log) -> dict:
    srv = Server(home)
    try:
        cold, r = srv.timed("GET", "/")
        kb = len(r.content) / 1024
        warm = [srv.timed("GET", "/")[0] for _ in range(repeats)]
    finally:
        srv.close()
    log(f"overview: cold {cold:.0f} ms, warm p95 {pct(warm, 0.95):.0f} ms")
    return _summary(cold, [cold], warm, kb=kb)


def bench_customers(home: Path, customers: list[dict], log) -> dict:
    srv = Server(home)
    first: list[float] = []
    warm: list[float] = []
    by_kind: dict[str, list[float]] = {"buyers": [], "non-buyers": []}
    try:
        for c in customers:
            ms, r = srv.timed("GET", f"/customers/{c['id']}")
            first.append(ms)
        for _ in range(WARM_EACH):
            for c in customers:
                ms = srv.timed("GET", f"/customers/{c['id']}")[0]
                warm.append(ms)
                by_kind["buyers" if c["orders"] else "non-buyers"].append(ms)
    finally:
        srv.close()
    log(f"profile: cold {first[0]:.0f} ms, warm p95 {pct(warm, 0.95):.0f} ms")
    kinds = {k: {"p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95)} for k, v in by_kind.items()}
    return _summary(first[0], first[1:], warm, by_kind=kinds)


def bench_queries(home: Path, what: str, queries: list[str], log, count: bool) -> dict:
    """Each query once (its first request), then ``WARM_EACH`` more rounds (warm): the live
    count (``count``) or the search page."""
    srv = Server(home)

    def ask(q: str) -> tuple[float, httpx.Response]:
        if count:
            return srv.count(q)
        return srv.timed("GET", "/customers", params={"q": q})

    first: list[float] = []
    warm: list[float] = []
    per_query = []
    try:
        if count:
            srv.token()
        for q in queries:
            ms, r = ask(q)
            first.append(ms)
            per_query.append(
                {"query": q, "count": r.json()["count"], "first_ms": ms}
                if count
                else {"query": q, "first_ms": ms}
            )
        for _ in range(WARM_EACH):
            for i, q in enumerate(queries):
                ms = ask(q)[0]
                warm.append(ms)
                per_query[i].setdefault("warm_ms", []).append(ms)
    finally:
        srv.close()
    log(f"{what}: cold {first[0]:.0f} ms, warm p95 {pct(warm, 0.95):.0f} ms")
    return _summary(first[0], first[1:], warm, queries=per_query)


def run(
    customers: int = build_shop.FULL_CUSTOMERS,
    repeats: int = 20,
    search: bool = True,
    profiles: int = CUSTOMERS,
    queries: tuple[int, int] = (len(COUNT_QUERIES), len(SEARCH_QUERIES)),
    log=log,
) -> dict:
    shop = build_shop.prepare(customers, log=log)  # made (and built) now when missing
    build_shop.ensure_profile(shop, log)
    home = Path(shop["home"])
    started = md.started()
    made = ensure_operator(home, log)
    picked = pick_customers(home, profiles)
    res = {
        "customers": customers,
        "home": str(home.relative_to(ROOT)) if home.is_relative_to(ROOT) else str(home),
        "started": started,
        "load": os.getloadavg()[0],
        "operator_made": made,
        "picked": picked,
        "pages": {},
    }
    res["pages"]["overview"] = bench_overview(home, repeats, log)
    res["pages"]["profile"] = bench_customers(home, picked, log)
    counts, searches = COUNT_QUERIES[: queries[0]], SEARCH_QUERIES[: queries[1]]
    res["pages"]["count"] = bench_queries(home, "audience count", counts, log, True)
    if search:
        res["pages"]["search"] = bench_queries(home, "search", searches, log, False)
    res["load_end"] = os.getloadavg()[0]
    res["commit"] = md.commit()
    return res


LABELS = {
    "overview": "overview `GET /`",
    "profile": "a profile `GET /customers/<id>`",
    "count": "audience live count `POST /ui/audiences/count`",
    "search": "search `GET /customers?q=…`",
}


def table(res: dict) -> str:
    head = (
        "| page | cold (1st after start) | other first requests p50 / max "
        "| warm p50 | warm p95 | warm max | warm samples | p95 < 500 ms |\n"
        "|---|---:|---:|---:|---:|---:|---:|---|\n"
    )
    rows = []
    for k, p in res["pages"].items():
        firsts = (
            f"{p['first_p50_ms']:.0f} / {p['first_max_ms']:.0f} ms ({p['first_n']})"
            if p["first_n"] > 1 or k != "overview"
            else "—"
        )
        rows.append(
            f"| {LABELS[k]} | {p['cold_ms']:,.0f} ms | {firsts} | {p['warm_p50_ms']:,.0f} ms "
            f"| {p['warm_p95_ms']:,.0f} ms | {p['warm_max_ms']:,.0f} ms | {p['warm_n']} "
            f"| {'met' if p['met'] else '**not met**'} |"
        )
    return head + "\n".join(rows)


def section(res: dict, findings: str = "") -> str:
    text = f"## Pages: render times on the {res['customers']:,}-customer shop\n\n"
    return (
        text + table(res) + "\n\n" + _prose(res) + (f"\n\n{findings.strip()}" if findings else "")
    )


def _prose(res: dict) -> str:
    pages = res["pages"]
    missed = [LABELS[k] for k, p in pages.items() if p["met"] is False and k != "search"]
    aim = (
        "met for all three pages the issue names"
        if not missed
        else "**not met** for " + ", ".join(missed)
    )
    prof = pages["profile"]["by_kind"]
    n_buyers = sum(1 for c in res["picked"] if c["orders"])
    n_counts = len(pages["count"]["queries"])
    n_searches = len(pages["search"]["queries"]) if "search" in pages else 0
    return (
        f"Run {res['started']} (commit {res['commit']}) with "
        f"`{md.command('pages')}` on the build benchmark's shop "
        f"(`{res['home']}`, 1-minute load {res['load']:.1f} at the start, "
        f"{res['load_end']:.1f} at the end). Each page had its own fresh `archer serve` "
        f"(one uvicorn process, loader off) signed in with httpx as a browser; requests one at a "
        f"time, timed by the client to the last byte. *Cold* is the first request after the "
        f"server started (imports, first warehouse connection, empty DuckDB buffers; the OS file "
        f"cache was warm). Overview: {pages['overview']['warm_n']} warm repeats. Profile: "
        f"{len(res['picked'])} customers ({n_buyers} buyers, {len(res['picked']) - n_buyers} "
        f"who never ordered), each viewed once then {WARM_EACH} times "
        f"more (warm p50 / p95: buyers {prof['buyers']['p50_ms']:.0f} / "
        f"{prof['buyers']['p95_ms']:.0f} ms, non-buyers {prof['non-buyers']['p50_ms']:.0f} / "
        f"{prof['non-buyers']['p95_ms']:.0f} ms). Audience count: {n_counts} queries (the "
        f"audience benchmark's five clauses, the editor's examples, single fields, behaviour "
        f"predicates), each once then {WARM_EACH} more times. Search: {n_searches} queries "
        f"(everyone, simple, behaviour, five clauses), the same way. The issue's aim, "
        f"p95 < 500 ms warm, is {aim}."
    )


def main(argv: list[str] | None = None) -> None:
    ap = md.parser(__doc__, "the 20,000-customer shop, fewer requests")
    ap.add_argument("--customers", type=int, help="which shop (built when missing)")
    ap.add_argument("--repeats", type=int, help="warm requests of the overview (default 20)")
    ap.add_argument("--no-search", action="store_true", help="skip the search page")
    ap.add_argument("--no-write", action="store_true", help="print only, leave the report alone")
    ap.add_argument("--findings", type=Path, help=f"markdown appended (default {FINDINGS.name})")
    args = ap.parse_args(argv)
    out = md.target(args.quick, args.out)
    if args.render:
        res = results.load("pages")
    else:
        res = run(
            args.customers or (QUICK["customers"] if args.quick else build_shop.FULL_CUSTOMERS),
            args.repeats or (QUICK["repeats"] if args.quick else 20),
            not args.no_search,
            QUICK["profiles"] if args.quick else CUSTOMERS,
            QUICK["queries"] if args.quick else (len(COUNT_QUERIES), len(SEARCH_QUERIES)),
        )
        results.save("pages", res, quick=args.quick)
    if args.no_write:
        print(table(res))
    else:
        findings = (args.findings or FINDINGS).read_text(encoding="utf-8")
        md.publish(out, "pages", table(res), section(res, findings))


if __name__ == "__main__":
    main()
