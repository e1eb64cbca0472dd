"""A trial campaign on the sample shop, for the tests and benchmarks that measure campaigns.

A coupon and an inbox message to an audience, sent on the morning after the sample ends
(2026-10-31), then answered by the simulator (`archer.sample.simulate`), which writes the
true effect beside the orders it adds. One definition serves the results tests, the results
page, uplift targeting and its benchmark, so they measure the same campaign.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from archer.clock import ManualClock
from archer.workspace import Workspace

END = date(2026, 10, 31)  # the sample's last day
SEND = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, the morning after
UNTIL = date(2026, 11, 20)  # how far the simulator answers
SEEN = datetime(2026, 11, 21, tzinfo=UTC)  # when the answer is looked at
COUPON = "back-20"


def coupon_broadcast(
    name: str, audience: str, *, salt: str, holdout: float = 0.5
) -> dict[str, Any]:
    """A ¥20-off-99 coupon, then an inbox message naming it, sent within a day."""
    from archer.campaigns import service

    raw = service.apply_settings(service.template("newsletter"), [
        f"name={name}", f"holdout={holdout}", f"salt={salt}", f"trigger.audience='{audience}'",
        "send_at=2026-11-01T10:00:00", "send_until=2026-11-02T10:00:00",
    ])  # fmt: skip
    raw["windows"] = []
    raw["steps"] = [
        {"id": "give", "type": "coupon", "template": COUPON},
        {"id": "news", "type": "message", "channel": "inbox", "subject": "回来看看",
         "text": "{{ coupon.label }} {{ coupon.code }}"},
    ]  # fmt: skip
    return raw


def send(ws: Workspace, clock: ManualClock, raw: dict[str, Any], *, user: str = "t") -> str:
    """Define the coupon, create and start the campaign, and run it through its send window."""
    from archer.campaigns import service
    from archer.offers import coupons

    coupons.define(ws, COUPON, kind="threshold", threshold=99, amount=20, valid_days=14)
    service.create(ws, raw, user=user, start=True)
    for _ in range(4):
        service.run_round(ws)
        clock.advance(hours=6)
    return raw["name"]


def answer(ws: Workspace, clock: ManualClock, sample_dir: Path, until: date = UNTIL):
    """Let the simulator answer the campaigns up to `until`, seen from the day after UNTIL."""
    from archer.sample.simulate import simulate

    clock.set(SEEN)
    return simulate(ws, until, sample_dir=sample_dir)
