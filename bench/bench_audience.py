"""Benchmark: counting an audience (issue 5) on the 1,000,000-customer synthetic shop.

* Archer: ``archer.audiences.count()`` of a five-clause audience with two behaviour predicates
  (``QUERY``) on DuckDB, in a fresh process: the first count is *cold* (nothing of the
  warehouse in DuckDB's buffers; the operating system's file cache may hold the file), then
  ``--repeats`` more in the same process, whose median is *warm*. Each count opens the
  warehouse, compiles the query (with the small look-ups that check its values) and runs one
  query for the audience and each top-level clause, as ``archer audience count`` does.
* pandas: the same selection written by hand (``bench/audience_pandas.py``) in its own process
  in the same run: read the columns with DuckDB ``.df()``, then filter, group and merge,
  including the anonymous-id linking. Both answers (the audience and each clause) must agree.

The shop is the build benchmark's (``bench/build_shop.py``), reused with its built profile;
``--large`` also measures Archer on a copy whose events are replicated to about 100 million
(``bench/audience_shop.py``). ``bench/audience_explain.py`` holds the diagnostics behind the
findings (DuckDB's profile of the compiled SQL, and patched variants on a copy).

``.venv/bin/python bench/bench_audience.py`` runs it and rewrites only the "Audience count"
section of docs/benchmarks.md (``--quick``: the 20,000-customer shop, nothing written);
``bench/run.py --only audience`` runs the same; ``--render`` rewrites the section from the
last run's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import build_shop
from harness import BENCH_DIR, Measured, python_child, report, run_child
from report import commit as report_commit

QUERY = (
    'total_spent >= 200 and province in ("Jiangsu", "Zhejiang", "Shanghai", "Guangdong") '
    'and email_reachable and viewed(category = "skincare", within = 30d, count >= 2) '
    'and not bought(category = "skincare", within = 90d)'
)
FULL = {"customers": 1_000_000}
QUICK = {"customers": 20_000}
REPEATS = 5
AIM_SECONDS = 2.0
DOCS = BENCH_DIR.parent / "docs" / "benchmarks.md"
RESULTS = build_shop.OUT / "audience-results.json"  # the last run's figures, for --render


@dataclass
class AudienceBench:
    customers: int
    shop: dict  # build_shop.prepare() of the shop
    events: int  # events in the warehouse counted
    profile_built: dict  # whether the profile had to be built first, and how long it took
    archer: Measured
    pandas: Measured | None
    large: dict = field(default_factory=dict)  # the ~100M-event copy: events, archer
    started: str = ""
    commit: str = ""

    @property
    def agree(self) -> bool | None:
        if self.pandas is None or not (self.archer.ok and self.pandas.ok):
            return None
        a, p = self.archer.detail, self.pandas.detail
        return self.archer.rows == self.pandas.rows and a.get("clauses") == p.get("clauses")

    @property
    def ratio_warm(self) -> float | None:
        """pandas' compute alone (frames in memory) ÷ Archer's warm count."""
        if self.pandas is None or not (self.archer.ok and self.pandas.ok):
            return None
        return self.pandas.detail["compute_seconds"] / self.archer.seconds

    @property
    def ratio_cold(self) -> float | None:
        """pandas from nothing (read + first compute) ÷ Archer's cold count."""
        if self.pandas is None or not (self.archer.ok and self.pandas.ok):
            return None
        return self.pandas.seconds / self.archer.detail["cold_seconds"]


def warehouse_counts(home: str) -> dict:
    """Events in the warehouse, and the profile's as-of day and size (None when not built)."""
    import duckdb

    con = duckdb.connect(str(Path(home) / "warehouse.duckdb"), read_only=True)
    con.execute("set enable_progress_bar = false")
    try:
        events = con.sql("select count(*) from events").fetchone()[0]
        tables = {r[0] for r in con.sql("select table_name from duckdb_tables()").fetchall()}
        prof = None
        if "customer_profile" in tables:
            as_of, n = con.sql("select max(as_of), count(*) from customer_profile").fetchone()
            prof = {"as_of": str(as_of), "customers": n}
        return {"events": events, "profile": prof}
    finally:
        con.close()


def ensure_profile(shop: dict, log) -> dict:
    """Build the profile first when the workspace has none: ``{"built": bool, "seconds": …}``."""
    if warehouse_counts(shop["home"])["profile"] is not None:
        return {"built": False}
    log("no customer_profile yet: archer build first")
    from archer.customers.profile import build

    t0 = time.perf_counter()
    build(build_shop.settings_for(shop), build_shop.AS_OF)
    return {"built": True, "seconds": round(time.perf_counter() - t0, 1)}


