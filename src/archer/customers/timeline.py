"""What a customer's page shows besides the profile: contact details and the timeline
(orders, refunds, events), newest first.

Queries are Ibis expressions over the canonical tables; values are bound, never SQL text."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir

TIMELINE_LIMIT = 100  # per kind: orders, refunds, events

if TYPE_CHECKING:
    from archer.workspace import Workspace


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

    def add(at: datetime | None, kind: str, what: str, amount: Any, detail: Any) -> None:
        out.append(
            {"at": _local(at, tz), "kind": kind, "what": what, "amount": amount, "detail": detail}
        )

    with ws.warehouse() as wh:
        o = wh.table("orders")
        mine = o.filter(o.customer_id == cid)
        cols = ("order_id", "created_at", "paid_at", "status", "paid_amount", "channel")
        for r in _newest(mine, "created_at", cols):
            paid = "paid" if r["paid_at"] else "not paid"
            what = f"Order {r['order_id']} ({r['status']}, {paid})"
            add(r["created_at"], "order", what, r["paid_amount"], r["channel"])
        rf = wh.table("refunds")
        ids = mine.select(o_id="order_id")
        refunds = rf.join(ids, rf.order_id == ids.o_id)
        cols = ("refund_id", "order_id", "refunded_at", "amount", "reason")
        for r in _newest(refunds, "refunded_at", cols):
            what = f"Refund {r['refund_id']} of order {r['order_id']}"
            add(r["refunded_at"], "refund", what, r["amount"], r["reason"])
        e = wh.table("events")
        cols = ("type", "occurred_at", "product_id", "category", "query", "source")
        for r in _newest(e.filter(e.customer_id == cid), "occurred_at", cols):
            bits = [r["category"], r["product_id"], r["query"] and f"“{r['query']}”", r["source"]]
            add(r["occurred_at"], "event", r["type"], None, " · ".join(b for b in bits if b))
    out.sort(key=lambda r: r["at"] or datetime.min, reverse=True)
    return out


def _newest(t: ir.Table, at: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The newest :data:`TIMELINE_LIMIT` rows of ``t`` by its time column ``at``."""
    rows = t.order_by(ibis.desc(t[at])).limit(TIMELINE_LIMIT).select(*columns)
    return rows.to_pyarrow().to_pylist()
