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
