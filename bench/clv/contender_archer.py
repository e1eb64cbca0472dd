"""The Archer contender of the CLV benchmark: one task per process, run by ``clv/bench.py``.
It is the only module of ``bench/clv`` that imports archer.

Each task loads its input into an in-memory DuckDB through Ibis first (not timed: in a shop
the data already lives in the warehouse), then times the work and prints the JSON report that
``common/harness.py`` reads.

    contender_archer.py summary TRANSACTIONS.parquet END_DATE
    contender_archer.py fit SUMMARY.parquet
    contender_archer.py predict SUMMARY.parquet PARAMS_JSON T
    contender_archer.py predict-numpy SUMMARY.npz PARAMS_JSON T
    contender_archer.py fit-synthetic CUSTOMERS
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import ibis
import numpy as np

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import clv_data

from archer.models import BGNBD, patterns, rfm_summary
from common.harness import report

SAMPLE = 1000


def _load(path: str, name: str):
    con = ibis.duckdb.connect()
    t0 = time.perf_counter()
    table = con.create_table(name, con.read_parquet(path))
    return con, table, time.perf_counter() - t0


def summary(path: str, end: str) -> None:
    con, tx, load = _load(path, "transactions")
    t0 = time.perf_counter()
    s = con.create_table(
        "summary",
        rfm_summary(
            tx,
            customer_col="customer",
            date_col="date",
            calibration_end=date.fromisoformat(end),
            unit="day",
        ),
    )
    seconds = time.perf_counter() - t0
    sums = s.aggregate(
        customers=s.count(),
        frequency_sum=s.frequency.sum(),
        recency_sum=s.recency.sum(),
        T_sum=s["T"].sum(),
    ).to_pyarrow()
    report(seconds, int(tx.count().execute()), load_seconds=round(load, 3), **sums.to_pylist()[0])


def fit(path: str) -> None:
    con, customers, load = _load(path, "customers")
    t0 = time.perf_counter()
    c0 = time.process_time()  # CPU of the work, every thread: less sensitive to a busy machine
    pats = patterns(customers).to_pyarrow()  # Arrow columns straight to NumPy, no pandas
    cols = {k: pats[k].to_numpy() for k in ("frequency", "recency", "T", "weights")}
    grouped = time.perf_counter() - t0
    m = BGNBD().fit(cols["frequency"], cols["recency"], cols["T"], weights=cols["weights"])
    seconds = time.perf_counter() - t0
    work_cpu = time.process_time() - c0
    report(
        seconds,
        int(customers.count().execute()),
        load_seconds=round(load, 3),
        patterns=len(pats),
        patterns_seconds=round(grouped, 3),
        fit_seconds=round(seconds - grouped, 3),
        work_cpu_seconds=round(work_cpu, 3),
        params=m.params_,
        log_likelihood=m.log_likelihood_,
        converged=m.converged_,
    )


def _model(params: str) -> BGNBD:
    m = BGNBD()
    m.params_ = json.loads(params)
    return m


def predict(path: str, params: str, t: float) -> None:
    """Scores per pattern, joined back to every customer in the warehouse."""
    con, customers, load = _load(path, "customers")
    m = _model(params)
    t0 = time.perf_counter()
    pats = patterns(customers).to_pandas()
    pats["expected"] = m.conditional_expected_purchases(
        t, pats["frequency"], pats["recency"], pats["T"]
    )
    scored = ibis.memtable(pats[["frequency", "recency", "T", "expected"]])
    joined = customers.join(scored, ["frequency", "recency", "T"]).select("customer", "expected")
    scores = con.create_table("scores", joined)
    seconds = time.perf_counter() - t0
    first = scores.filter(scores.customer < SAMPLE).order_by("customer").to_pandas()["expected"]
    report(
        seconds,
        int(scores.count().execute()),
        load_seconds=round(load, 3),
        patterns=len(pats),
        total=float(scores.expected.sum().execute()),
        sample=[float(v) for v in first],
    )


def predict_numpy(path: str, params: str, t: float) -> None:
    """The same predictions straight over in-memory arrays, one per customer."""
    data = np.load(path)
    x, tx, T = data["x"], data["tx"], data["T"]
    m = _model(params)
    t0 = time.perf_counter()
    y = m.conditional_expected_purchases(t, x, tx, T)
    seconds = time.perf_counter() - t0
    report(seconds, len(y), total=float(y.sum()), sample=[float(v) for v in y[:SAMPLE]])


def fit_synthetic(n: int) -> None:
    """Draw ``n`` customers in chunks, keep only the pattern counts, fit on the patterns."""
    t0 = time.perf_counter()
    keys = np.empty(0, dtype=np.int64)
    counts = np.empty(0, dtype=np.int64)
    for x, tx, T in clv_data.draw_summary_chunks(n, seed=7):
        k, c = np.unique(clv_data.pattern_keys(x, tx, T), return_counts=True)
        keys, inverse = np.unique(np.concatenate([keys, k]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([counts, c])).astype(np.int64)
    drawn = time.perf_counter() - t0
    f, r, T = clv_data.from_pattern_keys(keys)
    t1 = time.perf_counter()
    m = BGNBD().fit(f, r, T, weights=counts)
    fit_seconds = time.perf_counter() - t1
    report(
        fit_seconds,
        int(counts.sum()),
        draw_seconds=round(drawn, 3),
        patterns=len(keys),
        params=m.params_,
        log_likelihood=m.log_likelihood_,
        converged=m.converged_,
        truth=clv_data.TRUTH,
    )


def main(argv: list[str]) -> None:
    a = clv_data.parse_task(argv, with_predict_numpy=True)
    if a.task == "summary":
        summary(a.path, a.end)
    elif a.task == "fit":
        fit(a.path)
    elif a.task == "predict":
        predict(a.path, a.params, a.t)
    elif a.task == "predict-numpy":
        predict_numpy(a.path, a.params, a.t)
    else:
        fit_synthetic(a.customers)


if __name__ == "__main__":
    main(sys.argv[1:])
