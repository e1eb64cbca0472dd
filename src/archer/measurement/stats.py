"""Treated against control: the difference, its interval, the smallest effect the test could
see, and a verdict that declares nothing below it.

* Rates (conversion): the difference of two proportions with Newcombe's hybrid score interval
  (Newcombe 1998, method 10: Wilson intervals of each arm, combined), as statsmodels computes it.
* Money per customer: the difference of means with Welch's interval — from the values or from
  sufficient statistics (n, sum, sum of squares), since money per customer is mostly zeros and
  a store can sum it where it lies — or a percentile bootstrap of the values.
* The minimum detectable effect (MDE): the smallest true difference a two-sided test at
  ``alpha`` finds with probability ``power`` at the arms' sizes (80% and 5% by default). For
  rates it is the rise over the control's rate on the arcsine scale (Cohen's h, as statsmodels'
  ``NormalIndPower``), which stays defined at a 0% or 100% rate; for means it is the difference
  the Welch test finds with that power (non-central t).

Every result is a :class:`Difference`; an empty arm, an arm of one, no conversions or all of
them give a result that says so (``None`` figures and the verdict ``"not enough data"``),
never an exception or a NaN in a report. The figures hold for a fixed-horizon test read once at
its planned size: reading them every day and stopping at the first good one overstates them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

from archer.errors import Invalid

LEVEL = 0.95
POWER = 0.80
MAX_RESAMPLES = 100_000
# distinct values × resamples drawn at once by the bootstrap (a bound on its memory)
_BOOTSTRAP_CELLS = 2_000_000

HIGHER = "higher"
LOWER = "lower"
NOT_DISTINGUISHABLE = "not distinguishable from zero"
NOT_ENOUGH_DATA = "not enough data"
VERDICTS = (HIGHER, LOWER, NOT_DISTINGUISHABLE, NOT_ENOUGH_DATA)


@dataclass(frozen=True)
class Difference:
    """Treated minus control, for a rate or a mean, with its interval, MDE and verdict.

    ``treated`` and ``control`` are the arms' estimates (a rate as a fraction, or a mean);
    ``diff = treated - control``; ``low``/``high`` bound it at ``level``; ``relative`` is
    ``diff / control`` (the lift; ``None`` when the control is 0). ``mde`` is the smallest
    rise over the control the test finds with probability ``power``. Figures that cannot be
    computed (an empty arm, an arm of one for a mean) are ``None``, and ``reason`` says why.
    """

    kind: str  # "rate" or "mean"
    method: str  # "newcombe", "welch" or "bootstrap"
    n_treated: int
    n_control: int
    treated: float | None
    control: float | None
    diff: float | None
    low: float | None
    high: float | None
    relative: float | None
    mde: float | None
    level: float
    power: float
    verdict: str
    reason: str

    @property
    def covers_zero(self) -> bool | None:
        """Whether the interval holds 0 (``None`` when there is no interval)."""
        if self.low is None or self.high is None:
            return None
        return self.low <= 0.0 <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Moments:
    """An arm's money per customer summarised: how many customers, the total, the mean and the
    sample variance (``ddof=1``; ``None`` for fewer than two customers)."""

    n: int
    total: float
    mean: float | None
    variance: float | None

    @property
    def sd(self) -> float | None:
        return None if self.variance is None else math.sqrt(self.variance)

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> Moments:
        """From one value per customer (0 for a customer who spent nothing)."""
        a = _values(values, "values")
        n = int(a.size)
        if n == 0:
            return cls(0, 0.0, None, None)
        mean = float(a.mean())
        var = float(a.var(ddof=1)) if n >= 2 else None
        return cls(n, math.fsum(a.tolist()), mean, var)

    @classmethod
    def from_sums(cls, n: int, total: Any, sum_squares: Any) -> Moments:
        """From ``n``, the sum and the sum of squares, as a store sums them. The variance is
        computed exactly from the numbers given (ints and Decimals — money in fen or as
        DECIMAL — lose nothing), so no cancellation when the mean is large against the spread."""
        n = _count(n, "n")
        t, ss = _exact(total, "total"), _exact(sum_squares, "sum_squares")
        if n == 0:
            if t or ss:
                raise Invalid(f"no customers, but a total of {float(t)} and squares {float(ss)}")
            return cls(0, 0.0, None, None)
        if ss < 0 or ss * n < t * t:
            raise Invalid(
                f"sum of squares {float(ss)} is below total²/n = {float(t * t / n)}: these are "
                "not the sums of one set of values"
            )
        var = float((ss * n - t * t) / (n * (n - 1))) if n >= 2 else None
        return cls(n, float(t), float(t / n), var)

    @classmethod
    def from_mean_variance(cls, n: int, mean: float | None, variance: float | None) -> Moments:
        """From ``n``, the mean and the sample variance (SQL's ``avg`` and ``var_samp``)."""
        n = _count(n, "n")
        if n == 0:
            return cls(0, 0.0, None, None)
        m = _finite(mean, "mean")
        v = None if n < 2 else _finite(variance, "variance")
        if v is not None and v < 0:
            raise Invalid(f"variance {v} is negative")
        return cls(n, m * n, m, v)


# -- rates -----------------------------------------------------------------------------------------


def rate_difference(
    treated_buyers: int,
    treated_n: int,
    control_buyers: int,
    control_n: int,
    *,
    level: float = LEVEL,
    power: float = POWER,
) -> Difference:
    """Conversion of treated minus control with Newcombe's hybrid score interval (method 10),
    the MDE at these sizes and the verdict."""
    level, power = _level(level), _power(power)
    nt, nc = _count(treated_n, "treated_n"), _count(control_n, "control_n")
    xt, xc = _count(treated_buyers, "treated_buyers"), _count(control_buyers, "control_buyers")
    if xt > nt or xc > nc:
        raise Invalid(f"more buyers than customers ({xt} of {nt}, {xc} of {nc})")
    pt = xt / nt if nt else None
    pc = xc / nc if nc else None

    def result(diff, low, high, mde, v: tuple[str, str]) -> Difference:
        rel = None if diff is None or not pc else diff / pc
        return Difference(
            "rate", "newcombe", nt, nc, pt, pc, diff, low, high, rel, mde, level, power, *v
        )

    if pt is None or pc is None:
        return result(None, None, None, None, (NOT_ENOUGH_DATA, _empty(nt, nc)))
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        xt, nt, xc, nc, method="newcomb", compare="diff", alpha=1 - level
    )
    diff = pt - pc
    low, high = float(low), float(high)
    mde_up = mde_rate(nt, nc, pc, alpha=1 - level, power=power)
    mde_seen = mde_up if diff >= 0 else _mde_rate_down(nt, nc, pc, 1 - level, power)
    return result(diff, low, high, mde_up, verdict(diff, low, high, mde_seen, level=level))


