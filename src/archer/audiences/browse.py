"""Browsing customers through the audience language: a page of the customers a query selects
(the Customers page), and every saved audience a customer is in or not, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archer.audiences import count, members
from archer.audiences import service as svc
from archer.plain import records

if TYPE_CHECKING:
    from archer.workspace import Workspace

EVERYONE = "customer_id is not null"
LIST_FIELDS = ["name", "lifecycle", "stage", "rfm_segment", "net_spent", "province", "city"]
PAGE_SIZE = 50


def search(ws: Workspace, query: str, page: int = 1, size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of the customers ``query`` selects (everyone when empty), with the counts of
    the whole query and of each top-level clause. Raises AudienceError for a bad query."""
    q = query.strip() or EVERYONE
    resolve = svc.resolver(ws)
    counted = count(ws, q, resolve=resolve)
    pages = max(1, -(-counted["count"] // size))
    page = min(max(1, page), pages)
    df = members(ws, q, fields=LIST_FIELDS, limit=page * size, resolve=resolve)
    return {
        **counted,
        "query": query.strip(),
        "clauses": counted["clauses"] if query.strip() else [],
        "page": page,
        "pages": pages,
        "rows": records(df.iloc[(page - 1) * size :]),
    }


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
