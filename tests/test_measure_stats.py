"""The statistics of measurement against statsmodels, scipy and the published figures:
Newcombe's interval, Welch's interval from sums, the MDE, the verdict and the edge cases."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower, TTestIndPower, tt_ind_solve_power
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize

from archer.errors import Invalid
from archer.measurement import stats
from archer.measurement.stats import (
    HIGHER,
    LOWER,
    NOT_DISTINGUISHABLE,
    NOT_ENOUGH_DATA,
    Moments,
    mde_mean,
    mde_rate,
    mean_difference,
    rate_difference,
    verdict,
)

# Hillstrom's e-mail test, the published per-arm counts: (buyers, customers)
MENS, WOMENS, NONE = (267, 21_307), (189, 21_387), (122, 21_306)


def clean(d) -> bool:
    """No NaN or infinity anywhere in a result: it goes into a report as it is."""
    text = json.dumps(d.to_dict(), allow_nan=False)
    return bool(text)


# -- rates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arm", "points"), [(MENS, 0.6805), (WOMENS, 0.3111)], ids=["mens", "womens"]
)
def test_hillstrom_conversion_differences_and_their_newcombe_intervals(arm, points):
    d = rate_difference(*arm, *NONE)
    assert round(d.diff * 100, 4) == points
    low, high = confint_proportions_2indep(*arm, *NONE, method="newcomb", compare="diff")
    assert d.low == pytest.approx(low, abs=1e-9) and d.high == pytest.approx(high, abs=1e-9)
    assert d.low < d.diff < d.high
    assert d.verdict == HIGHER and d.method == "newcombe"
    assert d.relative == pytest.approx(d.diff / (122 / 21_306))


def test_newcombe_reproduces_the_paper():
    # Newcombe (1998), Statistics in Medicine 17:873, table II example (56/70 vs 48/80):
    # method 10 gives 0.0524 to 0.3339
    d = rate_difference(56, 70, 48, 80)
    assert (round(d.low, 4), round(d.high, 4)) == (0.0524, 0.3339)


@pytest.mark.parametrize(
    ("xt", "nt", "xc", "nc"),
    [(0, 10, 0, 10), (10, 10, 10, 10), (0, 500, 3, 500), (1, 1, 0, 1), (0, 1, 0, 1), (7, 9, 0, 3)],
)
def test_rates_at_the_edges_give_clean_results(xt, nt, xc, nc):
    d = rate_difference(xt, nt, xc, nc)
    assert clean(d)
    low, high = confint_proportions_2indep(xt, nt, xc, nc, method="newcomb", compare="diff")
    assert (d.low, d.high) == pytest.approx((low, high), abs=1e-9)
    assert -1 <= d.low <= d.diff <= d.high <= 1
    assert d.verdict in stats.VERDICTS


def test_no_conversions_in_either_arm_is_not_distinguishable_and_has_an_mde():
    d = rate_difference(0, 1000, 0, 1000)
    assert d.diff == 0 and d.verdict == NOT_DISTINGUISHABLE
    assert d.relative is None  # no lift over a control at 0%
    assert 0 < d.mde < 0.01  # a rise from 0% the test could still see


def test_all_converted_leaves_no_rise_to_detect():
    d = rate_difference(50, 50, 50, 50)
    assert d.mde is None and d.verdict == NOT_DISTINGUISHABLE


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_counts_give_statsmodels_interval_and_a_clean_result(data):
    nt = data.draw(st.integers(1, 5000), label="nt")
    nc = data.draw(st.integers(1, 5000), label="nc")
    xt = data.draw(st.integers(0, nt), label="xt")
    xc = data.draw(st.integers(0, nc), label="xc")
    d = rate_difference(xt, nt, xc, nc)
    assert clean(d)
    low, high = confint_proportions_2indep(xt, nt, xc, nc, method="newcomb", compare="diff")
    assert (d.low, d.high) == pytest.approx((low, high), abs=1e-9)
    assert (d.verdict == NOT_DISTINGUISHABLE) or (d.low > 0 or d.high < 0)


@pytest.mark.parametrize(("nt", "nc", "empty"), [(0, 10, "treated"), (10, 0, "control")])
def test_an_empty_arm_is_not_enough_data(nt, nc, empty):
    d = rate_difference(0, nt, 0, nc)
    assert d.verdict == NOT_ENOUGH_DATA and empty in d.reason
    assert d.diff is None and d.low is None and d.mde is None
    assert clean(d)
    assert (
        rate_difference(0, 0, 0, 0).reason == "the treated and the control arms have no customers"
    )


@pytest.mark.parametrize(
    "args", [(5, 4, 0, 4), (-1, 4, 0, 4), (1.5, 4, 0, 4), (True, 4, 0, 4), ("1", 4, 0, 4)]
)
def test_impossible_counts_are_refused(args):
    with pytest.raises(Invalid):
        rate_difference(*args)


def test_a_significant_difference_below_the_mde_is_not_declared():
    # 2,000 per arm, 10% against 12.2%: the interval leaves out 0, but the test was only sized
    # to see about 2.9 points
    d = rate_difference(244, 2000, 200, 2000)
    assert d.low > 0 and d.diff < d.mde
    assert d.verdict == NOT_DISTINGUISHABLE and "minimum detectable" in d.reason


def test_a_fall_is_lower():
    d = rate_difference(*NONE, *MENS)
    assert d.diff < 0 and d.verdict == LOWER


# -- the minimum detectable effect -------------------------------------------------------------


@pytest.mark.parametrize(
    ("nt", "nc", "base"), [(21_307, 21_306, 122 / 21_306), (9000, 1000, 0.03), (200, 50, 0.4)]
)
def test_the_rate_mde_is_the_rise_statsmodels_finds_with_80_percent_power(nt, nc, base):
    mde = mde_rate(nt, nc, base)
    h = proportion_effectsize(base + mde, base)
    power = NormalIndPower().power(h, nobs1=nt, alpha=0.05, ratio=nc / nt)
    assert power == pytest.approx(0.8, abs=1e-9)
    solved = NormalIndPower().solve_power(nobs1=nt, ratio=nc / nt, alpha=0.05, power=0.8)
    assert h == pytest.approx(solved, rel=1e-4)


def test_the_hillstrom_mde_is_about_a_fifth_of_a_point():
    assert mde_rate(21_307, 21_306, 122 / 21_306) == pytest.approx(0.00223, abs=1e-5)
    # a tenth of the customers: more than sqrt(10) times the MDE (a rise from a low rate
    # is harder to see than a fall on the arcsine scale)
    assert 3.16 < mde_rate(2131, 2131, 122 / 21_306) / mde_rate(21_307, 21_306, 0.00573) < 4


@pytest.mark.parametrize(("n", "sd"), [(50, 3.0), (2000, 10.0), (5, 1.0)])
def test_the_mean_mde_is_the_t_tests_at_equal_sizes_and_spread(n, sd):
    mde = mde_mean(n, n, sd)
    assert TTestIndPower().power(mde / sd, nobs1=n, alpha=0.05, ratio=1.0) == pytest.approx(
        0.8, abs=1e-9
    )
    solved = tt_ind_solve_power(nobs1=n, ratio=1.0, alpha=0.05, power=0.8)
    assert mde == pytest.approx(solved * sd, rel=1e-4)  # statsmodels' solver stops sooner


def test_the_mde_shrinks_with_size_and_is_none_without_it():
    assert mde_mean(10_000, 10_000, 5.0) < mde_mean(1000, 1000, 5.0)
    assert mde_mean(1, 100, 5.0) is None
    assert mde_rate(0, 100, 0.1) is None
    assert mde_rate(1, 1, 0.5) is None  # no rise within 100% is detectable with one each


# -- means -------------------------------------------------------------------------------------


def test_welch_from_values_is_scipys():
    rng = np.random.default_rng(3)
    a = np.where(rng.random(3000) < 0.02, rng.gamma(2.0, 60.0, 3000), 0.0)
    b = np.where(rng.random(1000) < 0.01, rng.gamma(2.0, 60.0, 1000), 0.0)
    d = mean_difference(a, b)
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert d.diff == pytest.approx(a.mean() - b.mean())
    assert d.method == "welch" and d.kind == "mean"


cents = st.integers(min_value=0, max_value=1_000_000)  # up to 10,000.00
arm = st.lists(cents, min_size=2, max_size=40)


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on ties
@settings(max_examples=200, deadline=None)
@given(arm, arm, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_welch_from_sums_equals_scipys_from_the_values(a_cents, b_cents, level):
    a = np.array(a_cents) / 100
    b = np.array(b_cents) / 100
    # what a store sums: the money as DECIMAL, exactly
    sums = [
        Moments.from_sums(
            len(c), sum(Decimal(x) / 100 for x in c), sum((Decimal(x) / 100) ** 2 for x in c)
        )
        for c in (a_cents, b_cents)
    ]
    d = mean_difference(*sums, level=level)
    if a.var() == 0 and b.var() == 0:  # scipy has no interval without spread; ours is the point
        assert d.low == d.high == pytest.approx(a.mean() - b.mean())
        return
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(level)
    assert d.low == pytest.approx(ci.low, rel=1e-7, abs=1e-9)
    assert d.high == pytest.approx(ci.high, rel=1e-7, abs=1e-9)


def test_sums_in_fen_lose_nothing_where_floats_would():
    # a large mean against a spread of a cent: naive float sums cancel to garbage
    values = [1_000_000_00 + (i % 2) for i in range(10_000)]  # fen
    m = Moments.from_sums(len(values), sum(values), sum(v * v for v in values))
    assert m.variance == pytest.approx(np.var(values, ddof=1), rel=1e-12)


def test_sums_that_cannot_be_are_refused():
    with pytest.raises(Invalid, match="not the sums"):
        Moments.from_sums(3, 30, 10)  # squares below total²/n
    with pytest.raises(Invalid):
        Moments.from_sums(0, 5, 25)
    with pytest.raises(Invalid):
        Moments.from_sums(3, float("nan"), 10)
    with pytest.raises(Invalid):
        mean_difference([1.0, float("inf")], [1.0, 2.0])


def test_money_per_customer_of_the_hillstrom_arms_from_their_totals():
    # spend per customer needs only the totals; the interval needs the spread too
    for total, n, expected in ((30_311.69, 21_307, 1.4226), (13_908.33, 21_306, 0.6528)):
        m = Moments.from_mean_variance(n, total / n, 250.0)
        assert round(m.mean, 4) == expected and m.total == pytest.approx(total)


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ([], [1.0, 2.0], "treated arm has no customers"),
        ([1.0, 2.0], [], "control arm has no customers"),
        ([5.0], [1.0, 2.0], "arm of one"),
    ],
)
def test_means_at_the_edges_are_not_enough_data(a, b, why):
    d = mean_difference(a, b)
    assert d.verdict == NOT_ENOUGH_DATA and why in d.reason and d.low is None
    assert clean(d)


def test_all_zero_spend_in_both_arms_is_not_distinguishable():
    d = mean_difference([0.0] * 100, [0.0] * 100)
    assert (d.diff, d.low, d.high, d.mde) == (0.0, 0.0, 0.0, 0.0)
    assert d.verdict == NOT_DISTINGUISHABLE and d.relative is None
    assert clean(d)


def test_the_bootstrap_agrees_with_welch_on_a_large_test():
    rng = np.random.default_rng(8)
    a = np.where(rng.random(20_000) < 0.0125, np.round(rng.gamma(2.0, 57.0, 20_000), 2), 0.0)
    b = np.where(rng.random(20_000) < 0.0057, np.round(rng.gamma(2.0, 57.0, 20_000), 2), 0.0)
    w = mean_difference(a, b)
    boot = mean_difference(a, b, method="bootstrap", resamples=4000, seed=1)
    assert boot.method == "bootstrap" and boot.diff == w.diff and boot.mde == w.mde
    width = w.high - w.low
    assert boot.low == pytest.approx(w.low, abs=0.1 * width)
    assert boot.high == pytest.approx(w.high, abs=0.1 * width)
    again = mean_difference(a, b, method="bootstrap", resamples=4000, seed=1)
    assert (again.low, again.high) == (boot.low, boot.high)  # deterministic for a seed


def test_the_bootstrap_is_scipys_percentile_bootstrap_in_distribution():
    rng = np.random.default_rng(2)
    a, b = rng.exponential(3.0, 300), rng.exponential(2.0, 200)
    ours = mean_difference(a, b, method="bootstrap", resamples=20_000, seed=5)
    theirs = sps.bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
        n_resamples=20_000,
        method="percentile",
        rng=np.random.default_rng(6),
    ).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.03)
    assert ours.high == pytest.approx(theirs.high, abs=0.03)


def test_the_bootstrap_needs_values_and_a_bounded_count():
    m = Moments.of([1.0, 2.0, 3.0])
    with pytest.raises(Invalid, match="one value per customer"):
        mean_difference(m, m, method="bootstrap")
    with pytest.raises(Invalid, match="resamples"):
        mean_difference([1.0, 2.0], [1.0, 3.0], method="bootstrap", resamples=10**7)
    with pytest.raises(Invalid, match="method"):
        mean_difference([1.0, 2.0], [1.0, 3.0], method="magic")


# -- the verdict -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diff", "low", "high", "mde", "word"),
    [
        (0.5, -0.1, 1.1, 0.3, NOT_DISTINGUISHABLE),
        (0.5, 0.2, 0.8, 0.3, HIGHER),
        (-0.5, -0.8, -0.2, 0.3, LOWER),
        (0.2, 0.05, 0.35, 0.3, NOT_DISTINGUISHABLE),
        (0.2, 0.05, 0.35, None, NOT_DISTINGUISHABLE),
        (None, None, None, None, NOT_ENOUGH_DATA),
        (0.0, 0.0, 0.0, 0.0, NOT_DISTINGUISHABLE),
    ],
)
def test_the_verdict(diff, low, high, mde, word):
    got, reason = verdict(diff, low, high, mde)
    assert got == word and reason


def test_levels_and_powers_are_checked():
    for kwargs in ({"level": 1.5}, {"level": math.nan}, {"power": 0.1}, {"power": 1.0}):
        with pytest.raises(Invalid):
            rate_difference(1, 10, 1, 10, **kwargs)
    narrow = rate_difference(*MENS, *NONE, level=0.8)
    wide = rate_difference(*MENS, *NONE, level=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high
