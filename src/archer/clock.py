"""Time as a parameter: the one place that reads the wall clock.

Core code asks ``ws.clock.now()`` (an aware UTC datetime) instead of ``datetime.now()``, so a
scheduler tick and a test that says "three days later" mean the same thing: a test holds a
:class:`ManualClock` and advances it; nothing sleeps and nothing patches ``datetime``.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to: ``advance(days=3)``, ``set(moment)``."""

    def __init__(self, start: datetime | str) -> None:
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime | str) -> None:
        self._now = _aware(moment)

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**parts)``; return the new moment."""
        step = delta if delta is not None else timedelta(**parts)
        if step < timedelta(0):
            raise ValueError(f"a clock does not go back (asked to move by {step})")
        self._now += step
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"


def _aware(moment: datetime | str) -> datetime:
    m = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return m.replace(tzinfo=UTC) if m.tzinfo is None else m.astimezone(UTC)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as the naive UTC datetime the warehouse stores."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def local_today(clock: Clock, tz: tzinfo) -> date:
    """Today's calendar date in the shop's time zone."""
    return clock.now().astimezone(tz).date()


def stamp(clock: Clock) -> str:
    """A compact UTC stamp for file names (20261205T083000)."""
    return clock.now().strftime("%Y%m%dT%H%M%S")


def elapsed() -> float:
    """A monotonic reading for measuring durations (not a time of day)."""
    return time.perf_counter()


SYSTEM = SystemClock()
