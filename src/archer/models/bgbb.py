"""The BG/BB model of Fader, Hardie & Shang (2010), for discrete-time transaction opportunities.

P. S. Fader, B. G. S. Hardie and J. Shang, "Customer-Base Analysis in a Discrete-Time
Noncontractual Setting", Marketing Science 29(6), 1086-1108, 2010.

At each of n opportunities after the first a customer, while alive, transacts with probability
p ~ Beta(alpha, beta); before each opportunity they die with probability theta ~ Beta(gamma,
delta). For x transactions, the last at opportunity t_x, out of n (paper, eq. 5):

    L = B(alpha+x, beta+n-x)/B(alpha, beta) * B(gamma, delta+n)/B(gamma, delta)
        + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha, beta)
                              * B(gamma+1, delta+t_x+i)/B(gamma, delta).

The sum is accumulated in log space over blocks of i for all patterns at once (a streaming
log-sum-exp that carries the gradient along), so memory stays a small multiple of the number of
patterns and n may be thousands.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, gammaln

from archer.models.base import MLEModel, as_arrays, pattern_data

PARAM_NAMES = ("alpha", "beta", "gamma", "delta")
_BLOCK = 256


def _dlbeta(u, v):
    """Partial derivatives of log B(u, v) in u and in v."""
    s = digamma(u + v)
    return digamma(u) - s, digamma(v) - s


def _loglik_terms(params, x, tx, n, *, grad: bool = False):
    """Per-pattern log-likelihood (and its partial derivatives in alpha, beta, gamma, delta)."""
    al, be, ga, de = params
    shape = np.shape(x)
    x, tx, n = (
        np.atleast_1d(np.asarray(v, dtype=float)).ravel() for v in np.broadcast_arrays(x, tx, n)
    )
    lb_ab, lb_gd = betaln(al, be), betaln(ga, de)
    d_ab = _dlbeta(al, be)
    d_gd = _dlbeta(ga, de)
    # the 'alive through n' term
    m = betaln(al + x, be + n - x) - lb_ab + betaln(ga, de + n) - lb_gd
    total = np.ones_like(m)  # sum of exp(term - m)
    if grad:
        u_a, u_b = _dlbeta(al + x, be + n - x)
        v_g, v_d = _dlbeta(ga, de + n)
        g = np.stack([u_a - d_ab[0], u_b - d_ab[1], v_g - d_gd[0], v_d - d_gd[1]])
    last = n - tx - 1.0
    top = int(np.max(last, initial=-1.0)) + 1
    for start in range(0, top, _BLOCK):  # a block of i at a time: few Python steps, small memory
        k = np.flatnonzero(last >= start)  # only the patterns whose sum reaches this block
        xc, txc, lastc = x[k, None], tx[k, None], last[k, None]
        i = np.arange(start, min(start + _BLOCK, top), dtype=float)
        live = i <= lastc
        term = betaln(al + xc, be + txc - xc + i) - lb_ab + betaln(ga + 1.0, de + txc + i) - lb_gd
        term = np.where(live, term, -np.inf)
        new_m = np.maximum(m[k], term.max(axis=-1))
        scale = np.exp(m[k] - new_m)
        wt = np.exp(term - new_m[:, None])
        total[k] = total[k] * scale + wt.sum(axis=-1)
        if grad:
            u_a, u_b = _dlbeta(al + xc, be + txc - xc + i)
            v_g, v_d = _dlbeta(ga + 1.0, de + txc + i)
            parts = (u_a - d_ab[0], u_b - d_ab[1], v_g - d_gd[0], v_d - d_gd[1])
            g[:, k] = g[:, k] * scale + np.stack([(wt * part).sum(axis=-1) for part in parts])
        m[k] = new_m
    ll = (m + np.log(total)).reshape(shape)
    if not grad:
        return ll
    return ll, (g / total).reshape((4, *shape))


def log_likelihood(params, frequency, recency, periods, weights=None) -> float:
    """Total BG/BB log-likelihood for natural parameters ``(alpha, beta, gamma, delta)``."""
    (x, tx, n), w = pattern_data(frequency, recency, periods, weights=weights)
    return float(w @ _loglik_terms(np.asarray(params, dtype=float), x, tx, n))


def log_likelihood_grad(params, frequency, recency, periods, weights=None) -> np.ndarray:
    """Gradient of :func:`log_likelihood` with respect to ``(alpha, beta, gamma, delta)``."""
    (x, tx, n), w = pattern_data(frequency, recency, periods, weights=weights)
    _, g = _loglik_terms(np.asarray(params, dtype=float), x, tx, n, grad=True)
    return g @ w


def _check(x, tx, n) -> None:
    ints = all(np.all(v == np.round(v)) for v in (x, tx, n))
    if (
        not ints
        or np.any(x < 0)
        or np.any(x > tx)
        or np.any(tx > n)
        or np.any((x == 0) & (tx != 0))
    ):
        raise ValueError(
            "need integers 0 <= frequency <= recency <= periods, recency 0 when frequency 0"
        )
    if np.any((x > 0) & (tx < 1)):
        raise ValueError("recency counts the opportunity of the last transaction (>= 1)")


class BGBB(MLEModel):
    """Beta-geometric / beta-Bernoulli model, fitted on weighted ``(frequency, recency, periods)``.

    ``frequency`` x is the number of transactions in the ``periods`` n opportunities after the
    first, ``recency`` t_x the opportunity of the last one (0 when x = 0). ``params_`` are
    ``alpha, beta, gamma, delta``.
    """

    NAME = "BG/BB"
    PARAM_NAMES = PARAM_NAMES
    terms = staticmethod(_loglik_terms)

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        periods: ArrayLike,
        weights: ArrayLike | None = None,
        penalizer: float = 0.0,
        initial_params: ArrayLike | None = None,
        maxiter: int = 2000,
    ) -> BGBB:
        (x, tx, n), w = pattern_data(frequency, recency, periods, weights=weights)
        _check(x, tx, n)
        return self._fit((x, tx, n), w, penalizer, initial_params, maxiter, np.ones(4))

    # ------------------------------------------------------------------------- predictions
    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, periods: ArrayLike) -> np.ndarray:
        """P(alive at opportunity n+1 | x, t_x, n) (paper, eq. 11)."""
        al, be, ga, de = self._params()
        x, tx, n = as_arrays(frequency, recency, periods)
        ll = _loglik_terms((al, be, ga, de), x, tx, n)
        alive = betaln(al + x, be + n - x) - betaln(al, be) + betaln(ga, de + n + 1.0)
        return np.exp(alive - betaln(ga, de) - ll)

    @staticmethod
    def _survival_sum(ga, de, n, n_star):
        """sum_{i=n+1}^{n+n*} B(gamma, delta+i)/B(gamma, delta) in the closed form
        delta/(gamma-1) Gamma(gamma+delta)/Gamma(1+delta)
        * [Gamma(1+delta+n)/Gamma(gamma+delta+n) - Gamma(1+delta+n+n*)/Gamma(gamma+delta+n+n*)]
        (log space, so n in the thousands is fine). At gamma = 1 the closed form is 0/0; the sum
        is then delta (digamma(delta+n+n*+1) - digamma(delta+n+1)), used within 1e-7 of 1.
        """
        if abs(ga - 1.0) < 1e-7:
            return de * (digamma(de + n + n_star + 1.0) - digamma(de + n + 1.0))
        const = np.log(de) - np.log(np.abs(ga - 1.0)) + gammaln(ga + de) - gammaln(1.0 + de)
        l1 = gammaln(1.0 + de + n) - gammaln(ga + de + n)
        l2 = gammaln(1.0 + de + n + n_star) - gammaln(ga + de + n + n_star)
        # sign: for gamma > 1, l1 > l2; for gamma < 1 both the constant and the difference flip
        big, small = np.maximum(l1, l2), np.minimum(l1, l2)
        return np.exp(const + big + np.log(-np.expm1(small - big)))

    def expected_purchases_new(self, n: ArrayLike) -> np.ndarray:
        """E[X(n)]: expected transactions in the first n opportunities (paper, eq. 8)."""
        al, be, ga, de = self._params()
        n = np.asarray(n, dtype=float)
        return al / (al + be) * self._survival_sum(ga, de, 0.0, n)

    def conditional_expected_purchases(
        self, n_star: ArrayLike, frequency: ArrayLike, recency: ArrayLike, periods: ArrayLike
    ) -> np.ndarray:
        """E[X(n, n+n*) | x, t_x, n]: expected transactions in the next n* opportunities
        (paper, eq. 13)."""
        al, be, ga, de = self._params()
        x, tx, n = as_arrays(frequency, recency, periods)
        n_star = np.asarray(n_star, dtype=float)
        ll = _loglik_terms((al, be, ga, de), x, tx, n)
        log_head = betaln(al + x + 1.0, be + n - x) - betaln(al, be) - ll
        return np.exp(log_head) * self._survival_sum(ga, de, n, n_star)

    def probability_of_purchases(self, x: ArrayLike, n: ArrayLike) -> np.ndarray:
        """P(X(n) = x) for a new customer: x transactions in the first n opportunities
        (paper, eq. 7)."""
        al, be, ga, de = self._params()
        x, n = as_arrays(x, n)
        lb_ab, lb_gd = betaln(al, be), betaln(ga, de)

        def log_choose(k, j):
            return gammaln(k + 1.0) - gammaln(j + 1.0) - gammaln(k - j + 1.0)

        with np.errstate(invalid="ignore"):
            acc = np.where(
                x <= n,
                log_choose(n, x) + betaln(al + x, be + n - x) - lb_ab + betaln(ga, de + n) - lb_gd,
                -np.inf,
            )
            for i in range(int(np.max(n, initial=0.0))):
                live = (i >= x) & (i < n)
                term = log_choose(i, x) + betaln(al + x, be + i - x) - lb_ab
                term = term + betaln(ga + 1.0, de + i) - lb_gd
                acc = np.logaddexp(acc, np.where(live, term, -np.inf))
        return np.exp(acc)

    def p_alive_new(self, n: ArrayLike) -> np.ndarray:
        """P(a new customer is alive at opportunity n+1) = B(gamma, delta+n+1) / B(gamma, delta)."""
        _, _, ga, de = self._params()
        return np.exp(betaln(ga, de + np.asarray(n, dtype=float) + 1.0) - betaln(ga, de))
