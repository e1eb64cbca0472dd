"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987) on the raw CDNOW sample and simulated data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.special import gammaln

from archer.models.pareto_nbd import ParetoNBD, log_likelihood, log_tail
from test_bgnbd import cdnow_patterns


@pytest.fixture(scope="module")
def cdnow():
    summary, pats = cdnow_patterns()
    return summary.to_pandas(), pats


@pytest.fixture(scope="module")
def fitted(cdnow):
    _, p = cdnow
    return ParetoNBD().fit(p["frequency"], p["recency"], p["T"], weights=p["weights"])


def test_reproduces_fader_hardie_note(fitted):
    """P. S. Fader & B. G. S. Hardie, "A Note on Deriving the Pareto/NBD Model and Related
    Expressions" (2005, brucehardie.com/notes/009) and "Implementing the Pareto/NBD Model"
    (notes/008): on the CDNOW 1/10 sample (2,357 customers, 39-week calibration from
    1997-01-01, weeks) r = 0.55, alpha = 10.58, s = 0.61, beta = 11.67, LL = -9595.0."""
    assert fitted.converged_, fitted.message_
    published = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    for name, value in published.items():
        assert abs(fitted.params_[name] - value) <= 0.005, (name, fitted.params_[name])
    assert abs(fitted.log_likelihood_ - -9595.0) <= 0.05
    se = np.array(list(fitted.standard_errors_.values()))
    assert np.all(np.isfinite(se)) and np.all(se > 0)


def _tail_by_quadrature(r, alpha, s, beta, x, t):
    def f(u):
        return np.exp(-(r + x) * np.log(alpha + u) - (s + 1) * np.log(beta + u))

    value, _ = integrate.quad(f, t, np.inf, epsabs=0, epsrel=1e-12, limit=400)
    return value


@pytest.mark.parametrize(
    "params", [(0.55, 10.58, 0.61, 11.67), (0.55, 11.67, 0.61, 10.58), (2.0, 0.5, 1.5, 30.0)]
)
@pytest.mark.parametrize("x,t", [(0, 0.0), (2, 30.43), (2, 38.86), (40, 5.0), (15, 300.0)])
def test_hypergeometric_tail_against_quadrature(params, x, t):
    """G(t) = int_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du by quadrature, in both the
    alpha < beta and the alpha >= beta branch."""
    direct = _tail_by_quadrature(*params, x, t)
    assert np.exp(log_tail(*params, x, t)) == pytest.approx(direct, rel=1e-8)


@pytest.mark.parametrize("pattern", [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 12.5, 20.0)])
def test_likelihood_matches_the_model_integrated_numerically(fitted, pattern):
    """Alive at T: E[lambda^x e^(-lambda T)] E[e^(-mu T)]; died at u in (t_x, T]:
    int E[lambda^x e^(-lambda u)] E[mu e^(-mu u)] du, with the Gamma expectations in closed form
    and the integral over u by quadrature."""
    r, alpha, s, beta = fitted.params_.values()
    x, tx, T = pattern

    def lam(u):
        return np.exp(gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + u))

    def mu_density(u):
        return s / beta * (beta / (beta + u)) ** (s + 1)

    died, _ = integrate.quad(lambda u: lam(u) * mu_density(u), tx, T, epsabs=0, epsrel=1e-12)
    direct = lam(T) * (beta / (beta + T)) ** s + died
    got = np.exp(log_likelihood(list(fitted.params_.values()), x, tx, T))
    assert got == pytest.approx(direct, rel=1e-8)


def test_patterns_fit_equals_per_customer_fit(cdnow, fitted):
    customers, _ = cdnow
    full = ParetoNBD().fit(customers["frequency"], customers["recency"], customers["T"])
    for name, value in fitted.params_.items():
        assert full.params_[name] == pytest.approx(value, rel=1e-4)
    assert full.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-5)


