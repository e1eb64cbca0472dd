"""Maximum-likelihood machinery shared by the customer-base models.

Every model supplies one pure function, ``terms(params, *data, grad=False)``, that returns the
per-pattern log-likelihood (and, when the model has an analytic gradient, the ``(k, n)`` array of
its partial derivatives in the natural parameters). :class:`MLEModel` maximises the weighted sum
over the log-parameters with L-BFGS-B, so every parameter stays positive, and records the
parameters, log-likelihood, AIC, standard errors and an honest convergence report.

A model without an analytic gradient (Pareto/NBD) gets central finite differences of the
log-likelihood instead; its cost is a few more likelihood evaluations, never a wrong answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.stats import nbinom

Terms = Callable[..., "np.ndarray | tuple[np.ndarray, np.ndarray]"]


def as_arrays(*values: ArrayLike) -> list[np.ndarray]:
    """Float arrays broadcast to one shape."""
    return np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))


def pattern_data(*values: ArrayLike, weights: ArrayLike | None = None):
    """Flat float arrays for a fit, and the weights (ones when not given)."""
    data = [np.ravel(v) for v in as_arrays(*values)]
    w = np.ones_like(data[0]) if weights is None else np.ravel(np.asarray(weights, dtype=float))
    if w.shape != data[0].shape:
        raise ValueError("weights must have one entry per pattern")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and non-negative")
    return data, w


def total_log_likelihood(terms: Terms, params, data: Sequence[np.ndarray], w) -> float:
    return float(w @ terms(np.asarray(params, dtype=float), *data))


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, rel: float = 1e-6):
    """Central finite differences of ``f`` at ``x`` (steps relative to ``|x|``, at least rel)."""
    g = np.empty_like(x)
    for j in range(x.size):
        h = rel * max(1.0, abs(x[j]))
        up, dn = x.copy(), x.copy()
        up[j] += h
        dn[j] -= h
        g[j] = (f(up) - f(dn)) / (2.0 * h)
    return g


class MLEModel:
    """Base class: subclasses set ``NAME``, ``PARAM_NAMES``, ``terms`` and ``ANALYTIC_GRADIENT``.

    After a fit: ``params_`` (dict named as in the paper), ``log_likelihood_`` (total, weighted,
    without the penalty), ``aic_``, ``standard_errors_`` (square roots of the diagonal of the
    inverse Hessian of the penalised negative log-likelihood, natural parameters),
    ``converged_``, ``message_`` (the optimiser's) and ``n_customers_`` (sum of the weights).
    """

    NAME = "model"
    PARAM_NAMES: tuple[str, ...] = ()
    ANALYTIC_GRADIENT = True
    terms: Terms

    def __init__(self) -> None:
        self.params_: dict[str, float] | None = None

    def __repr__(self) -> str:
        if self.params_ is None:
            return f"{type(self).__name__}()"
        inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({inner})"

    # ----------------------------------------------------------------------------- fitting
    def _objective(self, data, w, penalizer: float, scale: float):
        """``theta -> (f, grad f)`` with f = (-LL + penalizer * |p|^2) / scale, p = exp(theta)."""
        terms = type(self).terms

        def value(theta):
            p = np.exp(theta)
            return (-(w @ terms(p, *data)) + penalizer * np.sum(p**2)) / scale

        if not self.ANALYTIC_GRADIENT:
            return lambda theta: (value(theta), numeric_gradient(value, theta))

        def both(theta):
            p = np.exp(theta)
            ll, g = terms(p, *data, grad=True)
            f = -(w @ ll) + penalizer * np.sum(p**2)
            grad = (-(g @ w) + 2.0 * penalizer * p) * p  # chain rule for log-parameters
            return f / scale, grad / scale

        return both

    def _fit(self, data, w, penalizer, initial_params, maxiter, default_start):
        if penalizer < 0:
            raise ValueError("penalizer must be >= 0")
        n = float(w.sum())
        objective = self._objective(data, w, penalizer, n)  # per-customer scale: sane tolerances
        start = np.log(
            np.asarray(default_start if initial_params is None else initial_params, float)
        )
        with np.errstate(all="ignore"):
            res = minimize(
                objective,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-30.0, 30.0)] * len(start),
                options={"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-9},
            )
        p = np.exp(res.x)
        names = self.PARAM_NAMES
        self.params_ = dict(zip(names, (float(v) for v in p), strict=True))
        self.log_likelihood_ = total_log_likelihood(type(self).terms, p, data, w)
        self.message_ = str(res.message)
        # L-BFGS-B stops on ABNORMAL when the line search cannot improve an already
        # stationary point (finite-difference gradients): accept it only if the gradient is tiny.
        stationary = np.max(np.abs(objective(res.x)[1])) < 1e-5
        on_bound = np.any(np.abs(res.x) >= 30.0 - 1e-9)
        self.converged_ = bool(
            (bool(res.success) or ("ABNORMAL" in self.message_ and stationary))
            and bool(np.all(np.isfinite(res.x)))
            and np.isfinite(self.log_likelihood_)
            and not on_bound
        )
        if on_bound:
            self.message_ += " (a parameter reached the bound exp(+-30))"
        self.n_customers_ = n
        self.aic_ = 2.0 * len(names) - 2.0 * self.log_likelihood_
        self.standard_errors_ = self._standard_errors(p, data, w, penalizer)
        if not self.converged_:
            warnings.warn(f"{self.NAME} fit did not converge: {self.message_}", stacklevel=3)
        return self

    def _standard_errors(self, p, data, w, penalizer) -> dict[str, float]:
        """Inverse Hessian of -LL (+ penalty) in natural parameters, by finite differences."""
        terms = type(self).terms
        k = p.size
        hess = np.empty((k, k))
        with np.errstate(all="ignore"):
            if self.ANALYTIC_GRADIENT:

                def grad(q):
                    _, g = terms(q, *data, grad=True)
                    return -(g @ w) + 2.0 * penalizer * q

                for j in range(k):
                    h = 1e-5 * p[j]
                    up, dn = p.copy(), p.copy()
                    up[j] += h
                    dn[j] -= h
                    hess[:, j] = (grad(up) - grad(dn)) / (2.0 * h)
            else:

                def f(q):
                    return -(w @ terms(q, *data)) + penalizer * np.sum(q**2)

                steps = 1e-4 * p
                for i in range(k):
                    for j in range(i, k):
                        vals = []
                        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                            q = p.copy()
                            q[i] += si * steps[i]
                            q[j] += sj * steps[j]
                            vals.append(f(q))
                        hess[i, j] = hess[j, i] = (vals[0] - vals[1] - vals[2] + vals[3]) / (
                            4.0 * steps[i] * steps[j]
                        )
        hess = 0.5 * (hess + hess.T)
        try:
            diag = np.diag(np.linalg.inv(hess))
            se = np.sqrt(np.where(diag > 0, diag, np.nan))
        except np.linalg.LinAlgError:
            se = np.full(k, np.nan)
        return dict(zip(self.PARAM_NAMES, (float(v) for v in se), strict=True))

    def _params(self) -> tuple[float, ...]:
        if self.params_ is None:
            raise RuntimeError("the model is not fitted; call fit() first")
        return tuple(self.params_[k] for k in self.PARAM_NAMES)

    def log_likelihood(self, *data: ArrayLike, weights: ArrayLike | None = None) -> float:
        """Total log-likelihood of the fitted parameters on other data (e.g. a holdout)."""
        arrays, w = pattern_data(*data, weights=weights)
        return total_log_likelihood(type(self).terms, self._params(), arrays, w)


def nbd_log_pmf(x, r, alpha, t) -> np.ndarray:
    """log P(N(t) = x) for a Poisson count with a Gamma(r, alpha) rate (the NBD)."""
    return nbinom.logpmf(x, r, alpha / (alpha + t))


def nbd_log_sf(x, r, alpha, t) -> np.ndarray:
    """log P(N(t) >= x) for the NBD count (0 at x <= 0)."""
    return nbinom.logsf(np.asarray(x) - 1, r, alpha / (alpha + t))
