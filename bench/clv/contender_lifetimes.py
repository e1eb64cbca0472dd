"""The ``lifetimes`` 0.11.3 contender of the CLV benchmark; runs in its own environment.

``clv/bench.py`` starts it with the interpreter of the ``lifetimes`` environment (see
``lifetimes_env.py``), one task per process, and reads the JSON report on the last line of its
output, as ``common/harness.py`` expects. It imports only ``lifetimes``, pandas, NumPy and the
standard library (``common.harness``, ``clv_data``).

    contender_lifetimes.py summary TRANSACTIONS.npz END_DATE
    contender_lifetimes.py fit SUMMARY.npz [--weighted] [--timeout SECONDS]
    contender_lifetimes.py predict SUMMARY.npz PARAMS_JSON T
"""

from __future__ import annotations

import json
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import clv_data

from common.harness import report

warnings.simplefilter("ignore")  # lifetimes and old pandas are chatty; the figures matter here

SAMPLE = 1000  # predictions reported for the first customers, to compare with Archer's


class TimedOut(Exception):
    pass


def summary(path: str, end: str) -> None:
    from lifetimes.utils import summary_data_from_transaction_data

    data = np.load(path)
    start = np.datetime64("2025-01-01T00:00:00")
    df = pd.DataFrame(
        {
            "customer": data["customer"],
            "date": start + data["seconds"].astype("timedelta64[s]"),
        }
    )
    t0 = time.perf_counter()
    s = summary_data_from_transaction_data(
        df, "customer", "date", observation_period_end=end, freq="D"
    )
    seconds = time.perf_counter() - t0
    report(
        seconds,
        len(df),
        customers=len(s),
        frequency_sum=int(s["frequency"].sum()),
        recency_sum=float(s["recency"].sum()),
        T_sum=float(s["T"].sum()),
    )


def fit(path: str, weighted: bool, timeout: int) -> None:
    from lifetimes import BetaGeoFitter

    data = np.load(path)
    df = pd.DataFrame({"frequency": data["x"], "recency": data["tx"], "T": data["T"]})

    def on_alarm(signum, frame):
        raise TimedOut

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(timeout)
    t0 = time.perf_counter()
    c0 = time.process_time()  # CPU of the work, every thread: less sensitive to a busy machine
    compress = 0.0
    try:
        if weighted:
            # What the lifetimes docs suggest for large data: fit the distinct rows with counts.
            c = df.groupby(["frequency", "recency", "T"]).size().reset_index(name="weights")
            compress = time.perf_counter() - t0
            m = BetaGeoFitter().fit(c["frequency"], c["recency"], c["T"], weights=c["weights"])
            rows = len(c)
        else:
            m = BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])
            rows = len(df)
    except TimedOut:
        report(time.perf_counter() - t0, len(df), timed_out=True, timeout=timeout)
        return
    seconds = time.perf_counter() - t0
    work_cpu = time.process_time() - c0
    signal.alarm(0)
    params = {k: float(v) for k, v in m.params_.items()}
    n = float(len(df))
    report(
        seconds,
        len(df),
        fitted_rows=rows,
        compress_seconds=round(compress, 3),
        work_cpu_seconds=round(work_cpu, 3),
        params=params,
        # lifetimes keeps the mean negative log-likelihood of its rescaled time; not comparable
        mean_nll_scaled=float(m._negative_log_likelihood_),
        n=n,
    )


def predict(path: str, params: str, t: float) -> None:
    from lifetimes import BetaGeoFitter

    data = np.load(path)
    df = pd.DataFrame({"frequency": data["x"], "recency": data["tx"], "T": data["T"]})
    m = BetaGeoFitter()
    m.params_ = pd.Series(json.loads(params))
    t0 = time.perf_counter()
    y = m.conditional_expected_number_of_purchases_up_to_time(
        t, df["frequency"], df["recency"], df["T"]
    )
    seconds = time.perf_counter() - t0
    y = np.asarray(y, dtype=float)
    report(
        seconds,
        len(df),
        total=float(np.nansum(y)),
        nan=int(np.isnan(y).sum()),
        sample=[float(v) for v in y[:SAMPLE]],
    )


def main(argv: list[str]) -> None:
    a = clv_data.parse_task(argv, with_predict_numpy=False)
    if a.task == "summary":
        summary(a.path, a.end)
    elif a.task == "fit":
        fit(a.path, a.weighted, a.timeout)
    else:
        predict(a.path, a.params, a.t)


if __name__ == "__main__":
    main(sys.argv[1:])
