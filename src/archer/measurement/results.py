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
from archer.errors import Invalid, NotFound
from archer.facts import Snapshot
from archer.measurement.stats import Difference, Moments, mean_difference, rate_difference

if TYPE_CHECKING:
    from archer.workspace import Workspace

ORDER_WINDOW = "45d"  # the unpaid ladder runs 30 days from the order; paid within 45 counts
CUSTOMER_WINDOW = "14d"
MONEY = ("sales", "gross_profit", "promotion_cost")


@dataclass
class Arm:
    """One arm's totals over its runs."""

    arm: str
    runs: int = 0
    customers: int = 0
    reached: int = 0
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
            "arm": self.arm, "runs": self.runs, "customers": self.customers,
            "reached": self.reached, "buyers": self.buyers,
            "conversion": self.buyers / n if self.runs else None,
            "refund_users": self.refund_users, "orders": self.orders, "units": self.units,
            "sales": round(self.sales, 2), "gross_profit": round(self.gross_profit, 2),
            "gross_margin": round(self.gross_profit / self.sales, 4) if self.sales else None,
            "coupon_cost": round(self.coupon_cost, 2), "points_cost": round(self.points_cost, 2),
            "message_cost": round(self.message_cost, 2), "promotion_cost": self.promotion_cost,
            "sales_per_run": round(self.sales / n, 4) if self.runs else None,
        }  # fmt: skip


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
    attributed: dict[str, Any] = field(default_factory=dict)
    by_step: dict[str, dict[str, int]] = field(default_factory=dict)
    by_variant: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign, "kind": self.kind, "window": self.window,
            "as_of": self.as_of, "arms": {k: a.to_dict() for k, a in self.arms.items()},
            "uplift": {
                "conversion": self.conversion.to_dict() if self.conversion else None,
                "sales_per_run": self.sales.to_dict() if self.sales else None,
                "gross_profit_per_run": self.gross_profit.to_dict() if self.gross_profit else None,
            },
            "incremental_gross_profit": self.incremental_gross_profit,
            "roi": self.roi, "attributed": self.attributed, "by_step": self.by_step,
            "by_variant": self.by_variant, "notes": self.notes,
        }  # fmt: skip


def results(
    ws: Workspace, name: str, *, window: str | None = None, as_of: date | None = None
) -> Results:
    """The results of campaign ``name`` as the warehouse stands (its last import), over
    ``window`` from each run's enrolment (default: 45 days for an unpaid-order flow, 14 for
    the rest)."""
    out, meta = run_outcomes(ws, name, window=window, as_of=as_of)
    kind, window = meta["kind"], meta["window"]
    res = Results(name, kind, window, meta["as_of"], arms={})
    for arm in ("treatment", "holdout"):
        g = out[out.arm == arm]
        res.arms[arm] = Arm(
            arm, runs=len(g), customers=g.customer_id.nunique(), reached=int(g.reached.sum()),
            buyers=int(g.buyer.sum()), refund_users=int((g.refunded > 0).sum()),
            orders=int(g.orders.sum()), units=int(g.units.sum()), sales=float(g.sales.sum()),
            gross_profit=float(g.gross_profit.sum()), coupon_cost=float(g.coupon_cost.sum()),
            points_cost=float(g.points_cost.sum()), message_cost=float(g.message_cost.sum()),
        )  # fmt: skip
    t, h = out[out.arm == "treatment"], out[out.arm == "holdout"]
    if len(h):
        res.conversion = rate_difference(int(t.buyer.sum()), len(t), int(h.buyer.sum()), len(h))
        res.sales = mean_difference(Moments.of(t.sales), Moments.of(h.sales))
        res.gross_profit = mean_difference(Moments.of(t.gross_profit), Moments.of(h.gross_profit))
        if res.gross_profit.diff is not None:
            res.incremental_gross_profit = round(res.gross_profit.diff * len(t), 2)
            cost = res.arms["treatment"].promotion_cost
            res.roi = round(res.incremental_gross_profit / cost, 4) if cost > 0 else None
    else:
        res.notes.append("no holdout: nothing to compare with, so no uplift can be told")
    res.attributed = _attributed(out)
    res.by_step = meta["by_step"]
    for v, g in out[out.variant.notna()].groupby("variant"):
        res.by_variant[str(v)] = {
            "runs": len(g), "buyers": int(g.buyer.sum()), "sales": round(float(g.sales.sum()), 2),
            "conversion": float(g.buyer.mean()),
        }  # fmt: skip
    return res


def run_outcomes(
    ws: Workspace, name: str, *, window: str | None = None, as_of: date | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Campaign ``name``'s runs, one row each with its arm and its outcome over ``window`` from
    enrolment (buyer, orders, units, sales, gross profit, coupon, points and message cost):
    what :func:`results` sums, and what uplift targeting learns from. ``meta`` holds the
    ``kind`` of a run, the ``window``, the snapshot's ``as_of`` and the campaign's ``by_step``
    and ``definition``."""
    runs, meta = _runs(ws, name)
    kind = "order" if meta["on"] == "order_unpaid" else "customer"
    window = window or (ORDER_WINDOW if kind == "order" else CUSTOMER_WINDOW)
    try:
        span = parse_duration(window)
    except ValueError as e:
        raise Invalid(f"window: {e}") from None
    if span <= timedelta(0) or span > timedelta(days=366):
        raise Invalid("window: from a minute to 366 days")
    with ws.warehouse() as wh:
        snap = Snapshot.at(wh, as_of, ws.tz, today=ws.today())
        orders = _orders(snap, runs, kind)
    out = _outcomes(runs, orders, kind, span)
    return out, {**meta, "kind": kind, "window": window, "as_of": str(snap.as_of)}


def reaching(msgs: pd.DataFrame) -> pd.Series:
    """Messages that reached their customer: sent, or — in the holdout — held back where they
    would have gone (the guards passed them). A run is reached when one of its messages is."""
    return (msgs.state == "sent") | ((msgs.state == "skipped") & (msgs.reason == "holdout"))


# -- reading -------------------------------------------------------------------------------------
def _runs(ws: Workspace, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The campaign's runs with what each was given: reached, message cost, coupon savings,
    points spent (valued at the exchange rate)."""
    from archer.store.campaigns import Campaign, CampaignVersion, Enrollment, Message
    from archer.store.offers import Coupon, CouponTemplate, PointsEntry

    with ws.session() as s:
        c = s.scalar(select(Campaign).where(Campaign.name == name))
        if c is None:
            raise NotFound(f"no campaign named {name!r}")
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
                       Message.cost_fen, Message.sent_at, Message.arm)
                .where(Message.campaign_id == c.id)
            ).all(),
            columns=["run", "step", "state", "reason", "cost_fen", "sent_at", "arm"],
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
    by_step: dict[str, dict[str, int]] = {}
    for (step, state), n in msgs.groupby(["step", "state"]).size().items():
        by_step.setdefault(str(step), {})[str(state)] = int(n)
    return runs, {"on": d["trigger"]["on"], "by_step": by_step, "definition": d}


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


__all__ = ["Arm", "Results", "as_of_day", "reaching", "results", "run_outcomes"]
