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

import warnings

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

PARAM_NAMES = ("r", "alpha", "a", "b")


def _arrays(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike):
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    T = np.asarray(T, dtype=float)
    return np.broadcast_arrays(x, tx, T)


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


class BGNBD:
    """Beta-geometric / negative-binomial model, fitted by maximum likelihood.

    After :meth:`fit`: ``params_`` (``r, alpha, a, b``), ``log_likelihood_`` (total, weighted),
    ``standard_errors_`` (inverse Hessian of the negative log-likelihood), ``aic_``,
    ``converged_`` and ``message_``. ``penalizer`` adds ``penalizer * sum(params**2)`` to the
    negative total log-likelihood (an L2 penalty on the natural parameters).
    """

    def __init__(self) -> None:
        self.params_: dict[str, float] | None = None

    # ----------------------------------------------------------------------------- fitting
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
        x, tx, T = (np.ravel(v) for v in _arrays(frequency, recency, T))
        w = np.ones_like(x) if weights is None else np.ravel(np.asarray(weights, dtype=float))
        if w.shape != x.shape:
            raise ValueError("weights must have one entry per pattern")
        if np.any(x < 0) or np.any(tx < 0) or np.any(tx > T) or np.any((x == 0) & (tx != 0)):
            raise ValueError("need frequency >= 0, 0 <= recency <= T, recency 0 when frequency 0")
        n = float(w.sum())

        def objective(theta):
            value, grad = negative_log_likelihood(theta, x, tx, T, w, penalizer)
            return value / n, grad / n  # per-customer scale keeps the tolerances meaningful

        start = np.zeros(4) if initial_params is None else np.log(initial_params)
        res = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-9},
        )
        p = np.exp(res.x)
        self.params_ = dict(zip(PARAM_NAMES, (float(v) for v in p), strict=True))
        self.log_likelihood_ = float(w @ _loglik_terms(p, x, tx, T))
        self.converged_ = bool(res.success) and bool(np.all(np.isfinite(res.x)))
        self.message_ = str(res.message)
        self.n_customers_ = n
        self.aic_ = 2.0 * len(PARAM_NAMES) - 2.0 * self.log_likelihood_
        self.standard_errors_ = self._standard_errors(p, x, tx, T, w, penalizer)
        if not self.converged_:
            warnings.warn(f"BG/NBD fit did not converge: {self.message_}", stacklevel=2)
        return self

    @staticmethod
    def _standard_errors(p, x, tx, T, w, penalizer) -> dict[str, float]:
        """Square roots of the diagonal of the inverse Hessian of -LL in natural parameters.

        The Hessian is the central finite difference of the analytic gradient.
        """

        def grad(q):
            _, g = _loglik_terms(q, x, tx, T, grad=True)
            return -(g @ w) + 2.0 * penalizer * q

        hess = np.empty((4, 4))
        for j in range(4):
            h = 1e-5 * p[j]
            up, dn = p.copy(), p.copy()
            up[j] += h
            dn[j] -= h
            hess[:, j] = (grad(up) - grad(dn)) / (2.0 * h)
        hess = 0.5 * (hess + hess.T)
        try:
            cov = np.linalg.inv(hess)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            se = np.full(4, np.nan)
        return dict(zip(PARAM_NAMES, (float(v) for v in se), strict=True))

    def _params(self):
        if self.params_ is None:
            raise RuntimeError("the model is not fitted; call fit() first")
        return (self.params_[k] for k in PARAM_NAMES)

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
