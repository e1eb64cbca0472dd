"""What the customer pages show besides the profile: a page of an audience's members, and one
customer's contact details and timeline (orders, refunds, events), newest first.

Queries are Ibis expressions over the canonical tables; values are bound, never SQL text."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ibis

from archer.audiences import count, members
from archer.audiences import service as svc

EVERYONE = "customer_id is not null"
LIST_FIELDS = ["name", "lifecycle", "stage", "rfm_segment", "net_spent", "province", "city"]
PAGE_SIZE = 50
TIMELINE_LIMIT = 100  # per kind: orders, refunds, events

if TYPE_CHECKING:
    from archer.workspace import Workspace


def search(ws: Workspace, query: str, page: int = 1, size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of the customers ``query`` selects (everyone when empty), with the counts of
    the whole query and of each top-level clause. Raises AudienceError for a bad query."""
    q = query.strip() or EVERYONE
    resolve = svc.resolver(ws)
    counted = count(ws, q, resolve=resolve)
    pages = max(1, -(-counted["count"] // size))
    page = min(max(1, page), pages)
    df = members(ws, q, fields=LIST_FIELDS, limit=page * size, resolve=resolve)
    rows = df.iloc[(page - 1) * size :].to_dict(orient="records")
    return {
        **counted,
        "query": query.strip(),
        "clauses": counted["clauses"] if query.strip() else [],
        "page": page,
        "pages": pages,
        "rows": [{k: _plain(v) for k, v in r.items()} for r in rows],
    }


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


def audiences_of(ws: Workspace, customer_id: str) -> list[dict[str, Any]]:
    """Every saved audience with whether the customer is in it and why (clause by clause)."""
    out = []
    for a in svc.list_audiences(ws):
        try:
            doc = svc.explain_member(ws, a["name"], customer_id)
        except ValueError as e:  # a definition the language no longer reads
            out.append({"name": a["name"], "query": a["query"], "error": str(e)})
            continue
        out.append({"name": a["name"], "query": a["query"], "error": None, **doc})
    out.sort(key=lambda d: (not d.get("member"), d["name"]))
    return out
