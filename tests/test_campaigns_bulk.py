"""A broadcast's runs are planned in bulk (engine._advance_messages_only): the rows must be the
ones walking each run gives, stored the same way (so claims compare times right), and a
second round adds nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select

from archer.campaigns import engine, service
from archer.clock import ManualClock
from archer.messaging.dispatch import Dispatcher
from archer.pipeline import build
from archer.store.campaigns import Campaign, Enrollment, Message
from test_campaigns_faults import T0, unpaid_shop

COMPARED = ("step", "channel", "purpose", "arm", "variant", "state", "address", "opt_in",
            "planned_at", "due_at", "not_before", "expires_at", "attempts")  # fmt: skip


def broadcast(name: str, **kw) -> dict:
    send_at = (T0 - timedelta(minutes=5)).astimezone(engine.UTC).replace(tzinfo=None)
    return {"name": name, "kind": "broadcast", "holdout": 0.3, "salt": "same arms",
            "send_at": (send_at + timedelta(hours=8)).isoformat(),  # the shop's zone (+08:00)
            "trigger": {"on": "audience", "audience": "email_reachable", "key": "customer"},
            "steps": [{"id": "news", "type": "message", "channel": "email", "expires": "2h",
                       "subject": "{{ customer.name }}", "text": "hi {{ customer.name }}"},
                      {"id": "inbox", "type": "message", "channel": "inbox", "purpose": "service",
                       "subject": "s", "text": "t"}],
            **kw}  # fmt: skip


def test_bulk_planning_writes_what_walking_writes(tmp_path, smtp_sink):
    clock = ManualClock(T0)
    ws = unpaid_shop(tmp_path, 40, clock)
    build(ws, date(2026, 11, 2))
    caps_off = ws.settings.campaigns.model_copy(update={"caps": {}})
    ws = ws.replace(smtp=smtp_sink.settings(), campaigns=caps_off)
    service.create(ws, broadcast("bulk"), user="t", start=True)
    # an exit condition that never holds sends the other one down the walking path
    service.create(ws, broadcast("walked", exit_if="total_spent < 0"), user="t", start=True)
    got = engine.plan(ws, clock.now()).to_dict()
    assert got["planned_by_campaign"] == {"bulk": 80, "walked": 80} and not got["errors"]
    assert engine.plan(ws, clock.now()).to_dict()["planned"] == 0  # a second round adds nothing
    with ws.session() as s:
        ids = dict(s.execute(select(Campaign.name, Campaign.id)).all())
        msgs = list(s.scalars(select(Message)))
        runs = list(s.scalars(select(Enrollment)))
    by = {(m.campaign_id, m.customer_id, m.step): m for m in msgs}
    for (cid, cust, step), m in by.items():
        if cid != ids["bulk"]:
            continue
        other = by[(ids["walked"], cust, step)]
        assert {k: getattr(m, k) for k in COMPARED} == {k: getattr(other, k) for k in COMPARED}
        assert json.loads(m.context) == json.loads(other.context)
        assert m.uid == engine.message_uid(cid, cust, "customer", step)
    with ws.session() as s:  # stored alike, to the character (SQLite compares times as text)
        raw = s.connection().exec_driver_sql(
            "SELECT campaign_id, planned_at, due_at, not_before, expires_at FROM messages"
        )
        stored = {cid: set() for cid in ids.values()}
        for cid, *times in raw:
            stored[cid].add(tuple(times))
    assert stored[ids["bulk"]] == stored[ids["walked"]]
    assert {(r.state, r.end_reason, r.step, r.next_run_at) for r in runs} == {
        ("completed", "completed", None, None)
    }
    assert {r.arm for r in runs} == {"holdout", "treatment"}
    with Dispatcher(ws) as d:  # the stored times compare right: everything due goes
        tally = d.run(clock.now())
    treated = sum(1 for m in msgs if m.arm == "treatment")
    assert tally.sent == treated and tally.held == len(msgs) - treated
    assert len(smtp_sink.messages()) == treated // 2  # one e-mail and one inbox message each
