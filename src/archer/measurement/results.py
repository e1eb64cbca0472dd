"""What a campaign earned over its holdout, counted intention-to-treat.

Every run a campaign enrolled counts in its arm, reached or not: that is what makes the
treatment and the holdout comparable (the holdout is drawn from the same runs by a hash, before
anything is sent). A run's outcome is measured over the campaign's window from its enrolment:

* for a flow keyed per unpaid order, whether *that order* was paid in the window (a buyer) and
  what it brought;
* for every other flow and broadcast, the customer's paid orders created in the window.

Money is net of refunds (as :mod:`archer.facts` defines it); gross profit is net sales less the
cost of the goods (order lines' unit cost, scaled down by the share refunded); the promotion
cost is what the run's coupons saved on redeemed orders, the points it awarded that were spent
(valued at the exchange rate), and what its messages cost. The difference between the arms per
run gets a 95% interval (Newcombe for rates, Welch for money), a minimum detectable effect, and
a verdict that calls nothing below it; ROI is the incremental gross profit over the promotion
cost. Beside it, the sales "attributed" to the campaign by a window after a sent message are
shown as what they are: orders that followed a message, not orders it caused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd
from sqlalchemy import func, select

from archer.campaigns.definition import parse_duration
from archer.errors import Invalid
from archer.facts import Snapshot
from archer.measurement.stats import (
    HIGHER,
    LOWER,
    Difference,
    Moments,
    mean_difference,
    rate_difference,
    sample_size_rate,
)

if TYPE_CHECKING:
    from archer.workspace import Workspace

ORDER_WINDOW = "45d"  # the unpaid ladder runs 30 days from the order; paid within 45 counts
CUSTOMER_WINDOW = "14d"
MONEY = ("sales", "gross_profit", "promotion_cost")
MIN_LIFT = 0.20  # the rise in conversion over the first variant a variant test is sized for


@dataclass
class Arm:
    """One arm's totals over its runs."""

    arm: str
    runs: int = 0
    customers: int = 0
    reached: int = 0
    registered: int = 0  # customers who registered in the window (acquisition flows)
    buyers: int = 0
    refund_users: int = 0
    orders: int = 0
    units: int = 0
    sales: float = 0.0  # net of refunds
    gross_profit: float = 0.0
    coupon_cost: float = 0.0
    points_cost: float = 0.0
    message_cost: float = 0.0

    @property
    def promotion_cost(self) -> float:
        return round(self.coupon_cost + self.points_cost + self.message_cost, 2)

    def to_dict(self) -> dict[str, Any]:
        n = self.runs or 1
        return {
            "arm": self.arm, "runs": self.runs, "enrolled": self.runs,
            "customers": self.customers, "reached": self.reached,
            "registered": self.registered, "buyers": self.buyers,
            "conversion": self.buyers / n if self.runs else None,
            "refund_users": self.refund_users, "orders": self.orders, "units": self.units,
            "sales": round(self.sales, 2), "gross_profit": round(self.gross_profit, 2),
            "gross_margin": round(self.gross_profit / self.sales, 4) if self.sales else None,
            "coupon_cost": round(self.coupon_cost, 2), "points_cost": round(self.points_cost, 2),
            "message_cost": round(self.message_cost, 2), "promotion_cost": self.promotion_cost,
            "sales_per_run": round(self.sales / n, 4) if self.runs else None,
            "gross_profit_per_run": round(self.gross_profit / n, 4) if self.runs else None,
        }  # fmt: skip

    @classmethod
    def of(cls, arm: str, g: pd.DataFrame) -> Arm:
        """The totals of the runs ``g`` (rows of :func:`_outcomes`)."""
        return cls(
            arm, runs=len(g), customers=g.customer_id.nunique(), reached=int(g.reached.sum()),
            registered=int(g.registered.sum()), buyers=int(g.buyer.sum()),
            refund_users=int((g.refunded > 0).sum()), orders=int(g.orders.sum()),
            units=int(g.units.sum()), sales=float(g.sales.sum()),
            gross_profit=float(g.gross_profit.sum()), coupon_cost=float(g.coupon_cost.sum()),
            points_cost=float(g.points_cost.sum()), message_cost=float(g.message_cost.sum()),
        )  # fmt: skip


