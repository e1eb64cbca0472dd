"""Benchmark: ``archer build`` (issue 3), the customer profile, on the synthetic shop.

* Full size: ``build()`` on the 1,000,000-customer sample shop, imported once into a workspace
  under ``bench/out/`` and kept (``bench/common/shop.py``): wall time, CPU time, peak memory
  and the time of each part the build stages or writes. The import time is reported apart.
* Beside pandas: the RFM and lifecycle outputs written in plain pandas
  (``bench/build/pandas_rfm.py``), on a 100,000-customer shop pandas holds comfortably, against
  ``build()`` on the same shop in the same run; the answers are compared customer by
  customer so that the ratio compares like with like.

``.venv/bin/python bench/run.py --only build`` (or this file) runs it and rewrites only the
"Customer profile build" section of docs/benchmarks.md; ``--quick`` runs 20,000 customers and
writes to bench/out/benchmarks-quick.md; ``--render`` rewrites the section from the last run's
figures. ``bench/build/explain.py`` and ``bench/build/experiment.py`` are the diagnostics
behind the findings (DuckDB's profile of each part; patched variants of the build).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common import markdown as md
from common import results
from common import shop as build_shop
from common.harness import BENCH_DIR, Measured, log, python_child, report, run_child, said

FULL = {"customers": build_shop.FULL_CUSTOMERS, "pandas_customers": 100_000}
QUICK = {"customers": build_shop.QUICK_CUSTOMERS, "pandas_customers": build_shop.QUICK_CUSTOMERS}
TARGET_SECONDS = 120
MEMORY_TARGET_MB = 8 * 1024
TARGET_RATIO = 10.0

# What each part the build stages holds (by its hint); unknown hints are shown as they are.
PARTS = {
    "categories": "category scores (paid lines, events)",
    "base": "members + order, behaviour, refund summaries",
    "thresholds": "lapse thresholds (purchase gaps)",
    "rfm": "RFM scores",
    "bands": "price bands",
    "festivals": "festival buyers",
    "habits": "hour, weekday, channel habits",
    "clv": "lifetime value: scores joined back",
}
# Work done in Python before a part is staged, where it is known what it is.
BEFORE = {
    "clv": "lifetime value: model choice and fits (NumPy/SciPy, one core)",
    "festivals": "festival buyers: shop totals, binomial p-values",
}
# Work done in Python before a table is written, where it is known what it is.
BEFORE_WRITE = {
    "customer_points": "offers: coupons redeemed, points earned and taken back, balances "
    "read from the store",
}

# The parts of the build that give what the pandas contender computes: the main category
# (for the thresholds), the order and behaviour summaries, the thresholds, the RFM scores.
SAME_PARTS = ("categories", "base", "thresholds", "rfm")


@dataclass
class BuildBench:
    customers: int
    shop: dict  # build_shop.prepare() of the full-size shop
    archer: Measured
    pandas_customers: int
    small_shop: dict
    archer_small: Measured
    pandas: Measured
    agreement: dict = field(default_factory=dict)
    started: str = ""  # when the run began (UTC, ISO format)
    commit: str = ""  # the code measured, as markdown.commit() says it

    @property
    def ratio(self) -> float | None:
        a, p = self.archer_small, self.pandas
        return p.seconds / a.seconds if a.ok and p.ok and a.seconds > 0 else None

    @property
    def same_parts_seconds(self) -> float:
        """Archer's time on the parts pandas also computes, from the build's stage times."""
        stages: dict[str, float] = self.archer_small.detail.get("stages", {})
        return sum(stages.get(PARTS[k], 0.0) for k in SAME_PARTS)

    @property
    def same_parts_ratio(self) -> float | None:
        a, p = self.same_parts_seconds, self.pandas
        return p.seconds / a if p.ok and a > 0 else None


def run(
    customers: int, pandas_customers: int, *, log: Callable[[str], None] = lambda m: None
) -> BuildBench:
    started, code = md.started(), md.commit()
    as_of = build_shop.AS_OF.isoformat()
    shop = build_shop.prepare(customers, log=log)
    log(f"archer build on {customers:,} customers")
    archer = _archer(shop, as_of)
    log(said(archer))
    small = shop if pandas_customers == customers else build_shop.prepare(pandas_customers, log=log)
    if small is shop:
        archer_small = archer
    else:
        log(f"archer build on {pandas_customers:,} customers")
        archer_small = _archer(small, as_of)
        log(said(archer_small))
    with tempfile.TemporaryDirectory(prefix="archer-bench-build-") as tmp:
        out = Path(tmp) / "pandas.parquet"
        log(f"pandas RFM + lifecycle on {pandas_customers:,} customers")
        argv = python_child("build/pandas_rfm.py", small["home"], str(out), as_of)
        pandas = run_child("pandas", "pandas: RFM + lifecycle", argv, cwd=BENCH_DIR)
        log(said(pandas))
        agreement = compare(Path(small["home"]), out) if pandas.ok and archer_small.ok else {}
    if agreement:
        log(f"  agreement: {agreement}")
    return BuildBench(
        customers,
        shop,
        archer,
        pandas_customers,
        small,
        archer_small,
        pandas,
        agreement,
        started,
        code,
    )


def _archer(shop: dict, as_of: str) -> Measured:
    argv = python_child("build/bench.py", "child", shop["home"], as_of)
    return run_child("archer", "archer build (DuckDB)", argv, cwd=BENCH_DIR)


COMPARED = {
    "frequency": ("purchase_days", "purchase_days"),
    "monetary": ("net_spent", "net_spent"),
    "recency": ("days_since_last_purchase", "recency_days"),
    "R score": ("r_score", "r_score"),
    "F score": ("f_score", "f_score"),
    "M score": ("m_score", "m_score"),
    "main category": ("main_category", "main_category"),
    "lapse threshold": ("lapse_threshold_days", "lapse_threshold_days"),
    "lifecycle": ("lifecycle", "lifecycle"),
}


def compare(home: Path, pandas_out: Path) -> dict:
    """Customers on each side, and per compared column the customers on which they differ."""
    import numpy as np
    import pandas as pd

    with build_shop.warehouse(home) as con:
        cols = ", ".join(a for a, _ in COMPARED.values())
        a = con.sql(f"select customer_id, {cols} from customer_profile").df()
    p = pd.read_parquet(pandas_out)
    j = a.merge(p, on="customer_id", how="outer", suffixes=("_a", "_p"), indicator=True)
    out: dict = {"archer": len(a), "pandas": len(p), "unmatched": int((j._merge != "both").sum())}
    for label, (ca, cp) in COMPARED.items():
        x = j[ca + "_a" if ca == cp else ca]
        y = j[cp + "_p" if ca == cp else cp]
        if x.dtype.kind in "fiu" or y.dtype.kind in "fiu":
            xf, yf = pd.to_numeric(x).astype("float64"), pd.to_numeric(y).astype("float64")
            same = np.isclose(xf, yf, rtol=1e-9, atol=1e-6) | (xf.isna() & yf.isna())
        else:
            same = (x == y) | (x.isna() & y.isna())
        out[label] = int((~same).sum())
    return out


def child(home: str, as_of: str) -> None:
    """Run ``build()`` on the workspace at ``home``; report its seconds and each part's.

    Each part the build computes once (``Warehouse.stage``) or writes (``Warehouse.save``) is
    timed by wrapping those two methods in this process, so the figures follow the build's
    own parts whatever their number. The time between two of them (Python work such as a
    model fit, small queries run while the next expression is built) is reported on its own
    line, before the part that follows it. Each line has wall and CPU seconds (all threads),
    the latter less disturbed by a shared machine.
    """
    import dataclasses

    from archer_calls import Warehouse, build, pipeline

    stages: dict[str, list[float]] = {}
    last = [0.0, 0.0]

    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def add(key: str, wall: float, cpu: float) -> None:
        if wall >= 0.005:
            s = stages.setdefault(key, [0.0, 0.0])
            s[0] += wall
            s[1] += cpu

    def timed(method, label):
        def wrapper(self, *args):
            key, before = label(*args)
            w0, c0 = clock()
            add(before, w0 - last[0], c0 - last[1])
            out = method(self, *args)
            last[:] = clock()
            add(key, last[0] - w0, last[1] - c0)
            print(f"{key}: {last[0] - w0:.1f} s", file=sys.stderr, flush=True)
            return out

        return wrapper

    def part(expr, hint: str) -> tuple[str, str]:
        name = PARTS.get(hint, hint)
        return name, BEFORE.get(hint, f"(Python, small queries before “{name}”)")

    def write(name: str, expr) -> tuple[str, str]:
        before = BEFORE_WRITE.get(name, f"(Python, small queries before “write {name}”)")
        return f"write {name}", before

    Warehouse.stage = timed(Warehouse.stage, part)
    Warehouse.save = timed(Warehouse.save, write)
    pipeline.Build.write = timed(pipeline.Build.write, write)
    # Each step's work outside its staged parts and writes (the offers' store writes, the
    # ledger export, models fitted in Python) gets a line of its own, and so does the publish.
    steps = pipeline.default_steps

    def timed_steps():
        out = []
        for st in steps():

            def run(b, _run=st.run, _name=st.name):
                got = _run(b)
                w, c = clock()
                add(f"step “{_name}”: the rest (Python, the store, small queries)",
                    w - last[0], c - last[1])  # fmt: skip
                last[:] = w, c
                return got

            out.append(dataclasses.replace(st, run=run))
        return out

    pipeline.default_steps = timed_steps
    publish = pipeline._publish

    def timed_publish(b, st, started):
        w0, c0 = clock()
        add("(Python between the last step and the publish)", w0 - last[0], c0 - last[1])
        publish(b, st, started)
        last[:] = clock()
        add("publish: staged tables renamed in one transaction", last[0] - w0, last[1] - c0)

    pipeline._publish = timed_publish
    settings = build_shop.settings_for({"home": home})
    w0, c0 = last[:] = clock()
    result = build(settings, date.fromisoformat(as_of))
    w1, c1 = clock()
    add("drop scratch tables, summary counts", w1 - last[0], c1 - last[1])
    report(
        w1 - w0,
        result.customers,
        cpu=round(c1 - c0, 2),
        stages={k: round(w, 2) for k, (w, c) in stages.items()},
        stages_cpu={k: round(c, 2) for k, (w, c) in stages.items()},
        tables=result.tables,
    )


def load_results() -> BuildBench:
    doc = results.load("build")
    for k in ("archer", "archer_small", "pandas"):
        doc[k] = Measured(**doc[k])
    return BuildBench(**doc)


def main(argv: list[str] | None = None) -> None:
    ap = md.parser(__doc__, "20,000 customers")
    ap.add_argument("--customers", type=int, help="customers of the full-size build")
    ap.add_argument("--pandas-customers", type=int, help="customers of the pandas comparison")
    args = ap.parse_args(argv)
    size = QUICK if args.quick else FULL
    import report as build_report

    out = md.target(args.quick, args.out)
    if args.render:  # the last run's figures again, e.g. after a change of wording
        b = load_results()
    else:
        b = run(
            args.customers or size["customers"],
            args.pandas_customers or size["pandas_customers"],
            log=log,
        )
        results.save("build", asdict(b), quick=args.quick)
    md.publish(out, "build", build_report.text(b), build_report.markdown(b, b.started))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:4])
    elif sys.argv[1:2] == ["clean"]:  # remove the kept workspaces
        build_shop.clean()
    else:
        main()
