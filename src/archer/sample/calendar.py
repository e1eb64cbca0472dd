"""The synthetic shop's clock: festival days and the seasonal intensity profiles.

Time is a float number of days since ``start`` 00:00 shop-local time. A profile is an hourly
intensity over the period (mean 1 for purchase profiles); events from a non-homogeneous
Poisson process are drawn by time warping through its cumulative sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from archer.festivals import (
    DEFAULT_FESTIVALS,
    RULES_BY_KEY,
    Festival,
    festival_windows,
    shop_closures,
)
from archer.sample.data import BIG_SALES

RULE_KEYS = tuple(r.key for r in DEFAULT_FESTIVALS)
# Hour-of-day shape of shop traffic (Chinese online shopping peaks late evening).
HOUR_SHAPE = np.array([
    0.55, 0.3, 0.15, 0.1, 0.08, 0.1, 0.2, 0.45, 0.7, 0.9, 1.1, 1.2,
    1.1, 1.0, 1.0, 1.05, 1.0, 1.0, 1.1, 1.35, 1.6, 1.75, 1.55, 1.05,
])  # fmt: skip
PROFILES = ("regular", "festival", "register")


@dataclass
class Calendar:
    """Festival day maps and cumulative intensity profiles for one period."""

    start: date
    end: date
    days: int
    festivals: list[Festival]
    day_festival: np.ndarray  # per day: index into festivals, -1 outside windows
    day_rule: np.ndarray  # per day: index into RULE_KEYS, -1 outside windows
    closed: np.ndarray  # per day: Spring Festival holiday
    grid: np.ndarray  # hour boundaries in days, length days*24+1
    cums: dict[str, np.ndarray]  # cumulative intensity at the grid points

    @classmethod
    def build(cls, start: date, end: date) -> Calendar:
        days = (end - start).days + 1
        if days < 1:
            raise ValueError(f"end {end} is before start {start}")
        fests = festival_windows(start, end)
        day_fest = np.full(days, -1, np.int16)
        day_rule = np.full(days, -1, np.int16)
        main = np.zeros(days, bool)
        big_main = np.zeros(days, bool)
        for i, f in enumerate(fests):
            a, b = max((f.start - start).days, 0), min((f.end - start).days, days - 1)
            day_fest[a : b + 1] = i
            day_rule[a : b + 1] = RULE_KEYS.index(f.key)
            if f.day is not None and 0 <= (f.day - start).days < days:
                main[(f.day - start).days] = True
                big_main[(f.day - start).days] = f.key in BIG_SALES
        closed = np.zeros(days, bool)
        for c0, c1 in shop_closures(start, end):
            closed[max((c0 - start).days, 0) : max((c1 - start).days + 1, 0)] = True
        weekday = (np.arange(days) + start.weekday()) % 7
        weekend = np.where(weekday >= 5, 1.1, 1.0)
        in_win = day_fest >= 0
        big_win = np.isin(day_rule, [RULE_KEYS.index(k) for k in BIG_SALES])
        closure = np.where(closed, 0.25, 1.0)

        regular = weekend * closure * np.where(big_win, 1.5, np.where(in_win, 1.25, 1.0))
        regular *= np.where(big_main, 3.0, np.where(main, 1.5, 1.0))
        festival = np.where(big_win, 1.5, np.where(in_win, 0.8, 0.02)) * closure
        festival *= np.where(big_main, 3.0, np.where(main, 1.5, 1.0))
        growth = np.exp(np.log(2.5) * np.arange(days) / days)
        register = growth * weekend * np.where(closed, 0.4, 1.0) * np.where(in_win, 1.3, 1.0)
        register *= np.where(big_main, 2.5, 1.0)

        grid = np.arange(days * 24 + 1) / 24.0
        cums = {}
        for name, daily in (("regular", regular), ("festival", festival), ("register", register)):
            hourly = np.repeat(daily, 24) * np.tile(HOUR_SHAPE / HOUR_SHAPE.mean(), days)
            if name != "register":
                # The first hours of 11.11 and 6.18 are a rush of paid-for presales.
                hourly[np.repeat(big_main, 24) & (np.tile(np.arange(24), days) < 2)] *= 4.0
                hourly /= hourly.mean()
            cums[name] = np.concatenate([[0.0], np.cumsum(hourly) / 24.0])
        return cls(start, end, days, fests, day_fest, day_rule, closed, grid, cums)

    def cum(self, profile: str, t: np.ndarray) -> np.ndarray:
        """Cumulative intensity of ``profile`` at times ``t`` (days)."""
        return np.interp(t, self.grid, self.cums[profile])

    def inv(self, profile: str, s: np.ndarray) -> np.ndarray:
        """Times at which the cumulative intensity reaches ``s`` (clipped to the period)."""
        return np.interp(s, self.cums[profile], self.grid)

    def total(self, profile: str) -> float:
        return float(self.cums[profile][-1])

    def warp(self, fest: np.ndarray, t: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Move each time ``t`` on by ``delta`` units of its own profile's intensity.

        Returns ``inf`` where the result lies past the end of the period.
        """
        out = np.empty(len(t))
        for flag, name in ((False, "regular"), (True, "festival")):
            m = fest == flag
            s = self.cum(name, t[m]) + delta[m]
            out[m] = np.where(s < self.total(name), self.inv(name, s), np.inf)
        return out

    def between(self, fest: np.ndarray, a: np.ndarray, b: np.ndarray, u: np.ndarray):
        """A time between ``a`` and ``b`` at quantile ``u`` of each row's profile."""
        out = np.empty(len(a))
        for flag, name in ((False, "regular"), (True, "festival")):
            m = fest == flag
            sa, sb = self.cum(name, a[m]), self.cum(name, b[m])
            out[m] = self.inv(name, sa + u[m] * (sb - sa))
        return out

    def exposure(self, fest: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Integrated intensity between ``a`` and ``b`` under each row's profile."""
        out = np.empty(len(a))
        for flag, name in ((False, "regular"), (True, "festival")):
            m = fest == flag
            out[m] = self.cum(name, b[m]) - self.cum(name, a[m])
        return out

    def sample(self, profile: str, u: np.ndarray) -> np.ndarray:
        """Times distributed as ``profile`` over the whole period, from uniforms ``u``."""
        return self.inv(profile, u * self.total(profile))

    def after_closure(self, t: np.ndarray) -> np.ndarray:
        """Times falling in a shop closure moved to the same hour of the first open day."""
        day = np.clip(np.floor(np.nan_to_num(t)).astype(np.int64), 0, self.days - 1)
        open_day = np.where(self.closed, self.days, np.arange(self.days))
        reopen = np.minimum.accumulate(open_day[::-1])[::-1]
        inside = (t < self.days) & self.closed[day]
        return np.where(inside, reopen[day] + (t - np.floor(t)), t)

    def festival_of(self, t: np.ndarray) -> np.ndarray:
        """Festival index (into ``festivals``) of the day of each time, -1 outside windows."""
        return self.day_festival[np.clip(t.astype(np.int64), 0, self.days - 1)]

    def rule_of(self, t: np.ndarray) -> np.ndarray:
        """Festival rule index (into ``RULE_KEYS``) of each time's day, -1 outside windows."""
        return self.day_rule[np.clip(t.astype(np.int64), 0, self.days - 1)]

    def windows_json(self) -> list[dict[str, object]]:
        """Each window, with the hot words planted in its searches (behaviour.py)."""
        return [
            {"key": f.key, "name": f.name, "start": f.start.isoformat(),
             "end": f.end.isoformat(), "day": f.day.isoformat() if f.day else "",
             "hot_words": list(RULES_BY_KEY[f.key].hot_words)}
            for f in self.festivals
        ]  # fmt: skip

    def day_of(self, t: float) -> date:
        return self.start + timedelta(days=int(t))
