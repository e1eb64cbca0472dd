"""kill -9 of campaign rounds that issue coupons and award points: nothing issued twice, nothing
lost, every balance the sum of its entries.

A flow gives each of 1,200 unpaid orders a coupon, then 50 points (a lot that expires after
an hour), then an e-mail showing both, to a real SMTP server on loopback that
deduplicates on ``Message-ID`` (tests/smtp_sink.py). ``archer campaign run`` (a whole round:
expire, enrol, advance, send) is started, killed with SIGKILL at eight points of its progress
— once its runs are enrolled; once 1, 400 and 800 coupons are stored (after one, three and
six batches); once 1, 250, 600 and 900 e-mails went — and started again each time, 10 minutes
later on a manual clock (``--now``), so what a killed process claimed is free again and the
first lots expire during the kills. A last round runs to the end and one more finds nothing to do.

The child sets ``engine.BATCH`` (runs planned per transaction, 5,000) to 150 before the CLI
starts, so that one round commits eight batches and a kill can land between them; that is
the only thing about it that is not the shipped ``archer``.

Then: one coupon per treated run, each in the e-mail of its run and nowhere else, none for
the holdout; one points entry per run's step; each customer's balance is the sum of their
entries and of what their open lots have remaining; every e-mail in the ledger went, the
server kept each once and saw at most one extra copy per kill made while sending.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from archer.campaigns import service
from archer.clock import ManualClock
from archer.offers import coupons
from archer.store.campaigns import Enrollment, Message
from archer.store.offers import Coupon, PointsEntry
from smtp_sink import SmtpSink
from support import archer, count, unsent
from test_campaigns_faults import T0, unpaid_shop

pytestmark = pytest.mark.slow

ORDERS = 1200
PLAN_BATCH = 150
SETUP = f"from archer.campaigns import engine\nengine.BATCH = {PLAN_BATCH}"
STEP = timedelta(minutes=10)  # the manual clock between one process and the next
LOT = timedelta(hours=1)  # the awarded points' life
DEADLINE = 60  # seconds for one process to reach its kill point or finish
# (what is watched, the count at which the process is killed)
# (coupons come in steps of about 135: a batch of 150 runs less its holdout)
KILLS = [("enrolled", 1), ("coupons", 1), ("coupons", 400), ("coupons", 800), ("sent", 1),
         ("sent", 250), ("sent", 600), ("sent", 900)]  # fmt: skip


def offers_flow() -> dict:
    return {
        "name": "unpaid-offer", "kind": "flow", "holdout": 0.1,
        "trigger": {"on": "order_unpaid"},
        "steps": [
            {"id": "give", "type": "coupon", "template": "crash-5"},
            {"id": "thanks", "type": "points", "points": 50, "expires": "1h"},
            {"id": "mail", "type": "message", "channel": "email", "purpose": "marketing",
             "subject": "订单 {{ order.order_id }}",
             "text": "券 {{ coupon.code }}，积分 {{ points.awarded }}"},
        ],
    }  # fmt: skip


def test_kill_9_during_rounds_that_issue_coupons_and_award_points(tmp_path):
    clock = ManualClock(T0)
    ws = unpaid_shop(tmp_path, ORDERS, clock)
    coupons.define(ws, "crash-5", kind="cash", amount=5, valid_days=14)
    with SmtpSink(dedup=True) as sink:
        env = {
            **os.environ,
            "ARCHER_HOME": str(ws.home),
            "ARCHER_SMTP": sink.env(timeout=5),
            "ARCHER_CAMPAIGNS": json.dumps({"batch": 50}),
        }
        ws = ws.replace(smtp=sink.settings())
        service.create(ws, offers_flow(), user="test", start=True)
        log = tmp_path / "rounds.log"
        probes = {
            "enrolled": lambda: count(ws, Enrollment),
            "coupons": lambda: count(ws, Coupon),
            "sent": lambda: len(sink),
        }

        def round_at(k: int, out=log):
            at = (T0 + k * STEP).isoformat()
            return archer(env, out, "campaign", "run", "--now", at, "--json", setup=SETUP)

        landed = []  # (what, at, the probe's count when the kill landed)
        for k, (what, at) in enumerate(KILLS):
            p = round_at(k)
            end = time.monotonic() + DEADLINE
            while p.poll() is None and probes[what]() < at:
                assert time.monotonic() < end, f"kill {k}: {what} never reached {at}"
                time.sleep(0.005)
            p.send_signal(signal.SIGKILL)
            assert p.wait(timeout=30) == -signal.SIGKILL, (
                f"kill {k} ({what} ≥ {at}): the round ended first\n{log.read_text()[-3000:]}"
            )
            landed.append((what, at, probes[what]()))
        last = round_at(len(KILLS))
        assert last.wait(timeout=DEADLINE) == 0, log.read_text()[-3000:]
        final = T0 + (len(KILLS) + 1) * STEP
        again = round_at(len(KILLS) + 1, tmp_path / "again.json")
        assert again.wait(timeout=DEADLINE) == 0, log.read_text()[-3000:]
        done = json.loads((tmp_path / "again.json").read_text())
        assert (done["planned"], done["coupons_issued"], done["points_awarded"]) == (0, 0, 0)
        assert done.get("sent", 0) == 0 and not done["errors"]
        assert unsent(ws) == count(ws, Message) - len(sink)  # the holdout's, skipped
        print("kills landed at", landed)

        with ws.session() as s:
            runs = {e.id: e for e in s.scalars(select(Enrollment))}
            msgs = list(s.scalars(select(Message)))
            issued = list(s.scalars(select(Coupon)))
            entries = list(s.scalars(select(PointsEntry)))
        treated = {i for i, e in runs.items() if e.arm == "treatment"}
        assert len(runs) == len({(e.customer_id, e.trigger_key) for e in runs.values()}) == ORDERS
        assert 0 < len(treated) < ORDERS

        # messages: one per run, the treated ones sent, the holdout's skipped
        assert Counter(m.enrollment_id for m in msgs) == Counter(runs.keys())
        assert {m.state for m in msgs if m.enrollment_id in treated} == {"sent"}
        assert {(m.state, m.reason) for m in msgs if m.enrollment_id not in treated} == {
            ("skipped", "holdout")
        }

        # coupons: exactly one per treated run, in that run's message and in no other
        by_run = Counter(c.enrollment_id for c in issued)
        assert set(by_run) == treated and set(by_run.values()) == {1}  # none lost, none twice
        assert {(c.step, c.state, c.campaign_id is not None) for c in issued} == {
            ("give", "issued", True)
        }
        code_of = {c.enrollment_id: c.code for c in issued}
        assert len(set(code_of.values())) == len(issued)
        for c in issued:
            assert c.customer_id == runs[c.enrollment_id].customer_id
        shown = {}
        for m in msgs:
            ctx = json.loads(m.context)
            if m.enrollment_id in treated:
                shown[m.uid] = ctx["coupon"]["code"]
                assert ctx["coupon"]["code"] == code_of[m.enrollment_id]
                assert ctx["points"]["awarded"] == 50
            else:
                assert "coupon" not in ctx and "points" not in ctx
        assert sorted(shown.values()) == sorted(code_of.values())

        # the mail server: every sent uid kept once, with its code; extra copies only from kills
        kept = sink.messages()
        assert Counter(r.uid for r in kept) == Counter(shown.keys())
        for r in kept:
            assert f"券 {shown[r.uid]}" in r.text()
        sending_kills = sum(1 for what, _, _ in landed if what == "sent")
        copies = sink.accepted - len(kept)
        print(f"{copies} copies dropped by the server after {sending_kills} kills while sending")
        assert 0 <= copies <= sending_kills

        # points: one award per treated run, expired lots closed once, balances add up
        awards = [e for e in entries if e.kind == "award"]
        assert Counter(e.source for e in awards) == Counter(
            f"campaign:{runs[i].campaign_id}:{i}:thanks" for i in treated
        )
        lots = {e.id: e for e in awards}
        expires = [e for e in entries if e.kind == "expire"]
        assert {e.kind for e in entries} == {"award", "expire"}
        closed = Counter(int(e.source.removeprefix("expire:")) for e in expires)
        assert set(closed.values()) <= {1}
        for e in expires:
            lot = lots[int(e.source.removeprefix("expire:"))]
            assert e.points == -lot.points and e.customer_id == lot.customer_id
            assert lot.expires_at <= e.at
        for lot in awards:
            assert lot.expires_at == lot.at + LOT
            if lot.expires_at <= final:  # the last round expired it
                assert lot.remaining == 0 and closed[lot.id] == 1
            else:
                assert lot.remaining == lot.points and lot.id not in closed
        assert expires and len(expires) < len(awards)  # lots of both kinds at the end
        total: dict[str, int] = defaultdict(int)
        left: dict[str, int] = defaultdict(int)
        for e in entries:
            total[e.customer_id] += e.points
            left[e.customer_id] += e.remaining if e.points > 0 else 0
        assert total == left
        with ws.session() as s:
            sums = dict(
                s.execute(
                    select(PointsEntry.customer_id, func.sum(PointsEntry.points)).group_by(
                        PointsEntry.customer_id
                    )
                ).all()
            )
        assert sums == total
