"""BG/NBD and the RFM summary (issue 4, first slice)."""

from __future__ import annotations

import warnings
from datetime import date, datetime

import ibis
import numpy as np
import pytest
from scipy.special import beta as beta_fn
from scipy.special import gamma as gamma_fn
from scipy.special import hyp2f1

from archer.models import BGNBD, patterns, rfm_summary
from archer.models.bgnbd import log_likelihood, log_likelihood_grad
from conftest import shared

CALIBRATION_END = date(1997, 9, 30)  # 39 weeks from 1997-01-01, as in the paper


def cdnow_transactions() -> ibis.Table:
    """The raw CDNOW 1/10 sample: ``customer_id, order_date, amount`` (one row per line)."""
    path = shared("cdnow", "CDNOW_sample.txt")
    customers, days, amounts = [], [], []
    for line in path.read_text().splitlines():
        fields = line.split()  # master id, sample id, YYYYMMDD, number of CDs, dollars
        if fields:
            customers.append(int(fields[1]))
            days.append(datetime.strptime(fields[2], "%Y%m%d").date())
            amounts.append(float(fields[4]))
    return ibis.memtable({"customer_id": customers, "order_date": days, "amount": amounts})


def cdnow_patterns():
    """Calibration-period (frequency, recency, T) patterns of the CDNOW sample, in weeks."""
    summary = rfm_summary(
        cdnow_transactions(),
        customer_col="customer_id",
        date_col="order_date",
        calibration_end=CALIBRATION_END,
        observation_start=date(1997, 1, 1),
        unit="week",
    )
    return summary, patterns(summary).to_pandas()


def simulate_bgnbd(rng, n, r, alpha, a, b, *, modified=False):
    """(x, t_x, T) of n customers drawn from the (M)BG/NBD with T uniform on [26, 78] weeks."""
    T = rng.uniform(26.0, 78.0, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    arrivals = np.cumsum(rng.exponential(1.0, (n, 400)) / lam[:, None], axis=1)
    drop = rng.geometric(p) - (1 if modified else 0)  # purchases made before dropping out
    x = np.minimum(drop, (arrivals <= T[:, None]).sum(axis=1))
    tx = np.where(x > 0, arrivals[np.arange(n), np.maximum(x - 1, 0)], 0.0)
    return x.astype(float), tx, T


@pytest.fixture(scope="module")
def cdnow():
    summary, pats = cdnow_patterns()
    customers = summary.to_pandas().sort_values("customer_id").reset_index(drop=True)
    return customers, pats


@pytest.fixture(scope="module")
def fitted(cdnow):
    _, pats = cdnow
    return BGNBD().fit(pats["frequency"], pats["recency"], pats["T"], weights=pats["weights"])


def test_summary_from_raw_log(cdnow):
    customers, pats = cdnow
    assert len(customers) == 2357
    assert pats["weights"].sum() == 2357
    assert len(pats) < len(customers)
    first = customers.iloc[0]  # customer 1: 1997-01-01, 1997-01-18, 1997-08-02
    assert first["frequency"] == 2
    assert first["recency"] == pytest.approx(213 / 7)
    assert first["T"] == pytest.approx(272 / 7)
    assert (customers["recency"] <= customers["T"]).all()
    assert (customers.loc[customers["frequency"] == 0, "recency"] == 0).all()


def test_summary_merges_same_day_and_cuts_at_calibration_end():
    t = ibis.memtable(
        {
            "c": [1, 1, 1, 1, 2],
            "d": [
                datetime(2024, 1, 1, 9),
                datetime(2024, 1, 1, 17),  # same day: one transaction
                datetime(2024, 1, 8, 12),
                datetime(2024, 3, 1),  # after calibration_end: ignored
                datetime(2024, 1, 5),
            ],
        }
    )
    out = rfm_summary(
        t, customer_col="c", date_col="d", calibration_end=date(2024, 1, 15), unit="day"
    )
    got = {r["c"]: r for r in out.to_pyarrow().to_pylist()}
    assert got[1]["frequency"] == 1 and got[1]["recency"] == 7.0 and got[1]["T"] == 14.0
    assert got[2]["frequency"] == 0 and got[2]["recency"] == 0.0 and got[2]["T"] == 10.0
    assert got[1]["first_purchase"] == date(2024, 1, 1)


def test_reproduces_fader_hardie_lee_2005(fitted):
    """Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative to the
    Pareto/NBD Model", Marketing Science 24(2), 275-284: on the CDNOW 1/10 sample (2,357
    customers, 39-week calibration period from 1997-01-01, weeks) the BG/NBD estimates are
    r = 0.243, alpha = 4.414, a = 0.793, b = 2.426 with log-likelihood -9582.4."""
    assert fitted.converged_, fitted.message_
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert abs(fitted.params_[name] - value) < 0.0015, (name, fitted.params_[name])
    assert abs(fitted.log_likelihood_ - -9582.4) < 0.1
    assert fitted.aic_ == pytest.approx(8 - 2 * fitted.log_likelihood_)
    se = np.array(list(fitted.standard_errors_.values()))
    assert np.all(np.isfinite(se)) and np.all(se > 0)


def test_compressed_patterns_fit_equals_per_customer_fit(cdnow, fitted):
    customers, _ = cdnow
    full = BGNBD().fit(customers["frequency"], customers["recency"], customers["T"])
    for name in fitted.params_:
        assert full.params_[name] == pytest.approx(fitted.params_[name], rel=1e-6)
    assert full.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-6)


