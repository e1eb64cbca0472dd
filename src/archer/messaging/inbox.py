"""Reading the shop's inbox: a member's messages (the ``inbox`` channel's deliveries), newest
first, and marking one read — what ``GET /v1/inbox/{customer}`` serves the shop's site.

Not to be confused with :mod:`archer.store.inbox`, the tracking API's inbox of received events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from archer.errors import Invalid, NotFound
from archer.store.campaigns import CUSTOMER_MAX
from archer.store.consent import InboxMessage

if TYPE_CHECKING:
    from archer.workspace import Workspace

MAX_PAGE = 100
MAX_OFFSET = 100_000  # a member's inbox is read from its newest end


def _check_customer(customer_id: str) -> None:
    if not customer_id or len(customer_id) > CUSTOMER_MAX or "\x00" in customer_id:
        raise Invalid(f"a customer id is 1–{CUSTOMER_MAX} characters with no NUL")


def read(ws: Workspace, customer_id: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
    """A page of the member's messages, newest first, with how many there are and how many
    are unread; ``more`` says whether a further page exists."""
    _check_customer(customer_id)
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit: expected 1 to {MAX_PAGE}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise Invalid(f"offset: expected 0 to {MAX_OFFSET:,}, got {offset}")
    m = InboxMessage
    with ws.session() as s:
        total, unread = s.execute(
            select(func.count(), func.count().filter(m.read_at.is_(None))).where(
                m.customer_id == customer_id
            )
        ).one()
        found = list(
            s.scalars(
                select(m)
                .where(m.customer_id == customer_id)
                .order_by(m.created_at.desc(), m.id.desc())
                .offset(offset)
                .limit(limit + 1)
            )
        )
        items = [r.to_dict() for r in found[:limit]]
    return {
        "customer_id": customer_id,
        "items": items,
        "total": int(total or 0),
        "unread": int(unread or 0),
        "more": len(found) > limit,
    }


def mark_read(ws: Workspace, customer_id: str, message_id: str) -> dict[str, Any]:
    """Mark one of the member's messages read (again: it keeps the first reading's time)."""
    _check_customer(customer_id)
    if not message_id or len(message_id) > 40:
        raise NotFound(f"no message {message_id[:40]!r} in the inbox of {customer_id!r}")
    m = InboxMessage
    with ws.session(write=True) as s:
        s.execute(
            update(m)
            .where(m.customer_id == customer_id, m.uid == message_id, m.read_at.is_(None))
            .values(read_at=ws.now())
        )
        row = s.scalar(select(m).where(m.customer_id == customer_id, m.uid == message_id))
        if row is None:
            raise NotFound(f"no message {message_id!r} in the inbox of {customer_id!r}")
        return row.to_dict()
