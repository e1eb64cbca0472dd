"""The Pareto/NBD model of Schmittlein, Morrison & Colombo (1987).

D. C. Schmittlein, D. G. Morrison and R. Colombo, "Counting Your Customers: Who Are They and What
Will They Do Next?", Management Science 33(1), 1-24, 1987; likelihood and related expressions as in
P. S. Fader and B. G. S. Hardie, "A Note on Deriving the Pareto/NBD Model and Related
Expressions", 2005 (http://brucehardie.com/notes/009/).

While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha) and lives an
exponential lifetime with rate mu ~ Gamma(s, beta). For x repeat purchases, the last at t_x:

    L = Gamma(r+x) alpha^r beta^s / Gamma(r)
        * [ (alpha+T)^-(r+x) (beta+T)^-s  +  s (G(t_x) - G(T)) ],
    G(t) = int_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du.

G is a Gauss hypergeometric function. With a = r+s+x, for alpha >= beta
G(t) = (alpha+t)^-a / a * 2F1(a, s+1; a+1; (alpha-beta)/(alpha+t)), and symmetrically with the
roles of (alpha, r+x) and (beta, s+1) exchanged when alpha < beta. Euler's transformation turns
both into 2F1(1, .; a+1; z), which lies between 1 and a/s (or a/(r+x-1)) and never overflows:

    alpha >= beta:  log G = -log a - (r+x) log(alpha+t) - s log(beta+t)
                            + log 2F1(1, r+x; a+1; (alpha-beta)/(alpha+t))
    alpha <  beta:  log G = -log a - (r+x-1) log(alpha+t) - (s+1) log(beta+t)
                            + log 2F1(1, s+1; a+1; (beta-alpha)/(beta+t))

The difference G(t_x) - G(T) is taken in log space. The likelihood has no closed-form gradient
(derivatives of 2F1 in its parameters), so the fit uses central finite differences.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import quad
from scipy.special import digamma, expit, gammaln, hyp2f1

from archer.models.base import as_arrays, pattern_data
from archer.models.recency import RecencyModel, _dot, distinct

PARAM_NAMES = ("r", "alpha", "s", "beta")


def log_tail(r, alpha, s, beta, x, t):
    """log G(t) = log int_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du (see the module docstring)."""
    a = r + s + x
    la, lb = np.log(alpha + t), np.log(beta + t)
    if alpha >= beta:
        z = (alpha - beta) / (alpha + t)
        return -np.log(a) - (r + x) * la - s * lb + np.log(hyp2f1(1.0, r + x, a + 1.0, z))
    z = (beta - alpha) / (beta + t)
    return (
        -np.log(a) - (r + x - 1.0) * la - (s + 1.0) * lb + np.log(hyp2f1(1.0, s + 1.0, a + 1.0, z))
    )


def _log_parts(params, x, tx, T):
    """log of the 'alive at T' and the 'died in (t_x, T]' parts of the bracket."""
    r, alpha, s, beta = params
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    g_tx = log_tail(r, alpha, s, beta, x, tx)
    g_T = log_tail(r, alpha, s, beta, x, T)
    with np.errstate(divide="ignore"):  # t_x = T: the customer cannot have died in between
        diff = g_tx + np.log(-np.expm1(np.minimum(g_T - g_tx, 0.0)))
    died = np.log(s) + diff
    return alive, died


def _loglik_terms(params, x, tx, T):
    r, alpha, s, beta = params
    alive, died = _log_parts(params, x, tx, T)
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return head + np.logaddexp(alive, died)


class ParetoLikelihood:
    """Weighted total Pareto/NBD log-likelihood, the hypergeometric tails computed once per
    distinct ``(x, T)`` and ``(x, t_x)`` pair (a million customers in 187,000 patterns have
    about 7,000 of each) and the gamma-function head once per distinct x.
    ``lik(params, grad=False) -> (LL, gradient)``: LL equals the weighted sum of
    :func:`_loglik_terms` to rounding; the gradient is exact but for the derivatives of the
    tails (a Gauss hypergeometric function in its parameters), taken by central differences on
    the distinct tails alone, so it costs about four likelihood evaluations less than central
    differences of the whole likelihood (eight).
    """

    def __init__(self, x, tx, T, w) -> None:
        ix, self.ux = distinct(x)
        self.w_x = np.bincount(ix, weights=w, minlength=self.ux.size)
        self.n_w = float(w.sum())
        self.x, self.w = x, w
        self.iT, self.uT = distinct(T)
        self.ixT, self.xT = self._pairs(ix, self.iT, self.uT)
        itx, utx = distinct(tx)
        self.ixtx, self.xtx = self._pairs(ix, itx, utx)

    def _pairs(self, ix, it, ut):
        """Codes of the distinct (x, t) pairs, and their x and t values."""
        codes, pairs = distinct(ix * float(ut.size) + it)
        px = pairs // ut.size
        return codes, (self.ux[px.astype(np.intp)], ut[(pairs - px * ut.size).astype(np.intp)])

    def _tails(self, r, alpha, s, beta):
        """log G at the distinct (x, T) and at the distinct (x, t_x) pairs."""
        return log_tail(r, alpha, s, beta, *self.xT), log_tail(r, alpha, s, beta, *self.xtx)

    def __call__(self, params, grad: bool = False):
        r, alpha, s, beta = p = np.array([float(v) for v in params])
        head = gammaln(r + self.ux) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        t_T, t_tx = self._tails(r, alpha, s, beta)
        g_T, g_tx = np.take(t_T, self.ixT), np.take(t_tx, self.ixtx)
        la_T = np.take(np.log(alpha + self.uT), self.iT)
        lb_T = np.take(np.log(beta + self.uT), self.iT)
        rx = r + self.x
        alive = -rx * la_T - s * lb_T
        # 1 - G(T)/G(t_x): 0 when t_x = T, where the customer cannot have died in between
        gone = -np.expm1(np.minimum(g_T - g_tx, 0.0))
        with np.errstate(divide="ignore"):
            died = np.log(s) + g_tx + np.log(gone)
        # logaddexp(alive, died) = max + log(1 + exp(-|alive - died|)), written out (faster)
        top = np.maximum(alive, died)
        gap = np.abs(alive - died)
        np.negative(gap, out=gap)
        np.exp(gap, out=gap)
        gap += 1.0
        top += np.log(gap)
        ll = float(self.w_x @ head) + _dot(self.w, top)
        if not grad:
            return ll, None
        # d log G / d params by central differences on the distinct tails only (cheap: a few
        # thousand values); everything else by the chain rule, exactly
        d_T, d_tx = np.empty((4, t_T.size)), np.empty((4, t_tx.size))
        for j in range(4):
            h = 1e-5 * p[j]
            up, dn = p.copy(), p.copy()
            up[j] += h
            dn[j] -= h
            (u_T, u_tx), (l_T, l_tx) = self._tails(*up), self._tails(*dn)
            d_T[j], d_tx[j] = (u_T - l_T) / (2.0 * h), (u_tx - l_tx) / (2.0 * h)
        with np.errstate(over="ignore"):
            w_died = self.w / (1.0 + np.exp(alive - died))  # weight times the 'died' share
        w_alive = self.w - w_died
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(gone > 0.0, w_died * (1.0 - gone) / gone, 0.0)  # w_died G(T)/(G(t_x)-G(T))
        inv_aT = np.take(1.0 / (alpha + self.uT), self.iT)
        inv_bT = np.take(1.0 / (beta + self.uT), self.iT)
        d_alive = (-la_T, -rx * inv_aT, -lb_T, -s * inv_bT)
        d_head = (
            self.w_x @ (digamma(r + self.ux) - digamma(r)) + self.n_w * np.log(alpha),
            self.n_w * r / alpha,
            self.n_w * np.log(beta),
            self.n_w * s / beta,
        )
        out = np.empty(4)
        for j in range(4):
            dj_T, dj_tx = np.take(d_T[j], self.ixT), np.take(d_tx[j], self.ixtx)
            out[j] = (
                d_head[j]
                + _dot(w_alive, d_alive[j])
                + _dot(w_died, dj_tx)
                - _dot(k, dj_T - dj_tx)
                + (w_died.sum() / s if j == 2 else 0.0)
            )
        return ll, out


def log_likelihood(params, frequency, recency, T, weights=None) -> float:
    """Total Pareto/NBD log-likelihood for natural parameters ``(r, alpha, s, beta)``."""
    (x, tx, T), w = pattern_data(frequency, recency, T, weights=weights)
    return float(w @ _loglik_terms(np.asarray(params, dtype=float), x, tx, T))


class ParetoNBD(RecencyModel):
    """Pareto/NBD, fitted by maximum likelihood on weighted ``(frequency, recency, T)`` patterns.

    ``params_`` are ``r, alpha, s, beta``; the other fitted attributes are as for
    :class:`archer.models.BGNBD`.
    """

    NAME = "Pareto/NBD"
    PARAM_NAMES = PARAM_NAMES
    ANALYTIC_GRADIENT = True  # from ParetoLikelihood: differences on the distinct tails only
    terms = staticmethod(_loglik_terms)

    @classmethod
    def _total(cls, data, w):
        return ParetoLikelihood(*data, w)

    # ------------------------------------------------------------------------- predictions
    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(alive at T | x, t_x, T): the 'alive' share of the likelihood bracket."""
        x, tx, T = as_arrays(frequency, recency, T)
        alive, died = _log_parts(self._params(), x, tx, T)
        return expit(alive - died)

    @staticmethod
    def _bracket(r_, alpha_, s_, beta_, t):
        """E[purchases in t | alive, lambda ~ Gamma(r_, alpha_), mu ~ Gamma(s_, beta_)].

        r_ beta_ / (alpha_ (s_-1)) [1 - (beta_/(beta_+t))^(s_-1)]; at s_ = 1 the limit
        r_ beta_ / alpha_ log(1 + t/beta_).
        """
        log_ratio = np.log(beta_) - np.log(beta_ + t)
        sm1 = s_ - 1.0
        safe = np.where(np.abs(sm1) < 1e-10, 1.0, sm1)
        general = -np.expm1(sm1 * log_ratio) / safe
        return r_ * beta_ / alpha_ * np.where(np.abs(sm1) < 1e-10, -log_ratio, general)

    def expected_purchases_new(self, t: ArrayLike) -> np.ndarray:
        """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]."""
        r, alpha, s, beta = self._params()
        return self._bracket(r, alpha, s, beta, np.asarray(t, dtype=float))

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T] = (r+x)(beta+T)/((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]
        * P(alive)."""
        r, alpha, s, beta = self._params()
        t = np.asarray(t, dtype=float)
        x, tx, T = as_arrays(frequency, recency, T)
        return self._bracket(r + x, alpha + T, s, beta + T, t) * self.p_alive(x, tx, T)

    def probability_of_purchases(self, x: ArrayLike, t: ArrayLike) -> np.ndarray:
        """P(X(t) = x) for a customer new at time 0.

        Alive at t: NBD(x; r, alpha, t) (beta/(beta+t))^s. Died at u < t after x purchases:
        int_0^t NBD(x; r, alpha, u) s beta^s (beta+u)^-(s+1) du, integrated numerically (the
        closed form of Fader & Hardie's note is a sum of x hypergeometric terms).
        """
        r, alpha, s, beta = self._params()
        xs, ts = as_arrays(x, t)
        out = np.empty(xs.shape)
        cache: dict[tuple[float, float], float] = {}
        for idx in np.ndindex(xs.shape):
            key = (float(xs[idx]), float(ts[idx]))
            if key not in cache:
                cache[key] = self._pmf_one(r, alpha, s, beta, *key)
            out[idx] = cache[key]
        return out

    @staticmethod
    def _pmf_one(r, alpha, s, beta, x, t) -> float:
        head = gammaln(r + x) - gammaln(r) - gammaln(x + 1.0) + r * np.log(alpha)

        def nbd(u):  # NBD(x; r, alpha, u), with 0^0 = 1
            xlogu = x * np.log(u) if x > 0 else 0.0
            return np.exp(head + xlogu - (r + x) * np.log(alpha + u))

        alive = nbd(t) * np.exp(s * (np.log(beta) - np.log(beta + t)))
        if t <= 0:
            return float(alive)

        def died(u):
            return nbd(u) * s / beta * np.exp(-(s + 1.0) * np.log1p(u / beta))

        # the integrand varies on the scales alpha and beta near 0 and, for large x, peaks
        # narrowly at u = x alpha / r: break [0, t] on a geometric grid through those scales
        peak = x * alpha / r
        grid = np.geomspace(min(alpha, beta, t) / 100.0, t, 16)
        points = np.unique(np.r_[grid, 0.5 * peak, peak, 1.5 * peak])
        points = points[(points > 0.0) & (points < t)]
        value, _ = quad(died, 0.0, t, points=points, limit=500, epsabs=1e-15, epsrel=1e-10)
        return float(alive + value)