def test_standard_errors_match_hessian_of_log_likelihood(cdnow, fitted):
    _, pats = cdnow
    args = (pats["frequency"], pats["recency"], pats["T"], pats["weights"])
    p = np.array(list(fitted.params_.values()))
    hess = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            hi, hj = 1e-4 * p[i], 1e-4 * p[j]

            def f(di, dj, i=i, j=j, hi=hi, hj=hj):
                q = p.copy()
                q[i] += di * hi
                q[j] += dj * hj
                return -log_likelihood(q, *args)

            hess[i, j] = (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * hi * hj)
    se = np.sqrt(np.diag(np.linalg.inv(hess)))
    np.testing.assert_allclose(list(fitted.standard_errors_.values()), se, rtol=1e-3)


@pytest.mark.parametrize(
    "params", [(0.243, 4.414, 0.793, 2.426), (1.7, 0.3, 2.5, 0.6), (0.05, 40.0, 0.2, 9.0)]
)
def test_gradient_matches_finite_differences(params):
    rng = np.random.default_rng(1)
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


def test_p_alive(fitted):
    assert fitted.p_alive(0, 0, 38.86) == 1.0
    np.testing.assert_array_equal(fitted.p_alive([0, 0], [0, 0], [1.0, 5000.0]), [1.0, 1.0])
    T = np.array([10.0, 20.0, 39.0, 100.0, 1000.0])
    pa = fitted.p_alive(3, 10.0, T)
    assert np.all(np.diff(pa) < 0)
    assert np.all((pa > 0) & (pa <= 1))


def test_no_overflow_at_large_frequency_and_T(fitted):
    values = [
        log_likelihood(list(fitted.params_.values()), 1000, 4999, 5000),
        *log_likelihood_grad(list(fitted.params_.values()), 1000, 4999, 5000),
        *fitted.p_alive([1000, 1000], [4999, 1], [5000, 5000]),
        *fitted.conditional_expected_purchases(52, [1000, 1000], [4999, 1], [5000, 5000]),
        *fitted.expected_purchases_new([5000.0, 1e6]),
    ]
    assert np.all(np.isfinite(values))
    assert fitted.p_alive(1000, 1, 5000) < 1e-100
    # an active customer buying ~1000/5000 per week keeps that rate for the next 52 weeks
    assert fitted.conditional_expected_purchases(52, 1000, 4999, 5000) == pytest.approx(
        52 * 1000 / 5000, rel=0.02
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BGNBD().fit([1000, 0, 3], [4999, 0, 20], [5000, 5000, 40])


def test_expectations_match_the_paper_formulas(fitted):
    r, alpha, a, b = fitted.params_.values()
    t = np.array([1.0, 39.0, 78.0])
    z = t / (alpha + t)
    direct = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))
    np.testing.assert_allclose(fitted.expected_purchases_new(t), direct, rtol=1e-10)

    x, tx, T = 2.0, 30.43, 38.86
    zc = t / (alpha + T + t)
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, zc
    )
    denom = 1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    direct = (a + b + x - 1) / (a - 1) * bracket / denom
    np.testing.assert_allclose(
        fitted.conditional_expected_purchases(t, x, tx, T), direct, rtol=1e-10
    )
    # E[X(t)] is the conditional formula at x = 0, T = 0
    np.testing.assert_allclose(
        fitted.conditional_expected_purchases(t, 0, 0, 0), fitted.expected_purchases_new(t)
    )