@dataclass
class Uplift:
    """Treated against holdout per run: conversion, sales and gross profit differences with
    their intervals, and what they add up to."""

    conversion: Difference | None = None
    sales: Difference | None = None
    gross_profit: Difference | None = None
    incremental_gross_profit: float | None = None
    roi: float | None = None

    @classmethod
    def of(cls, t: pd.DataFrame, h: pd.DataFrame, promotion_cost: float) -> Uplift:
        if not len(h) or not len(t):
            return cls()
        u = cls(
            rate_difference(int(t.buyer.sum()), len(t), int(h.buyer.sum()), len(h)),
            mean_difference(Moments.of(t.sales), Moments.of(h.sales)),
            mean_difference(Moments.of(t.gross_profit), Moments.of(h.gross_profit)),
        )
        if u.gross_profit.diff is not None:
            u.incremental_gross_profit = round(u.gross_profit.diff * len(t), 2)
            if promotion_cost > 0:
                u.roi = round(u.incremental_gross_profit / promotion_cost, 4)
        return u

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversion": self.conversion.to_dict() if self.conversion else None,
            "sales_per_run": self.sales.to_dict() if self.sales else None,
            "gross_profit_per_run": self.gross_profit.to_dict() if self.gross_profit else None,
        }


@dataclass
class Results:
    campaign: str
    kind: str  # what a run is: "order" (its unpaid order) or "customer"
    window: str
    as_of: str
    arms: dict[str, Arm]
    conversion: Difference | None = None
    sales: Difference | None = None
    gross_profit: Difference | None = None
    incremental_gross_profit: float | None = None
    roi: float | None = None
    window_source: str = "default"  # "option", "goal_within" or "default"
    attributed: dict[str, Any] = field(default_factory=dict)
    by_step: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_channel: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_variant: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign, "kind": self.kind, "window": self.window,
            "window_source": self.window_source,
            "as_of": self.as_of, "arms": {k: a.to_dict() for k, a in self.arms.items()},
            "uplift": Uplift(self.conversion, self.sales, self.gross_profit).to_dict(),
            "incremental_gross_profit": self.incremental_gross_profit,
            "roi": self.roi, "attributed": self.attributed, "by_step": self.by_step,
            "by_channel": self.by_channel, "by_variant": self.by_variant,
            "variants": self.variants, "notes": self.notes,
        }  # fmt: skip


def results(
    ws: Workspace,
    name: str,
    *,
    window: str | None = None,
    as_of: date | None = None,
    min_lift: float = MIN_LIFT,
) -> Results:
    """The results of campaign ``name`` as the warehouse stands (its last import), over
    ``window`` from each run's enrolment (default: the campaign's ``goal_within``, else 45
    days for an unpaid-order flow and 14 for the rest). A campaign with variants is also
    reported per variant and each variant compared with the first, which is called only once
    each variant has the runs needed to see a ``min_lift`` relative rise in conversion."""
    min_lift = _min_lift(min_lift)
    out, meta = run_outcomes(ws, name, window=window, as_of=as_of)
    kind, window, span = meta["kind"], meta["window"], meta["span"]
    res = Results(name, kind, window, meta["as_of"], arms={}, window_source=meta["window_source"])
    for arm in ("treatment", "holdout"):
        res.arms[arm] = Arm.of(arm, out[out.arm == arm])
    t, h = out[out.arm == "treatment"], out[out.arm == "holdout"]
    if len(h):
        u = Uplift.of(t, h, res.arms["treatment"].promotion_cost)
        res.conversion, res.sales, res.gross_profit = u.conversion, u.sales, u.gross_profit
        res.incremental_gross_profit, res.roi = u.incremental_gross_profit, u.roi
    else:
        res.notes.append("no holdout: nothing to compare with, so no uplift can be told")
    open_runs = int((out.entered_at + span > pd.Timestamp(meta["cutoff"])).sum())
    if open_runs:
        res.notes.append(
            f"{open_runs:,} runs are still inside their {window} window: their figures "
            "will grow; read the results once every window has closed"
        )
    res.attributed = _attributed(out)
    res.by_step = _by_part(out, meta["msgs"], "step", meta["channels"])
    res.by_channel = _by_part(out, meta["msgs"], "channel")
    order = [v["name"] for v in meta["definition"].get("variants", [])]
    for v in order:
        g = out[out.variant == v]
        if not len(g):
            continue
        arms = {arm: Arm.of(arm, g[g.arm == arm]) for arm in ("treatment", "holdout")}
        gt, gh = g[g.arm == "treatment"], g[g.arm == "holdout"]
        u = Uplift.of(gt, gh, arms["treatment"].promotion_cost)
        res.by_variant[v] = {
            "runs": len(g), "buyers": int(g.buyer.sum()), "sales": round(float(g.sales.sum()), 2),
            "conversion": float(g.buyer.mean()),
            "arms": {k: a.to_dict() for k, a in arms.items()}, "uplift": u.to_dict(),
            "incremental_gross_profit": u.incremental_gross_profit, "roi": u.roi,
        }  # fmt: skip
    if len(res.by_variant) >= 2:
        res.variants = compare_variants(out[out.arm == "treatment"], list(res.by_variant), min_lift)
    return res


