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


# -- two rounds at once: offers and messages given once ----------------------------------------
ROUND_ORDERS = 500
ROUND_BATCH = 50  # runs per planning transaction in the children (engine.BATCH is 5,000)


def offers_flow() -> dict:
    """Per unpaid order: a generated coupon, a coupon from the shop's pool, 30 points and an
    e-mail showing all three. The templates have no per-customer limit, so a second round that
    reaches a run finds the run's coupon by its key (run, step), not by a customer's count."""
    return {
        "name": "unpaid-offer", "kind": "flow", "holdout": 0.1,
        "trigger": {"on": "order_unpaid"},
        "steps": [
            {"id": "give", "type": "coupon", "template": "pg-5"},
            {"id": "pool", "type": "coupon", "template": "shop-3"},
            {"id": "thanks", "type": "points", "points": 30, "expires": "30d"},
            {"id": "mail", "type": "message", "channel": "email", "purpose": "marketing",
             "subject": "订单 {{ order.order_id }}",
             "text": "券 {{ coupon.code }} 积分 {{ points.awarded }}"},
        ],
    }  # fmt: skip


def test_two_rounds_at_once_on_postgresql_give_each_coupon_points_and_message_once(
    tmp_path, pg_url
):
    """Two ``archer campaign run`` processes at the same instant on one PostgreSQL store, each
    with its own copy of the warehouse (two servers: the DuckDB file admits one process), so
    both plan the same runs at the same time, 50 runs per transaction (set in the children),
    and both send."""
    from archer.clock import ManualClock
    from archer.offers import coupons
    from archer.store.campaigns import Enrollment
    from archer.store.offers import Coupon, PointsEntry
    from support import archer
    from test_campaigns_faults import T0

    ws = unpaid_shop(tmp_path, ROUND_ORDERS, ManualClock(T0)).replace(database=pg_url)
    coupons.define(ws, "pg-5", kind="cash", amount=5, valid_days=14, per_customer=None)
    coupons.define(ws, "shop-3", kind="cash", amount=3, valid_days=14, per_customer=None,
                   codes="pool")  # fmt: skip
    coupons.import_pool(ws, "shop-3", [f"SHOP-{i:05d}" for i in range(ROUND_ORDERS + 50)])
    ws.close()
    copies = []
    for i in range(2):
        copy = tmp_path / f"warehouse-{i}.duckdb"
        copy.write_bytes((ws.home / "warehouse.duckdb").read_bytes())
        copies.append(f"duckdb:///{copy}")
    with SmtpSink() as sink:  # keeps every copy: a duplicate would show
        ws = ws.replace(smtp=sink.settings())
        service.create(ws, offers_flow(), user="test", start=True)
        go = tmp_path / "go"
        setup = barrier(go, f"from archer.campaigns import engine\nengine.BATCH = {ROUND_BATCH}")
        outs = [tmp_path / f"round-{i}.json" for i in range(2)]
        rounds = [
            archer(
                {
                    **os.environ,
                    "ARCHER_HOME": str(ws.home),
                    "ARCHER_DATABASE": pg_url,
                    "ARCHER_WAREHOUSE": copies[i],
                    "ARCHER_SMTP": sink.env(),
                    "ARCHER_CAMPAIGNS": json.dumps({"batch": 20}),
                },
                outs[i],
                "campaign",
                "run",
                "--now",
                T0.isoformat(),
                "--json",
                setup=setup,
            )  # fmt: skip
            for i in range(2)
        ]
        release(go, rounds)
        codes = [p.wait(timeout=DEADLINE) for p in rounds]
        assert codes == [0, 0], [o.read_text()[-3000:] for o in outs]
        docs = [json.loads(o.read_text()) for o in outs]
        assert not any(d["errors"] for d in docs), docs
        # they did plan at once: one round reached runs whose offers the other had just given
        assert sum(sum(d["offers_not_given"].values()) for d in docs) > 0, docs
        shown = ("enrolled", "planned", "coupons_issued", "offers_not_given", "sent")
        print("the two rounds:", [{k: d[k] for k in shown} for d in docs])
        with ws.session() as s:
            runs = {e.id: e for e in s.scalars(select(Enrollment))}
            msgs = list(s.scalars(select(Message)))
            issued = list(s.scalars(select(Coupon).where(Coupon.state != "pool")))
            entries = list(s.scalars(select(PointsEntry)))
        treated = {i for i, e in runs.items() if e.arm == "treatment"}
        assert len(runs) == ROUND_ORDERS and 0 < len(treated) < ROUND_ORDERS
        assert sum(d["planned"] for d in docs) == len(msgs) == ROUND_ORDERS
        assert sum(d["coupons_issued"] for d in docs) == len(issued) == 2 * len(treated)
        # never two coupons for one run's step, none missing, each in its run's one message
        assert Counter((c.enrollment_id, c.step) for c in issued) == Counter(
            (i, step) for i in treated for step in ("give", "pool")
        )
        code = {(c.enrollment_id, c.step): c.code for c in issued}
        assert Counter(m.enrollment_id for m in msgs) == Counter(runs.keys())
        shown: dict[str, str] = {}
        for m in msgs:
            if m.enrollment_id in treated:
                ctx = json.loads(m.context)
                assert m.state == "sent"
                assert ctx["coupon"]["code"] == code[(m.enrollment_id, "pool")]  # the latest
                shown[m.uid] = ctx["coupon"]["code"]
            else:
                assert (m.state, m.reason) == ("skipped", "holdout")
        # points: one entry per run's step, balances the sum of entries and of lots
        assert Counter(e.source for e in entries) == Counter(
            f"campaign:{runs[i].campaign_id}:{i}:thanks" for i in treated
        )
        assert all(e.points == e.remaining == 30 for e in entries)
        # the mail server: each sent message once
        kept = sink.messages()
        assert Counter(r.uid for r in kept) == Counter(shown.keys())
        assert sink.accepted == len(kept) == len(treated)
        for r in kept:
            assert f"券 {shown[r.uid]} 积分 30" in r.text()