def test_non_convergence_warns_with_the_optimiser_message(cdnow):
    _, pats = cdnow
    with pytest.warns(UserWarning, match="did not converge: .*ITERATIONS"):
        m = BGNBD().fit(pats["frequency"], pats["recency"], pats["T"], pats["weights"], maxiter=2)
    assert m.converged_ is False
    assert "ITERATIONS" in m.message_


def test_penalizer_shrinks_parameters(cdnow, fitted):
    _, pats = cdnow
    m = BGNBD().fit(pats["frequency"], pats["recency"], pats["T"], pats["weights"], penalizer=50.0)
    assert m.converged_
    assert sum(v**2 for v in m.params_.values()) < sum(v**2 for v in fitted.params_.values())
    assert m.log_likelihood_ < fitted.log_likelihood_


def test_unfitted_model_and_bad_input():
    with pytest.raises(RuntimeError):
        BGNBD().p_alive(1, 1, 2)
    with pytest.raises(ValueError):
        BGNBD().fit([1], [5], [3])


def test_probability_of_purchases_matches_the_paper_and_sums_to_one(fitted):
    """P(X(t) = x), Fader, Hardie & Lee (2005) eq. 8, written out with plain gamma functions."""
    r, alpha, a, b = fitted.params_.values()
    t = 39.0
    for x in range(0, 8):
        nbd = gamma_fn(r + x) / (gamma_fn(r) * gamma_fn(x + 1)) * (alpha / (alpha + t)) ** r
        nbd *= (t / (alpha + t)) ** x
        direct = beta_fn(a, b + x) / beta_fn(a, b) * nbd
        if x > 0:
            cdf = sum(
                gamma_fn(r + j)
                / (gamma_fn(r) * gamma_fn(j + 1))
                * (alpha / (alpha + t)) ** r
                * (t / (alpha + t)) ** j
                for j in range(x)
            )
            direct += beta_fn(a + 1, b + x - 1) / beta_fn(a, b) * (1 - cdf)
        assert fitted.probability_of_purchases(x, t) == pytest.approx(direct, rel=1e-9)
    xs = np.arange(0, 2000)
    px = fitted.probability_of_purchases(xs, t)
    assert px.sum() == pytest.approx(1.0, abs=1e-9)
    assert (xs * px).sum() == pytest.approx(fitted.expected_purchases_new(t), rel=1e-6)
    assert np.all(np.isfinite(fitted.probability_of_purchases([0, 1000], [5000.0, 5000.0])))


def test_recovers_simulated_parameters():
    truth = {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 2.2}
    x, tx, T = simulate_bgnbd(np.random.default_rng(7), 6000, *truth.values())
    m = BGNBD().fit(x, tx, T)
    assert m.converged_
    for name, value in truth.items():
        se = m.standard_errors_[name]
        assert abs(m.params_[name] - value) < 4 * se, (name, m.params_[name], se)
        assert se < 0.35 * value


# -- the fit's fast path: distinct values, exact Hessian, warm start + Newton ----------------------


def awkward_patterns(rng, n=3000):
    """Patterns with repeated values, x = 0, t_x = T, very large x and T, and a zero weight."""
    T = rng.integers(1, 60, n) / 7.0 * 7.0
    x = rng.integers(0, 15, n).astype(float)
    tx = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T * 7.0) / 7.0, 0.0)
    x[:4], tx[:4], T[:4] = [1000, 1, 0, 3], [4999, 0, 0, 20], [5000, 5000, 5000, 20]
    w = rng.integers(1, 50, n).astype(float)
    w[5] = 0.0
    return x, tx, T, w


@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize(
    "params", [(0.243, 4.414, 0.793, 2.426), (1.7, 0.3, 2.5, 0.6), (0.05, 40.0, 0.2, 9.0)]
)
def test_distinct_value_likelihood_equals_the_per_pattern_sum(params, shift):
    from archer.models import mbgnbd
    from archer.models.bgnbd import BGLikelihood, _loglik_terms

    terms = _loglik_terms if shift == 0 else mbgnbd._loglik_terms
    x, tx, T, w = awkward_patterns(np.random.default_rng(3))
    p = np.array(params)
    ll, g = terms(p, x, tx, T, grad=True)
    lik = BGLikelihood(x, tx, T, w, shift=shift)
    value, grad, hess = lik.hessian(p)
    assert value == pytest.approx(w @ ll, rel=1e-12)
    scale = np.abs(g) @ w  # the gradient is a sum of terms of both signs
    np.testing.assert_array_less(np.abs(grad - g @ w), 1e-12 * scale)
    assert lik(p) == (value, None)
    np.testing.assert_array_equal(lik(p, grad=True)[1], grad)
    num = np.empty((4, 4))
    for k in range(4):
        h = 1e-6 * p[k]
        up, dn = p.copy(), p.copy()
        up[k] += h
        dn[k] -= h
        num[:, k] = (lik(up, grad=True)[1] - lik(dn, grad=True)[1]) / (2 * h)
    np.testing.assert_allclose(hess, num, rtol=1e-6, atol=1e-6 * np.abs(num).max())
    np.testing.assert_array_equal(hess, hess.T)


