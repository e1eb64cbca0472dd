"""Every call the campaigns benchmark makes into archer, in one place."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

SEND_AT = "2026-12-12T10:00:00"  # the broadcast's send time, in the shop's zone (+08:00)
NOW = datetime(2026, 12, 12, 3, 0, tzinfo=UTC)  # an hour after it
AS_OF = date(2026, 12, 11)
AUDIENCE = "email_reachable"  # 9 customers in 10: every tenth has not opted in


def make_shop(home: Path, customers: int) -> dict[str, float]:
    """A workspace whose warehouse holds ``customers`` members written directly (no orders),
    with its profile built; seconds per step."""
    from archer.clock import ManualClock
    from archer.config import init_workspace
    from archer.pipeline import build
    from archer.workspace import Workspace

    ws = Workspace(init_workspace(home), ManualClock(NOW))
    t0 = time.perf_counter()
    with ws.warehouse() as wh:
        wh.con.raw_sql(
            "insert into customers (customer_id, registered_at, name, email, email_opt_in) "
            "select 'c' || lpad(i::varchar, 7, '0'), timestamp '2025-01-01' + to_seconds(i), "
            f"'客户' || i, 'c' || i || '@example.com', i % 10 <> 0 from range({customers}) t(i)"
        )
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    build(ws, AS_OF)
    return {"customers_s": made, "build_s": time.perf_counter() - t0}


def workspace(home: Path, smtp: dict[str, Any] | None = None, **campaigns: Any):
    """The shop at :data:`NOW` (a manual clock), with e-mail set up."""
    from archer.clock import ManualClock
    from archer.config import SmtpSettings, load_settings
    from archer.workspace import Workspace

    ws = Workspace(load_settings(home), ManualClock(NOW))
    smtp = smtp or {"host": "127.0.0.1", "port": 2525, "security": "none"}
    rules = ws.settings.campaigns.model_copy(update=campaigns)
    return ws.replace(smtp=SmtpSettings(**smtp), campaigns=rules)


def definition(name: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": name, "kind": "broadcast", "holdout": 0.1, "send_at": SEND_AT,
        "trigger": {"on": "audience", "audience": AUDIENCE, "key": "customer"},
        "steps": [{"id": "news", "type": "message", "channel": "email", "expires": "1d",
                   "subject": "{{ shop.name }} 双十二 · {{ customer.name }}",
                   "text": "{{ customer.name }}，您好：\n\n双十二活动开始了。\n"
                           "{% if unsubscribe_url %}退订：{{ unsubscribe_url }}{% endif %}\n"}],
        **kw,
    }  # fmt: skip


def create(ws, raw: dict[str, Any]) -> None:
    from archer.campaigns import service

    service.create(ws, raw, user="bench", start=True)


def plan(ws) -> dict[str, Any]:
    from archer.campaigns import engine

    return engine.plan(ws, NOW).to_dict()


def ledger_rows(ws) -> dict[str, int]:
    from sqlalchemy import func, select

    from archer.store.campaigns import Enrollment, Message

    with ws.session() as s:
        return {
            "enrollments": s.scalar(select(func.count()).select_from(Enrollment)) or 0,
            "messages": s.scalar(select(func.count()).select_from(Message)) or 0,
        }


def members(ws, condition: str) -> list[str]:
    return sorted(ws.audiences.members(condition).customer_id.astype(str))


def suppress(ws, addresses: list[str]) -> None:
    from archer.messaging.consent import suppress as put

    for a in addresses:
        put(ws, "email", a, reason="manual")


def dispatch(ws) -> dict[str, Any]:
    from archer.messaging.dispatch import Dispatcher

    with Dispatcher(ws) as d:
        return d.run(NOW).to_dict()


def planned_messages(ws) -> list[dict[str, Any]]:
    """What the bare loop sends: each treatment message's uid, address and customer name."""
    import json

    from sqlalchemy import select

    from archer.store.campaigns import Message

    with ws.session() as s:
        q = select(Message.uid, Message.address, Message.context).where(
            Message.arm == "treatment", Message.state == "planned"
        )
        return [{"uid": u, "address": a, "name": json.loads(c)["customer"].get("name")}
                for u, a, c in s.execute(q)]  # fmt: skip
