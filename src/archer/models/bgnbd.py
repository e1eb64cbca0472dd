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
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, polygamma

from archer.models.base import as_arrays, nbd_log_pmf, nbd_log_sf
from archer.models.recency import RecencyModel, _dot, distinct

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


class BGLikelihood:
    """Weighted total log-likelihood of the BG/NBD (``shift`` 0) or MBG/NBD (``shift`` 1).

    Both per-pattern log-likelihoods are ``A(x) + r log(alpha) - (r+x) log(alpha+T) +
    softplus(u)`` with ``A(x)`` the gamma-function part and
    ``u = log(a) - log(b+x+shift-1) + (r+x) (log(alpha+T) - log(alpha+t_x))`` the log-odds of
    the 'dropped out after t_x' term (absent for BG/NBD customers without repeat purchases).
    The special functions are evaluated once per distinct frequency, T or t_x (a million
    customers have ~70 frequencies and ~360 values of T), the parts that depend on one of them
    only are summed with weights aggregated per value, and only ``softplus(u)`` and its
    derivatives are computed per pattern. ``lik(params, grad=False) -> (LL, gradient)`` equals
    the weighted sum of :func:`_loglik_terms` to rounding; :meth:`hessian` adds the exact
    matrix of second derivatives, for Newton steps and standard errors.
    """

    def __init__(self, x, tx, T, w, *, shift: int) -> None:
        self.shift = shift
        ix, self.ux = distinct(x)
        iT, self.uT = distinct(T)
        self.n_w = float(w.sum())
        self.w_x = np.bincount(ix, weights=w, minlength=self.ux.size)
        self.w_T = np.bincount(iT, weights=w, minlength=self.uT.size)
        self.wx_T = np.bincount(iT, weights=w * x, minlength=self.uT.size)
        # b + x + shift - 1, kept positive where the term is absent (BG/NBD at x = 0)
        self.xk = np.maximum(self.ux + (shift - 1.0), 0.0)
        # the patterns with the 'dropped out' term, sorted by frequency so that per-frequency
        # values are spread with np.repeat and per-frequency sums taken with np.add.reduceat
        mix = np.flatnonzero((x > 0) | (shift > 0))
        mix = mix[np.argsort(ix[mix], kind="stable")]
        self.m_ix = m_ix = ix[mix]
        self._work: np.ndarray | None = None
        self.x_start = np.flatnonzero(np.r_[True, m_ix[1:] != m_ix[:-1]]) if mix.size else mix
        self.x_used = m_ix[self.x_start]
        self.x_count = np.diff(np.r_[self.x_start, mix.size])
        self.m_iT, self.m_w, self.m_x = iT[mix], w[mix], x[mix]
        self.itx, self.utx = distinct(tx[mix])

    def __call__(self, params, grad: bool = False):
        out = self._evaluate(params, order=1 if grad else 0)
        return out[0], out[1]

    def hessian(self, params):
        """``(LL, gradient, Hessian)`` in the natural parameters ``(r, alpha, a, b)``."""
        return self._evaluate(params, order=2)

    def _per_x(self, v: np.ndarray) -> np.ndarray:
        """Sums of a per-pattern array over each frequency, as an array over ``ux``."""
        out = np.zeros(self.ux.size)
        if v.size:
            out[self.x_used] = np.add.reduceat(v, self.x_start)
        return out

    def _evaluate(self, params, order: int):
        r, alpha, a, b = (float(v) for v in params)
        ux, uT, utx, k = self.ux, self.uT, self.utx, self.shift
        m_iT, itx, m_ix, m_w = self.m_iT, self.itx, self.m_ix, self.m_w
        n_w, w_x, w_T = self.n_w, self.w_x, self.w_T
        if self._work is None:  # per-pattern work arrays, reused: no page faults per call
            self._work = np.empty((10, m_w.size))
        ratio, rx, u, e, d, tmp, s, d_inv, du_alpha, q = self._work
        take = np.take
        la_T = np.log(alpha + uT)
        la_tx = np.log(alpha + utx)
        log_alpha = np.log(alpha)
        bx, abx = b + ux + k, a + b + ux + k
        head = gammaln(r + ux) - gammaln(r) + gammaln(a + b) + gammaln(bx) - gammaln(b)
        head -= gammaln(abx)
        inv_bk = 1.0 / (b + self.xk)
        odds0 = np.log(a) + np.log(inv_bk)  # log-odds without the (r+x) log ratio, per x
        take(la_T, m_iT, out=ratio)
        ratio -= take(la_tx, itx, out=tmp)  # log((alpha+T) / (alpha+t_x)) >= 0
        np.add(self.m_x, r, out=rx)
        np.multiply(rx, ratio, out=u)
        u += take(odds0, m_ix, out=tmp)
        w_rT = r * w_T + self.wx_T  # sum of w (r+x) per T
        # softplus(u) = max(u, 0) + log(1 + e), e = exp(-|u|) <= 1: no overflow for any u, and
        # an absolute error below 1e-16, the rounding of the pattern's log-likelihood
        np.abs(u, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)
        np.add(e, 1.0, out=d)
        np.log(d, out=tmp)
        tmp += np.maximum(u, 0.0, out=s)
        ll = float(w_x @ head + n_w * r * log_alpha - w_rT @ la_T + _dot(m_w, tmp))
        if order == 0:
            return ll, None
        np.reciprocal(d, out=d)  # 1 / (1 + e)
        np.minimum(u, 0.0, out=s)
        np.exp(s, out=s)
        s *= d  # expit(u) = exp(min(u, 0)) / (1 + exp(-|u|))
        s *= m_w  # weight times the share of the 'dropped out' term
        inv_T = 1.0 / (alpha + uT)
        inv_tx = 1.0 / (alpha + utx)
        take(inv_T, m_iT, out=d_inv)
        d_inv -= take(inv_tx, itx, out=tmp)
        np.multiply(rx, d_inv, out=du_alpha)  # d u / d alpha; d u / d r is the ratio
        s_x = self._per_x(s)
        dg_ab = digamma(a + b) - digamma(abx)
        grad = np.array(
            [
                w_x @ (digamma(r + ux) - digamma(r))
                + n_w * log_alpha
                - w_T @ la_T
                + _dot(s, ratio),
                n_w * r / alpha - w_rT @ inv_T + _dot(s, du_alpha),
                w_x @ dg_ab + s_x.sum() / a,
                w_x @ (dg_ab + digamma(bx) - digamma(b)) - s_x @ inv_bk,
            ]
        )
        if order == 1:
            return ll, grad, None
        # softplus'' = expit(u) expit(-u) = e / (1 + e)^2
        np.multiply(e, d, out=q)
        q *= d
        q *= m_w
        q_r = np.multiply(q, ratio, out=e)  # e, rx and u are free from here on
        q_alpha = np.multiply(q, du_alpha, out=rx)
        q_x, qr_x, qa_x = self._per_x(q), self._per_x(q_r), self._per_x(q_alpha)
        # d2 u / d alpha2 = rx (inv_tx^2 - inv_T^2) = -du_alpha (inv_T + inv_tx)
        inv_sum = take(inv_T, m_iT, out=u)
        inv_sum += take(inv_tx, itx, out=tmp)
        h = np.empty((4, 4))
        tg_ab = polygamma(1, a + b) - polygamma(1, abx)
        h[0, 0] = w_x @ (polygamma(1, r + ux) - polygamma(1, r)) + _dot(q_r, ratio)
        h[0, 1] = n_w / alpha - w_T @ inv_T + _dot(q_r, du_alpha) + _dot(s, d_inv)
        h[1, 1] = (
            -n_w * r / alpha**2
            + w_rT @ inv_T**2
            + _dot(q_alpha, du_alpha)
            - float(np.einsum("i,i,i->", s, du_alpha, inv_sum))
        )
        h[0, 2] = qr_x.sum() / a
        h[0, 3] = -(qr_x @ inv_bk)
        h[1, 2] = qa_x.sum() / a
        h[1, 3] = -(qa_x @ inv_bk)
        h[2, 2] = w_x @ tg_ab + (q_x.sum() - s_x.sum()) / a**2
        h[2, 3] = w_x @ tg_ab - (q_x @ inv_bk) / a
        h[3, 3] = w_x @ (tg_ab + polygamma(1, bx) - polygamma(1, b)) + (q_x + s_x) @ inv_bk**2
        h = np.triu(h) + np.triu(h, 1).T
        return ll, grad, h


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


