"""What is in the workspace: rows per table, the last imports and the last build."""

from __future__ import annotations

from archer.config import CONFIG_FILE, Settings
from archer.warehouse import Warehouse


def status(settings: Settings, last: int = 5) -> dict:
    """Rows per canonical table and the newest imports, as a JSON-ready dict."""
    if not (settings.home / CONFIG_FILE).exists():
        raise ValueError(f"no workspace at {settings.home}: run `archer init` first")
    with Warehouse.connect(settings.warehouse_url) as wh:
        wh.ensure_tables()
        return {
            "home": str(settings.home.resolve()),
            "shop_name": settings.shop_name,
            "warehouse": settings.warehouse_url,
            "timezone": settings.timezone,
            "currency": settings.currency,
            "tables": wh.counts(),
            "last_imports": wh.last_imports(last),
            "last_build": _last_build(wh),
        }


def _last_build(wh: Warehouse) -> dict | None:
    """The as-of day and size of the profile in the warehouse, if one was built."""
    if not wh.has_table("customer_profile"):
        return None
    p = wh.table("customer_profile")
    row = p.aggregate(as_of=p.as_of.max(), customers=p.count()).to_pyarrow().to_pylist()[0]
    as_of = row["as_of"]
    return {"as_of": as_of.isoformat() if as_of else None, "customers": row["customers"]}


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