def barrier(go, setup: str) -> str:
    """Child code that runs ``setup``, imports the CLI, says it is ready (a file beside ``go``)
    and waits for ``go`` to exist: processes released together start their work at once."""
    return (
        f"{setup}\nimport os, time, archer.cli, archer.campaigns.service, archer.offers.points\n"
        f"open({str(go)!r} + f'.{{os.getpid()}}', 'w').close()\n"
        f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.002)"
    )


def release(go, procs) -> None:
    """Wait until every child of :func:`barrier` is ready, then let them all go."""
    want = {go.with_name(f"{go.name}.{p.pid}") for p in procs}
    end = time.monotonic() + DEADLINE
    while not all(w.exists() for w in want):
        assert all(p.poll() is None for p in procs), "a child ended before it was ready"
        assert time.monotonic() < end, "the children were never ready"
        time.sleep(0.01)
    go.touch()


# -- two processes spending one customer's points at once -------------------------------------
LOTS = 300
RATE = 50
TRIES = 40  # exchanges each process attempts: more than the points allow


def test_two_processes_exchanging_one_customers_points_on_postgresql_spend_each_lot_once(
    tmp_path, pg_url
):
    """Two processes, released together, each try 40 exchanges of 50 points for a cash coupon
    against the same customer's 300 small lots: the exchanges that succeed are exactly what
    the points buy, no lot gives more than it had, the lots are spent first-expiring first, and
    the balance is the sum of the entries and of what the lots have left."""
    from datetime import timedelta

    from archer.errors import Conflict
    from archer.offers import coupons, points
    from archer.store.offers import Coupon, PointsEntry
    from support import workspace

    ws = workspace(tmp_path / "shop").replace(database=pg_url)
    coupons.define(ws, "points-cash", kind="cash", amount=5, valid_days=30, per_customer=None)
    now = ws.now()
    with ws.session(write=True) as s:
        for i in range(LOTS):  # expiries in an order other than the ids'
            points.award(s, "C1", 7 + i % 5, source=f"lot:{i}", at=now,
                         expires_at=now + timedelta(days=10 + (i * 37) % LOTS))  # fmt: skip
    total = sum(7 + i % 5 for i in range(LOTS))
    go = tmp_path / "go"
    child = (
        "import json, os, sys, time, archer\n"
        "from archer.errors import Conflict\n"
        "from archer.offers import points\n"
        "ws = archer.open(os.environ['ARCHER_HOME'])\n"
        "points.balance(ws, 'C1')\n"  # the store opened and migrated before the start
        + barrier(go, "")
        + "\nok = refused = 0\n"
        f"for i in range({TRIES}):\n"
        "    try:\n"
        "        points.exchange_at_rate(ws, 'C1', key=f'{sys.argv[1]}-{i}')\n"
        "        ok += 1\n"
        "    except Conflict:\n"
        "        refused += 1\n"
        "print(json.dumps({'ok': ok, 'refused': refused}))\n"
    )
    env = {**os.environ, "ARCHER_HOME": str(ws.home), "ARCHER_DATABASE": pg_url,
           "ARCHER_POINTS": json.dumps({"exchange_rate": RATE})}  # fmt: skip
    outs = [tmp_path / f"spend-{i}.log" for i in range(2)]
    procs = [
        subprocess.Popen([sys.executable, "-c", child, f"p{i}"], env=env,
                         stdout=outs[i].open("wb"), stderr=subprocess.STDOUT)
        for i in range(2)
    ]  # fmt: skip
    release(go, procs)
    codes = [p.wait(timeout=DEADLINE) for p in procs]
    assert codes == [0, 0], [o.read_text()[-3000:] for o in outs]
    got = [json.loads(o.read_text().strip().splitlines()[-1]) for o in outs]
    ok = sum(g["ok"] for g in got)
    print("exchanges:", got)
    assert ok == total // RATE and sum(g["refused"] for g in got) == 2 * TRIES - ok
    assert all(g["ok"] > 0 for g in got)  # both spent: they did take turns
    with pytest.raises(Conflict):  # nothing left to buy one more
        points.exchange_at_rate(ws, "C1", key="after")
    with ws.session() as s:
        lots = list(s.scalars(select(PointsEntry).where(PointsEntry.points > 0)
                              .order_by(PointsEntry.expires_at, PointsEntry.id)))  # fmt: skip
        spent = list(s.scalars(select(PointsEntry).where(PointsEntry.points < 0)))
        given = s.scalars(select(Coupon).where(Coupon.source == "exchange")).all()
    assert len(given) == len(spent) == ok and {e.points for e in spent} == {-RATE}
    assert {e.kind for e in spent} == {"redeem"} and len({e.source for e in spent}) == ok
    assert all(0 <= lot.remaining <= lot.points for lot in lots)  # no lot gave more than it had
    balance = points.balance(ws, "C1")["balance"]
    assert balance == total - RATE * ok == sum(lot.remaining for lot in lots)
    assert balance == sum(e.points for e in lots + spent)
    # first-expiring first: spent lots, at most one partly spent, then whole ones
    states = [0 if lot.remaining == 0 else 2 if lot.remaining == lot.points else 1 for lot in lots]
    assert states == sorted(states) and states.count(1) <= 1