# A series below stops when its tail is below this share of its sum, or after MAX_TERMS terms;
# it needs about 37 / (1 - z) terms, so beyond z = SERIES_MAX_Z (t > 1,000 (alpha+T))
# expected_alive leaves the element to scipy's hyp2f1 (its transformation to 1 - z).
SERIES_TOL = 1e-17
MAX_TERMS = 100_000
SERIES_MAX_Z = 0.999


def expected_alive(r, a, b, x, alpha_T, t, *, small: bool = False) -> np.ndarray:
    """E[purchases in (T, T+t]] of a customer alive at T with p ~ Beta(a, B), B = b + x, and
    lambda ~ Gamma(R, alpha+T), R = r + x: the bracket of the paper's eq. 10,

        C/(a-1) [1 - (1-z)^R 2F1(R, B; C; z)],  C = a+b+x-1,  z = t / (alpha+T+t).

    Taking the log of a 2F1 is wrong here: with a + b < 1 and x = 0, C is negative and
    Euler's 2F1(A, a-1; C; z), A = C - R, is negative for many T; and scipy's ``hyp2f1``
    returns NaN for some of these parameters (a = 5, x = 500 among them). Two exact series
    instead, each summed in log space with a running scale (nothing overflows or underflows):

    * when a <= R + 2, Euler's form split as 2F1(A, a-1; C; z) = 1 + (a-1)/C S:
      E = C (1 - (1-z)^(a-1)) / (a-1) - (1-z)^(a-1) S,
      S = sum_{n>=1} (A)_n (a)_(n-1) / ((C+1)_(n-1) n!) z^n; neither part has a pole (a = 1
      is the limit -C log(1-z); C + 1 = a + B > 0) and past n = -A every term has one sign;
    * when a > R + 2 (a fit on a ridge), the paper's form, whose terms are all positive
      (C > 0) and fall like n^(R-a) z^n where Euler's would grow like n^(a-R-2) z^n.

    A series needs about 37 / (1 - z) terms, so for z > :data:`SERIES_MAX_Z` (t more than
    1,000 times alpha + T, far beyond any holdout or horizon) the bracket is taken from scipy's
    ``hyp2f1`` (Euler's form, no logarithm), which transforms to 1 - z there. An element that
    none of these gives as a finite number is NaN, which every caller that shows results refuses.
    """
    x, alpha_T, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, alpha_T, t)))
    shape = x.shape
    if (
        x.size > 64 and not small
    ):  # each distinct (x, alpha+T, t) once: a million customers have ~7,000
        keys, back = np.unique(np.stack([np.ravel(v) for v in (x, alpha_T, t)]), axis=1,
                               return_inverse=True)  # fmt: skip
        return expected_alive(r, a, b, *keys, small=True)[np.ravel(back)].reshape(shape)
    R, B = r + x, b + x
    C = a + B - 1.0
    A = a + b - 1.0 - r  # C - R: the same for every x
    log1mz = np.log(alpha_T) - np.log(alpha_T + t)  # log(1 - z) <= 0
    z = -np.expm1(log1mz)
    am1 = a - 1.0
    out = np.empty(z.shape)
    near_one = z > SERIES_MAX_Z
    if near_one.any():
        f = hyp2f1(A, am1, C[near_one], z[near_one])
        with np.errstate(all="ignore"):
            p_f = np.exp(am1 * log1mz[near_one]) * f
            out[near_one] = C[near_one] / am1 * (1.0 - p_f) if am1 else np.nan
    euler = (a <= R + 2.0) & ~near_one
    if euler.any():
        L, Ce = log1mz[euler], C[euler]
        first = -Ce * L if am1 == 0.0 else Ce * (-np.expm1(am1 * L) / am1)
        # S = A z * sum_m (A+1)_m (a)_m / ((C+1)_m (2)_m) z^m
        with np.errstate(divide="ignore"):
            sign, log_s = _log_series(A + 1.0, a, Ce + 1.0, 2.0, z[euler])
            log_s += np.log(abs(A)) + np.log(z[euler])
        with np.errstate(over="ignore"):
            out[euler] = first - np.sign(A) * sign * np.exp(am1 * L + log_s)
    paper = ~euler & ~near_one
    if paper.any():
        L, Cp = log1mz[paper], C[paper]
        _, log_f = _log_series(R[paper], B[paper], Cp, 1.0, z[paper])
        out[paper] = Cp / am1 * -np.expm1(R[paper] * L + log_f)
    return out[()] if out.ndim == 0 else out


