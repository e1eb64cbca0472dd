"""MBG/NBD (Batislam, Denizel & Filiztekin 2007) on the raw CDNOW sample and on simulated data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import gammaln

from archer.models.mbgnbd import MBGNBD, log_likelihood, log_likelihood_grad
from test_bgnbd import cdnow_patterns, simulate_bgnbd


@pytest.fixture(scope="module")
def cdnow():
    summary, pats = cdnow_patterns()
    return summary.to_pandas(), pats


@pytest.fixture(scope="module")
def fitted(cdnow):
    _, p = cdnow
    return MBGNBD().fit(p["frequency"], p["recency"], p["T"], weights=p["weights"])


def test_reproduces_btydplus_on_cdnow(fitted):
    """No paper publishes MBG/NBD estimates on CDNOW (Batislam et al. 2007 used Turkish grocery
    data). The reference is BTYDplus (M. Platzer, github.com/mplatzer/BTYDplus,
    ``mbgnbd.EstimateParameters`` on the CDNOW 1/10 sample, 39-week calibration, weeks): r = 0.525,
    alpha = 6.183, a = 0.891, b = 1.614, as recorded to three decimals in the tests of
    lifetimes 0.11 (``test_params_out_is_close_to_BTYDplus``). The likelihood itself is checked
    independently, by integration, in :func:`test_likelihood_matches_direct_integration`."""
    assert fitted.converged_, fitted.message_
    published = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
    for name, value in published.items():
        assert abs(fitted.params_[name] - value) < 0.0015, (name, fitted.params_[name])
    assert fitted.aic_ == pytest.approx(8 - 2 * fitted.log_likelihood_)
    se = np.array(list(fitted.standard_errors_.values()))
    assert np.all(np.isfinite(se)) and np.all(se > 0)


@pytest.mark.parametrize(
    "pattern", [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 12.5, 20.0), (1, 0.5, 70.0)]
)
def test_likelihood_matches_direct_integration(fitted, pattern):
    """The closed form against the model's definition integrated numerically over p ~ Beta(a, b):
    given (lambda, p) the customer survives time 0 and x purchases and is alive at T, or survives
    time 0 and x - 1 purchases and drops at the x-th (at time 0 when x = 0):
    L = (1-p)^(x+1) lambda^x e^(-lambda T) + p (1-p)^x lambda^x e^(-lambda t_x); over
    lambda ~ Gamma(r, alpha), E[lambda^x e^(-lambda t)] = Gamma(r+x) alpha^r / (Gamma(r)
    (alpha+t)^(r+x)) (the NBD step, shared with BG/NBD)."""
    r, alpha, a, b = fitted.params_.values()
    x, tx, T = pattern

    def nbd(t):
        return np.exp(gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + t))

    def integrand(p):
        given = (1 - p) ** (x + 1) * nbd(T) + p * (1 - p) ** x * nbd(tx)
        return given * stats.beta.pdf(p, a, b)

    direct, _ = integrate.quad(integrand, 0, 1, epsabs=0, epsrel=1e-11, limit=200)
    assert np.exp(log_likelihood(list(fitted.params_.values()), x, tx, T)) == pytest.approx(
        direct, rel=1e-7
    )


@pytest.mark.parametrize(
    "params", [(0.525, 6.183, 0.891, 1.614), (1.7, 0.3, 2.5, 0.6), (0.05, 40.0, 0.2, 9.0)]
)
def test_gradient_matches_finite_differences(params):
    rng = np.random.default_rng(2)
    T = rng.uniform(1, 60, 200)
    x = rng.integers(0, 15, 200).astype(float)
    tx = np.where(x > 0, rng.uniform(0, 1, 200) * T, 0.0)
    x[:3], tx[:3], T[:3] = [1000, 1, 0], [4999, 0, 0], [5000, 5000, 5000]
    w = rng.integers(1, 5, 200)
    p = np.array(params)
    grad = log_likelihood_grad(p, x, tx, T, w)
    num = np.empty(4)
    for k in range(4):
        h = 1e-6 * p[k]
        up, dn = p.copy(), p.copy()
        up[k] += h
        dn[k] -= h
        num[k] = (log_likelihood(up, x, tx, T, w) - log_likelihood(dn, x, tx, T, w)) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-4)


def test_patterns_fit_equals_per_customer_fit(cdnow, fitted):
    customers, _ = cdnow
    full = MBGNBD().fit(customers["frequency"], customers["recency"], customers["T"])
    for name, value in fitted.params_.items():
        assert full.params_[name] == pytest.approx(value, rel=1e-5)
    assert full.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-6)


def test_predictions(fitted):
    # a customer without repeat purchases may have left at once: p(alive) < 1, falling with T
    pa0 = fitted.p_alive(0, 0, np.array([0.0, 10.0, 40.0]))
    r, alpha, a, b = fitted.params_.values()
    assert pa0[0] == pytest.approx(b / (a + b))
    assert np.all(np.diff(pa0) < 0)
    # E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]
    from scipy.special import hyp2f1

    t = np.array([1.0, 39.0, 78.0])
    direct = (
        b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, t / (alpha + t)))
    )
    np.testing.assert_allclose(fitted.expected_purchases_new(t), direct, rtol=1e-10)
    xs = np.arange(0, 2000)
    px = fitted.probability_of_purchases(xs, 39.0)
    assert px.sum() == pytest.approx(1.0, abs=1e-9)
    assert (xs * px).sum() == pytest.approx(fitted.expected_purchases_new(39.0), rel=1e-6)
    # conditional expectation grows with frequency at fixed recency = T
    ce = fitted.conditional_expected_purchases(39, [1, 5, 20], [38.0, 38.0, 38.0], 38.86)
    assert np.all(np.diff(ce) > 0)


def test_no_overflow_at_large_frequency_and_T(fitted):
    p = list(fitted.params_.values())
    values = [
        log_likelihood(p, 1000, 4999, 5000),
        *log_likelihood_grad(p, 1000, 4999, 5000),
        *fitted.p_alive([1000, 1000], [4999, 1], [5000, 5000]),
        *fitted.conditional_expected_purchases(52, [1000, 1000], [4999, 1], [5000, 5000]),
        *fitted.expected_purchases_new([5000.0, 1e6]),
        *fitted.probability_of_purchases([0, 1000], [5000.0, 5000.0]),
    ]
    assert np.all(np.isfinite(values))
    assert fitted.conditional_expected_purchases(52, 1000, 4999, 5000) == pytest.approx(
        52 * 1000 / 5000, rel=0.02
    )


def test_an_extreme_customer_fits_cleanly_and_a_degenerate_sample_warns(cdnow):
    _, p = cdnow
    x, tx = np.r_[p["frequency"], 1000], np.r_[p["recency"], 4999]
    T, w = np.r_[p["T"], 5000], np.r_[p["weights"], 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MBGNBD().fit(x, tx, T, w)
    assert m.converged_ and np.isfinite(m.log_likelihood_)
    # three customers do not identify four parameters: the fit says so instead of returning junk
    with pytest.warns(UserWarning, match="did not converge"):
        bad = MBGNBD().fit([1000, 0, 3], [4999, 0, 20], [5000, 5000, 40])
    assert bad.converged_ is False and bad.message_


def test_recovers_simulated_parameters():
    truth = {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 2.2}
    x, tx, T = simulate_bgnbd(np.random.default_rng(11), 6000, *truth.values(), modified=True)
    m = MBGNBD().fit(x, tx, T)
    assert m.converged_
    for name, value in truth.items():
        se = m.standard_errors_[name]
        assert abs(m.params_[name] - value) < 4 * se, (name, m.params_[name], se)
        assert se < 0.35 * value


def test_non_convergence_warns_with_the_optimiser_message(cdnow):
    _, p = cdnow
    with pytest.warns(UserWarning, match="MBG/NBD fit did not converge: .*ITERATIONS"):
        m = MBGNBD().fit(p["frequency"], p["recency"], p["T"], p["weights"], maxiter=2)
    assert m.converged_ is False


def test_penalizer_shrinks_parameters(cdnow, fitted):
    _, p = cdnow
    m = MBGNBD().fit(p["frequency"], p["recency"], p["T"], p["weights"], penalizer=50.0)
    assert sum(v**2 for v in m.params_.values()) < sum(v**2 for v in fitted.params_.values())
    assert m.log_likelihood_ < fitted.log_likelihood_


def test_newton_fit_on_distinct_values_equals_the_plain_per_pattern_fit(cdnow, fitted):
    """The default fit (distinct-value likelihood, exact Hessian, Newton) against L-BFGS-B on
    the per-pattern terms summed directly, as the fit was first written."""
    from archer.models.base import MLEModel

    class Plain(MBGNBD):
        _total = classmethod(MLEModel._total.__func__)

    _, p = cdnow
    plain = Plain().fit(p["frequency"], p["recency"], p["T"], p["weights"])
    assert "NEWTON" in fitted.message_ and "NEWTON" not in plain.message_
    for name, value in plain.params_.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-6)
        assert fitted.standard_errors_[name] == pytest.approx(
            plain.standard_errors_[name], rel=1e-4
        )
    assert fitted.log_likelihood_ == pytest.approx(plain.log_likelihood_, abs=1e-8)


def test_conditional_expectation_at_large_a_and_frequency():
    """The bracket is BG/NBD's with b + 1; scipy's hyp2f1 gave NaN at a = 5, x = 500."""
    m = MBGNBD()
    m.params_ = {"r": 3.0, "alpha": 0.25, "a": 5.0, "b": 0.41475}
    got = m.conditional_expected_purchases(23.14, 500, 0.25, 0.25) / m.p_alive(500, 0.25, 0.25)
    assert got == pytest.approx(126.35366173316212, rel=1e-13)  # mpmath, 30 digits
