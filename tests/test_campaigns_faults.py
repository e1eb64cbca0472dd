"""Campaign e-mail when the mail server misbehaves: down, refusing, hanging up, slow. Messages
stay planned and are retried with backoff on a manual clock, nothing is lost, a message whose
expiry passes is skipped with the reason, a recipient refused for good is failed and its
address suppressed. The server is a real one on loopback (tests/smtp_sink.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from archer.campaigns import engine, service
from archer.clock import ManualClock
from archer.messaging.dispatch import Dispatcher, Tally
from archer.store.campaigns import Message
from archer.store.consent import Suppression
from archer.workspace import Workspace
from conftest import run_import, write
from smtp_sink import SmtpSink
from support import workspace

T0 = datetime.fromisoformat("2026-11-02T02:00:00+00:00")  # 10:00 in Shanghai
RETRY = 30  # seconds: CampaignSettings.retry_seconds, doubled on each attempt


def unpaid_shop(root: Path, n: int, clock: Any, *, created: datetime = T0) -> Workspace:
    """A shop of ``n`` opted-in customers ``c0…``, each with one unpaid order ``o0…`` placed a
    minute before ``created``."""
    ws = workspace(root / "shop", clock)
    at = (created - timedelta(minutes=1)).astimezone(ws.tz).strftime("%Y-%m-%dT%H:%M:%S")
    people = "".join(f"c{i},客户{i},c{i}@example.com,true\n" for i in range(n))
    orders = "".join(f"o{i},c{i},{at},created,99\n" for i in range(n))
    files = {
        "customers": "customer_id,name,email,email_opt_in\n" + people,
        "orders": "order_id,customer_id,created_at,status,goods_amount\n" + orders,
    }
    for table, text in files.items():
        assert run_import(ws, table, write(root / f"{table}.csv", text), now=created).rejected == 0
    return ws


def flow(name: str = "remind", **kw: Any) -> dict[str, Any]:
    """A flow that mails each unpaid order at once (no holdout)."""
    step = {"id": "mail", "type": "message", "channel": "email", "purpose": "marketing",
            "subject": "订单 {{ order.order_id }}",
            "text": "{{ customer.name }}，请付款"}  # fmt: skip
    step.update(kw)
    return {"name": name, "kind": "flow", "holdout": 0, "trigger": {"on": "order_unpaid"},
            "steps": [step]}  # fmt: skip


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def shop(tmp_path: Path, clock: ManualClock, sink: SmtpSink, n: int = 4, **smtp: Any) -> Workspace:
    ws = unpaid_shop(tmp_path, n, clock)
    return ws.replace(smtp=sink.settings(**smtp))


def start(ws: Workspace, *defs: dict[str, Any]) -> None:
    for d in defs or (flow(),):
        service.create(ws, d, user="test", start=True)
    got = engine.plan(ws, ws.now()).to_dict()
    assert not got["errors"], got


def send(ws: Workspace) -> dict[str, Any]:
    with Dispatcher(ws) as d:
        return d.run(ws.now()).to_dict()


def ledger(ws: Workspace) -> list[Message]:
    with ws.session() as s:
        return list(s.scalars(select(Message).order_by(Message.customer_id)))


def by_state(ws: Workspace) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in ledger(ws):
        out[m.state] = out.get(m.state, 0) + 1
    return out


# -- retried with backoff, nothing lost ------------------------------------------------------------
def test_server_down_keeps_messages_planned_and_retries_with_backoff(tmp_path, clock, smtp_sink):
    ws = shop(tmp_path, clock, smtp_sink)
    start(ws)
    smtp_sink.stop()
    assert send(ws)["retried"] == 4
    for m in ledger(ws):
        assert (m.state, m.reason, m.attempts) == ("planned", "retry", 1)
        assert m.not_before == T0 + timedelta(seconds=RETRY)
        assert "cannot reach the mail server" in m.error
    clock.advance(seconds=RETRY - 1)
    assert send(ws)["retried"] == 0  # not due yet
    clock.advance(seconds=1)
    assert send(ws)["retried"] == 4  # still down: the wait doubles
    assert {m.not_before for m in ledger(ws)} == {clock.now() + timedelta(seconds=2 * RETRY)}
    smtp_sink.start()
    clock.advance(seconds=2 * RETRY)
    assert send(ws)["sent"] == 4
    assert by_state(ws) == {"sent": 4}
    assert sorted(smtp_sink.uids().items()) == sorted((m.uid, 1) for m in ledger(ws))
    assert {m.attempts for m in ledger(ws)} == {3}


@pytest.mark.parametrize("fault", ["refuse_4xx", "hang_up"])
def test_temporary_refusals_and_hang_ups_are_retried(tmp_path, clock, smtp_sink, fault):
    ws = shop(tmp_path, clock, smtp_sink)
    start(ws)
    if fault == "refuse_4xx":
        smtp_sink.refuse(None, 451)
    else:
        smtp_sink.hang_up = True
    got = send(ws)
    assert (got["sent"], got["retried"], got["failed"]) == (0, 4, 0)
    assert by_state(ws) == {"planned": 4} and len(smtp_sink) == 0
    smtp_sink.heal()
    clock.advance(seconds=RETRY)
    assert send(ws)["sent"] == 4
    assert by_state(ws) == {"sent": 4} and set(smtp_sink.uids().values()) == {1}


def test_slow_server_is_retried_and_a_deduplicating_server_keeps_one_copy(tmp_path, clock):
    with SmtpSink(dedup=True) as sink:
        ws = shop(tmp_path, clock, sink, n=2, timeout=0.2)
        start(ws)
        sink.delay = 1.0  # longer than the client waits: it gives up, the server keeps the mail
        got = send(ws)
        assert (got["sent"], got["retried"]) == (0, 2)
        assert by_state(ws) == {"planned": 2}
        assert all("timed out" in (m.error or "") for m in ledger(ws))
        sink.heal()
        clock.advance(seconds=RETRY)
        assert send(ws)["sent"] == 2
        assert by_state(ws) == {"sent": 2}
        assert sink.uids() == {m.uid: 1 for m in ledger(ws)}  # re-sent, kept once
        assert sink.accepted > 2  # the slow tries did arrive


def test_gives_up_after_max_attempts(tmp_path, clock, smtp_sink):
    ws = shop(tmp_path, clock, smtp_sink, n=1)
    ws = ws.replace(campaigns=ws.settings.campaigns.model_copy(update={"max_attempts": 2}))
    start(ws)
    smtp_sink.refuse(None, 421)
    assert send(ws)["retried"] == 1
    clock.advance(seconds=RETRY)
    assert send(ws)["failed"] == 1
    [m] = ledger(ws)
    assert (m.state, m.reason, m.attempts) == ("failed", "gave_up", 2) and "421" in m.error


# -- expiry ----------------------------------------------------------------------------------------
def test_a_message_whose_expiry_passes_while_the_server_is_down_is_skipped(
    tmp_path, clock, smtp_sink
):
    ws = shop(tmp_path, clock, smtp_sink, n=2)
    start(ws, flow(expires="10m"))
    smtp_sink.stop()
    waits = []
    while by_state(ws).get("planned"):
        got = send(ws)
        nxt = min(m.not_before for m in ledger(ws))
        if got["retried"]:
            waits.append((nxt - clock.now()).total_seconds())
        clock.set(max(nxt, clock.now()))
        assert clock.now() < T0 + timedelta(hours=1), "never expired"
    assert waits == [30, 60, 120, 240, 480]  # tried at 0, 30 s, 1.5, 3.5 and 7.5 min
    assert [(m.state, m.reason) for m in ledger(ws)] == [("skipped", "expired")] * 2
    smtp_sink.start()
    clock.advance(hours=1)
    assert send(ws)["sent"] == 0 and len(smtp_sink) == 0


# -- refused for good ------------------------------------------------------------------------------
def test_a_5xx_recipient_is_failed_and_suppressed(tmp_path, clock, smtp_sink):
    ws = shop(tmp_path, clock, smtp_sink, n=3)
    start(ws)
    smtp_sink.refuse("C1@example.com", 550)
    got = send(ws)
    assert (got["sent"], got["failed"], got["retried"]) == (2, 1, 0)
    states = {m.customer_id: (m.state, m.reason) for m in ledger(ws)}
    assert states == {"c0": ("sent", None), "c1": ("failed", "refused"), "c2": ("sent", None)}
    assert "550" in next(m.error for m in ledger(ws) if m.customer_id == "c1")
    with ws.session() as s:
        sup = list(s.execute(select(Suppression.channel, Suppression.address,
                                    Suppression.reason)))  # fmt: skip
    assert sup == [("email", "c1@example.com", "bounce")]
    assert [m.rcpt_tos for m in smtp_sink.messages()] == [("c0@example.com",), ("c2@example.com",)]
    # a later campaign to the same address does not try again
    clock.advance(hours=1)
    smtp_sink.heal()
    start(ws, flow("second", purpose="service"))
    got = send(ws)
    assert (got["sent"], got["skipped_by_reason"]) == (2, {"suppressed": 1})
    assert not smtp_sink.to("c1@example.com")


# -- leases ----------------------------------------------------------------------------------------
def test_a_worker_that_lost_its_lease_does_not_send(tmp_path, clock, smtp_sink):
    """A worker slowed down past its lease (a slow server, a paused process) finds its messages
    reclaimed and sent by another; it must not send them a second time."""
    ws = shop(tmp_path, clock, smtp_sink, n=3)
    start(ws)
    slow, tally = Dispatcher(ws, name="slow"), Tally()
    claimed = slow.claim(clock.now(), tally)
    assert len(claimed) == 3
    clock.advance(seconds=ws.settings.campaigns.lease_seconds + 1)
    with Dispatcher(ws, name="other") as other:
        assert other.run(clock.now()).sent == 3  # the expired leases are reclaimed
    for m in claimed:  # the slow worker wakes up and goes on with its batch
        slow.deliver(m, clock.now(), tally)
    slow.close()
    assert tally.sent == 0
    assert smtp_sink.uids() == {m.uid: 1 for m in ledger(ws)}
    assert {(m.state, m.claimed_by) for m in ledger(ws)} == {("sent", "other")}


def test_a_lease_about_to_run_out_hands_the_message_back_untried(tmp_path, clock, smtp_sink):
    ws = shop(tmp_path, clock, smtp_sink, n=1)
    start(ws)
    lease = ws.settings.campaigns.lease_seconds
    with Dispatcher(ws) as d:
        tally = Tally()
        [m] = d.claim(clock.now(), tally)
        d.deliver(m, clock.now() + timedelta(seconds=lease * 0.8), tally)
        assert (tally.sent, tally.released) == (0, 1)
    [m] = ledger(ws)
    assert (m.state, m.attempts, m.lease_until) == ("planned", 0, None) and len(smtp_sink) == 0
    assert send(ws)["sent"] == 1 and len(smtp_sink) == 1


# -- the SMTP connection -------------------------------------------------------------------------
def test_a_timed_out_send_is_not_repeated_at_once_and_a_dead_server_is_tried_once_per_batch(
    tmp_path, clock
):
    """A timeout may come after the server took the message: sending it again at once only
    makes a copy. And when the server does not answer, the rest of the batch waits with it
    instead of each message waiting out its own timeout (twice)."""
    with SmtpSink() as sink:
        ws = shop(tmp_path, clock, sink, n=4, timeout=0.2)
        start(ws)
        sink.delay = 1.0
        got = send(ws)
        assert (got["sent"], got["retried"]) == (0, 4)
        assert sink.accepted == 1  # one try, one copy
        assert [(m.state, m.attempts) for m in ledger(ws)] == [("planned", 1)] * 4
        assert all("timed out" in m.error for m in ledger(ws))
        sink.heal()
        clock.advance(seconds=RETRY)
        assert send(ws)["sent"] == 4
        assert sink.accepted == 5


def test_a_pooled_connection_the_server_closed_is_opened_again(tmp_path, clock, smtp_sink):
    ws = shop(tmp_path, clock, smtp_sink, n=2)
    ws = ws.replace(campaigns=ws.settings.campaigns.model_copy(update={"batch": 1}))
    start(ws)
    with Dispatcher(ws) as d:
        assert d.run(clock.now(), max_batches=1).sent == 1  # its connection stays open
        smtp_sink.stop()  # the server restarts: the kept connection is dead
        smtp_sink.start()
        got = d.run(clock.now())
    assert (got.sent, got.retried) == (1, 0)
    assert sorted(smtp_sink.uids().values()) == [1, 1]
