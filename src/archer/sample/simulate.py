"""The shop that responds: advance the synthetic shop in time after campaigns have sent.

The sample (``generate``) draws each member's buying from BG/NBD and writes the truth it drew
from. This module continues that shop past its last day and lets it answer the campaigns:

* **The baseline** is what the shop does with no campaign at all: every member alive at the
  sample's end keeps buying at their rate λ and drops out after each purchase with their p,
  exactly as the sample drew them; amounts follow their Gamma-Gamma spend. It is drawn once per
  seed, in a fixed order, so it is the same whatever the campaigns did, and extending ``until``
  only adds later purchases.
* **The response** is each member's latent reaction to a message and an offer. A campaign's
  exposure (a message sent — or, in the holdout, one held back that would have gone) persuades
  a member who would *not* have bought within the response window anyway with probability θ,
  which depends on observable traits: engagement, discount sensitivity (a coupon persuades the
  sensitive far more), whether they are still alive, whether they ever bought, and the
  channel. Some members buy anyway (the baseline already has a purchase in the window: a
  discount-sensitive one then uses the coupon on it — a subsidy, not an effect), some are
  persuadable, some never. For an unpaid order, the response is paying it.
* **The truth**: each exposure's true effect τ = reached × θ × [no baseline purchase in the
  window] (its expected incremental buyer), per campaign the sum over the treated and the mean
  over everyone enrolled (the intention-to-treat uplift a holdout comparison estimates), and
  what the persuaded actually bought. Written to ``truth_campaigns.json`` and
  ``truth_uplift.csv`` beside the sample's own truth.

Every draw is a function of (seed, what, who), never of the order things are read in, so the
same ledger and seed give the same files; the files are imported with the ordinary import
(orders upserted by id), so simulating twice to the same day changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from archer.errors import Invalid, NotFound
from archer.sample import data as sd

if TYPE_CHECKING:
    from archer.workspace import Workspace

WINDOW_DAYS = 14  # a persuaded member buys within this many days of the message
PAY_WINDOW_DAYS = 40  # an unpaid order's ladder runs 30 days; a reminded member pays within this
LATE_PAY = 0.04  # an unpaid order paid late with no reminder at all
CHANNEL_PULL = {"email": 1.0, "sms": 1.2, "wecom": 1.5, "inbox": 0.5}
COUPON_USE_ANYWAY = 0.7  # a discount-sensitive member who buys anyway uses the coupon they got
FREE_SHIPPING = 99.0
SHIPPING = 8.0
MAX_BASELINE_PURCHASES = 400  # per member in one simulation: a bound on the loop, never reached


@dataclass
class Simulated:
    """What one simulation wrote, and the truth it drew."""

    until: date
    orders: int = 0
    paid_late: int = 0  # unpaid orders the campaigns (or time) got paid
    refunds: int = 0
    events: int = 0
    exposures: int = 0
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "until": self.until.isoformat()}


# -- draws that depend only on (seed, what, who) ---------------------------------------------------
def uniform(seed: int, what: str, keys: pd.Series | list[str]) -> np.ndarray:
    """One uniform draw in [0, 1) per key, from sha256(seed, what, key): independent of order."""
    out = np.empty(len(keys))
    salt = f"{seed}:{what}:".encode()
    for i, k in enumerate(keys):
        h = hashlib.sha256(salt + str(k).encode()).digest()
        out[i] = int.from_bytes(h[:7], "big") / 2**56
    return out


def response_thetas(
    traits: pd.DataFrame, channel: pd.Series, coupon: pd.Series, alive: pd.Series
) -> np.ndarray:
    """θ: the chance a message persuades a member who would not have bought anyway.

    A message alone moves the engaged a little (1.5% + 3% per unit of engagement, capped at
    three units); a coupon adds 12 points for the discount-sensitive and 3 for the rest; a
    member who never bought answers a fifth as well to the message; one who has dropped out
    answers at 40%. The channel scales it (an SMS is read more than an e-mail, the shop's inbox
    less). Capped at 0.6."""
    eng = traits["engagement"].clip(0, 3).to_numpy(float)
    sensitive = traits["discount_sensitive"].astype(bool).to_numpy()
    bought = traits["n_purchases"].fillna(0).to_numpy(float) > 0
    base = 0.015 + 0.03 * eng
    base = np.where(bought, base, base / 5)
    offer = np.where(sensitive, 0.12, 0.03) * coupon.astype(bool).to_numpy()
    theta = (base + offer) * np.where(alive.to_numpy(bool) | ~bought, 1.0, 0.4)
    pull = channel.map(CHANNEL_PULL).fillna(1.0).to_numpy(float)
    return np.clip(theta * pull, 0, 0.6)


def pay_thetas(traits: pd.DataFrame, channel: pd.Series, offer: pd.Series) -> np.ndarray:
    """θ for an unpaid order: the chance the ladder gets it paid (when it would not be anyway):
    10% + 5% per unit of engagement (capped at two), 10 points more with an offer (points or a
    coupon), scaled by the channel."""
    eng = traits["engagement"].clip(0, 2).to_numpy(float)
    theta = 0.10 + 0.05 * eng + 0.10 * offer.astype(bool).to_numpy()
    pull = channel.map(CHANNEL_PULL).fillna(1.0).to_numpy(float)
    return np.clip(theta * pull, 0, 0.8)


# -- reading what the sample and the shop hold ----------------------------------------------------
def read_truth(sample_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    path = Path(sample_dir) / "truth.csv"
    if not path.exists():
        raise NotFound(f"{path}: no truth.csv — simulate needs the folder `archer sample` wrote")
    meta = json.loads((Path(sample_dir) / "truth.json").read_text(encoding="utf-8"))
    t = pd.read_csv(path, parse_dates=["registered_at", "first_purchase_at", "churned_at"])
    return t.set_index("customer_id", drop=False), meta


def exposures(ws: Workspace) -> pd.DataFrame:
    """Every campaign run that reached its first message (sent, or held back in the holdout) or
    was meant to and could not (skipped: not reached), one row per run."""
    from archer.measurement.results import reaching
    from archer.store.campaigns import Campaign, CampaignVersion, Enrollment, Message
    from archer.store.offers import Coupon, CouponTemplate, PointsEntry

    with ws.session() as s:
        msgs = pd.DataFrame(
            s.execute(
                select(
                    Message.enrollment_id,
                    Message.campaign_id,
                    Message.customer_id,
                    Message.channel,
                    Message.state,
                    Message.reason,
                    Message.sent_at,
                    Message.due_at,
                    Message.arm,
                )  # fmt: skip
            ).all(),
            columns=[
                "enrollment_id",
                "campaign_id",
                "customer_id",
                "channel",
                "state",
                "reason",
                "sent_at",
                "due_at",
                "arm",
            ],  # fmt: skip
        )
        runs = pd.DataFrame(
            s.execute(select(Enrollment.id, Enrollment.trigger_key, Enrollment.entered_at)).all(),
            columns=["enrollment_id", "trigger_key", "entered_at"],
        )
        camps = {}
        for c in s.scalars(select(Campaign)):
            v = s.get(CampaignVersion, (c.id, c.version))
            d = json.loads(v.definition)
            camps[c.id] = {
                "name": c.name,
                "on": d["trigger"]["on"],
                "offers_coupon": any(st["type"] == "coupon" for st in d["steps"]),
                "offers_points": any(st["type"] == "points" for st in d["steps"]),
            }
        cps = pd.DataFrame(
            s.execute(
                select(
                    Coupon.enrollment_id,
                    Coupon.code,
                    Coupon.value_fen,
                    CouponTemplate.threshold_fen,
                    Coupon.expires_at,
                )  # fmt: skip
                .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
                .where(Coupon.enrollment_id.is_not(None), Coupon.state.not_in(("void", "pool")))
                .order_by(Coupon.id)
            ).all(),
            columns=["enrollment_id", "code", "value_fen", "threshold_fen", "coupon_expires"],
        )
        pts = {
            src.split(":")[2]
            for src in s.scalars(
                select(PointsEntry.source).where(PointsEntry.source.like("campaign:%"))
            )
        }
    if msgs.empty:
        return pd.DataFrame()
    msgs["moment"] = msgs.sent_at.where(msgs.sent_at.notna(), msgs.due_at)
    msgs["reaching"] = reaching(msgs)
    msgs = msgs.sort_values(["enrollment_id", "reaching", "moment"], ascending=[True, False, True])
    first = msgs.drop_duplicates("enrollment_id").merge(runs, on="enrollment_id", how="left")
    first["reached"] = first.reaching
    first["campaign"] = first.campaign_id.map(lambda c: camps[c]["name"])
    first["on"] = first.campaign_id.map(lambda c: camps[c]["on"])
    cps = cps.drop_duplicates("enrollment_id")
    first = first.merge(cps, on="enrollment_id", how="left")
    first["coupon"] = first.code.notna()
    first["points"] = first.enrollment_id.astype(str).isin(pts)
    # What the run offers, for the truth of a holdout member (who is never given it).
    first["offer_coupon"] = first.campaign_id.map(lambda c: camps[c]["offers_coupon"])
    first["offer_points"] = first.campaign_id.map(lambda c: camps[c]["offers_points"])
    return first.reset_index(drop=True)


# -- the baseline ----------------------------------------------------------------------------------
def baseline(truth: pd.DataFrame, start: datetime, until: datetime, seed: int) -> pd.DataFrame:
    """Purchases of the members alive at ``start`` (the sample's end) up to ``until``: BG/NBD
    continued — exponential gaps at rate λ, a drop-out draw after each. Drawn round by round
    over all members in a fixed order, so a later ``until`` only adds purchases."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1729])))
    alive = truth.alive_at_end.astype(bool).to_numpy() & (truth.lam.to_numpy() > 0)
    lam = truth.lam.to_numpy(float)
    pdrop = truth.p_dropout.to_numpy(float)
    horizon = (until - start).total_seconds() / 86400
    t = np.zeros(len(truth))
    active = alive.copy()
    rows = []
    for k in range(MAX_BASELINE_PURCHASES):
        gaps = rng.exponential(1.0, len(truth))  # drawn for everyone: the stream never shifts
        drops = rng.random(len(truth))
        t = t + gaps / np.where(lam > 0, lam, 1.0)
        active &= t <= horizon
        if not active.any():
            break
        idx = np.flatnonzero(active)
        rows.append(pd.DataFrame({"i": idx, "k": k, "day": t[idx]}))
        active &= drops >= pdrop  # drops out after this purchase
    if not rows:
        return pd.DataFrame(columns=["customer_id", "k", "at"])
    b = pd.concat(rows, ignore_index=True)
    b["customer_id"] = truth.customer_id.to_numpy()[b.i]
    b["at"] = (pd.to_datetime(start) + pd.to_timedelta(b.day, unit="D")).dt.floor("s")
    return b[["customer_id", "k", "at"]]


@dataclass
class Shop:
    """The catalogue and the members' places (from the warehouse), and the sample's own orders
    as `archer sample` wrote them — not as the warehouse holds them after a simulation, so a
    second simulation sees the same past as the first."""

    products: pd.DataFrame
    places: pd.DataFrame
    orders: pd.DataFrame  # the sample's orders, by id, times shop-local

    @classmethod
    def read(cls, ws: Workspace, sample_dir: Path, fmt: str) -> Shop:
        from archer.schema import TABLES

        path = Path(sample_dir) / f"orders.{fmt}"
        if fmt == "parquet":
            o = pd.read_parquet(path)
        else:
            o = pd.read_csv(path, dtype={"order_id": str, "customer_id": str, "coupon_code": str})
        for c in ("created_at", "paid_at", "cancelled_at"):
            o[c] = pd.to_datetime(o[c])
        o = o[[c for c in TABLES["orders"].names if c in o.columns]]
        with ws.warehouse() as wh:
            p = wh.table("products").select("product_id", "category", "list_price", "unit_cost")
            c = wh.table("customers").select("customer_id", "province", "city")
            return cls(p.execute(), c.execute().set_index("customer_id"),
                       o.set_index("order_id", drop=False))  # fmt: skip

    def purchases(self) -> pd.DataFrame:
        """The sample's paid orders of members: who, and when they were placed."""
        o = self.orders
        paid = o[o.paid_at.notna() & o.customer_id.notna()]
        return paid[["customer_id", "created_at"]].rename(columns={"created_at": "at"})


# -- the simulation --------------------------------------------------------------------------------
def simulate(
    ws: Workspace,
    until: date,
    *,
    sample_dir: Path | None = None,
    seed: int | None = None,
    out_dir: Path | None = None,
    build: bool = True,
) -> Simulated:
    """Advance the sample shop of ``ws`` to the end of ``until`` (the shop's day): write the
    orders, payments, refunds and events its members' baseline and their responses to the
    campaigns produce, import them, rebuild, and write the campaigns' true effect."""
    from archer.ingest.importer import import_file

    sample_dir = Path(sample_dir or ws.home / "sample")
    truth, meta = read_truth(sample_dir)
    seed = int(meta["seed"] if seed is None else seed)
    start_day = date.fromisoformat(meta["end"]) + timedelta(days=1)
    if until < start_day - timedelta(days=1):
        raise Invalid(f"until {until} is before the sample's last day {meta['end']}")
    tz = ws.tz
    start = datetime.combine(start_day, time(0))  # shop-local, naive, as the sample writes
    end = datetime.combine(until + timedelta(days=1), time(0))
    shop = Shop.read(ws, sample_dir, meta.get("format", "csv"))
    report = Simulated(until)

    base = baseline(truth, start, end, seed)
    base = base[base["at"] < end]
    orders: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []

    # The campaigns' exposures and each member's response.
    ex = exposures(ws)
    if not ex.empty:
        ex["at"] = _local(ex.moment, tz)
        ex = ex[ex["at"] < end]
    moments = pd.concat([shop.purchases(), base[["customer_id", "at"]]])
    by_member = moments.groupby("customer_id")["at"].apply(lambda s: np.sort(s.to_numpy()))
    judged = [] if ex.empty else [
        _respond(kind, ex[(ex["on"] == "order_unpaid") == (kind == "pay")], truth, by_member, seed,
                 shop.orders)
        for kind in ("buy", "pay")
    ]  # fmt: skip
    judged = [j for j in judged if not j.empty]
    open_orders = shop.orders
    used_by_base: dict[tuple[str, int], Any] = {}  # a baseline order → the coupon it used
    first_base = base.assign(at64=base["at"].to_numpy()).groupby("customer_id")
    for rows in judged:
        for r in rows[rows.when < end].itertuples():
            if r.kind == "pay":
                if (r.persuaded or r.anyway) and _pay_order(r, r.when, open_orders, orders, events):
                    report.paid_late += 1
            elif r.persuaded:
                oid = f"S{r.campaign_id:03d}{r.enrollment_id:09d}"
                _new_order(oid, r.customer_id, r.when, truth.loc[r.customer_id], shop, orders,
                           items, refunds, events, seed, end=end, coupon=r if r.coupon else None,
                           campaign=(r.campaign, r.channel))  # fmt: skip
            elif r.uses_anyway and r.customer_id in first_base.groups:
                mine = first_base.get_group(r.customer_id)
                inside = mine[(mine["at"] >= r.at) & (mine["at"] < r.window_end)]
                if not inside.empty:  # buys anyway, with the coupon: a subsidy, not an effect
                    used_by_base[(r.customer_id, int(inside.k.iloc[0]))] = r
    # The baseline's orders (those in the simulated period).
    for b in base.itertuples():
        oid = f"B{truth.index.get_loc(b.customer_id) + 1:07d}{b.k:03d}"
        _new_order(oid, b.customer_id, b.at.to_pydatetime(), truth.loc[b.customer_id], shop,
                   orders, items, refunds, events, seed, end=end,
                   coupon=used_by_base.get((b.customer_id, b.k)))  # fmt: skip
    report.orders = sum(1 for o in orders if o["order_id"][0] in "BS")
    report.refunds, report.events = len(refunds), len(events)

    out = Path(out_dir or ws.home / "simulated")
    out.mkdir(parents=True, exist_ok=True)
    frames = {"orders": orders, "order_items": items, "refunds": refunds, "events": events}
    for table, got in frames.items():
        if not got:
            continue
        path = out / f"{table}.csv"
        pd.DataFrame(got).to_csv(path, index=False)
        report.files[table] = str(path)
        r = import_file(ws, table, path, now=ws.now())
        if r.rejected:
            raise Invalid(f"the simulation wrote {r.rejected} rows {table} refused: {r.reasons}")
    report.exposures = len(ex)
    if judged:
        report.campaigns = _write_truth(sample_dir, pd.concat(judged), orders, refunds,
                                        _runs_per_arm(ws))  # fmt: skip
    if build:
        from archer.pipeline import build as rebuild

        ws.close()
        rebuild(ws, until)
    return report


def _respond(
    kind: str,
    rows: pd.DataFrame,
    truth: pd.DataFrame,
    by_member: pd.Series,
    seed: int,
    orders: pd.DataFrame,
) -> pd.DataFrame:
    """Each run's response: θ, whether the member acts anyway (buys within the window, or pays
    the order late with no reminder), the true effect τ, whether the treated member was
    persuaded, and when they act — every draw hashed from (seed, campaign, member, key)."""
    if rows.empty:
        return rows
    tr = truth.reindex(rows.customer_id.to_numpy())
    tr.index = rows.index
    treated_arm = rows.arm == "treatment"
    coupon = rows.coupon.where(treated_arm, rows.offer_coupon).astype(bool)
    keys = (rows.campaign_id.astype(str) + ":" + rows.customer_id + ":" + rows.trigger_key).tolist()
    if kind == "buy":
        window = timedelta(days=WINDOW_DAYS)
        theta = response_thetas(tr, rows.channel, coupon, _alive_at(tr, rows["at"]))
        pairs = zip(rows.customer_id, rows["at"], strict=True)
        anyway = np.array([_bought_between(by_member, c, a, a + window) for c, a in pairs], bool)
    else:
        window = timedelta(days=PAY_WINDOW_DAYS)
        points = rows.points.where(treated_arm, rows.offer_points).astype(bool)
        theta = pay_thetas(tr, rows.channel, coupon | points)
        # Paid anyway: the sample paid the order itself within the window, or — one it never
        # paid — a late payment with no reminder.
        paid = orders.paid_at.reindex(rows.trigger_key.to_numpy()).to_numpy()
        at = rows["at"].to_numpy()
        by_sample = pd.notna(paid) & (paid >= at) & (paid < at + np.timedelta64(window))
        never = pd.isna(paid)
        anyway = by_sample | (never & (uniform(seed, "late-pay", keys) < LATE_PAY))
    days = window.total_seconds() / 86400
    delay = np.minimum(-np.log1p(-uniform(seed, "delay", keys)) * days / 4, days * 0.98)
    when = rows["at"] + pd.to_timedelta(delay, unit="D")
    if kind == "pay":  # an order closed before the member would act cannot be paid
        closed = orders.cancelled_at.reindex(rows.trigger_key.to_numpy()).to_numpy()
        theta = np.where(pd.notna(closed) & (closed <= when.to_numpy()), 0.0, theta)
    reached = rows.reached.to_numpy(bool)
    treated = treated_arm.to_numpy() & reached
    persuaded = treated & ~anyway & (uniform(seed, "respond", keys) < theta)
    sensitive = tr.discount_sensitive.fillna(False).astype(bool).to_numpy()
    uses = (treated & anyway & rows.coupon.to_numpy(bool) & sensitive
            & (uniform(seed, "use-anyway", keys) < COUPON_USE_ANYWAY))  # fmt: skip
    return rows.assign(
        kind=kind, theta=theta, anyway=anyway, tau=reached * theta * ~anyway,
        persuaded=persuaded, uses_anyway=uses & (kind == "buy"),
        when=when, window_end=rows["at"] + window,
    )  # fmt: skip


def _local(ts: pd.Series, tz) -> pd.Series:
    """UTC times (naive or aware) → naive shop-local times."""
    s = pd.to_datetime(ts, utc=True)
    return s.dt.tz_convert(tz).dt.tz_localize(None)


def _alive_at(tr: pd.DataFrame, at: pd.Series) -> pd.Series:
    """Whether each member was still alive (in the BG/NBD sense) at the exposure, by the
    sample's truth: not churned, or churned after it."""
    churned = tr.churned.fillna(False).astype(bool)
    when = pd.to_datetime(tr.churned_at)
    return ~churned | (when > at)


def _bought_between(by_member: pd.Series, customer: str, a, b) -> bool:
    got = by_member.get(customer)
    if got is None:
        return False
    i = np.searchsorted(got, np.datetime64(a))
    return bool(i < len(got) and got[i] < np.datetime64(b))


def _fmt(t: datetime) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _new_order(oid, customer, when, traits, shop: Shop, orders, items, refunds, events, seed,
               *, end, coupon=None, campaign=None) -> None:  # fmt: skip
    """One paid order of a member at ``when``: goods from their preferred category near their
    usual spend, the coupon applied when the order reaches its threshold, refunded at the
    category's rate."""
    u = uniform(seed, "order", [f"{oid}:{k}" for k in range(4)])
    nu = float(traits.nu) if traits.nu > 0 else 1 / 150
    amount = _gamma_quantile(u[0], sd.GAMMA_GAMMA["p"], nu)
    cat = traits.preferred_category if u[1] < 0.8 else None
    prods = shop.products if cat is None else shop.products[shop.products.category == cat]
    if prods.empty:
        prods = shop.products
    price = prods.list_price.astype(float).to_numpy()
    pick = prods.iloc[int(np.argmin(np.abs(price - amount)))]
    unit = float(pick.list_price)
    qty = max(1, min(5, round(amount / unit))) if unit > 0 else 1
    goods = round(qty * unit, 2)
    code, discount = None, 0.0
    if coupon is not None:
        c_code, value_fen, threshold_fen = (
            (coupon.code, coupon.value_fen, coupon.threshold_fen)
            if hasattr(coupon, "code") else coupon
        )  # fmt: skip
        threshold = float(threshold_fen or 0) / 100
        while goods < threshold and qty < 20:  # a member with a coupon tops the basket up
            qty += 1
            goods = round(qty * unit, 2)
        if goods >= threshold:
            code, discount = c_code, min(float(value_fen) / 100, goods)
    shipping = 0.0 if goods >= FREE_SHIPPING else SHIPPING
    paid = round(goods - discount + shipping, 2)
    place = shop.places.loc[customer] if customer in shop.places.index else None
    refund_at = when + timedelta(days=3 + 7 * u[3])
    refunded = u[2] < _refund_rate(pick.category) and refund_at < end  # later: a later run's
    orders.append({
        "order_id": oid, "customer_id": customer, "created_at": _fmt(when),
        "paid_at": _fmt(when + timedelta(minutes=2)), "cancelled_at": None,
        "status": "refunded" if refunded else "completed", "goods_amount": goods,
        "discount_amount": round(discount, 2), "shipping_fee": shipping, "paid_amount": paid,
        "coupon_code": code, "channel": "app",
        "province": None if place is None else place.province,
        "city": None if place is None else place.city,
    })  # fmt: skip
    items.append({"order_id": oid, "line_no": 1, "product_id": pick.product_id, "quantity": qty,
                  "unit_price": unit, "unit_cost": float(pick.unit_cost)})  # fmt: skip
    if refunded:
        refunds.append({"refund_id": f"R{oid}", "order_id": oid,
                        "refunded_at": _fmt(refund_at),
                        "amount": paid, "reason": sd.REFUND_REASONS[0]})  # fmt: skip
    source, medium, name = (
        ("archer", campaign[1], campaign[0]) if campaign else ("direct", None, None)
    )
    lead = when - timedelta(minutes=6)
    for j, (typ, at, extra) in enumerate([
        ("visit", lead, {}), ("view", lead + timedelta(minutes=1), {}),
        ("checkout", when, {"order_id": oid}),
    ]):  # fmt: skip
        events.append({
            "event_id": f"E{oid}-{j}", "customer_id": customer, "anonymous_id": None,
            "type": typ, "occurred_at": _fmt(at),
            "product_id": pick.product_id if typ != "visit" else None,
            "category": pick.category if typ != "visit" else None, "query": None,
            "source": source if typ == "visit" else None,
            "medium": medium if typ == "visit" else None,
            "campaign": name if typ == "visit" else None,
            "properties": json.dumps(extra) if extra else None,
        })  # fmt: skip


def _pay_order(r, when, open_orders: pd.DataFrame, orders, events) -> bool:
    """An unpaid order paid at ``when`` (with the ladder's coupon when it carries one and the
    order reaches its threshold): the order row re-imported with its payment. False when the
    order was paid already or closed before."""
    if r.trigger_key not in open_orders.index:
        return False
    o = open_orders.loc[r.trigger_key]
    if pd.notna(o.paid_at) or (pd.notna(o.cancelled_at) and o.cancelled_at <= when):
        return False
    when = max(when, o.created_at + timedelta(minutes=5))
    goods = float(o.goods_amount) if pd.notna(o.goods_amount) else 0.0
    discount = float(o.discount_amount or 0) if pd.notna(o.discount_amount) else 0.0
    code = o.coupon_code if pd.notna(o.coupon_code) else None
    if r.persuaded and r.coupon and goods >= float(r.threshold_fen or 0) / 100:
        code, discount = r.code, min(goods, discount + float(r.value_fen) / 100)
    shipping = float(o.shipping_fee) if pd.notna(o.shipping_fee) else 0.0
    row = {k: (None if pd.isna(v) else v) for k, v in o.items()}
    row.update({
        "created_at": _fmt(o.created_at), "paid_at": _fmt(when), "cancelled_at": None,
        "status": "completed", "discount_amount": round(discount, 2), "coupon_code": code,
        "paid_amount": round(goods - discount + shipping, 2),
    })  # fmt: skip
    orders.append(row)
    events.append({
        "event_id": f"E{r.trigger_key}-pay", "customer_id": r.customer_id, "anonymous_id": None,
        "type": "checkout", "occurred_at": _fmt(when), "product_id": None, "category": None,
        "query": None, "source": "archer" if r.persuaded else None,
        "medium": r.channel if r.persuaded else None,
        "campaign": r.campaign if r.persuaded else None,
        "properties": json.dumps({"order_id": r.trigger_key}),
    })  # fmt: skip
    return True


def _refund_rate(category: str) -> float:
    for c in sd.CATEGORIES:
        if c.key == category:
            return c.refund_rate
    return 0.05


def _gamma_quantile(u: float, shape: float, rate: float) -> float:
    from scipy.stats import gamma

    return float(gamma.ppf(min(max(u, 1e-9), 1 - 1e-9), shape, scale=1 / rate))


def _runs_per_arm(ws: Workspace) -> dict[tuple[str, str], int]:
    """Runs enrolled per (campaign, arm), messages or not: what results count."""
    from archer.store.campaigns import Campaign, Enrollment

    with ws.session() as s:
        q = (
            select(Campaign.name, Enrollment.arm, func.count())
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .group_by(Campaign.name, Enrollment.arm)
        )
        return {(name, arm): int(n) for name, arm, n in s.execute(q)}


def _write_truth(
    sample_dir: Path, rows: pd.DataFrame, orders, refunds, runs: dict[tuple[str, str], int]
) -> dict:
    """The campaigns' true effect: per run in truth_uplift.csv, per campaign in
    truth_campaigns.json."""
    cols = ["campaign", "campaign_id", "enrollment_id", "customer_id", "trigger_key", "arm",
            "reached", "at",
            "theta", "anyway", "tau", "persuaded"]  # fmt: skip
    rows[cols].to_csv(Path(sample_dir) / "truth_uplift.csv", index=False)
    o = pd.DataFrame(orders)
    net = {}
    if not o.empty:
        refunded = {r["order_id"]: r["amount"] for r in refunds}
        o["net"] = o.paid_amount.astype(float) - o.order_id.map(refunded).fillna(0.0)
        net = dict(zip(o.order_id, o.net, strict=True))
    out = {}
    for name, g in rows.groupby("campaign"):
        t = g[g.arm == "treatment"]
        sales = sum(net.get(f"S{r.campaign_id:03d}{r.enrollment_id:09d}", 0.0)
                    for r in t[t.persuaded].itertuples())  # fmt: skip
        n_t, n_h = runs.get((str(name), "treatment"), len(t)), runs.get((str(name), "holdout"), 0)
        out[str(name)] = {
            "kind": g.kind.iloc[0],
            "enrolled": n_t + n_h,  # every run, a message or not (τ = 0 without one)
            "treatment": n_t,
            "holdout": n_h,
            "messaged": len(g),
            "reached": int(g.reached.sum()),
            "true_uplift": float(g.tau.sum() / max(n_t + n_h, 1)),  # what the arms' difference
            # estimates: the mean effect over every run the campaign enrolled
            "expected_incremental": float(t.tau.sum()),
            "persuaded": int(t.persuaded.sum()),
            "persuaded_net_sales": round(float(sales), 2),
        }
    doc = {"campaigns": out, "window_days": WINDOW_DAYS, "pay_window_days": PAY_WINDOW_DAYS}
    (Path(sample_dir) / "truth_campaigns.json").write_text(
        json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    return out
