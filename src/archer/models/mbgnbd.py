"""The MBG/NBD model of Batislam, Denizel & Filiztekin (2007).

E. P. Batislam, M. Denizel and A. Filiztekin, "Empirical validation and comparison of models for
customer base analysis", International Journal of Research in Marketing 24(3), 201-209, 2007
(the same model as the "central variant" of Hoppe & Wagner, 2007).

It is the BG/NBD with one change: a customer may also drop out right after the first purchase
(at time 0), so a customer without repeat purchases is not certainly alive. While alive a
customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); at time 0 and after every
purchase they drop out with probability p ~ Beta(a, b). For x repeat purchases, the last at t_x,
in (0, T]:

    L = B(a, b+x+1)/B(a, b) * Gamma(r+x) alpha^r / Gamma(r)
        * [ (alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x) ],

written here in log space with its analytic gradient; the fit is on weighted patterns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, expit, gammaln

from archer.models.base import as_arrays, nbd_log_pmf, nbd_log_sf, pattern_data
from archer.models.bgnbd import BGNBD, BGLikelihood
from archer.models.recency import RecencyModel

PARAM_NAMES = ("r", "alpha", "a", "b")


def _loglik_terms(params, x, tx, T, *, grad: bool = False):
    """Per-pattern log-likelihood (and its partial derivatives in r, alpha, a, b)."""
    r, alpha, a, b = params
    la_T = np.log(alpha + T)
    la_tx = np.log(alpha + tx)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x + 1.0) - gammaln(b) - gammaln(a + b + x + 1.0)
    a3 = -(r + x) * la_T
    a4 = np.log(a) - np.log(b + x) - (r + x) * la_tx
    d = np.logaddexp(a3, a4)
    ll = a1 + a2 + d
    if not grad:
        return ll
    w3 = np.exp(a3 - d)
    w4 = np.exp(a4 - d)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * la_T - w4 * la_tx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + tx))
    dg_ab = digamma(a + b) - digamma(a + b + x + 1.0)
    d_a = dg_ab + w4 / a
    d_b = dg_ab + digamma(b + x + 1.0) - digamma(b) - w4 / (b + x)
    return ll, np.stack([d_r, d_alpha, d_a, d_b])


def log_likelihood(params, frequency, recency, T, weights=None) -> float:
    """Total MBG/NBD log-likelihood for natural parameters ``(r, alpha, a, b)``."""
    (x, tx, T), w = pattern_data(frequency, recency, T, weights=weights)
    return float(w @ _loglik_terms(np.asarray(params, dtype=float), x, tx, T))


def log_likelihood_grad(params, frequency, recency, T, weights=None) -> np.ndarray:
    """Gradient of :func:`log_likelihood` with respect to ``(r, alpha, a, b)``."""
    (x, tx, T), w = pattern_data(frequency, recency, T, weights=weights)
    _, g = _loglik_terms(np.asarray(params, dtype=float), x, tx, T, grad=True)
    return g @ w


class MBGNBD(RecencyModel):
    """Modified beta-geometric / NBD model, fitted by maximum likelihood on weighted patterns.

    Same API as :class:`archer.models.BGNBD`: ``fit(frequency, recency, T, weights)``,
    ``params_`` (``r, alpha, a, b``), ``log_likelihood_``, ``aic_``, ``standard_errors_``,
    ``converged_``, ``message_``, ``n_customers_``, and the predictions below.
    """

    NAME = "MBG/NBD"
    PARAM_NAMES = PARAM_NAMES
    terms = staticmethod(_loglik_terms)

    @classmethod
    def _total(cls, data, w):
        return BGLikelihood(*data, w, shift=1)

    # ------------------------------------------------------------------------- predictions
    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(alive at T | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)).

        Unlike the BG/NBD this is below 1 for x = 0: the customer may have left at once.
        """
        r, alpha, a, b = self._params()
        x, tx, T = as_arrays(frequency, recency, T)
        log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return expit(-log_odds)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in ``(T, T + t]``.

        Given alive at T, p ~ Beta(a, b+x+1) and lambda ~ Gamma(r+x, alpha+T), and the customer
        behaves as a BG/NBD customer from then on, so the bracket is BG/NBD's with b + 1:
        (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)] * P(alive).
        """
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=float)
        x, tx, T = as_arrays(frequency, recency, T)
        bracket = BGNBD._expected(r, alpha, a, b + 1.0, x, alpha + T, t)
        return bracket * self.p_alive(x, tx, T)

    def expected_purchases_new(self, t: ArrayLike) -> np.ndarray:
        """E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))].

        It is the conditional expectation of a customer seen at x = 0, t_x = 0, T = 0.
        """
        t = np.asarray(t, dtype=float)
        zero = np.zeros_like(t)
        return self.conditional_expected_purchases(t, zero, zero, zero)

    def probability_of_purchases(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """P(X(t) = x) for a customer new at time 0.

        Still alive after the first purchase and x more: (1-p)^(x+1) P(N(t) = x); dropped right
        after the x-th purchase (or at time 0): p (1-p)^x P(N(t) >= x). Integrated over p:
        B(a, b+x+1)/B(a,b) NBD(x) + B(a+1, b+x)/B(a,b) P(NBD >= x).
        """
        r, alpha, a, b = self._params()
        x, t = as_arrays(x, t)
        lb = betaln(a, b)
        alive = betaln(a, b + x + 1.0) - lb + nbd_log_pmf(x, r, alpha, t)
        dropped = betaln(a + 1.0, b + x) - lb + nbd_log_sf(x, r, alpha, t)
        return np.exp(np.logaddexp(alive, dropped))
