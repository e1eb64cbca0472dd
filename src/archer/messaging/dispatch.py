"""Sending what the campaigns planned: claim with a lease, re-check the guards, render, send,
mark each message sent as soon as it is.

Claiming is one short transaction that holds the store's write lock (SQLite ``BEGIN
IMMEDIATE``; PostgreSQL's advisory lock, with ``FOR UPDATE SKIP LOCKED`` on the rows): due
messages, and claimed ones whose lease ran out (their worker died), become this worker's for
``lease_seconds``, and the guards judge them with exact counts, since no other claim runs
meanwhile. Sending happens outside any transaction; each message is marked ``sent`` in its own.
A worker that finds its lease (nearly) run out before a send hands the message back untried,
since another worker may have reclaimed it. A worker killed between sending and marking leaves
a claimed message whose lease runs out; it is sent again with the same uid, which a provider
that deduplicates (SMTP ``Message-ID`` at a deduplicating sink) drops — at most one duplicate
per kill otherwise.

A coupon lives only if its message can go: when a message that shows a code is skipped (no
consent, no address, a cap, expired) or surely failed (refused, template, given up), the code
is taken back in the same transaction (:func:`archer.offers.coupons.void_unsent`). A message
whose fate is unknown keeps its coupon.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from archer.messaging import templates
from archer.messaging.channels import Channel, Outgoing, Permanent, Temporary, Unknown, open_channel
from archer.messaging.consent import suppress
from archer.messaging.guards import Guards
from archer.offers import coupons
from archer.signing import unsubscribe_token
from archer.store.campaigns import Campaign, CampaignVersion, Message

if TYPE_CHECKING:
    from archer.workspace import Workspace


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Tally:
    sent: int = 0
    held: int = 0  # holdout: would have gone
    deferred: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0  # handed back untried: the lease ran out before they could go
    unknown: int = 0  # of the failed: sent or not, only the provider's receipt can tell
    coupons_voided: int = 0  # carried by messages that will never go out, so taken back
    skipped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "held_back": self.held,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
            "deferred": self.deferred,
            "retried": self.retried,
            "failed": self.failed,
            "released": self.released,
            "unknown": self.unknown,
            "coupons_voided": self.coupons_voided,
        }


class Dispatcher:
    """One worker: its channels (opened on first use) and the definitions it has read."""

    def __init__(self, ws: Workspace, *, name: str | None = None, channels=None) -> None:
        self.ws = ws
        self.name = name or worker_name()
        self.only = set(channels) if channels else None
        self._channels: dict[str, Channel | None] = {}
        self._defs: dict[tuple[int, int], dict] = {}  # stored definitions, as plain data
        self._names: dict[int, str] = {}
        self._down: dict[str, Temporary] = {}  # channels found down in this batch

    def close(self) -> None:
        for ch in self._channels.values():
            if ch is not None:
                ch.close()
        self._channels.clear()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def channel(self, name: str) -> Channel | None:
        if name not in self._channels:
            self._channels[name] = open_channel(self.ws, name)
        return self._channels[name]

    def usable(self) -> list[str]:
        return [c for c in self.ws.settings.channels() if self.only is None or c in self.only]

    # -- a pass ------------------------------------------------------------------------------
    def run(self, now: datetime | None = None, *, max_batches: int | None = None) -> Tally:
        """Send everything due at ``now`` (default: the clock, read before each batch)."""
        tally = Tally()
        batches = 0
        while max_batches is None or batches < max_batches:
            at = now or self.ws.now()
            claimed = self.claim(at, tally)
            if not claimed:
                break
            batches += 1
            for m in claimed:
                self.deliver(m, at if now else self.ws.now(), tally)
        return tally

    def claim(self, now: datetime, tally: Tally) -> list[Message]:
        rules = self.ws.settings.campaigns
        chans = self.usable()
        self._down.clear()
        with self.ws.session(write=True) as s:
            active = [
                cid for cid in s.scalars(select(Campaign.id).where(Campaign.status == "active"))
            ]
            if not active or not chans:
                return []
            due = (
                select(Message.id)
                .where(
                    Message.campaign_id.in_(active),
                    Message.channel.in_(chans),
                    ((Message.state == "planned") & (Message.not_before <= now))
                    | ((Message.state == "claimed") & (Message.lease_until < now)),
                )
                .order_by(Message.not_before, Message.id)
                .limit(rules.batch)
            )
            if s.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(s.scalars(due))
            if not ids:
                return []
            lease = now + timedelta(seconds=rules.lease_seconds)
            s.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(
                    state="claimed",
                    claimed_by=self.name,
                    lease_until=lease,
                    attempts=Message.attempts + 1,
                )
            )
            batch = list(s.scalars(select(Message).where(Message.id.in_(ids)).order_by(
                Message.not_before, Message.id)))  # fmt: skip
            self._read_definitions(s, batch)
            guards = Guards(s, now, rules, self.ws.tz, self._defs, batch)
            out, unsent = [], []
            for m in batch:
                v = guards.judge(m)
                if v.action == "send":
                    out.append(m)
                    continue
                values: dict[str, Any] = {"lease_until": None, "claimed_by": None}
                if v.action == "defer":
                    values |= {"state": "planned", "not_before": v.not_before,
                               "attempts": m.attempts - 1}  # fmt: skip
                    tally.deferred += 1
                elif v.action == "hold":
                    values |= {"state": "skipped", "reason": "holdout", "sent_at": now}
                    tally.held += 1
                else:
                    values |= {"state": "skipped", "reason": v.reason}
                    tally.skipped[v.reason] += 1
                    unsent.append(m)
                s.execute(update(Message).where(Message.id == m.id).values(**values))
            codes = [c for m in unsent for c in carried_codes(m)]
            tally.coupons_voided += coupons.void_unsent(s, codes)
            return out

    def _read_definitions(self, s, batch: list[Message]) -> None:
        for cid, ver in {(m.campaign_id, m.version) for m in batch} - set(self._defs):
            row = s.get(CampaignVersion, (cid, ver))
            self._defs[(cid, ver)] = json.loads(row.definition)
            self._names[cid] = s.get(Campaign, cid).name

    def deliver(self, m: Message, now: datetime, tally: Tally) -> None:
        if m.lease_until is not None and now >= m.lease_until - self._margin():
            # The lease ran out (or is about to, before a send could finish): another worker
            # may have reclaimed the message and sent it. Hand it back untried; if it is still
            # ours it is due again at once.
            self._finish(m, {"state": "planned", "claimed_by": None,
                             "attempts": m.attempts - 1})  # fmt: skip
            tally.released += 1
            return
        ch = self.channel(m.channel)
        if ch is None:  # the channel went away since the claim: leave it for another worker
            self._finish(m, {"state": "planned", "lease_until": None, "claimed_by": None})
            return
        try:
            out = self.render(m)
        except templates.TemplateProblem as e:
            self._finish(
                m, {"state": "failed", "reason": "template", "error": str(e)[:2000]}, tally
            )
            tally.failed += 1
            return
        try:
            if m.channel in self._down:  # the rest of the batch waits with the first
                raise self._down[m.channel]
            got = ch.send(out)
        except Temporary as e:
            if e.down:
                self._down[m.channel] = e
            rules = self.ws.settings.campaigns
            if m.attempts >= rules.max_attempts:
                self._finish(
                    m, {"state": "failed", "reason": "gave_up", "error": str(e)[:2000]}, tally
                )
                tally.failed += 1
                return
            wait = min(rules.retry_seconds * 2 ** (m.attempts - 1), 3600)
            self._finish(
                m,
                {"state": "planned", "not_before": now + timedelta(seconds=wait),
                 "reason": "retry", "error": str(e)[:2000]},
            )  # fmt: skip
            tally.retried += 1
            return
        except Unknown as e:  # it may have gone: failed as "unknown", never sent again blindly
            self._finish(m, {"state": "failed", "reason": "unknown", "error": str(e)[:2000]})
            tally.failed += 1
            tally.unknown += 1
            return
        except Permanent as e:
            self._finish(m, {"state": "failed", "reason": "refused", "error": str(e)[:2000]}, tally)
            if e.suppress and m.address:
                suppress(self.ws, m.channel, m.address, reason=e.suppress, source=m.uid)
            tally.failed += 1
            return
        self._finish(
            m,
            {"state": "sent", "sent_at": now, "provider_id": got.provider_id,
             "cost_fen": got.cost_fen, "reason": None, "error": None},
        )  # fmt: skip
        tally.sent += 1

    def _margin(self) -> timedelta:
        """How much of a lease must be left to start a send: a quarter of it."""
        return timedelta(seconds=self.ws.settings.campaigns.lease_seconds / 4)

    def _finish(self, m: Message, values: dict[str, Any], unsent: Tally | None = None) -> None:
        """Write a claimed message's outcome, if it is still this worker's. With ``unsent`` (the
        tally), the message surely never went out: the coupon it carried is taken back in the
        same transaction."""
        values = {"lease_until": None, **values}
        t = Message.__table__  # a Core statement: the ORM's bulk-update bookkeeping costs more
        with self.ws.session(write=True) as s:  # than the write, once per message sent
            done = s.connection().execute(
                update(t)
                .where(t.c.id == m.id, t.c.state == "claimed", t.c.claimed_by == self.name)
                .values(**values)
            )
            if unsent is not None and done.rowcount:
                unsent.coupons_voided += coupons.void_unsent(s, carried_codes(m))

    def render(self, m: Message) -> Outgoing:
        d = self._defs[(m.campaign_id, m.version)]
        step = next(s for s in d["steps"] if s["id"] == m.step)
        content = (step.get("variants") or {}).get(m.variant or "", step)
        ctx = json.loads(m.context or "{}")
        ctx.setdefault("customer", {})
        ctx["shop"] = {"name": self.ws.settings.shop_name,
                       "currency": self.ws.settings.currency,
                       "url": self.ws.settings.campaigns.public_url}  # fmt: skip
        ctx["campaign"] = {"name": self._names.get(m.campaign_id, ""), "step": m.step}
        unsub = None
        if m.purpose == "marketing" and m.channel == "email":
            base = self.ws.settings.campaigns.public_url
            if base:
                token = unsubscribe_token(self.ws.settings, m.customer_id, m.channel)
                unsub = f"{base}/u/{token}"
        ctx["unsubscribe_url"] = unsub or ""

        def part(name: str, html: bool = False) -> str | None:
            src = content.get(name) or step.get(name)
            return templates.render(src, ctx, html=html) if src is not None else None

        raw_params = content.get("params")
        raw_params = step.get("params") if raw_params is None else raw_params
        params = {k: templates.render(v, ctx) for k, v in (raw_params or {}).items()}
        return Outgoing(
            uid=m.uid,
            customer_id=m.customer_id,
            campaign=self._names.get(m.campaign_id, ""),
            channel=m.channel,
            purpose=m.purpose,
            address=m.address,
            subject=part("subject"),
            text=part("text"),
            html=part("html", html=True),
            unsubscribe_url=unsub,
            template=content.get("template") or step.get("template"),
            params=params,
        )


def carried_codes(m: Message) -> list[str]:
    """The codes of the coupons a message carries: those its run was given since its last
    message (``coupons`` in its context)."""
    if not m.context or '"coupons"' not in m.context:
        return []
    got = json.loads(m.context).get("coupons")
    return [c["code"] for c in got if isinstance(c, dict) and c.get("code")] if isinstance(
        got, list) else []  # fmt: skip


def dispatch(ws: Workspace, now: datetime | None = None, **kw) -> dict[str, Any]:
    """One pass of one worker: send everything due; what happened."""
    with Dispatcher(ws, **kw) as d:
        return d.run(now).to_dict()
