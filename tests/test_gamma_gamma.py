"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie 2013) on the CDNOW sample."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import integrate, stats

from archer.models.gamma_gamma import GammaGamma, log_likelihood, log_likelihood_grad
from archer.models.summary import rfm_summary
from test_bgnbd import CALIBRATION_END, cdnow_transactions


@pytest.fixture(scope="module")
def repeat_buyers():
    summary = rfm_summary(
        cdnow_transactions(),
        customer_col="customer_id",
        date_col="order_date",
        calibration_end=CALIBRATION_END,
        observation_start=date(1997, 1, 1),
        unit="week",
        amount_col="amount",
    ).to_pandas()
    return summary[summary["frequency"] > 0]


@pytest.fixture(scope="module")
def fitted(repeat_buyers):
    return GammaGamma().fit(repeat_buyers["frequency"], repeat_buyers["monetary_value"])


def test_reproduces_fader_hardie_note(fitted, repeat_buyers):
    """P. S. Fader & B. G. S. Hardie, "The Gamma-Gamma Model of Monetary Value" (2013,
    brucehardie.com/notes/025), after Fader, Hardie & Lee, "RFM and CLV: Using Iso-Value Curves
    for Customer Base Analysis", JMR 42(4), 2005: on the 946 CDNOW sample customers with repeat
    purchases in the 39-week calibration period, m_x the mean of their repeat transactions,
    p = 6.25, q = 3.74, gamma = 15.44."""
    assert len(repeat_buyers) == 946
    assert fitted.converged_, fitted.message_
    published = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    for name, value in published.items():
        assert abs(fitted.params_[name] - value) <= 0.005, (name, fitted.params_[name])
    assert fitted.n_customers_ == 946
    se = np.array(list(fitted.standard_errors_.values()))
    assert np.all(np.isfinite(se)) and np.all(se > 0)


@pytest.mark.parametrize("x,mx", [(1, 20.0), (3, 35.5), (12, 110.0)])
def test_density_matches_the_model_integrated_numerically(fitted, x, mx):
    """The mean of x Gamma(p, nu) values is Gamma(p x, nu x); average over nu ~ Gamma(q, gamma)."""
    p, q, g = fitted.params_.values()

    def f(nu):
        return stats.gamma.pdf(mx, p * x, scale=1 / (nu * x)) * stats.gamma.pdf(nu, q, scale=1 / g)

    direct, _ = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-11, limit=400)
    assert np.exp(log_likelihood([p, q, g], x, mx)) == pytest.approx(direct, rel=1e-7)


@pytest.mark.parametrize("params", [(6.25, 3.74, 15.44), (0.5, 12.0, 300.0), (40.0, 1.2, 0.3)])
def test_gradient_matches_finite_differences(params):
    rng = np.random.default_rng(6)
    x = rng.integers(1, 20, 200).astype(float)
    mx = rng.gamma(2.0, 20.0, 200)
    x[0], mx[0] = 1000, 1e4
    w = rng.integers(1, 5, 200)
    p = np.array(params)
    grad = log_likelihood_grad(p, x, mx, w)
    num = np.empty(3)
    for k in range(3):
        h = 1e-6 * p[k]
        up, dn = p.copy(), p.copy()
        up[k] += h
        dn[k] -= h
        num[k] = (log_likelihood(up, x, mx, w) - log_likelihood(dn, x, mx, w)) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-4)


def test_patterns_with_weights_equal_per_customer(repeat_buyers, fitted):
    pats = repeat_buyers.groupby(["frequency", "monetary_value"]).size().reset_index(name="weights")
    assert len(pats) < len(repeat_buyers)
    m = GammaGamma().fit(pats["frequency"], pats["monetary_value"], weights=pats["weights"])
    for name, value in fitted.params_.items():
        assert m.params_[name] == pytest.approx(value, rel=1e-6)
    assert m.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-6)


def test_conditional_expected_spend(fitted):
    p, q, g = fitted.params_.values()
    population = p * g / (q - 1)
    assert fitted.mean_spend() == pytest.approx(population)
    np.testing.assert_allclose(fitted.conditional_expected_spend([0, 0], [0, np.nan]), population)
    # a weighted average of the population mean and the customer's own mean, moving towards
    # the customer's mean as x grows
    x = np.array([1, 2, 10, 1000])
    spend = fitted.conditional_expected_spend(x, 100.0)
    weight = p * x / (p * x + q - 1)
    np.testing.assert_allclose(spend, (1 - weight) * population + weight * 100.0)
    assert np.all(np.diff(spend) > 0) and spend[-1] == pytest.approx(100.0, rel=1e-3)


def test_no_overflow_and_recovery_on_simulated_spend():
    truth = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    rng = np.random.default_rng(8)
    n = 5000
    nu = rng.gamma(truth["q"], 1 / truth["gamma"], n)
    x = 1 + rng.poisson(3.0, n)
    x[0] = 1000
    mx = np.array([rng.gamma(truth["p"], 1 / nu[i], x[i]).mean() for i in range(n)])
    m = GammaGamma().fit(x, mx)
    assert m.converged_ and np.isfinite(m.log_likelihood_)
    for name, value in truth.items():
        se = m.standard_errors_[name]
        assert abs(m.params_[name] - value) < 4 * se, (name, m.params_[name], se)
        assert se < 0.35 * value


def test_non_convergence_and_bad_input(repeat_buyers):
    with pytest.warns(UserWarning, match="Gamma-Gamma fit did not converge: .*ITERATIONS"):
        m = GammaGamma().fit(repeat_buyers["frequency"], repeat_buyers["monetary_value"], maxiter=2)
    assert m.converged_ is False
    with pytest.raises(ValueError, match="repeat customers"):
        GammaGamma().fit([0, 2], [0.0, 10.0])
    # customers without repeat purchases are left out by a zero weight
    ok = GammaGamma().fit([0, 2, 3, 1], [0.0, 10.0, 30.0, 12.0], weights=[0, 1, 1, 1])
    assert ok.n_customers_ == 3