def test_warm_start_and_newton_give_the_lbfgsb_optimum(cdnow, fitted, monkeypatch):
    """The fit on a weighted sample of patterns then Newton on all, the fit by L-BFGS-B then
    Newton, and L-BFGS-B alone (no Hessian) reach the same optimum."""
    from archer.models import base
    from archer.models.bgnbd import BGLikelihood

    _, pats = cdnow
    args = (pats["frequency"], pats["recency"], pats["T"], pats["weights"])
    assert "NEWTON" in fitted.message_
    monkeypatch.setattr(base, "WARM_START_PATTERNS", 100)  # CDNOW has ~1,000 patterns
    sampled = BGNBD().fit(*args)
    assert sampled.converged_ and "NEWTON" in sampled.message_

    class NoHessian(BGNBD):
        @classmethod
        def _total(cls, data, w):
            lik = BGLikelihood(*data, w, shift=0)
            return lambda p, grad=False: lik(p, grad)

    plain = NoHessian().fit(*args)
    assert plain.converged_ and "NEWTON" not in plain.message_
    for name, value in fitted.params_.items():
        assert sampled.params_[name] == pytest.approx(value, rel=1e-7)
        assert plain.params_[name] == pytest.approx(value, rel=1e-6)
        se = plain.standard_errors_[name]
        assert fitted.standard_errors_[name] == pytest.approx(se, rel=1e-4)
    assert sampled.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-7)


def test_sample_patterns_is_an_unbiased_weighted_sample():
    from archer.models.base import sample_patterns

    rng = np.random.default_rng(0)
    w = rng.integers(1, 4, 50_000).astype(float)
    w[:100] = 10_000.0
    v = rng.uniform(0, 1, w.size)
    assert sample_patterns([v], w[:1000], 1000) is None
    (sv,), sw = sample_patterns([v], w, 2000)
    assert sv.size < 4000 and np.all(sw >= 1.0)
    assert np.all(np.isin(w[:100], w))  # the heavy patterns are always kept
    assert sw @ sv == pytest.approx(w @ v, rel=0.02)


def test_newton_declines_where_the_hessian_is_not_positive_definite():
    from archer.models.base import newton

    def concave(p):  # LL = +|log p|^2: a minimum of the likelihood, not a maximum
        t = np.log(p)
        return float(t @ t), 2 * t / p, np.diag((2 - 2 * t) / p**2)

    assert newton(concave, np.full(4, 0.5), 0.0, 1.0) is None


def test_single_threaded_blas_restores_the_thread_counts():
    from threadpoolctl import threadpool_info

    from archer.models.base import single_threaded_blas

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    with single_threaded_blas():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before


def test_a_warm_start_on_a_ridge_still_reaches_the_optimum(cdnow, monkeypatch):
    """Some samples of the CDNOW patterns send a and b off together along a ridge (seen with
    this order of the patterns: a ≈ 1.3e6, b ≈ 6.5e6); the fit must still end at the
    published optimum, not on the ridge."""
    from archer.models import base

    _, pats = cdnow
    monkeypatch.setattr(base, "WARM_START_PATTERNS", 100)
    p = pats.sample(frac=1, random_state=9).reset_index(drop=True)
    m = BGNBD().fit(p["frequency"], p["recency"], p["T"], weights=p["weights"])
    assert m.converged_
    assert m.params_["r"] == pytest.approx(0.2426, abs=5e-4)
    assert m.params_["a"] == pytest.approx(0.7929, abs=5e-4)
    assert m.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)


# -- expectations where a + b < 1 and other awkward corners (issue 11 item 20) ---------------------
# BG/NBD fitted on Online Retail (blank customers left out), weeks, calibration to 2011-06-30:
RETAIL = {"r": 0.7743909646700691, "alpha": 7.106735860976689, "a": 0.02585023691092758,
          "b": 0.41474524768493787}  # fmt: skip