def mde_rate(
    n_treated: int,
    n_control: int,
    baseline: float,
    *,
    alpha: float = 1 - LEVEL,
    power: float = POWER,
) -> float | None:
    """The smallest rise over a ``baseline`` rate (a fraction) that a two-sided test at
    ``alpha`` finds with probability ``power`` with these arm sizes: Cohen's h solved as
    statsmodels' ``NormalIndPower`` does, turned back into a rate difference. ``None`` when
    no rise within 100% is detectable (tiny arms, or a baseline at 100%)."""
    h = _cohen_h(n_treated, n_control, alpha, power)
    if h is None:
        return None
    b = _rate(baseline)
    angle = math.asin(math.sqrt(b)) + h / 2
    if angle > math.pi / 2:
        return None
    return math.sin(angle) ** 2 - b


def sample_size_rate(
    baseline: float,
    rise: float,
    *,
    alpha: float = 1 - LEVEL,
    power: float = POWER,
    limit: int = 10**9,
) -> int | None:
    """Customers per arm (two equal arms) a two-sided test at ``alpha`` needs to find a
    ``rise`` over a ``baseline`` rate with probability ``power``: the inverse of
    :func:`mde_rate`. ``None`` when the rise is not positive, passes 100%, or needs more than
    ``limit`` per arm."""
    b = _rate(baseline)
    r = _finite(rise, "rise")
    if r <= 0 or b + r > 1:
        return None
    h = 2 * math.asin(math.sqrt(b + r)) - 2 * math.asin(math.sqrt(b))
    k = _cohen_h(1, 1, _alpha(alpha), _power(power)) * math.sqrt(0.5)  # h·√(n/2) at the power
    n = max(2, math.ceil(2 * (k / h) ** 2))
    if n > limit:
        return None
    while (
        n > 2 and (m := mde_rate(n - 1, n - 1, b, alpha=alpha, power=power)) is not None and m <= r
    ):
        n -= 1  # float rounding of the closed form: the smallest n that sees it
    while (m := mde_rate(n, n, b, alpha=alpha, power=power)) is None or m > r:
        n += 1
    return n