def test_predictions(fitted):
    r, alpha, s, beta = fitted.params_.values()
    t = np.array([1.0, 39.0, 78.0])
    direct = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
    np.testing.assert_allclose(fitted.expected_purchases_new(t), direct, rtol=1e-10)
    np.testing.assert_allclose(
        fitted.conditional_expected_purchases(t, 0, 0, 0), fitted.expected_purchases_new(t)
    )
    xs = np.arange(0, 400)
    px = fitted.probability_of_purchases(xs, 39.0)
    assert px.sum() == pytest.approx(1.0, abs=1e-8)
    assert (xs * px).sum() == pytest.approx(fitted.expected_purchases_new(39.0), rel=1e-6)
    pa = fitted.p_alive(2, 30.43, np.array([31.0, 38.86, 80.0, 500.0]))
    assert np.all(np.diff(pa) < 0) and np.all((pa > 0) & (pa <= 1))
    assert fitted.p_alive(3, 20.0, 20.0) == pytest.approx(1.0)  # bought at the very end


@pytest.mark.parametrize(
    "params", [(0.55, 10.58, 0.61, 11.67), (0.55, 11.67, 0.61, 10.58), (3.0, 0.2, 0.9, 0.2)]
)
def test_no_overflow_at_large_frequency_and_T(params):
    m = ParetoNBD()
    m.params_ = dict(zip(("r", "alpha", "s", "beta"), params, strict=True))
    x, tx, T = np.array([1000, 1000, 0]), np.array([4999, 1, 0]), np.array([5000, 5000, 5000])
    values = [
        *(log_likelihood(params, x[i], tx[i], T[i]) for i in range(3)),
        *m.p_alive(x, tx, T),
        *m.conditional_expected_purchases(52, x, tx, T),
        *m.probability_of_purchases([0, 1000], [5000.0, 5000.0]),
    ]
    assert np.all(np.isfinite(values))
    xs = np.arange(0, 200)
    assert m.probability_of_purchases(xs, 0.5).sum() == pytest.approx(1.0, abs=1e-8)
    assert m.p_alive(1000, 1, 5000) < 1e-100
    assert m.p_alive(1000, 4999, 5000) > 0.9
    assert m.conditional_expected_purchases(52, 1000, 4999, 5000) == pytest.approx(
        52 * 1000 / 5000, rel=0.05
    )


def test_recovers_simulated_parameters():
    truth = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 12.0}
    rng = np.random.default_rng(3)
    n = 5000
    T = rng.uniform(26.0, 78.0, n)
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    life = rng.exponential(1.0, n) / rng.gamma(truth["s"], 1 / truth["beta"], n)
    arrivals = np.cumsum(rng.exponential(1.0, (n, 400)) / lam[:, None], axis=1)
    x = (arrivals <= np.minimum(life, T)[:, None]).sum(axis=1)
    tx = np.where(x > 0, arrivals[np.arange(n), np.maximum(x - 1, 0)], 0.0)
    m = ParetoNBD().fit(x, tx, T)
    assert m.converged_, m.message_
    for name, value in truth.items():
        se = m.standard_errors_[name]
        assert abs(m.params_[name] - value) < 4 * se, (name, m.params_[name], se)
        assert se < 0.5 * value


def test_non_convergence_warns_with_the_optimiser_message(cdnow):
    _, p = cdnow
    with pytest.warns(UserWarning, match="Pareto/NBD fit did not converge: .*ITERATIONS"):
        m = ParetoNBD().fit(p["frequency"], p["recency"], p["T"], p["weights"], maxiter=2)
    assert m.converged_ is False


@pytest.mark.parametrize(
    "params", [(0.55, 10.58, 0.61, 11.67), (0.55, 11.67, 0.61, 10.58), (2.0, 0.5, 1.5, 30.0)]
)
def test_distinct_pair_likelihood_equals_the_per_pattern_sum(params):
    """The fit's likelihood (tails once per distinct (x, T) and (x, t_x)) against the sum."""
    from archer.models.pareto_nbd import ParetoLikelihood, _loglik_terms
    from test_bgnbd import awkward_patterns

    x, tx, T, w = awkward_patterns(np.random.default_rng(5))
    p = np.array(params)
    lik = ParetoLikelihood(x, tx, T, w)
    assert lik(p)[0] == pytest.approx(w @ _loglik_terms(p, x, tx, T), rel=1e-12)
    assert lik.xT[0].size < 0.5 * x.size  # the tails are computed on fewer values
    grad = lik(p, grad=True)[1]  # exact but for the tails' derivatives, by differences
    num = np.empty(4)
    for k in range(4):
        h = 1e-6 * p[k]
        up, dn = p.copy(), p.copy()
        up[k] += h
        dn[k] -= h
        num[k] = (lik(up)[0] - lik(dn)[0]) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-4)