def run(
    customers: int, *, large: bool = False, pandas: bool = True, repeats: int = REPEATS, log=None
) -> AudienceBench:
    log = log or (lambda m: None)
    started = datetime.now(UTC).isoformat(timespec="minutes")
    code = report_commit()
    shop = build_shop.prepare(customers, log=log)
    built = ensure_profile(shop, log)
    counts = warehouse_counts(shop["home"])
    log(f"{counts['events']:,} events; profile as of {counts['profile']['as_of']}")
    log(f"archer count, cold then {repeats} warm")
    archer = _archer(shop["home"], repeats)
    log(_said(archer))
    p = None
    if pandas:
        log("pandas, by hand")
        p = run_child(
            "pandas",
            "pandas by hand (DuckDB .df() to read)",
            python_child("audience_pandas.py", shop["home"]),
            cwd=BENCH_DIR,
        )
        log(_said(p))
    big: dict = {}
    if large:
        import audience_shop

        home = audience_shop.prepare(shop, log=log)
        n = warehouse_counts(home)["events"]
        log(f"archer count on the copy with {n:,} events")
        m = _archer(home, repeats)
        log(_said(m))
        big = {"events": n, "archer": asdict(m), "how": audience_shop.HOW}
    b = AudienceBench(
        customers, shop, counts["events"], built, archer, p, big, started=started, commit=code
    )
    if b.agree is False:
        log(f"DISAGREE: archer {archer.rows} {archer.detail.get('clauses')}, "
            f"pandas {p.rows} {p.detail.get('clauses')}")  # fmt: skip
    return b


def _archer(home: str, repeats: int) -> Measured:
    argv = python_child("bench_audience.py", "child", home, str(repeats))
    return run_child("archer", "archer count (DuckDB)", argv, cwd=BENCH_DIR)


def _said(m: Measured) -> str:
    if not m.ok:
        return f"  failed: {m.error}"
    d = m.detail
    if "cold_seconds" in d:
        return f"  cold {d['cold_seconds']:.2f} s, warm {m.seconds:.2f} s, {m.rows:,} customers"
    return f"  {m.seconds:.1f} s (compute {d['compute_seconds']:.2f} s), {m.rows:,} customers"


def child(home: str, repeats: str) -> None:
    """Count ``QUERY`` once cold, then ``repeats`` times warm, in this fresh process."""
    t0 = time.perf_counter()
    from archer.audiences import count

    settings = build_shop.settings_for({"home": home})
    imports = time.perf_counter() - t0
    times, out = [], {}
    for _ in range(1 + int(repeats)):
        t1 = time.perf_counter()
        out = count(settings, QUERY)
        times.append(time.perf_counter() - t1)
    warm = statistics.median(times[1:])
    report(
        warm,
        out["count"],
        cold_seconds=round(times[0], 3),
        warm_all=[round(t, 3) for t in times[1:]],
        imports_seconds=round(imports, 3),
        clauses=[c["count"] for c in out["clauses"]],
        customers=out["customers"],
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 customers, nothing written")
    ap.add_argument("--customers", type=int, help="customers of the shop")
    ap.add_argument("--repeats", type=int, default=REPEATS, help="warm counts (median)")
    ap.add_argument("--large", action="store_true", help="also a copy with ~100M events")
    ap.add_argument("--no-pandas", action="store_true", help="Archer alone")
    ap.add_argument("--out", type=Path, help=f"report to update (default {DOCS}, full run only)")
    ap.add_argument(
        "--render", action="store_true", help=f"rewrite the section from {RESULTS.name}"
    )
    args = ap.parse_args(argv)
    import audience_report

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.render:
        b = load(RESULTS)
        audience_report.write_section(args.out or DOCS, audience_report.markdown(b))
        return
    size = QUICK if args.quick else FULL
    b = run(
        args.customers or size["customers"],
        large=args.large,
        pandas=not args.no_pandas,
        repeats=args.repeats,
        log=log,
    )
    if not args.quick:
        RESULTS.write_text(json.dumps(asdict(b), indent=1))
    print(audience_report.text(b))
    out = args.out or (None if args.quick else DOCS)
    if out is not None:
        audience_report.write_section(out, audience_report.markdown(b))
        log(f"section written to {out}")


def load(path: Path) -> AudienceBench:
    doc = json.loads(path.read_text())
    doc["archer"] = Measured(**doc["archer"])
    doc["pandas"] = Measured(**doc["pandas"]) if doc.get("pandas") else None
    return AudienceBench(**doc)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:4])
    else:
        main()