def _mde_rate_down(nt: int, nc: int, baseline: float, alpha: float, power: float) -> float | None:
    h = _cohen_h(nt, nc, alpha, power)
    if h is None:
        return None
    angle = math.asin(math.sqrt(baseline)) - h / 2
    return None if angle < 0 else baseline - math.sin(angle) ** 2


def _cohen_h(nt: int, nc: int, alpha: float, power: float) -> float | None:
    """The standardised effect a two-sided z test finds with ``power`` (both tails counted)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    nt, nc = _count(nt, "n_treated"), _count(nc, "n_control")
    alpha, power = _alpha(alpha), _power(power)
    if not nt or not nc:
        return None
    scale = math.sqrt(nt * nc / (nt + nc))
    crit = norm.isf(alpha / 2)

    def gap(h: float) -> float:
        return norm.sf(crit - h * scale) + norm.cdf(-crit - h * scale) - power

    hi = (crit + norm.isf(1 - power) + 1) / scale
    return float(brentq(gap, 0.0, hi, xtol=1e-14, rtol=1e-12))


# -- means -----------------------------------------------------------------------------------------


def mean_difference(
    treated: Moments | Sequence[float] | np.ndarray,
    control: Moments | Sequence[float] | np.ndarray,
    *,
    method: str = "welch",
    level: float = LEVEL,
    power: float = POWER,
    resamples: int = 2000,
    seed: int = 0,
) -> Difference:
    """Mean of treated minus mean of control (money per customer), with Welch's interval
    (``method="welch"``; values or :class:`Moments`) or a percentile bootstrap
    (``method="bootstrap"``; values only, ``resamples`` draws, deterministic for ``seed``).
    The MDE is Welch's either way."""
    level, power = _level(level), _power(power)
    if method not in ("welch", "bootstrap"):
        raise Invalid(f"method {method!r}: expected 'welch' or 'bootstrap'")
    raw_t = None if isinstance(treated, Moments) else _values(treated, "treated")
    raw_c = None if isinstance(control, Moments) else _values(control, "control")
    if method == "bootstrap" and (raw_t is None or raw_c is None):
        raise Invalid("the bootstrap needs one value per customer, not sums")
    mt = treated if isinstance(treated, Moments) else Moments.of(raw_t)
    mc = control if isinstance(control, Moments) else Moments.of(raw_c)

    def result(diff, low, high, mde, v: tuple[str, str]) -> Difference:
        rel = None if diff is None or not mc.mean else diff / mc.mean
        return Difference(
            "mean", method, mt.n, mc.n, mt.mean, mc.mean, diff, low, high, rel, mde, level,
            power, *v,
        )  # fmt: skip

    if mt.mean is None or mc.mean is None:
        return result(None, None, None, None, (NOT_ENOUGH_DATA, _empty(mt.n, mc.n)))
    diff = mt.mean - mc.mean
    if mt.variance is None or mc.variance is None:
        why = "an arm of one customer has no spread to measure an interval by"
        return result(diff, None, None, None, (NOT_ENOUGH_DATA, why))
    alpha = 1 - level
    se, df = _welch_se_df(mt, mc)
    mde = _mde_welch(se, df, alpha, power)
    if method == "welch":
        low, high = welch_interval(mt, mc, level=level)
    else:
        resamples = _count(resamples, "resamples")
        if not 1 <= resamples <= MAX_RESAMPLES:
            raise Invalid(f"resamples {resamples}: expected 1 to {MAX_RESAMPLES:,}")
        low, high = _bootstrap(raw_t, raw_c, level, resamples, seed)
    return result(diff, low, high, mde, verdict(diff, low, high, mde, level=level))