RETAIL_HOLDOUT = 162 / 7  # 2011-07-01 .. 2011-12-09
# E[Y(t) | x = 0, T] = the bracket of eq. 10, from mpmath's hyp2f1 at 30 digits on the paper's
# 2F1(r, b; a+b-1; z) (and, independently, scipy's quad with the Beta weight, below)
RETAIL_EXPECTED = {0.0: 2.3668373619892996, 1 / 7: 2.321507673814459, 4.0: 1.5332667937502621,
                   10.0: 1.0065434701364436, 15.0: 0.78354157973201876,
                   20.0: 0.64180316247436414, 25.0: 0.5436686004452108,
                   30.0: 0.47166003876318167}  # fmt: skip


def _beta_weighted(r, a, b, x, alpha_T, t):
    """E over p ~ Beta(a, b+x) of (1 - (1 + p t/(alpha+T))^-(r+x)) / p, by adaptive quadrature
    with the Beta weight (no hypergeometric function involved)."""
    from scipy.integrate import quad
    from scipy.special import betaln

    R, w = r + x, t / alpha_T

    def h(p):
        return -np.expm1(-R * np.log1p(p * w)) / p if p > 0 else R * w

    value, _ = quad(h, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsabs=0, epsrel=1e-13,
                    limit=200)  # fmt: skip
    return value / np.exp(betaln(a, b + x))


def _retail_model():
    m = BGNBD()
    m.params_ = dict(RETAIL)
    return m


def test_expected_purchases_with_a_plus_b_below_one():
    """Was NaN for 46 of 61 T values: the log of a 2F1 that is negative there."""
    m = _retail_model()
    T = np.array(list(RETAIL_EXPECTED))
    zero = np.zeros_like(T)
    got = m.conditional_expected_purchases(RETAIL_HOLDOUT, zero, zero, T)  # p_alive = 1 at x = 0
    np.testing.assert_allclose(got, list(RETAIL_EXPECTED.values()), rtol=1e-13)
    every_day = np.arange(0, 30.2, 1 / 7)
    got = m.conditional_expected_purchases(RETAIL_HOLDOUT, 0, 0, every_day)
    assert np.all(np.isfinite(got)) and np.all(np.diff(got) < 0)
    r, alpha, a, b = RETAIL.values()
    for k in (0, 24, 119, 210):
        assert got[k] == pytest.approx(
            _beta_weighted(r, a, b, 0, alpha + every_day[k], RETAIL_HOLDOUT), rel=1e-11
        )
    assert np.all(np.isfinite(m.expected_purchases_new(np.linspace(0, 60, 121))))


@pytest.mark.parametrize(
    ("r", "a", "b", "x", "alpha_T", "t", "expected"),
    [
        # scipy's hyp2f1 gives NaN here (mpmath, 30 digits)
        (3.0, 5.0, 0.41475, 500, 0.5, 23.14, 126.10366198373635),
        # a > r + x + 2: the paper's series, not Euler's (mpmath)
        (0.2, 40.0, 20.0, 1, 0.5, 300.0, 1.5372545088821648),
        (0.77, 0.3, 0.4, 0, 7.1, 300.0, 8.7287699671198993),
        (3.0, 0.3, 0.4, 0, 2.0, 50.0, 16.918058106244233),
        # b = 3000: the tail bound pairs B with C, not with n! (mpmath, 20 digits)
        (0.77, 40.0, 3000.0, 0, 0.5, 23.14, 23.372755589963177),
        (0.05, 5.0, 3000.0, 0, 0.5, 23.14, 2.225913905781558),
        # a + b = 1 at x = 0, where C = 0 is a pole of 2F1 (limit from both sides, mpmath)
        (0.77, 0.25, 0.75, 0, 7.1, 23.14, 1.7971822095674459),
    ],
)
def test_expected_alive_against_high_precision(r, a, b, x, alpha_T, t, expected):
    from archer.models.bgnbd import expected_alive

    assert expected_alive(r, a, b, x, alpha_T, t) == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize("a", [0.02, 0.5, 1.0, 1.0 + 1e-9, 3.0])
@pytest.mark.parametrize("b", [0.3, 2.4])
@pytest.mark.parametrize("x", [0, 1, 7])
def test_expected_alive_against_the_beta_integral(a, b, x):
    """Across a = 1 (a removable singularity of the closed form) and a + b < 1."""
    from archer.models.bgnbd import expected_alive

    t = np.array([0.01, 1.0, 23.0, 200.0])
    got = expected_alive(0.6, a, b, x, 9.0, t)
    want = [_beta_weighted(0.6, a, b, x, 9.0, ti) for ti in t]
    np.testing.assert_allclose(got, want, rtol=1e-10)
