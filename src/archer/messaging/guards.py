"""The rules a message meets when it is claimed, just before it goes: a late opt-out wins.

In order: expiry (a reminder days late is not sent), the address, the suppression list,
consent, send windows and quiet hours (in the shop's zone: wait for the next window, or skip,
as the campaign says), frequency caps per channel over rolling windows. The holdout comes
last, so both arms face the same rules; a held-back message counts toward the caps as if it
had gone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from archer.config import parse_cap
from archer.durations import parse_clock
from archer.messaging.consent import normalise
from archer.store.campaigns import Message
from archer.store.consent import Consent, Suppression

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from archer.config import CampaignSettings

_EMAIL = __import__("re").compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Verdict:
    action: str  # send | hold | skip | defer
    reason: str | None = None
    not_before: datetime | None = None


SEND = Verdict("send")


def _spans(windows: list[str], minutes: int) -> list[tuple[time, time]]:
    out = []
    for w in windows:
        if "-" in w:
            a, b = w.split("-", 1)
            out.append((parse_clock(a), parse_clock(b)))
        else:
            a = parse_clock(w)
            end = (datetime.combine(datetime(2000, 1, 1), a) + timedelta(minutes=minutes)).time()
            out.append((a, end))
    return out


def _inside(t: time, span: tuple[time, time]) -> bool:
    a, b = span
    return a <= t < b if a < b else (t >= a or t < b)  # a span may wrap midnight


class Windows:
    """When a campaign's messages on a channel may go, in the shop's zone (``d``: the
    campaign's stored definition)."""

    def __init__(self, d: dict, quiet: str | None, tz: ZoneInfo) -> None:
        self.allowed = _spans(d.get("windows") or [], int(d.get("window_minutes", 60)))
        self.quiet = _spans([quiet], 0) if quiet else []
        self.tz = tz

    def open_at(self, moment: datetime) -> bool:
        t = moment.astimezone(self.tz).time()
        if any(_inside(t, q) for q in self.quiet):
            return False
        return not self.allowed or any(_inside(t, a) for a in self.allowed)

    def next_open(self, moment: datetime) -> datetime:
        """The first moment at or after ``moment`` when a message may go."""
        if self.open_at(moment):
            return moment
        local = moment.astimezone(self.tz)
        edges = [s for s, _ in self.allowed] + [e for _, e in self.quiet]
        points = []
        for days in range(3):
            day = local.date() + timedelta(days=days)
            for t in edges:
                p = datetime.combine(day, t, tzinfo=self.tz)
                if p > local:
                    points.append(p)
        for p in sorted(points):
            if self.open_at(p):
                return p.astimezone(UTC)
        return moment + timedelta(days=1)


class Guards:
    """The guards of one claimed batch, with what they need read once."""

    def __init__(
        self,
        s: Session,
        now: datetime,
        rules: CampaignSettings,
        tz: ZoneInfo,
        definitions: dict[tuple[int, int], dict],
        batch: list[Message],
    ) -> None:
        self.now, self.rules, self.tz, self.defs = now, rules, tz, definitions
        custs = sorted({m.customer_id for m in batch})
        self.consent: dict[tuple[str, str, str], bool] = {}
        self.suppressed: set[tuple[str, str]] = set()
        self.recent: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        for i in range(0, len(custs), 500):
            part = custs[i : i + 500]
            for c in s.scalars(select(Consent).where(Consent.customer_id.in_(part))):
                self.consent[(c.customer_id, c.channel, c.purpose)] = c.granted
        addrs = defaultdict(set)
        for m in batch:
            if m.address:
                addrs[m.channel].add(normalise(m.channel, m.address))
        for channel, found in addrs.items():
            found_l = sorted(found)
            for i in range(0, len(found_l), 500):
                q = select(Suppression.address).where(
                    Suppression.channel == channel, Suppression.address.in_(found_l[i : i + 500])
                )
                self.suppressed.update((channel, a) for a in s.scalars(q))
        self.caps = {ch: [parse_cap(c) for c in caps] for ch, caps in rules.caps.items()}
        longest = max((w for caps in self.caps.values() for _, w in caps), default=None)
        if longest is not None:
            mine = {m.id for m in batch}
            since = now - longest
            for i in range(0, len(custs), 500):
                q = select(
                    Message.id, Message.customer_id, Message.channel, Message.sent_at, Message.state
                ).where(  # fmt: skip
                    Message.customer_id.in_(custs[i : i + 500]),
                    Message.purpose == "marketing",
                    or_(
                        (Message.state == "sent") & (Message.sent_at >= since),
                        (Message.state == "skipped")
                        & (Message.reason == "holdout")
                        & (Message.sent_at >= since),
                        (Message.state == "claimed") & (Message.lease_until > now),
                    ),
                )
                for mid, cust, ch, at, state in s.execute(q):
                    if mid in mine:
                        continue
                    self.recent[(cust, ch)].append(now if state == "claimed" else at)
        self._windows: dict[tuple[int, int, str], Windows] = {}

    def windows(self, m: Message) -> Windows:
        key = (m.campaign_id, m.version, m.channel)
        w = self._windows.get(key)
        if w is None:
            quiet = self.rules.quiet_hours.get(m.channel) if m.purpose == "marketing" else None
            w = self._windows[key] = Windows(self.defs[(m.campaign_id, m.version)], quiet, self.tz)
        return w

    def judge(self, m: Message) -> Verdict:
        now = self.now
        if m.expires_at is not None and now >= m.expires_at:
            return Verdict("skip", "expired")
        if m.channel != "inbox":
            if not m.address:
                return Verdict("skip", "no_address")
            if m.channel == "email" and not _EMAIL.match(m.address.strip()):
                return Verdict("skip", "bad_address")
            if (m.channel, normalise(m.channel, m.address)) in self.suppressed:
                return Verdict("skip", "suppressed")
        if not self._consents(m):
            return Verdict("skip", "no_consent")
        d = self.defs[(m.campaign_id, m.version)]
        w = self.windows(m)
        if not w.open_at(now):
            if d.get("outside_window") == "skip":
                return Verdict("skip", "outside_window")
            when = w.next_open(now)
            if m.expires_at is not None and when >= m.expires_at:
                return Verdict("skip", "expired")
            return Verdict("defer", "outside_window", when)
        if m.purpose == "marketing":
            sent = self.recent[(m.customer_id, m.channel)]
            for n, length in self.caps.get(m.channel, []):
                if sum(1 for t in sent if t > now - length) >= n:
                    return Verdict("skip", "frequency_cap")
            sent.append(now)  # the next message of this batch sees this one
        if m.arm == "holdout":
            return Verdict("hold", "holdout")
        return SEND

    def _consents(self, m: Message) -> bool:
        recorded = self.consent.get((m.customer_id, m.channel, m.purpose))
        if recorded is not None:
            return recorded
        if m.purpose == "service" or m.channel == "inbox":
            return True
        if m.opt_in is not None:
            return m.opt_in
        return self.rules.consent == "opt_out"