def welch_interval(
    treated: Moments, control: Moments, *, level: float = LEVEL
) -> tuple[float, float]:
    """Welch's interval for the difference of means (Welch–Satterthwaite degrees of freedom);
    both arms need two customers or more. With no spread in either arm it is the point."""
    from scipy.stats import t as student

    if treated.variance is None or control.variance is None:
        raise Invalid("Welch's interval needs at least two customers in each arm")
    diff = treated.mean - control.mean  # type: ignore[operator]
    se, df = _welch_se_df(treated, control)
    if se == 0.0:
        return diff, diff
    half = float(student.isf((1 - _level(level)) / 2, df)) * se
    return diff - half, diff + half


def mde_mean(
    n_treated: int,
    n_control: int,
    sd_treated: float,
    sd_control: float | None = None,
    *,
    alpha: float = 1 - LEVEL,
    power: float = POWER,
) -> float | None:
    """The smallest difference of means a two-sided Welch test at ``alpha`` finds with
    probability ``power``, for arms of these sizes and standard deviations (``sd_control``
    defaults to ``sd_treated``). ``None`` when an arm has fewer than two customers."""
    nt, nc = _count(n_treated, "n_treated"), _count(n_control, "n_control")
    st = _finite(sd_treated, "sd_treated")
    sc = st if sd_control is None else _finite(sd_control, "sd_control")
    if st < 0 or sc < 0:
        raise Invalid("a standard deviation cannot be negative")
    if nt < 2 or nc < 2:
        return None
    se, df = _welch_se_df(Moments(nt, 0.0, 0.0, st * st), Moments(nc, 0.0, 0.0, sc * sc))
    return _mde_welch(se, df, _alpha(alpha), _power(power))


def _welch_se_df(a: Moments, b: Moments) -> tuple[float, float]:
    va, vb = a.variance / a.n, b.variance / b.n  # type: ignore[operator]
    se2 = va + vb
    if se2 == 0.0:
        return 0.0, math.inf
    df = se2 * se2 / (va * va / (a.n - 1) + vb * vb / (b.n - 1))
    return math.sqrt(se2), df


def _mde_welch(se: float, df: float, alpha: float, power: float) -> float:
    """δ with P(|T| > t crit) = power for T ~ non-central t(df, δ/se): the power of the test."""
    from scipy.optimize import brentq
    from scipy.stats import nct, norm
    from scipy.stats import t as student

    if se == 0.0:
        return 0.0
    if math.isinf(df):
        crit = norm.isf(alpha / 2)

        def gap(nc: float) -> float:
            return norm.sf(crit - nc) + norm.cdf(-crit - nc) - power

    else:
        crit = student.isf(alpha / 2, df)

        def gap(nc: float) -> float:
            # the far tail is negligible; scipy's nct gives NaN for it at a few df
            far = float(nct.cdf(-crit, df, nc))
            return float(nct.sf(crit, df, nc)) + (far if math.isfinite(far) else 0.0) - power

    hi = crit + norm.isf(1 - power) + 1.0
    while gap(hi) < 0:  # few degrees of freedom: the t's heavy tails need a wider bracket
        hi *= 2
    return float(brentq(gap, 0.0, hi, xtol=1e-12, rtol=1e-12)) * se