def run_outcomes(
    ws: Workspace, name: str, *, window: str | None = None, as_of: date | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Campaign ``name``'s runs, one row each with its arm and its outcome over ``window`` from
    enrolment (buyer, orders, units, sales, gross profit, coupon, points and message cost):
    what :func:`results` sums, and what uplift targeting learns from. ``meta`` holds the
    ``kind`` of a run, the ``window`` (and where it came from), the snapshot's ``as_of`` and
    cut-off, and the campaign's messages and ``definition``."""
    runs, meta = _runs(ws, name)
    kind = "order" if meta["on"] == "order_unpaid" else "customer"
    source = "option" if window else ("goal_within" if meta["goal_within"] else "default")
    window = window or meta["goal_within"] or (ORDER_WINDOW if kind == "order" else CUSTOMER_WINDOW)
    try:
        span = parse_duration(window)
    except ValueError as e:
        raise Invalid(f"window: {e}") from None
    if span <= timedelta(0) or span > timedelta(days=366):
        raise Invalid("window: from a minute to 366 days")
    with ws.warehouse() as wh:
        snap = Snapshot.at(wh, as_of, ws.tz, today=ws.today())
        orders = _orders(snap, runs, kind)
        joined = _registered(snap, runs)
    out = _outcomes(runs, orders, kind, span)
    out["registered"] = _in_window(out, joined, span)
    return out, {**meta, "kind": kind, "window": window, "window_source": source, "span": span,
                 "as_of": str(snap.as_of), "cutoff": snap.cutoff}  # fmt: skip


def reaching(msgs: pd.DataFrame) -> pd.Series:
    """Messages that reached their customer: sent, or — in the holdout — held back where they
    would have gone (the guards passed them). A run is reached when one of its messages is."""
    return (msgs.state == "sent") | ((msgs.state == "skipped") & (msgs.reason == "holdout"))


# -- reading -------------------------------------------------------------------------------------
def _runs(ws: Workspace, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The campaign's runs with what each was given: reached, message cost, coupon savings,
    points spent (valued at the exchange rate)."""
    from archer.campaigns.service import UnknownCampaign
    from archer.store.campaigns import Campaign, CampaignVersion, Enrollment, Message
    from archer.store.offers import Coupon, CouponTemplate, PointsEntry

    with ws.session() as s:
        c = s.scalar(select(Campaign).where(Campaign.name == name))
        if c is None:
            raise UnknownCampaign(f"no campaign named {name!r}")
        d = json.loads(s.get(CampaignVersion, (c.id, c.version)).definition)
        runs = pd.DataFrame(
            s.execute(
                select(Enrollment.id, Enrollment.customer_id, Enrollment.trigger_key,
                       Enrollment.arm, Enrollment.variant, Enrollment.entered_at)
                .where(Enrollment.campaign_id == c.id)
            ).all(),
            columns=["run", "customer_id", "trigger_key", "arm", "variant", "entered_at"],
        )  # fmt: skip
        msgs = pd.DataFrame(
            s.execute(
                select(Message.enrollment_id, Message.step, Message.state, Message.reason,
                       Message.cost_fen, Message.sent_at, Message.arm, Message.channel)
                .where(Message.campaign_id == c.id)
            ).all(),
            columns=["run", "step", "state", "reason", "cost_fen", "sent_at", "arm", "channel"],
        )  # fmt: skip
        saved = pd.DataFrame(
            s.execute(
                select(Coupon.enrollment_id, Coupon.order_id, Coupon.saved_fen)
                .where(Coupon.campaign_id == c.id, Coupon.state == "redeemed")
            ).all(),
            columns=["run", "order_id", "saved_fen"],
        )  # fmt: skip
        lots = pd.DataFrame(
            s.execute(
                select(PointsEntry.id, PointsEntry.source, PointsEntry.points,
                       PointsEntry.remaining)
                .where(PointsEntry.source.like(f"campaign:{c.id}:%"))
            ).all(),
            columns=["lot", "source", "points", "remaining"],
        )  # fmt: skip
        expired = dict(
            s.execute(
                select(PointsEntry.source, func.sum(PointsEntry.points)).where(
                    PointsEntry.kind == "expire"
                ).group_by(PointsEntry.source)
            ).all()
        )  # fmt: skip
        rules = ws.settings.points
        t = s.scalar(select(CouponTemplate).where(CouponTemplate.name == rules.exchange_template))
    per_point = Decimal(t.amount_fen) / Decimal(rules.exchange_rate) if t else Decimal(0)
    runs["entered_at"] = pd.to_datetime(runs.entered_at, utc=True).dt.tz_localize(None)
    runs["reached"] = runs.run.isin(msgs.run[reaching(msgs)])
    runs["message_cost"] = runs.run.map(msgs.groupby("run").cost_fen.sum() / 100).fillna(0.0)
    runs["coupon_cost"] = runs.run.map(saved.groupby("run").saved_fen.sum() / 100).fillna(0.0)
    if not lots.empty:
        lots["run"] = lots.source.str.split(":").str[2].astype("int64")
        gone = lots.lot.map(lambda i: -int(expired.get(f"expire:{i}", 0) or 0))
        lots["spent"] = lots.points - lots.remaining - gone
        fen = lots.groupby("run").spent.sum().map(
            lambda p: float((Decimal(int(p)) * per_point).quantize(Decimal(1), ROUND_HALF_UP)) / 100
        )  # fmt: skip
        runs["points_cost"] = runs.run.map(fen).fillna(0.0)
    else:
        runs["points_cost"] = 0.0
    msgs["reaches"] = reaching(msgs)
    channels = {s["id"]: s.get("channel") for s in d.get("steps", []) if s.get("type") == "message"}
    meta = {"on": d["trigger"]["on"], "definition": d, "msgs": msgs, "channels": channels,
            "goal_within": d.get("goal_within")}  # fmt: skip
    return runs, meta


def _orders(snap: Snapshot, runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Paid orders that may count: the runs' own orders (order flows) or the runs'
    customers' orders, with net sales, units and gross profit."""
    f = snap.order_facts()
    f = f.filter(f.is_paid & f.customer_id.notnull())
    keys = runs.trigger_key if kind == "order" else runs.customer_id
    ids = sorted(set(keys.astype(str)))
    if not ids:
        return pd.DataFrame(columns=["order_id", "customer_id", "created_at", "pay_time", "net",
                                     "refunded", "amount", "units", "cost"])  # fmt: skip
    col = f.order_id if kind == "order" else f.customer_id
    f = f.filter(col.isin(ibis.memtable({"k": ids}).k))
    i = snap.wh.table("order_items")
    lines = i.group_by(_oid=i.order_id).aggregate(
        units=i.quantity.sum(),
        cost=(i.quantity.cast("float64") * i.unit_cost.cast("float64").fill_null(0)).sum(),
    )
    j = f.left_join(lines, f.order_id == lines._oid)
    got = j.select(
        "order_id", "customer_id", "created_at", "pay_time", "net", "refunded", "amount",
        units=j.units.fill_null(0), cost=j.cost.fill_null(0.0),
    ).execute()  # fmt: skip
    for c in ("created_at", "pay_time"):
        got[c] = pd.to_datetime(got[c])
    return got


def _outcomes(runs: pd.DataFrame, orders: pd.DataFrame, kind: str, span) -> pd.DataFrame:
    """Per run: buyer, orders, units, net sales, refunded, gross profit in the window."""
    if kind == "order":
        o = orders.rename(columns={"order_id": "trigger_key"}).drop(columns="customer_id")
        j = runs.merge(o, on="trigger_key", how="left")
        moment = j.pay_time
    else:
        j = runs.merge(orders, on="customer_id", how="left")
        moment = j.created_at
    inside = moment.notna() & (moment >= j.entered_at) & (moment < j.entered_at + span)
    j = j[inside]
    # Gross profit: net sales less the goods' cost, the cost scaled by the share kept.
    kept = np.where(j.amount > 0, j.net / j.amount.where(j.amount > 0, 1), 1.0)
    j = j.assign(gp=j.net - j.cost * kept)
    per = j.groupby("run").agg(
        orders=("order_id" if kind == "customer" else "trigger_key", "count"),
        units=("units", "sum"), sales=("net", "sum"), refunded=("refunded", "sum"),
        gross_profit=("gp", "sum"),
    )  # fmt: skip
    out = runs.set_index("run").join(per, how="left")
    for c in ("orders", "units", "sales", "refunded", "gross_profit"):
        out[c] = out[c].fillna(0)
    out["buyer"] = out.orders > 0
    out["sales"] = out.sales.round(2)
    return out.reset_index()


def _registered(snap: Snapshot, runs: pd.DataFrame) -> pd.DataFrame:
    """When the runs' customers registered (an acquisition flow enrols people before they
    register; for the others it is before the run and does not count)."""
    ids = sorted(set(runs.customer_id.astype(str)))
    if not ids:
        return pd.DataFrame(columns=["customer_id", "registered_at"])
    c = snap.customers
    c = c.filter(c.customer_id.isin(ibis.memtable({"k": ids}).k) & c.registered_at.notnull())
    got = c.select("customer_id", "registered_at").execute()
    got["registered_at"] = pd.to_datetime(got.registered_at)
    return got


def _in_window(out: pd.DataFrame, joined: pd.DataFrame, span) -> pd.Series:
    """Whether each run's customer registered in the run's window."""
    at = out.customer_id.astype(str).map(
        joined.drop_duplicates("customer_id").set_index("customer_id").registered_at
    )
    at = pd.to_datetime(at)
    return (at.notna() & (at >= out.entered_at) & (at < out.entered_at + span)).astype(bool)


def _by_part(
    out: pd.DataFrame, msgs: pd.DataFrame, part: str, channels: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Per message step (or channel): its messages by state, and per arm the runs it reached
    (the holdout's: would have reached) with their buyers and sales — the arms compared on the
    runs that got that far, so a later step's comparison holds only the runs still there."""
    got: dict[str, dict[str, Any]] = {}
    if msgs.empty:
        return got
    for key, m in msgs.groupby(part, sort=False):
        states = {str(k): int(n) for k, n in m.groupby("state").size().items()}
        at = out[out.run.isin(m.run[m.reaches])]
        arms = {}
        for arm in ("treatment", "holdout"):
            g = at[at.arm == arm]
            arms[arm] = {
                "reached": len(g), "buyers": int(g.buyer.sum()),
                "conversion": float(g.buyer.mean()) if len(g) else None,
                "sales": round(float(g.sales.sum()), 2),
                "message_cost": round(float(m[m.run.isin(g.run)].cost_fen.sum()) / 100, 2),
            }  # fmt: skip
        t, h = at[at.arm == "treatment"], at[at.arm == "holdout"]
        conv = (
            rate_difference(int(t.buyer.sum()), len(t), int(h.buyer.sum()), len(h)).to_dict()
            if len(t) and len(h) else None
        )  # fmt: skip
        row: dict[str, Any] = {"messages": states, "arms": arms, "conversion": conv}
        if channels is not None:
            row["channel"] = channels.get(str(key))
        got[str(key)] = row
    if channels is not None:  # in the definition's order of steps
        order = {k: i for i, k in enumerate(channels)}
        got = dict(sorted(got.items(), key=lambda kv: order.get(kv[0], len(order))))
    return got


def compare_variants(
    treated: pd.DataFrame, names: list[str], min_lift: float = MIN_LIFT
) -> dict[str, Any]:
    """Each variant's treated runs against the first variant's (the control): conversion
    (Newcombe), sales and gross profit per run (Welch), each with its MDE. A fixed-horizon
    test: the sample is sized for a ``min_lift`` relative rise over the first variant's
    conversion, and no winner is named before every variant has that many runs."""
    min_lift = _min_lift(min_lift)
    first = treated[treated.variant == names[0]]
    base = float(first.buyer.mean()) if len(first) else 0.0
    needed = sample_size_rate(base, base * min_lift) if base > 0 else None
    has = min(int((treated.variant == v).sum()) for v in names)
    rows = []
    for v in names[1:]:
        g = treated[treated.variant == v]
        rows.append({
            "variant": v, "against": names[0], "runs": len(g), "control_runs": len(first),
            "conversion": rate_difference(int(g.buyer.sum()), len(g), int(first.buyer.sum()),
                                          len(first)).to_dict(),
            "sales_per_run": mean_difference(Moments.of(g.sales),
                                             Moments.of(first.sales)).to_dict(),
            "gross_profit_per_run": mean_difference(Moments.of(g.gross_profit),
                                                    Moments.of(first.gross_profit)).to_dict(),
        })  # fmt: skip
    ready = needed is not None and has >= needed
    winner = None
    if needed is None:
        verdict = (
            f"no winner yet: the first variant ({names[0]}) has no buyers, so the sample a "
            f"{min_lift:.0%} rise needs cannot be told (has {has:,} per variant)"
        )
    elif not ready:
        verdict = f"no winner yet: needs {needed:,} per variant, has {has:,}"
    else:
        ups = [r for r in rows if r["conversion"]["verdict"] == HIGHER]
        if ups:
            winner = max(ups, key=lambda r: r["conversion"]["diff"])["variant"]
        elif rows and all(r["conversion"]["verdict"] == LOWER for r in rows):
            winner = names[0]
        verdict = (
            f"{winner} wins: its conversion is the highest, beyond chance and the MDE"
            if winner else
            "no winner: the variants are not distinguishable at the size the test needed"
        )  # fmt: skip
    return {
        "control": names[0], "min_lift": min_lift, "baseline": base if len(first) else None,
        "needed_per_variant": needed, "has_per_variant": has, "ready": ready,
        "winner": winner, "verdict": verdict, "comparisons": rows,
    }  # fmt: skip


def _min_lift(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise Invalid(f"min_lift {v!r}: expected a relative rise such as 0.2 (20%)") from None
    if not 0.01 <= f <= 10:
        raise Invalid(f"min_lift {f}: expected a relative rise from 0.01 (1%) to 10 (1000%)")
    return f


def _attributed(out: pd.DataFrame) -> dict[str, Any]:
    """Sales of treated runs that bought after being reached — last-touch attribution by
    window, which counts what would have been bought anyway."""
    t = out[(out.arm == "treatment") & out.reached & out.buyer]
    return {
        "label": "orders in the window after a message: attributed, not caused",
        "buyers": len(t),
        "sales": round(float(t.sales.sum()), 2),
    }


def as_of_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"as_of: a day such as 2026-11-30, got {text!r}") from None


__all__ = [
    "Arm", "Results", "Uplift", "as_of_day", "compare_variants", "reaching", "results",
    "run_outcomes",
]  # fmt: skip
