"""Lengths of time and times of day as campaigns and settings write them: ``1d12h``, ``07:30``."""

from __future__ import annotations

import re
from datetime import time, timedelta

_DURATION = re.compile(r"^(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_duration(text: str) -> timedelta:
    """``1d``, ``12h``, ``1d12h``, ``30m``, ``45s``: a positive length of time."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as 1d, 12h or 30m, got {text!r}")
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(f"expected a duration such as 1d, 12h or 30m, got {text!r}")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    out = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    if out <= timedelta(0):
        raise ValueError(f"a duration must be longer than zero, got {text!r}")
    return out


def parse_clock(text: str) -> time:
    """``07:30``: a time of day (in the shop's time zone)."""
    m = _CLOCK.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expected a time of day as HH:MM (00:00–23:59), got {text!r}")
    return time(int(m.group(1)), int(m.group(2)))