def _log_series(p1, p2, q1, q2: float, z: np.ndarray):
    """``(sign, log|sum|)`` of sum_{m>=0} (p1)_m (p2)_m / ((q1)_m (q2)_m) z^m per element of
    ``z`` (``p1``, ``p2``, ``q1`` scalars or arrays like it; p2, q1, q2 > 0); NaN where it does
    not converge within :data:`MAX_TERMS` terms."""
    shape = z.shape
    p1, p2, q1, zz = (np.ravel(np.broadcast_to(np.asarray(v, dtype=float), shape)) for v in
                      (p1, p2, q1, z))  # fmt: skip
    sign = np.ones(zz.size)
    log_abs = np.zeros(zz.size)  # the first term, 1
    live = np.flatnonzero(zz > 0.0)
    p1, p2, q1, zl = p1[live], p2[live], q1[live], zz[live]
    lz = np.log(np.where(zl > 0.0, zl, 1.0))
    lt = np.zeros(live.size)  # log|term|
    ts = np.ones(live.size)  # sign of the term
    scale, acc = np.zeros(live.size), np.ones(live.size)  # the sum is acc * exp(scale)
    log_tol = np.log(SERIES_TOL)

    def finish(which, value):
        idx = live[which]
        sign[idx] = np.sign(value[which])
        with np.errstate(divide="ignore"):
            log_abs[idx] = scale[which] + np.log(np.abs(value[which]))

    m = 0
    while live.size:
        f1 = p1 + m
        ended = f1 == 0.0  # p1 a negative integer: the series stops here
        with np.errstate(divide="ignore"):
            lt = lt + np.log(np.abs(f1)) + np.log(p2 + m) - np.log(q1 + m) - np.log(q2 + m) + lz
        ts = np.where(f1 < 0.0, -ts, ts)
        shrink = np.exp(-np.abs(lt - scale))  # the smaller scale over the larger
        new = np.where(lt > scale, acc * shrink + ts, acc + ts * shrink)
        acc = np.where(ended, acc, new)
        scale = np.where(ended, scale, np.maximum(scale, lt))
        m += 1
        # once p1 + m > 0 the terms keep one sign, and each of (p+m)/(q+m) moves toward 1, so
        # the ratio of later terms is at most z times the product of max(1, (p+m)/(q+m)) over
        # either pairing of (p1, p2) with (q1, q2); below 1 the tail is at most geometric
        straight = np.maximum(1.0, (p1 + m) / (q1 + m)) * np.maximum(1.0, (p2 + m) / (q2 + m))
        crossed = np.maximum(1.0, (p1 + m) / (q2 + m)) * np.maximum(1.0, (p2 + m) / (q1 + m))
        ratio = zl * np.minimum(straight, crossed)
        ok = (p1 + m > 0.0) & (ratio < 1.0)
        q = np.where(ok, ratio, 0.5)
        log_tail = np.where(ok, lt + np.log(q) - np.log1p(-q), np.inf)
        with np.errstate(divide="ignore"):
            done = ended | (log_tail < scale + np.log(np.abs(acc)) + log_tol)
        if m >= MAX_TERMS:
            acc = np.where(done, acc, np.nan)
            done[:] = True
        if done.any():
            finish(done, acc)
            keep = ~done
            live, p1, p2, q1, zl, lz, lt, ts, scale, acc = (
                v[keep] for v in (live, p1, p2, q1, zl, lz, lt, ts, scale, acc)
            )
    return sign.reshape(shape), log_abs.reshape(shape)


class BGNBD(RecencyModel):
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

    @classmethod
    def _total(cls, data, w):
        return BGLikelihood(*data, w, shift=0)

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
        """E[purchases in (T, T+t] | alive at T], p ~ Beta(a, b+x), lambda ~ Gamma(r+x, alpha+T)
        (paper, eq. 10 without P(alive)): see :func:`expected_alive`."""
        return expected_alive(r, a, b, x, alpha_T, t)

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
