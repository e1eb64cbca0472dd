"""What a customer's page shows besides the profile: contact details and the timeline
(orders, refunds, events), newest first.

Queries are Ibis expressions over the canonical tables; values are bound, never SQL text."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ibis

TIMELINE_LIMIT = 100  # per kind: orders, refunds, events

if TYPE_CHECKING:
    from archer.workspace import Workspace


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def _local(v: datetime | None, tz: ZoneInfo) -> datetime | None:
    """A stored UTC time (naive) as the shop's local time."""
    if v is None:
        return None
    return v.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz).replace(tzinfo=None)


def contact(ws: Workspace, customer_id: str) -> dict[str, Any]:
    """The customer's row of ``customers`` (name, e-mail, phone, place …), or {}."""
    with ws.warehouse() as wh:
        c = wh.table("customers")
        rows = c.filter(c.customer_id == ibis.literal(customer_id, "string")).to_pyarrow()
        got = rows.to_pylist()
    return got[0] if got else {}


def timeline(ws: Workspace, customer_id: str) -> list[dict[str, Any]]:
    """The customer's orders, refunds and events, newest first (at most
    :data:`TIMELINE_LIMIT` of each kind), in the shop's local time."""
    cid = ibis.literal(customer_id, "string")
    tz = ws.tz
    out: list[dict[str, Any]] = []
    with ws.warehouse() as wh:
        o = wh.table("orders")
        orders = (
            o.filter(o.customer_id == cid)
            .order_by(ibis.desc(o.created_at))
            .limit(TIMELINE_LIMIT)
            .select("order_id", "created_at", "paid_at", "status", "paid_amount", "channel")
            .to_pyarrow()
            .to_pylist()
        )
        for r in orders:
            paid = "paid" if r["paid_at"] else "not paid"
            out.append(
                {
                    "at": _local(r["created_at"], tz),
                    "kind": "order",
                    "what": f"Order {r['order_id']} ({r['status']}, {paid})",
                    "amount": r["paid_amount"],
                    "detail": r["channel"],
                }
            )
        rf = wh.table("refunds")
        mine = o.filter(o.customer_id == cid).select(o_id="order_id")
        refunds = (
            rf.join(mine, rf.order_id == mine.o_id)
            .order_by(ibis.desc(rf.refunded_at))
            .limit(TIMELINE_LIMIT)
            .select("refund_id", "order_id", "refunded_at", "amount", "reason")
            .to_pyarrow()
            .to_pylist()
        )
        for r in refunds:
            out.append(
                {
                    "at": _local(r["refunded_at"], tz),
                    "kind": "refund",
                    "what": f"Refund {r['refund_id']} of order {r['order_id']}",
                    "amount": r["amount"],
                    "detail": r["reason"],
                }
            )
        e = wh.table("events")
        events = (
            e.filter(e.customer_id == cid)
            .order_by(ibis.desc(e.occurred_at))
            .limit(TIMELINE_LIMIT)
            .select("type", "occurred_at", "product_id", "category", "query", "source")
            .to_pyarrow()
            .to_pylist()
        )
        for r in events:
            bits = [r["category"], r["product_id"], r["query"] and f"“{r['query']}”", r["source"]]
            out.append(
                {
                    "at": _local(r["occurred_at"], tz),
                    "kind": "event",
                    "what": r["type"],
                    "amount": None,
                    "detail": " · ".join(b for b in bits if b),
                }
            )
    out.sort(key=lambda r: r["at"] or datetime.min, reverse=True)
    return out
