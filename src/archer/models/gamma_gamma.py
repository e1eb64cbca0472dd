"""The Gamma-Gamma model of monetary value (Fader, Hardie & Lee 2005; Fader & Hardie 2013).

P. S. Fader, B. G. S. Hardie and K. L. Lee, "RFM and CLV: Using Iso-Value Curves for Customer
Base Analysis", Journal of Marketing Research 42(4), 415-430, 2005; P. S. Fader and
B. G. S. Hardie, "The Gamma-Gamma Model of Monetary Value", 2013
(http://brucehardie.com/notes/025/).

A customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers, so
the mean E(Z | nu) = p / nu varies between customers but not with how often they buy. For a
customer with x repeat transactions of mean value m_x (the note, eq. 3, up to the factor that does
not depend on the parameters, which we keep so the log-likelihood is the density of m_x):

    f(m_x | p, q, gamma, x) = Gamma(px+q) / (Gamma(px) Gamma(q))
                              * gamma^q m_x^(px-1) x^(px) / (gamma + x m_x)^(px+q).

Fitted on customers with x > 0 only (pass the rest with weight 0 or leave them out); patterns of
(frequency, monetary_value) may carry weights.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from archer.models.base import MLEModel, as_arrays, pattern_data

PARAM_NAMES = ("p", "q", "gamma")


def _loglik_terms(params, x, mx, *, grad: bool = False):
    """Per-pattern log density of the mean spend m_x given x (and its gradient in p, q, gamma)."""
    p, q, g = params
    px = p * x
    lx = np.log(x)
    lm = np.log(mx)
    lgm = np.log(g + x * mx)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1.0) * lm
        + px * lx
        - (px + q) * lgm
    )
    if not grad:
        return ll
    dpq = digamma(px + q)
    d_p = x * (dpq - digamma(px) + lm + lx - lgm)
    d_q = dpq - digamma(q) + np.log(g) - lgm
    d_g = q / g - (px + q) / (g + x * mx)
    return ll, np.stack([d_p, d_q, d_g])


def log_likelihood(params, frequency, monetary_value, weights=None) -> float:
    """Total Gamma-Gamma log-likelihood for natural parameters ``(p, q, gamma)``."""
    (x, mx), w = pattern_data(frequency, monetary_value, weights=weights)
    return float(w @ _loglik_terms(np.asarray(params, dtype=float), x, mx))


def log_likelihood_grad(params, frequency, monetary_value, weights=None) -> np.ndarray:
    """Gradient of :func:`log_likelihood` with respect to ``(p, q, gamma)``."""
    (x, mx), w = pattern_data(frequency, monetary_value, weights=weights)
    _, g = _loglik_terms(np.asarray(params, dtype=float), x, mx, grad=True)
    return g @ w


class GammaGamma(MLEModel):
    """Gamma-Gamma spend model: ``fit(frequency, monetary_value, weights)``, ``params_`` are
    ``p, q, gamma``; other fitted attributes as for :class:`archer.models.BGNBD`."""

    NAME = "Gamma-Gamma"
    PARAM_NAMES = PARAM_NAMES
    terms = staticmethod(_loglik_terms)

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
        penalizer: float = 0.0,
        initial_params: ArrayLike | None = None,
        maxiter: int = 2000,
    ) -> GammaGamma:
        (x, mx), w = pattern_data(frequency, monetary_value, weights=weights)
        keep = w > 0
        x, mx, w = x[keep], mx[keep], w[keep]
        if np.any(x <= 0) or np.any(mx <= 0) or not np.all(np.isfinite(mx)):
            raise ValueError(
                "Gamma-Gamma is fitted on repeat customers: need frequency > 0 and "
                "monetary_value > 0 (give other customers weight 0 or leave them out)"
            )
        start = np.array([1.0, 1.0, float(np.average(mx, weights=w))])
        return self._fit((x, mx), w, penalizer, initial_params, maxiter, start)

    # ------------------------------------------------------------------------- predictions
    def mean_spend(self) -> float:
        """E(Z) = p gamma / (q - 1), the population mean transaction value (inf if q <= 1)."""
        p, q, g = self._params()
        return p * g / (q - 1.0) if q > 1.0 else float("inf")

    def conditional_expected_spend(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> np.ndarray:
        """E(Z | x, m_x) = (gamma + x m_x) p / (p x + q - 1) (the note, eq. 5).

        A weighted mean of the population mean and the customer's own mean: with x = 0 (or no
        monetary value) it is the population mean p gamma / (q - 1).
        """
        p, q, g = self._params()
        x, mx = as_arrays(frequency, monetary_value)
        xm = np.where(x > 0, x * np.nan_to_num(mx), 0.0)
        return (g + xm) * p / (p * x + q - 1.0)

    conditional_expected_average_spend = conditional_expected_spend
