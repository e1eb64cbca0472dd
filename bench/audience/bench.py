"""Benchmark: counting an audience (issue 5) on the 1,000,000-customer synthetic shop.

* Archer: ``archer.audiences.count()`` of a five-clause audience with two behaviour predicates
  (``QUERY``) on DuckDB, in a fresh process: the first count is *cold* (nothing of the
  warehouse in DuckDB's buffers; the operating system's file cache may hold the file), then
  ``--repeats`` more in the same process, whose median is *warm*. Each count opens the
  warehouse, compiles the query (with the small look-ups that check its values) and runs one
  query for the audience and each top-level clause, as ``archer audience count`` does.
* pandas: the same selection written by hand (``bench/audience/pandas_count.py``) in its own process
  in the same run: read the columns with DuckDB ``.df()``, then filter, group and merge,
  including the anonymous-id linking. Both answers (the audience and each clause) must agree.

The shop is the build benchmark's (``bench/common/shop.py``), reused with its built profile;
``--large`` also measures Archer on a copy whose events are replicated to about 100 million
(``bench/audience/large_shop.py``). ``bench/audience/explain.py`` holds the diagnostics behind
the findings (DuckDB's profile of the compiled SQL, and patched variants on a copy).

``.venv/bin/python bench/run.py --only audience`` (or this file) runs it and rewrites only the
"Audience count" section of docs/benchmarks.md (``--quick``: the 20,000-customer shop, written
to bench/out/benchmarks-quick.md); ``--render`` rewrites the section from the last run's
figures.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common import markdown as md
from common import results
from common import shop as build_shop
from common.harness import BENCH_DIR, Measured, log, python_child, report, run_child, said

QUERY = build_shop.AUDIENCE
FULL = {"customers": build_shop.FULL_CUSTOMERS}
QUICK = {"customers": build_shop.QUICK_CUSTOMERS}
REPEATS = 5
AIM_SECONDS = 2.0


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


def run(
    customers: int, *, large: bool = False, pandas: bool = True, repeats: int = REPEATS, log=None
) -> AudienceBench:
    log = log or (lambda m: None)
    started, code = md.started(), md.commit()
    shop = build_shop.prepare(customers, log=log)
    built = build_shop.ensure_profile(shop, log)
    counts = build_shop.warehouse_counts(shop["home"])
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
            python_child("audience/pandas_count.py", shop["home"]),
            cwd=BENCH_DIR,
        )
        log(_said(p))
    big: dict = {}
    if large:
        import large_shop

        home = large_shop.prepare(shop, log=log)
        n = build_shop.warehouse_counts(home)["events"]
        log(f"archer count on the copy with {n:,} events")
        m = _archer(home, repeats)
        log(_said(m))
        big = {"events": n, "archer": asdict(m), "how": large_shop.HOW}
    b = AudienceBench(
        customers, shop, counts["events"], built, archer, p, big, started=started, commit=code
    )
    if b.agree is False:
        log(f"DISAGREE: archer {archer.rows} {archer.detail.get('clauses')}, "
            f"pandas {p.rows} {p.detail.get('clauses')}")  # fmt: skip
    return b


def _archer(home: str, repeats: int) -> Measured:
    argv = python_child("audience/bench.py", "child", home, str(repeats))
    return run_child("archer", "archer count (DuckDB)", argv, cwd=BENCH_DIR)


def _said(m: Measured) -> str:
    if not m.ok:
        return said(m)
    d = m.detail
    if "cold_seconds" in d:
        return f"  cold {d['cold_seconds']:.2f} s, warm {m.seconds:.2f} s, {m.rows:,} customers"
    return f"  {m.seconds:.1f} s (compute {d['compute_seconds']:.2f} s), {m.rows:,} customers"


def child(home: str, repeats: str) -> None:
    """Count ``QUERY`` once cold, then ``repeats`` times warm, in this fresh process."""
    t0 = time.perf_counter()
    from archer_calls import count

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
    ap = md.parser(__doc__, "20,000 customers")
    ap.add_argument("--customers", type=int, help="customers of the shop")
    ap.add_argument("--repeats", type=int, default=REPEATS, help="warm counts (median)")
    ap.add_argument("--large", action="store_true", help="also a copy with ~100M events")
    ap.add_argument("--no-pandas", action="store_true", help="Archer alone")
    args = ap.parse_args(argv)
    import report as audience_report

    out = md.target(args.quick, args.out)
    if args.render:
        b = load_results()
    else:
        size = QUICK if args.quick else FULL
        b = run(
            args.customers or size["customers"],
            large=args.large,
            pandas=not args.no_pandas,
            repeats=args.repeats,
            log=log,
        )
        results.save("audience", asdict(b), quick=args.quick)
    md.publish(out, "audience", audience_report.text(b), audience_report.markdown(b))


def load_results() -> AudienceBench:
    doc = results.load("audience")
    doc["archer"] = Measured(**doc["archer"])
    doc["pandas"] = Measured(**doc["pandas"]) if doc.get("pandas") else None
    return AudienceBench(**doc)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:4])
    else:
        main()
