"""What is in the workspace: rows per table, the last imports and the last build."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archer.pipeline import last_build
from archer.schema import PROFILE
from archer.warehouse import Warehouse

if TYPE_CHECKING:
    from archer.workspace import Workspace


def status(ws: Workspace, last: int = 5) -> dict:
    """Rows per canonical table and the newest imports, as a JSON-ready dict."""
    ws.require()
    with ws.warehouse() as wh:
        return {
            "home": str(ws.settings.home.resolve()),
            "shop_name": ws.settings.shop_name,
            "warehouse": ws.settings.warehouse_url,
            "timezone": ws.settings.timezone,
            "currency": ws.settings.currency,
            "tables": wh.counts(),
            "last_imports": wh.last_imports(last),
            "last_build": _last_build(wh),
        }


def _last_build(wh: Warehouse) -> dict | None:
    """The last published build: its day, when it finished, and the size of the profile."""
    logged = last_build(wh)
    if logged is None or not wh.has_table(PROFILE):
        return None
    customers = int(wh.table(PROFILE).count().execute())
    return {
        "build_id": logged["build_id"],
        "as_of": logged["as_of"].isoformat(),
        "finished_at": logged["finished_at"].isoformat(),
        "customers": customers,
    }


def summary_text(doc: dict) -> str:
    """The demo's closing summary, in words."""
    t = doc["tables"]
    lines = [
        "",
        f"Archer demo — {doc['shop_name']} ({doc['home']})",
        f"  customers   {t['customers']:>12,}",
        f"  products    {t['products']:>12,}",
        f"  orders      {t['orders']:>12,}",
        f"  order items {t['order_items']:>12,}",
        f"  refunds     {t['refunds']:>12,}",
        f"  events      {t['events']:>12,}",
    ]
    rejected = sum(i["rejected"] for i in doc.get("imports", []))
    lines.append(f"  rows rejected on import: {rejected:,}")
    for k, v in doc.get("highlights", {}).items():
        lines.append(f"  {k}: {v}")
    if "build" in doc:
        b = doc["build"]
        states = ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in b["lifecycle"].items())
        lines.append(f"  lifecycle as of {b['as_of']}: {states}")
        lines.append(f"  purchase model: {b['models'].get('chosen') or 'none'}")
    for a in doc.get("audiences", []):
        lines.append(f"  audience {a['count']:>6,}  {a['query']}")
    home = doc["home"]
    lines.append(
        f"Next: `archer customer C0000006 --home {home}`, `archer funnel --home {home}` or "
        f"`archer audience count '…' --home {home}`."
    )
    return "\n".join(lines)
