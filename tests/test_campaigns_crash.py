"""kill -9 of campaign processes at random moments: nothing is lost, nothing is doubled.

A flow plans one marketing e-mail for each of 2,000 unpaid orders; the planner
(``archer campaign run --no-send``) is killed once while it writes and run again. Three
``archer campaign worker`` processes then send to a real SMTP server on loopback that
deduplicates on ``Message-ID`` (tests/smtp_sink.py); whenever the server has received a
randomly drawn number of messages, one worker is killed with SIGKILL and a new one started in
its place, at least ten times. Leases are 5 seconds, so what a killed worker held is
reclaimed by the others. The workers use the wall clock (the test only waits for them).

Then: every message in the ledger is sent, every uid reached the server, no enrolment is
doubled, the server saw at most one extra copy per kill, and kept none.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import pytest
from sqlalchemy import func, select

from archer.campaigns import service
from archer.clock import SYSTEM
from archer.store.campaigns import Enrollment, Message
from smtp_sink import SmtpSink
from support import archer, count, unsent
from test_campaigns_faults import flow, unpaid_shop

pytestmark = pytest.mark.slow

ORDERS = 2000
WORKERS = 3
KILLS = 12
LEASE = 5  # seconds
DEADLINE = 90  # seconds for the whole run, far above what it takes


def test_kill_9_while_planning_and_sending_loses_and_doubles_nothing(tmp_path):
    rng = random.Random(int(os.environ.get("ARCHER_CRASH_SEED", "0")) or None)
    ws = unpaid_shop(tmp_path, ORDERS, SYSTEM, created=SYSTEM.now())
    with SmtpSink(dedup=True) as sink:
        env = {
            **os.environ,
            "ARCHER_HOME": str(ws.home),
            "ARCHER_SMTP": sink.env(timeout=5),
            "ARCHER_CAMPAIGNS": json.dumps({"lease_seconds": LEASE, "batch": 50}),
        }
        ws = ws.replace(smtp=sink.settings())
        service.create(ws, flow(), user="test", start=True)

        # the planner, killed once it has begun writing, then run to the end
        planner = archer(env, tmp_path / "planner.log", "campaign", "run", "--no-send", "--json")
        end = time.monotonic() + DEADLINE
        while planner.poll() is None and count(ws, Enrollment) == 0:
            assert time.monotonic() < end, "the planner wrote nothing"
            time.sleep(0.02)
        planner.send_signal(signal.SIGKILL)
        planner.wait()
        again = archer(env, tmp_path / "planner.log", "campaign", "run", "--no-send", "--json")
        assert again.wait(timeout=DEADLINE) == 0, (tmp_path / "planner.log").read_text()
        assert count(ws, Message) == ORDERS

        # three workers, one killed and replaced at each drawn count of messages received
        logs = [tmp_path / f"worker-{i}.log" for i in range(WORKERS)]
        workers = [archer(env, log, "campaign", "worker", "--every", "0.2") for log in logs]
        kills = 0
        try:
            for at in sorted(rng.sample(range(50, ORDERS - 200), KILLS)):
                sink.wait_for(at, timeout=max(1.0, end - time.monotonic()))
                i = rng.randrange(WORKERS)
                workers[i].send_signal(signal.SIGKILL)
                workers[i].wait()
                kills += 1
                workers[i] = archer(env, logs[i], "campaign", "worker", "--every", "0.2")
            while unsent(ws):
                assert time.monotonic() < end, f"{unsent(ws)} messages never went"
                for w, log in zip(workers, logs, strict=True):
                    assert w.poll() is None, log.read_text()[-3000:]
                time.sleep(0.1)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    w.kill()

        with ws.session() as s:
            states = dict(
                s.execute(select(Message.state, func.count()).group_by(Message.state)).all()
            )
            uids = set(s.scalars(select(Message.uid)))
            reclaimed = s.scalar(select(func.count()).where(Message.attempts > 1))
            runs = s.scalar(select(func.count()).select_from(Enrollment))
            keys = s.scalar(
                select(func.count()).select_from(
                    select(Enrollment.campaign_id, Enrollment.customer_id, Enrollment.trigger_key)
                    .distinct()
                    .subquery()
                )
            )
        assert states == {"sent": ORDERS}  # 0 lost
        assert runs == keys == ORDERS  # 0 enrolments doubled
        got = sink.uids()
        assert set(got) == uids and set(got.values()) == {1}  # every uid kept, once
        copies = sink.accepted - ORDERS
        print(
            f"{kills} kills, {reclaimed} messages reclaimed, {copies} copies dropped by the server"
        )
        assert kills >= 10 and 0 <= copies <= kills
        assert reclaimed > 0  # the killed workers' leases ran out and others took them over
