"""Lifetime value from a purchase model and a spend model; churn-risk bands."""

from __future__ import annotations

import numpy as np
import pytest

from archer.models import (
    BGBB,
    BGNBD,
    MBGNBD,
    MODELS,
    GammaGamma,
    ParetoNBD,
    churn_risk,
    discounted_expected_purchases,
    lifetime_value,
    period_length,
    period_rate,
)


class ConstantRate:
    """A stand-in purchase model: c purchases per unit of time, whoever the customer is."""

    def __init__(self, c: float) -> None:
        self.c = c

    def conditional_expected_purchases(self, t, frequency, recency, T):
        return self.c * t * np.ones(np.broadcast_shapes(np.shape(frequency), np.shape(T)))


def _fitted(cls, names, values):
    m = cls()
    m.params_ = dict(zip(names, values, strict=True))
    return m


BG = _fitted(BGNBD, ("r", "alpha", "a", "b"), (0.243, 4.414, 0.793, 2.426))
GG = _fitted(GammaGamma, ("p", "q", "gamma"), (6.25, 3.74, 15.44))


def test_constant_rate_gives_the_annuity_formula():
    """c purchases per week, monthly periods of 52/12 weeks, rate d per month: the value is
    margin * spend * c * period * sum_{i=1}^{H} (1+d)^-i (an annuity)."""
    period, d, H = 52 / 12, 0.01, 12
    got = lifetime_value(
        ConstantRate(0.5),
        [1, 2],
        [3, 4],
        [10, 10],
        expected_spend=40.0,
        horizon=H,
        period=period,
        discount_rate=d,
        margin=0.3,
    )
    annuity = (1 - (1 + d) ** -H) / d
    np.testing.assert_allclose(got, 0.3 * 40.0 * 0.5 * period * annuity, rtol=1e-12)


@pytest.mark.parametrize(
    "model",
    [
        BG,
        _fitted(MBGNBD, ("r", "alpha", "a", "b"), (0.525, 6.183, 0.891, 1.614)),
        _fitted(ParetoNBD, ("r", "alpha", "s", "beta"), (0.553, 10.578, 0.606, 11.669)),
    ],
)
def test_undiscounted_value_telescopes_to_the_conditional_expectation(model):
    x, tx, T = np.array([0, 2, 7]), np.array([0, 30.43, 35.0]), np.array([38.86, 38.86, 38.86])
    got = discounted_expected_purchases(
        model, x, tx, T, horizon=12, period=52 / 12, discount_rate=0
    )
    np.testing.assert_allclose(got, model.conditional_expected_purchases(52.0, x, tx, T), rtol=1e-9)
    discounted = discounted_expected_purchases(
        model, x, tx, T, horizon=12, period=52 / 12, discount_rate=0.02
    )
    assert np.all(discounted < got) and np.all(discounted > 0)


def test_with_the_gamma_gamma_spend_model():
    x, tx, T, mx = np.array([0, 2, 7]), np.array([0, 30.4, 35]), np.full(3, 38.86), [0, 25, 60]
    got = lifetime_value(
        BG,
        x,
        tx,
        T,
        spend_model=GG,
        monetary_value=mx,
        horizon=12,
        period=period_length("week", "month"),
        discount_rate=period_rate(0.12),
        margin=0.25,
    )
    spend = GG.conditional_expected_spend(x, mx)
    purchases = discounted_expected_purchases(
        BG, x, tx, T, horizon=12, period=365.25 / 12 / 7, discount_rate=1.12 ** (1 / 12) - 1
    )
    np.testing.assert_allclose(got, 0.25 * spend * purchases, rtol=1e-12)
    with pytest.raises(ValueError):
        lifetime_value(BG, x, tx, T, period=4.0)  # no spend
    with pytest.raises(ValueError):
        lifetime_value(BG, x, tx, T, spend_model=GG, period=4.0)  # no monetary value


def test_bgbb_counts_opportunities():
    m = _fitted(BGBB, ("alpha", "beta", "gamma", "delta"), (1.204, 0.750, 0.657, 2.783))
    got = discounted_expected_purchases(
        m, [6, 0], [6, 0], [6, 6], horizon=5, period=1, discount_rate=0
    )
    np.testing.assert_allclose(got, m.conditional_expected_purchases(5, [6, 0], [6, 0], [6, 6]))


def test_period_helpers():
    assert period_length("week", "month") == pytest.approx(365.25 / 12 / 7)
    assert period_length("day", "year") == 365.25
    assert (1 + period_rate(0.1, 12)) ** 12 == pytest.approx(1.1)


def test_churn_risk_bands():
    p = np.array([0.0, 0.29, 0.3, 0.69, 0.7, 1.0])
    assert churn_risk(p).tolist() == ["high", "high", "medium", "medium", "low", "low"]
    assert churn_risk(p, high=0.1, medium=0.5).tolist() == [
        "high",
        "medium",
        "medium",
        "low",
        "low",
        "low",
    ]
    with pytest.raises(ValueError):
        churn_risk(p, high=0.8, medium=0.5)
    with pytest.raises(ValueError):
        churn_risk([np.nan])
    bands = churn_risk(BG.p_alive([1, 10], [1.0, 38.0], [38.86, 38.86]))
    assert bands.tolist() == ["high", "low"]


def test_registry_names_the_models_for_the_cli():
    assert MODELS == {
        "bgnbd": BGNBD,
        "mbgnbd": MBGNBD,
        "pareto-nbd": ParetoNBD,
        "bgbb": BGBB,
        "gamma-gamma": GammaGamma,
    }
    for cls in MODELS.values():
        assert cls.PARAM_NAMES and callable(cls.fit)
