"""BG/BB (Fader, Hardie & Shang 2010) on the donations data and on simulated data."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from archer.models.bgbb import BGBB, log_likelihood, log_likelihood_grad
from conftest import shared


@pytest.fixture(scope="module")
def donations():
    with shared("cdnow", "donations.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


@pytest.fixture(scope="module")
def fitted(donations):
    d = donations
    return BGBB().fit(d["frequency"], d["recency"], d["periods"], weights=d["weights"])


def test_reproduces_fader_hardie_shang_2010(fitted, donations):
    """Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time Noncontractual
    Setting", Marketing Science 29(6): on the 11,104 repeat donors of the 1995 cohort, six
    opportunities (1996-2001), alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783,
    LL = -33,225.6."""
    assert fitted.converged_, fitted.message_
    assert fitted.n_customers_ == 11104 == donations["weights"].sum()
    published = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
    for name, value in published.items():
        assert abs(fitted.params_[name] - value) <= 0.0015, (name, fitted.params_[name])
    assert abs(fitted.log_likelihood_ - -33225.6) <= 0.05
    assert fitted.aic_ == pytest.approx(8 - 2 * fitted.log_likelihood_)
    se = np.array(list(fitted.standard_errors_.values()))
    assert np.all(np.isfinite(se)) and np.all(se > 0)


@pytest.mark.parametrize("pattern", [(0, 0, 6), (3, 5, 6), (6, 6, 6), (2, 2, 9)])
def test_likelihood_matches_the_model_integrated_numerically(fitted, pattern):
    """The individual-level likelihood (paper, eq. 4) averaged over p ~ Beta(alpha, beta) and
    theta ~ Beta(gamma, delta) by quadrature (each term is a product of a function of p and one
    of theta, so two one-dimensional integrals per term)."""
    al, be, ga, de = fitted.params_.values()
    x, tx, n = pattern

    def mean_p(f):
        return integrate.quad(lambda p: f(p) * stats.beta.pdf(p, al, be), 0, 1, epsrel=1e-11)[0]

    def mean_theta(f):
        return integrate.quad(lambda q: f(q) * stats.beta.pdf(q, ga, de), 0, 1, epsrel=1e-11)[0]

    direct = mean_p(lambda p: p**x * (1 - p) ** (n - x)) * mean_theta(lambda q: (1 - q) ** n)
    for i in range(n - tx):
        direct += mean_p(lambda p, i=i: p**x * (1 - p) ** (tx - x + i)) * mean_theta(
            lambda q, i=i: q * (1 - q) ** (tx + i)
        )
    got = np.exp(log_likelihood(list(fitted.params_.values()), x, tx, n))
    assert got == pytest.approx(direct, rel=1e-7)


@pytest.mark.parametrize(
    "params", [(1.204, 0.750, 0.657, 2.783), (0.3, 5.0, 2.0, 0.4), (12.0, 1.5, 0.05, 30.0)]
)
def test_gradient_matches_finite_differences(params):
    rng = np.random.default_rng(4)
    n = rng.integers(1, 30, 200).astype(float)
    tx = np.floor(rng.uniform(0, 1, 200) * (n + 1))
    x = np.where(tx > 0, np.ceil(rng.uniform(0, 1, 200) * tx), 0.0)
    x[:2], tx[:2], n[:2] = [1000, 0], [4999, 0], [5000, 5000]
    w = rng.integers(1, 5, 200)
    p = np.array(params)
    grad = log_likelihood_grad(p, x, tx, n, w)
    num = np.empty(4)
    for k in range(4):
        h = 1e-6 * p[k]
        up, dn = p.copy(), p.copy()
        up[k] += h
        dn[k] -= h
        num[k] = (log_likelihood(up, x, tx, n, w) - log_likelihood(dn, x, tx, n, w)) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-4)


def test_patterns_fit_equals_per_customer_fit(donations, fitted):
    d = donations
    reps = d["weights"].astype(int)
    full = BGBB().fit(*(np.repeat(d[k], reps) for k in ("frequency", "recency", "periods")))
    for name, value in fitted.params_.items():
        assert full.params_[name] == pytest.approx(value, rel=1e-5)
    assert full.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-10)


def test_predictions(fitted):
    al, be, ga, de = fitted.params_.values()
    # E[X(n)] is the sum of P(transact) * P(alive) over the opportunities
    alive = [fitted.p_alive_new(i - 1) for i in range(1, 12)]
    direct = al / (al + be) * np.cumsum(alive)
    np.testing.assert_allclose(fitted.expected_purchases_new(np.arange(1, 12)), direct, rtol=1e-10)
    xs = np.arange(0, 12)
    px = fitted.probability_of_purchases(xs, 11)
    assert px.sum() == pytest.approx(1.0, abs=1e-12)
    assert (xs * px).sum() == pytest.approx(fitted.expected_purchases_new(11), rel=1e-10)
    # a new customer's conditional expectation is E[X(n)]; heavy recent donors expect more
    assert fitted.conditional_expected_purchases(5, 0, 0, 0) == pytest.approx(
        fitted.expected_purchases_new(5)
    )
    ce = fitted.conditional_expected_purchases(5, [1, 3, 6], [6, 6, 6], 6)
    assert np.all(np.diff(ce) > 0)
    pa = fitted.p_alive([0, 3, 6], [0, 3, 6], 6)
    assert pa[2] > max(pa[0], pa[1]) and pa[2] < 1
    # a donor in every year: alive next year with probability B(gamma, delta+7)/B(gamma, delta+6)
    from scipy.special import betaln

    assert fitted.p_alive(6, 6, 6) == pytest.approx(np.exp(betaln(ga, de + 7) - betaln(ga, de + 6)))


def test_no_overflow_at_large_frequency_and_periods(fitted):
    p = list(fitted.params_.values())
    values = [
        log_likelihood(p, 1000, 4999, 5000),
        log_likelihood(p, 0, 0, 5000),
        *log_likelihood_grad(p, 1000, 4999, 5000),
        *fitted.p_alive([1000, 1000], [4999, 1000], [5000, 5000]),
        *fitted.conditional_expected_purchases(52, [1000, 1000], [4999, 1000], [5000, 5000]),
        *fitted.expected_purchases_new([5000.0, 1e6]),
    ]
    assert np.all(np.isfinite(values))
    assert fitted.p_alive(1000, 1000, 5000) < 1e-100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = BGBB().fit(
            [1000, 0, 3, 2, 5], [4999, 0, 6, 2, 5], [5000, 10, 10, 10, 10], [1, 5, 3, 4, 2]
        )
    assert np.isfinite(m.log_likelihood_)


def test_recovers_simulated_parameters():
    truth = {"alpha": 1.2, "beta": 0.8, "gamma": 0.7, "delta": 2.5}
    rng = np.random.default_rng(5)
    n_customers, n = 6000, 20
    p = rng.beta(truth["alpha"], truth["beta"], n_customers)
    theta = rng.beta(truth["gamma"], truth["delta"], n_customers)
    alive = np.cumprod(rng.uniform(size=(n_customers, n)) >= theta[:, None], axis=1).astype(bool)
    buys = alive & (rng.uniform(size=(n_customers, n)) < p[:, None])
    x = buys.sum(axis=1)
    tx = np.where(x > 0, n - np.argmax(buys[:, ::-1], axis=1), 0)
    m = BGBB().fit(x, tx, np.full(n_customers, n))
    assert m.converged_, m.message_
    for name, value in truth.items():
        se = m.standard_errors_[name]
        assert abs(m.params_[name] - value) < 4 * se, (name, m.params_[name], se)
        assert se < 0.35 * value


def test_non_convergence_warns_with_the_optimiser_message(donations):
    d = donations
    with pytest.warns(UserWarning, match="BG/BB fit did not converge: .*ITERATIONS"):
        m = BGBB().fit(d["frequency"], d["recency"], d["periods"], d["weights"], maxiter=2)
    assert m.converged_ is False


def test_bad_input():
    with pytest.raises(ValueError):
        BGBB().fit([2], [1], [6])  # more transactions than opportunities up to the last one
    with pytest.raises(ValueError):
        BGBB().fit([1.5], [2], [6])


def test_expectations_at_gamma_one_are_numbers():
    """The closed form of the survival sum is 0/0 at gamma = 1 (it was NaN)."""
    from scipy.special import betaln

    m = BGBB()
    m.params_ = {"alpha": 1.2, "beta": 0.75, "gamma": 1.0, "delta": 2.78}
    direct = sum(np.exp(betaln(1.0, 2.78 + i) - betaln(1.0, 2.78)) for i in range(1, 6))
    assert m.expected_purchases_new(5) == pytest.approx(1.2 / 1.95 * direct, rel=1e-12)
    near = BGBB()
    near.params_ = {**m.params_, "gamma": 1.0 + 1e-5}
    assert m.conditional_expected_purchases(5, 3, 6, 6) == pytest.approx(
        near.conditional_expected_purchases(5, 3, 6, 6), rel=1e-4
    )
