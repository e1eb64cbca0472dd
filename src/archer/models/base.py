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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import OptimizeResult, minimize
from scipy.stats import nbinom
from threadpoolctl import threadpool_limits

Terms = Callable[..., "np.ndarray | tuple[np.ndarray, np.ndarray]"]
Total = Callable[..., "tuple[float, np.ndarray | None]"]


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


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS on one thread inside the block (threadpoolctl; restored on exit).

    SciPy's L-BFGS-B (a C translation since SciPy 1.15) makes BLAS calls on vectors of four
    numbers at every step; with OpenBLAS' worker threads awake this made a BG/NBD fit 2-3x
    slower on a busy machine, the spinning threads taking CPU from the likelihood
    (scipy/scipy#22438, OpenMathLib/OpenBLAS#5383). The likelihoods make no BLAS call worth a
    thread, so a fit loses nothing.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


WARM_START_PATTERNS = 20_000
GTOL = 1e-9  # on the gradient of the objective per customer, in log-parameters


def _lbfgsb(objective, start, maxiter):
    return minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-30.0, 30.0)] * len(start),
        options={"maxiter": maxiter, "ftol": 1e-14, "gtol": GTOL},
    )


def sample_patterns(data: Sequence[np.ndarray], w: np.ndarray, m: int, seed: int = 0):
    """About ``m`` patterns drawn with probability ``min(1, m w / sum(w))``, each weighted by
    ``w`` over that probability, so that any weighted total is estimated without bias; None
    when there are fewer than ``2 m`` patterns (fit them all)."""
    if w.size < 2 * m:
        return None
    prob = np.minimum(1.0, w * (m / w.sum()))
    keep = np.random.default_rng(seed).random(w.size) < prob
    return [v[keep] for v in data], w[keep] / prob[keep]


