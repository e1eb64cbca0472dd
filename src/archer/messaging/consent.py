"""Consent per customer, channel and purpose, with its evidence; suppressions by address.

A recorded decision (an unsubscribe, an API update, an operator's change) beats the opt-in
flag imported with the customer; with neither, ``[campaigns] consent`` decides (``opt_in`` by
default: no marketing without a yes). Service messages (an order's status) go unless the
customer refused service messages too. Every change is appended to ``consent_log``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from archer.errors import Invalid, NotFound
from archer.store.consent import CHANNELS, PURPOSES, Consent, ConsentLog, Suppression

if TYPE_CHECKING:
    from archer.workspace import Workspace

SOURCES = ("import", "unsubscribe", "api", "cli", "web", "reply", "bounce", "complaint")
REASONS = ("bounce", "complaint", "unsubscribe", "manual")


def normalise(channel: str, address: str) -> str:
    """The form an address is compared in: e-mail lower-cased, a phone's digits (and +)."""
    a = address.strip()
    if channel == "email":
        return a.lower()
    if channel == "sms":
        return re.sub(r"[^\d+]", "", a)
    return a


def _check(channel: str, purpose: str | None = None) -> None:
    if channel not in CHANNELS:
        raise Invalid(f"unknown channel {channel!r} (expected one of {', '.join(CHANNELS)})")
    if purpose is not None and purpose not in PURPOSES:
        raise Invalid(f"unknown purpose {purpose!r} (expected one of {', '.join(PURPOSES)})")


def record(
    s: Session,
    customer_id: str,
    channel: str,
    purpose: str,
    granted: bool,
    *,
    source: str,
    evidence: str | None,
    at,
) -> dict[str, Any]:
    """Record a decision in an open session (the unsubscribe route, the API, the CLI)."""
    _check(channel, purpose)
    if not customer_id or len(customer_id) > 200:
        raise Invalid("a customer id is 1–200 characters")
    if evidence is not None and len(evidence) > 2000:
        raise Invalid("evidence is at most 2,000 characters")
    row = s.get(Consent, (customer_id, channel, purpose))
    if row is None:
        row = Consent(customer_id=customer_id, channel=channel, purpose=purpose)
        s.add(row)
    row.granted, row.source, row.evidence, row.updated_at = granted, source, evidence, at
    s.add(
        ConsentLog(
            customer_id=customer_id, channel=channel, purpose=purpose, granted=granted,
            source=source, evidence=evidence, at=at,
        )
    )  # fmt: skip
    s.flush()
    return row.to_dict()


def set_consent(
    ws: Workspace,
    customer_id: str,
    channel: str,
    granted: bool,
    *,
    purpose: str = "marketing",
    source: str = "api",
    evidence: str | None = None,
) -> dict[str, Any]:
    with ws.session(write=True) as s:
        return record(
            s, customer_id, channel, purpose, granted, source=source, evidence=evidence,
            at=ws.now(),
        )  # fmt: skip


def of_customer(ws: Workspace, customer_id: str) -> dict[str, Any]:
    """A customer's recorded decisions and their history."""
    with ws.session() as s:
        current = [
            r.to_dict()
            for r in s.scalars(
                select(Consent)
                .where(Consent.customer_id == customer_id)
                .order_by(Consent.channel, Consent.purpose)
            )
        ]
        log = s.execute(
            select(ConsentLog)
            .where(ConsentLog.customer_id == customer_id)
            .order_by(ConsentLog.at, ConsentLog.id)
        ).scalars()
        history = [
            {"channel": r.channel, "purpose": r.purpose, "granted": r.granted,
             "source": r.source, "evidence": r.evidence, "at": r.at.isoformat()}
            for r in log
        ]  # fmt: skip
    return {"customer_id": customer_id, "consent": current, "history": history}


def suppress(
    ws: Workspace, channel: str, address: str, *, reason: str = "manual", source: str | None = None
) -> dict[str, Any]:
    _check(channel)
    if reason not in REASONS:
        raise Invalid(f"unknown reason {reason!r} (expected one of {', '.join(REASONS)})")
    addr = normalise(channel, address)
    if not addr or len(addr) > 320:
        raise Invalid("an address is 1–320 characters")
    with ws.session(write=True) as s:
        row = s.get(Suppression, (channel, addr))
        if row is None:
            row = Suppression(channel=channel, address=addr, reason=reason, source=source,
                              created_at=ws.now())  # fmt: skip
            s.add(row)
            s.flush()
        return row.to_dict()


def unsuppress(ws: Workspace, channel: str, address: str) -> dict[str, Any]:
    _check(channel)
    addr = normalise(channel, address)
    with ws.session(write=True) as s:
        gone = s.execute(
            delete(Suppression).where(Suppression.channel == channel, Suppression.address == addr)
        ).rowcount
    if not gone:
        raise NotFound(f"{address!r} is not suppressed on {channel}")
    return {"channel": channel, "address": addr, "removed": True}


def suppressions(
    ws: Workspace, channel: str | None = None, limit: int = 1000, offset: int = 0
) -> list[dict]:
    with ws.session() as s:
        q = (
            select(Suppression)
            .order_by(Suppression.created_at.desc(), Suppression.channel, Suppression.address)
            .offset(offset)
            .limit(limit)
        )
        if channel:
            q = q.where(Suppression.channel == channel)
        return [r.to_dict() for r in s.scalars(q)]


def unsubscribe(ws: Workspace, token: str, *, evidence: str | None = None) -> dict[str, Any]:
    """One-click unsubscribe (RFC 8058): the link's customer refuses marketing on its channel.
    A token not signed by this workspace is :class:`Invalid`; repeating it changes nothing
    more than the time of the decision."""
    from archer.signing import read_unsubscribe_token

    customer_id, channel = read_unsubscribe_token(ws.settings, token)
    if channel not in CHANNELS:
        raise Invalid("this unsubscribe link is not valid")
    return set_consent(
        ws, customer_id, channel, False, purpose="marketing", source="unsubscribe",
        evidence=(evidence or "")[:2000] or None,
    )  # fmt: skip
