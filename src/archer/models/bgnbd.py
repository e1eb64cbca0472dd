"""The BG/NBD model of Fader, Hardie & Lee (2005).

P. S. Fader, B. G. S. Hardie and K. L. Lee, "'Counting Your Customers' the Easy Way: An
Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284, 2005.

While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after each
purchase they drop out with probability p ~ Beta(a, b). The likelihood (paper, eq. 6) is written in
log space, so frequency 1,000 or T 5,000 neither overflow nor give NaN, and it is maximised over the
log-parameters with L-BFGS-B and the analytic gradient. A fit works on distinct
``(frequency, recency, T)`` patterns with ``weights``, so its cost is the number of patterns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from archer.models.base import MLEModel, as_arrays, nbd_log_pmf, nbd_log_sf, pattern_data

PARAM_NAMES = ("r", "alpha", "a", "b")


def _arrays(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike):
    return as_arrays(frequency, recency, T)


def _loglik_terms(params, x, tx, T, *, grad: bool = False):
    """Per-pattern log-likelihood (and its partial derivatives in r, alpha, a, b)."""
    r, alpha, a, b = params
    has = x > 0
    xm1 = np.where(has, x - 1.0, 0.0)  # keeps b + x - 1 > 0 where the term is masked
    la_T = np.log(alpha + T)
    la_tx = np.log(alpha + tx)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * la_T
    a4 = np.where(has, np.log(a) - np.log(b + xm1) - (r + x) * la_tx, -np.inf)
    d = np.logaddexp(a3, a4)
    ll = a1 + a2 + d
    if not grad:
        return ll
    w3 = np.exp(a3 - d)
    w4 = np.exp(a4 - d)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * la_T - w4 * la_tx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + tx))
    dg_ab = digamma(a + b) - digamma(a + b + x)
    d_a = dg_ab + w4 / a
    d_b = dg_ab + digamma(b + x) - digamma(b) - w4 / (b + xm1)
    return ll, np.stack([d_r, d_alpha, d_a, d_b])


def log_likelihood(params, frequency, recency, T, weights=None) -> float:
    """Total log-likelihood of the paper (eq. 6) for natural parameters ``(r, alpha, a, b)``."""
    x, tx, T = (np.ravel(v) for v in _arrays(frequency, recency, T))
    w = np.ones_like(x) if weights is None else np.ravel(np.asarray(weights, dtype=float))
    return float(w @ _loglik_terms(np.asarray(params, dtype=float), x, tx, T))


def log_likelihood_grad(params, frequency, recency, T, weights=None) -> np.ndarray:
    """Gradient of :func:`log_likelihood` with respect to ``(r, alpha, a, b)``."""
    x, tx, T = (np.ravel(v) for v in _arrays(frequency, recency, T))
    w = np.ones_like(x) if weights is None else np.ravel(np.asarray(weights, dtype=float))
    _, g = _loglik_terms(np.asarray(params, dtype=float), x, tx, T, grad=True)
    return g @ w


def negative_log_likelihood(log_params, x, tx, T, w, penalizer: float = 0.0):
    """Objective over log-parameters: ``-LL + penalizer * sum(params**2)`` and its gradient."""
    p = np.exp(log_params)
    ll, g = _loglik_terms(p, x, tx, T, grad=True)
    value = -(w @ ll) + penalizer * np.sum(p**2)
    grad = (-(g @ w) + 2.0 * penalizer * p) * p  # chain rule for log-parameters
    return value, grad


def check_frequency_recency_T(x, tx, T) -> None:
    if np.any(x < 0) or np.any(tx < 0) or np.any(tx > T) or np.any((x == 0) & (tx != 0)):
        raise ValueError("need frequency >= 0, 0 <= recency <= T, recency 0 when frequency 0")


class BGNBD(MLEModel):
    """Beta-geometric / negative-binomial model, fitted by maximum likelihood.

    After :meth:`fit`: ``params_`` (``r, alpha, a, b``), ``log_likelihood_`` (total, weighted),
    ``standard_errors_`` (inverse Hessian of the negative log-likelihood), ``aic_``,
    ``converged_``, ``message_`` and ``n_customers_``. ``penalizer`` adds
    ``penalizer * sum(params**2)`` to the negative total log-likelihood (an L2 penalty on the
    natural parameters).
    """

    NAME = "BG/NBD"
    PARAM_NAMES = PARAM_NAMES
    terms = staticmethod(_loglik_terms)

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        penalizer: float = 0.0,
        initial_params: ArrayLike | None = None,
        maxiter: int = 2000,
    ) -> BGNBD:
        (x, tx, T), w = pattern_data(frequency, recency, T, weights=weights)
        check_frequency_recency_T(x, tx, T)
        return self._fit((x, tx, T), w, penalizer, initial_params, maxiter, np.ones(4))

    # ------------------------------------------------------------------------- predictions
    def expected_purchases_new(self, t: ArrayLike) -> np.ndarray:
        """E[X(t)]: expected purchases in ``(0, t]`` of a customer new at time 0 (paper, eq. 9)."""
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=float)
        return self._expected(r, alpha, a, b, np.zeros_like(t), alpha, t)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in ``(T, T + t]`` (paper, eq. 10)."""
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=float)
        x, tx, T = _arrays(frequency, recency, T)
        return self._expected(r, alpha, a, b, x, alpha + T, t) * self.p_alive(x, tx, T)

    @staticmethod
    def _expected(r, alpha, a, b, x, alpha_T, t):
        """(a+b+x-1)/(a-1) * [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)].

        With z = t / (α+T+t), Euler's transformation 2F1(A, B; C; z) =
        (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the bracket into
        1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose upper parameters stay small
        however large x is, so nothing overflows at high frequency or long T.
        """
        c = a + b + x - 1.0
        log1mz = np.log(alpha_T) - np.log(alpha_T + t)
        z = -np.expm1(log1mz)
        f = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        return c / (a - 1.0) * -np.expm1((a - 1.0) * log1mz + np.log(f))

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(alive | x, t_x, T) = 1 / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x)); 1 if x = 0."""
        r, alpha, a, b = self._params()
        x, tx, T = _arrays(frequency, recency, T)
        has = x > 0
        xm1 = np.where(has, x - 1.0, 0.0)
        log_odds = np.log(a) - np.log(b + xm1) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(has, expit(-log_odds), 1.0)

    def probability_of_purchases(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """P(X(t) = x) for a customer new at time 0 (paper, eq. 8), computed in log space."""
        r, alpha, a, b = self._params()
        x, t = as_arrays(x, t)
        lb = betaln(a, b)
        first = betaln(a, b + x) - lb + nbd_log_pmf(x, r, alpha, t)
        has = x > 0
        xm1 = np.where(has, x - 1.0, 0.0)
        second = np.where(has, betaln(a + 1.0, b + xm1) - lb + nbd_log_sf(x, r, alpha, t), -np.inf)
        return np.exp(np.logaddexp(first, second))
