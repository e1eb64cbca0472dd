"""Dispatchers scale out as processes on PostgreSQL: three ``archer campaign worker`` processes
share one ledger on a real PostgreSQL server and one SMTP server on loopback, and every
message goes exactly once (claims: ``FOR UPDATE SKIP LOCKED`` under the store's advisory write
lock, store/db.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from archer.campaigns import engine, service
from archer.clock import SYSTEM
from archer.messaging.dispatch import Dispatcher, Tally
from archer.store import db
from archer.store.campaigns import Message
from smtp_sink import SmtpSink
from support import unsent
from test_campaigns_faults import flow, unpaid_shop

pytestmark = pytest.mark.slow

ORDERS = 1500
WORKERS = 3
DEADLINE = 90  # seconds


def test_three_dispatcher_processes_on_postgresql_send_each_message_once(tmp_path, pg_url):
    ws = unpaid_shop(tmp_path, ORDERS, SYSTEM, created=SYSTEM.now()).replace(database=pg_url)
    with SmtpSink() as sink:  # keeps every copy: a duplicate would show
        ws = ws.replace(smtp=sink.settings())
        service.create(ws, flow(), user="test", start=True)
        assert engine.plan(ws).to_dict()["planned"] == ORDERS
        env = {
            **os.environ,
            "ARCHER_HOME": str(ws.home),
            "ARCHER_DATABASE": pg_url,
            "ARCHER_SMTP": sink.env(),
            "ARCHER_CAMPAIGNS": json.dumps({"batch": 20}),
        }
        log = (tmp_path / "workers.log").open("ab")
        cmd = [sys.executable, "-m", "archer.cli", "campaign", "worker", "--every", "0.2"]
        workers = [subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
                   for _ in range(WORKERS)]  # fmt: skip
        try:
            sink.wait_for(ORDERS, timeout=DEADLINE)
            end = time.monotonic() + DEADLINE
            while unsent(ws):
                assert time.monotonic() < end, f"{unsent(ws)} messages never went"
                time.sleep(0.1)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            codes = [w.wait(timeout=30) for w in workers]
        assert codes == [0] * WORKERS, (tmp_path / "workers.log").read_text()[-3000:]
        with ws.session() as s:
            rows = s.execute(select(Message.uid, Message.state, Message.claimed_by)).all()
        assert Counter(state for _, state, _ in rows) == {"sent": ORDERS}
        assert sink.uids() == {uid: 1 for uid, _, _ in rows}  # each exactly once
        by_worker = Counter(w for _, _, w in rows)
        assert len(by_worker) >= 2, by_worker  # they did share the work


def test_a_claim_on_postgresql_skips_locked_rows_and_reclaims_expired_leases(
    tmp_path, pg_url, smtp_sink
):
    """Rows another transaction holds (a claim in flight elsewhere) are skipped, not waited
    for; claimed rows are not claimed again until their lease runs out."""
    ws = unpaid_shop(tmp_path, 30, SYSTEM, created=SYSTEM.now()).replace(database=pg_url)
    rules = ws.settings.campaigns.model_copy(update={"batch": 10})
    ws = ws.replace(smtp=smtp_sink.settings(), campaigns=rules)
    service.create(ws, flow(), user="test", start=True)
    engine.plan(ws)
    now = SYSTEM.now()
    due = "SELECT id FROM messages ORDER BY not_before, id"
    with db.engine(ws.settings).connect() as other, other.begin():
        locked = set(other.execute(text(f"{due} LIMIT 10 FOR UPDATE")).scalars())
        got: list = []
        t = threading.Thread(
            target=lambda: got.extend(Dispatcher(ws, name="a").claim(now, Tally()))
        )
        t.start()
        t.join(timeout=30)
        assert not t.is_alive(), "the claim waited for rows another transaction holds"
    assert len(got) == 10 and not {m.id for m in got} & locked
    assert len(Dispatcher(ws, name="b").claim(now, Tally())) == 10  # the locked ones, now free
    assert len(Dispatcher(ws, name="c").claim(now, Tally())) == 10
    assert Dispatcher(ws, name="d").claim(now, Tally()) == []  # all held, leases running
    later = now + timedelta(seconds=rules.lease_seconds + 1)
    again = Dispatcher(ws, name="e").claim(later, Tally())
    assert {m.id for m in again} == locked  # the oldest due first: b's, whose lease ran out
    with ws.session() as s:
        held = Counter(s.scalars(select(Message.claimed_by).where(Message.state == "claimed")))
    assert sum(held.values()) == 30 and held["e"] == 10