def _bootstrap(
    treated: np.ndarray, control: np.ndarray, level: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of the difference of means over resampled arms. Each arm is drawn
    as counts of its distinct values (a multinomial), which is the same resampling as drawing
    customers with replacement but costs the number of distinct amounts — few, when most
    customers spent 0 — instead of the number of customers."""
    rng = np.random.default_rng(seed)
    diffs = _resampled_means(treated, resamples, rng) - _resampled_means(control, resamples, rng)
    tail = (1 - level) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return float(low), float(high)


def _resampled_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    distinct, counts = np.unique(values, return_counts=True)
    n = int(values.size)
    p = counts / n
    step = max(1, _BOOTSTRAP_CELLS // distinct.size)
    means = np.empty(resamples)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        drawn = rng.multinomial(n, p, size=stop - start)
        means[start:stop] = drawn @ distinct / n
    return means


# -- the verdict -----------------------------------------------------------------------------------


def verdict(
    diff: float | None,
    low: float | None,
    high: float | None,
    mde: float | None,
    *,
    level: float = LEVEL,
) -> tuple[str, str]:
    """(verdict, reason): ``"higher"`` or ``"lower"`` only when the interval leaves out 0 and
    the difference is at least the MDE; ``"not distinguishable from zero"`` when the interval
    holds 0 or the difference is below what the test was sized to see (such a difference,
    when "significant", is mostly luck and overstated); ``"not enough data"`` without an
    interval."""
    pct = f"{level:.0%}"
    if diff is None or low is None or high is None:
        return NOT_ENOUGH_DATA, "no interval could be computed"
    if low <= 0.0 <= high:
        return NOT_DISTINGUISHABLE, f"the {pct} interval includes 0"
    if mde is None:
        return NOT_DISTINGUISHABLE, "the arms are too small to detect any effect"
    if abs(diff) < mde:
        return NOT_DISTINGUISHABLE, (
            f"the {pct} interval leaves out 0, but the difference is below the minimum "
            "detectable effect: the test is too small to tell an effect this size from luck"
        )
    word = HIGHER if diff > 0 else LOWER
    return word, f"the {pct} interval leaves out 0 and the difference is at least the MDE"


# -- checks ------------------------------------------------------------------------------------


def _empty(nt: int, nc: int) -> str:
    empty = [name for name, n in (("treated", nt), ("control", nc)) if n == 0]
    return f"the {' and the '.join(empty)} arm{'s have' if len(empty) > 1 else ' has'} no customers"


def _count(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise Invalid(f"{name} {v!r}: expected a whole number")
    if v < 0:
        raise Invalid(f"{name} {v}: expected 0 or more")
    return int(v)


def _finite(v: Any, name: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise Invalid(f"{name} {v!r}: expected a number") from None
    if not math.isfinite(f):
        raise Invalid(f"{name} {v!r}: expected a finite number")
    return f


def _exact(v: Any, name: str) -> Fraction:
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return Fraction(int(v))
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise Invalid(f"{name} {v}: expected a finite number")
        return Fraction(v)
    return Fraction(_finite(v, name))


def _values(values: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise Invalid(f"{name}: expected numbers, one per customer") from None
    if a.ndim != 1:
        raise Invalid(f"{name}: expected a flat list of numbers, one per customer")
    if not np.isfinite(a).all():
        raise Invalid(f"{name}: {int((~np.isfinite(a)).sum())} values are not finite numbers")
    return a


def _rate(v: Any) -> float:
    f = _finite(v, "baseline")
    if not 0.0 <= f <= 1.0:
        raise Invalid(f"baseline {f}: expected a rate between 0 and 1")
    return f


def _level(v: Any) -> float:
    f = _finite(v, "level")
    if not 0.5 <= f < 1.0:
        raise Invalid(f"level {f}: expected a confidence level such as 0.95")
    return f


def _alpha(v: Any) -> float:
    f = _finite(v, "alpha")
    if not 0.0 < f <= 0.5:
        raise Invalid(f"alpha {f}: expected a significance level such as 0.05")
    return f


def _power(v: Any) -> float:
    f = _finite(v, "power")
    if not 0.5 <= f < 1.0:
        raise Invalid(f"power {f}: expected a power such as 0.8")
    return f
