"""A theme plan made into a broadcast (``campaigns.service.create``): the plan's group as the
audience, its first send window of the channel as the send time, a holdout, one message naming
the selected products. A plan with oversold products is refused unless the operator confirms;
the confirmation (who, when, which products) is recorded in the broadcast's description, which
is kept with every version of the campaign."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from archer.errors import Conflict, Invalid

if TYPE_CHECKING:
    from archer.workspace import Workspace

CHANNELS = ("email", "sms")


def definition(
    doc: dict[str, Any], name: str, *, channel: str = "email", holdout: float = 0.1,
    confirmed_by: str | None = None, now: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The broadcast's definition (as the campaigns module reads it) for plan ``doc``."""
    if channel not in CHANNELS:
        raise Invalid(f"channel {channel!r}: expected one of {', '.join(CHANNELS)}")
    at = next((w["at"] for w in doc["send_windows"] if w["channel"] == channel), None)
    if at is None:
        raise Invalid(f"the plan has no {channel} send window")
    send_at = datetime.fromisoformat(at)
    products = ", ".join(p["name"] for p in doc["products"][:5])
    desc = (f"theme {doc['festival']} {doc['target']['start']}…{doc['target']['end']}; words: "
            f"{', '.join(doc['words']) or '-'}; products: "
            f"{', '.join(p['product_id'] for p in doc['products']) or '-'}")  # fmt: skip
    if doc["oversold"]:
        stamp = now.isoformat(timespec="seconds") if now else "?"
        desc += f"; oversell confirmed by {confirmed_by} at {stamp}: {', '.join(doc['oversold'])}"
    text = "{{ customer.name or '您好' }}：\n\n" + (products or "活动商品") + "\n"
    return {
        "name": name,
        "kind": "broadcast",
        "description": desc[:2000],
        "holdout": holdout,
        "send_at": send_at,
        "send_until": send_at + timedelta(days=1),
        "goal": "purchased",
        "trigger": {"on": "audience", "audience": doc["group"]["query"], "key": "customer"},
        "steps": [
            {"id": "theme", "type": "message", "channel": channel, "expires": "1d",
             **({"subject": "{{ shop.name }} " + doc["festival"]} if channel == "email" else {}),
             "text": text},
        ],
    }  # fmt: skip


def create_broadcast(
    ws: Workspace, doc: dict[str, Any], name: str, *, user: str, channel: str = "email",
    holdout: float = 0.1, confirm_oversell: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Create plan ``doc`` as a draft broadcast; an oversold plan needs ``confirm_oversell``."""
    from archer.campaigns import service

    if doc["oversold"] and not confirm_oversell:
        raise Conflict(
            f"the selection may oversell {', '.join(doc['oversold'])}: remove them, restock, "
            "or confirm (--confirm-oversell), which is recorded with the broadcast"
        )
    raw = definition(doc, name, channel=channel, holdout=holdout,
                     confirmed_by=user if confirm_oversell else None, now=ws.now())  # fmt: skip
    return service.create(ws, raw, user=user)
