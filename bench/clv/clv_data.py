"""Synthetic customer bases drawn from the BG/NBD, for the CLV benchmark (NumPy only).

Both benchmark environments import this file (Archer's and the one with ``lifetimes``), so it
uses nothing but NumPy. Time is in weeks with a resolution of one day, as a summary computed
from dated transactions would be.

The draw follows the model's story: each customer has a purchase rate ``lambda ~ Gamma(r,
alpha)`` and a dropout probability ``p ~ Beta(a, b)``, makes a first purchase, and after each
repeat purchase drops out with probability ``p``. ``draw_summary`` draws the
``(frequency, recency, T)`` of a customer directly: with ``n ~ Poisson(lambda T)`` purchases
possible in ``(0, T]`` and ``K ~ Geometric(p)`` purchases before dropping out, ``x = min(n, K)``
and the ``x``-th of ``n`` uniform arrival times is ``T * Beta(x, n - x + 1)``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np

# Close to what Fader, Hardie & Lee (2005) found for CDNOW (weeks).
TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
HORIZON_DAYS = 364  # first purchases spread over one year; T is measured at its end


def draw_summary(n: int, seed: int, truth: dict[str, float] = TRUTH):
    """``frequency, recency, T`` (weeks, whole days) of ``n`` customers drawn from the BG/NBD."""
    rng = np.random.default_rng(seed)
    T_days = rng.integers(1, HORIZON_DAYS + 1, size=n)
    T = T_days / 7.0
    lam = rng.gamma(truth["r"], 1.0 / truth["alpha"], size=n)
    p = rng.beta(truth["a"], truth["b"], size=n)
    possible = rng.poisson(lam * T)
    before_dropout = rng.geometric(p)
    x = np.minimum(possible, before_dropout)
    has = x > 0
    tx = np.zeros(n)
    tx[has] = T[has] * rng.beta(x[has], possible[has] - x[has] + 1)
    tx_days = np.minimum(np.floor(tx * 7.0), T_days)
    tx_days[has] = np.maximum(tx_days[has], 1)  # a repeat purchase is at least a day later
    x = np.minimum(x, tx_days.astype(np.int64))  # at most one purchase a day
    tx_days[x == 0] = 0
    return x.astype(np.int64), tx_days / 7.0, T


def draw_summary_chunks(n: int, seed: int, chunk: int = 5_000_000) -> Iterator[tuple]:
    """:func:`draw_summary` for ``n`` customers, ``chunk`` at a time (each with its own seed)."""
    for i, start in enumerate(range(0, n, chunk)):
        yield draw_summary(min(chunk, n - start), seed * 100_003 + i)


def pattern_keys(x, tx_weeks, T_weeks) -> np.ndarray:
    """One int64 per ``(frequency, recency days, T days)``, to count patterns with ``np.unique``."""
    tx_days = np.rint(np.asarray(tx_weeks) * 7.0).astype(np.int64)
    T_days = np.rint(np.asarray(T_weeks) * 7.0).astype(np.int64)
    return (np.asarray(x, dtype=np.int64) << 24) | (tx_days << 12) | T_days


def from_pattern_keys(keys: np.ndarray):
    """Inverse of :func:`pattern_keys`: ``frequency, recency, T`` in weeks."""
    keys = np.asarray(keys, dtype=np.int64)
    return keys >> 24, ((keys >> 12) & 0xFFF) / 7.0, (keys & 0xFFF) / 7.0


def draw_transactions(n_rows: int, seed: int, truth: dict[str, float] = TRUTH):
    """About ``n_rows`` dated transactions ``(customer, seconds since the start)``.

    Customers arrive uniformly over :data:`HORIZON_DAYS`; each buys at its first day, then at
    exponential gaps while alive, until the end of the horizon. Customers are drawn in batches
    until ``n_rows`` transactions are reached; the last batch is cut at a customer boundary.
    """
    rng = np.random.default_rng(seed)
    day = 86_400.0
    end = HORIZON_DAYS * day
    customers: list[np.ndarray] = []
    times: list[np.ndarray] = []
    total = 0
    next_id = 0
    while total < n_rows:
        m = 1_000_000
        ids = np.arange(next_id, next_id + m)
        next_id += m
        lam = rng.gamma(truth["r"], 1.0 / truth["alpha"], size=m) / (7 * day)  # per second
        p = rng.beta(truth["a"], truth["b"], size=m)
        t = rng.uniform(0.0, end, size=m)
        batch_c, batch_t = [ids], [t.copy()]
        alive = np.ones(m, dtype=bool)
        while alive.any():
            idx = np.flatnonzero(alive)
            t[idx] += rng.exponential(1.0, size=idx.size) / lam[idx]
            inside = t[idx] <= end
            bought = idx[inside]
            batch_c.append(ids[bought])
            batch_t.append(t[bought].copy())
            alive[idx[~inside]] = False
            alive[bought[rng.random(bought.size) < p[bought]]] = False
        c = np.concatenate(batch_c)
        s = np.concatenate(batch_t)
        counts = np.bincount(c - ids[0], minlength=m)
        keep_customers = np.searchsorted(np.cumsum(counts), n_rows - total, side="right")
        keep = (c - ids[0]) < keep_customers
        customers.append(c[keep])
        times.append(s[keep])
        total += int(keep.sum())
        if keep_customers < m:
            break
    c = np.concatenate(customers)
    s = np.concatenate(times)
    order = rng.permutation(c.size)  # a log is in time order or none, not grouped by customer
    return c[order], s[order]


def parse_task(argv: list[str], *, with_predict_numpy: bool) -> argparse.Namespace:
    """The command line both contenders take: ``summary``, ``fit``, ``predict`` (Archer also
    ``predict-numpy`` and ``fit-synthetic``)."""
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="task", required=True)
    s = sub.add_parser("summary")
    s.add_argument("path")
    s.add_argument("end")
    f = sub.add_parser("fit")
    f.add_argument("path")
    f.add_argument("--weighted", action="store_true")
    f.add_argument("--timeout", type=int, default=1800)
    for name in ("predict", "predict-numpy") if with_predict_numpy else ("predict",):
        p = sub.add_parser(name)
        p.add_argument("path")
        p.add_argument("params")
        p.add_argument("t", type=float)
    if with_predict_numpy:
        g = sub.add_parser("fit-synthetic")
        g.add_argument("customers", type=int)
    return ap.parse_args(argv)