def newton(hessian, theta, penalizer: float, n: float, max_steps: int = 50):
    """Newton's method on f = (-LL + penalizer |p|^2) / n over theta = log p, from ``theta``.

    Each step solves with the exact Hessian and is halved until f decreases (Armijo) or, where
    the decrease is below f's rounding, the gradient halves. Stops with success when the largest
    gradient component is at most :data:`GTOL`, or when no step decreases f any more while the
    gradient is within 100 GTOL (rounding); returns None when
    the Hessian is not positive definite, a bound exp(+-30) would be crossed or the steps run
    out, so that the caller falls back to L-BFGS-B.
    """

    last = {}

    def fgh(th):
        p = np.exp(th)
        ll, g, h = hessian(p)
        gp = -g + 2.0 * penalizer * p
        hp = -h + 2.0 * penalizer * np.eye(p.size)
        last[th.tobytes()] = (ll, hp)
        f = (-ll + penalizer * np.sum(p**2)) / n
        return f, gp * p / n, (hp * np.outer(p, p) + np.diag(gp * p)) / n

    def done(th, f, g, step_no, message):
        ll, hp = last[th.tobytes()]
        return OptimizeResult(
            x=th,
            fun=f,
            jac=g,
            nit=step_no,
            success=True,
            message=message,
            log_likelihood=ll,
            hessian=hp,
        )

    f, g, h = fgh(theta)
    for step_no in range(max_steps):
        if not (np.isfinite(f) and np.all(np.isfinite(g))):
            return None
        if np.max(np.abs(g)) <= GTOL:
            return done(theta, f, g, step_no, f"CONVERGENCE: NEWTON, GRADIENT <= {GTOL:g}")
        try:
            np.linalg.cholesky(h)  # positive definite, or LinAlgError
            step = -np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            return None
        t = 1.0
        while True:
            trial = theta + t * step
            if np.any(np.abs(trial) >= 30.0):
                return None
            f_new, g_new, h_new = fgh(trial)
            if f_new <= f + 1e-4 * t * (g @ step):
                break
            # near the optimum the predicted decrease is below f's rounding: judge by the gradient
            if f_new <= f + 1e-13 * abs(f) and np.max(np.abs(g_new)) <= 0.5 * np.max(np.abs(g)):
                break
            t *= 0.5
            if t < 1e-3:
                if np.max(np.abs(g)) <= 100.0 * GTOL:
                    message = "CONVERGENCE: NEWTON, NO DECREASE AT ROUNDING LEVEL"
                    return done(theta, f, g, step_no, message)
                return None
        theta, f, g, h = trial, f_new, g_new, h_new
    return None


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
    @classmethod
    def _total(cls, data, w) -> Total:
        """``(params, grad=False) -> (LL, gradient or None)``: the weighted total over the patterns.

        The default sums :attr:`terms`; a model whose likelihood repeats work across patterns
        overrides it to do that work once per fit (see :func:`archer.models.bgnbd.bg_total`).
        """
        terms = cls.terms

        def total(p, grad=False):
            if not grad:
                return float(w @ terms(p, *data)), None
            ll, g = terms(p, *data, grad=True)
            return float(w @ ll), g @ w

        return total

    def _objective(self, total: Total, penalizer: float, scale: float):
        """``theta -> (f, grad f)`` with f = (-LL + penalizer * |p|^2) / scale, p = exp(theta)."""

        def value(theta):
            p = np.exp(theta)
            return (-total(p)[0] + penalizer * np.sum(p**2)) / scale

        if not self.ANALYTIC_GRADIENT:
            return lambda theta: (value(theta), numeric_gradient(value, theta))

        def both(theta):
            p = np.exp(theta)
            ll, g = total(p, grad=True)
            f = -ll + penalizer * np.sum(p**2)
            grad = (-g + 2.0 * penalizer * p) * p  # chain rule for log-parameters
            return f / scale, grad / scale

        return both

    def _optimise(self, total: Total, objective, data, w, penalizer, start, maxiter):
        """Minimise the objective over log-parameters; an ``OptimizeResult``.

        With more than twice :data:`WARM_START_PATTERNS` patterns, L-BFGS-B first fits a
        weighted sample of about that many (an unbiased estimate of the total, see
        :func:`sample_patterns`) for a start near the optimum. A likelihood with an exact
        ``hessian`` (BG/NBD, MBG/NBD) is then polished by Newton steps on all the patterns, which
        converge quadratically where L-BFGS-B, starting without curvature, needs some twenty
        evaluations even from a good start; should a Newton step fail (a Hessian not positive
        definite, no decrease, a bound reached), or without a Hessian, L-BFGS-B finishes on all
        the patterns. The answer is always the optimum of the full likelihood: the sample only
        chooses where the search starts.
        """
        n = float(w.sum())
        hessian = getattr(total, "hessian", None)

        def finish(x0):
            res = _lbfgsb(objective, x0, maxiter)
            if hessian is not None and res.success:
                polished = newton(hessian, res.x, penalizer, n)
                if polished is not None:
                    return polished
            return res

        sample = sample_patterns(data, w, WARM_START_PATTERNS)
        if sample is not None:
            warm = _lbfgsb(self._objective(self._total(*sample), penalizer, n), start, maxiter)
            if warm.success:
                if hessian is not None:
                    polished = newton(hessian, warm.x, penalizer, n)
                    if polished is not None:
                        return polished
                res = finish(warm.x)
                if res.success and (hessian is None or "hessian" in res):
                    return res
                # A sample can lie on a ridge the full data do not (a and b running off
                # together) and L-BFGS-B can stall along it: search again from where it would
                # start without a sample, and keep the better of the two.
                other = finish(start)
                return res if res.success and res.fun <= other.fun else other
        return finish(start)

    def _fit(self, data, w, penalizer, initial_params, maxiter, default_start):
        if penalizer < 0:
            raise ValueError("penalizer must be >= 0")
        n = float(w.sum())
        total = self._total(data, w)
        objective = self._objective(total, penalizer, n)  # per-customer scale: sane tolerances
        start = np.log(
            np.asarray(default_start if initial_params is None else initial_params, float)
        )
        with np.errstate(all="ignore"), single_threaded_blas():
            res = self._optimise(total, objective, data, w, penalizer, start, maxiter)
        p = np.exp(res.x)
        names = self.PARAM_NAMES
        self.params_ = dict(zip(names, (float(v) for v in p), strict=True))
        # a Newton fit carries the log-likelihood and Hessian at its last point
        newton_ll, newton_hessian = res.get("log_likelihood"), res.get("hessian")
        self.log_likelihood_ = total(p)[0] if newton_ll is None else newton_ll
        self.message_ = str(res.message)
        self.n_customers_ = n
        self.aic_ = 2.0 * len(names) - 2.0 * self.log_likelihood_
        self.standard_errors_ = self._standard_errors(p, total, penalizer, newton_hessian)
        # L-BFGS-B stops on ABNORMAL when the line search cannot improve an already
        # stationary point (finite-difference gradients): accept it only if the gradient is tiny
        # and the Hessian there is positive definite (every standard error finite), not a point
        # far along a flat ridge of parameters the data do not identify.
        stationary = (
            "ABNORMAL" in self.message_
            and np.max(np.abs(objective(res.x)[1])) < 1e-5
            and all(np.isfinite(v) for v in self.standard_errors_.values())
        )
        on_bound = np.any(np.abs(res.x) >= 30.0 - 1e-9)
        # A point where no parameter has a finite standard error is on a ridge the data do
        # not identify, whatever the optimiser says: L-BFGS-B can report success there (it
        # did for the M-BG/NBD on three customers on one machine and not another). One
        # parameter at its limit (BG/NBD's a -> 0: nobody drops out) is a boundary estimate.
        identified = any(np.isfinite(v) for v in self.standard_errors_.values())
        self.converged_ = bool(
            (bool(res.success) or stationary)
            and bool(np.all(np.isfinite(res.x)))
            and np.isfinite(self.log_likelihood_)
            and not on_bound
            and identified
        )
        if on_bound:
            self.message_ += " (a parameter reached the bound exp(+-30))"
        elif not identified:
            self.message_ += " (the data identify no parameter: no finite standard error)"
        if not self.converged_:
            warnings.warn(f"{self.NAME} fit did not converge: {self.message_}", stacklevel=3)
        return self

    def _standard_errors(self, p, total: Total, penalizer, hessian=None) -> dict[str, float]:
        """Inverse Hessian of -LL (+ penalty) in natural parameters: ``hessian`` when given (the
        one of the last Newton step), the model's exact one when it has it, else by finite
        differences."""
        k = p.size
        hess = np.empty((k, k))
        exact = getattr(total, "hessian", None)
        with np.errstate(all="ignore"):
            if hessian is not None:
                hess = np.array(hessian, dtype=float)
            elif exact is not None:
                hess = -exact(p)[2] + 2.0 * penalizer * np.eye(k)
            elif self.ANALYTIC_GRADIENT:

                def grad(q):
                    return -total(q, grad=True)[1] + 2.0 * penalizer * q

                for j in range(k):
                    h = 1e-5 * p[j]
                    up, dn = p.copy(), p.copy()
                    up[j] += h
                    dn[j] -= h
                    hess[:, j] = (grad(up) - grad(dn)) / (2.0 * h)
            else:

                def f(q):
                    return -total(q)[0] + penalizer * np.sum(q**2)

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
