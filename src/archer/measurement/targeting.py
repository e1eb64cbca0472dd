"""Coupons targeted by uplift within a budget.

A past campaign with a holdout says, customer by customer, what a coupon changed: its treated
and holdout runs are comparable because the holdout was drawn by a hash before anything was
sent. From those runs this module learns **who is persuadable** and chooses whom the next
coupon budget should go to:

1. **Training data.** Each run of the campaign (its first run per customer), its arm and its
   outcome over the campaign's window — the gross profit of :func:`~archer.measurement.results.
   run_outcomes`, the same outcome the campaign's results count (net of refunds, after the
   coupon's discount) — joined to the customer's profile features **as of the day before the
   campaign started**, computed with the profile's own summaries (:mod:`archer.customers`), so
   that nothing the campaign caused leaks into what it is learned from. At most
   :data:`MAX_TRAIN_ROWS` runs (a hashed sample beyond) and the :data:`FEATURES` listed below.
2. **Learners** (scikit-learn gradient-boosted trees, small and regularised): a two-model
   learner (T-learner: one model of the outcome per arm, the uplift their difference) and a
   transformed-outcome learner (one model of ``y · (w − p) / (p (1 − p))``, whose expectation is
   the uplift), both of the uplift in **conversion** (whether the customer bought in the
   window: far less noisy than money). Each is judged on held-out customers by its **Qini
   coefficient**: the customers are split in five folds by a hash of their id, and each is
   scored by the model fitted on the other four (cross-fitting, so every customer is held out
   once); the better learner is refitted on every run. The expected incremental gross profit
   is then the conversion uplift × the gross profit of a treated buyer (a third model), less
   the coupons redeemed by those who would have bought anyway (:class:`Profit`).
3. **The choice.** Each buyer's expected incremental gross profit and expected
   promotion cost (the coupon's value × the chance it is redeemed, learned from the treated
   runs); customers with a positive uplift are ranked by profit per yuan of cost and taken in
   that order until the budget is spent. The ranking is saved as the warehouse table
   ``uplift_scores`` and the audience language's ``uplift_rank`` field reads it:
   ``uplift_rank <= N`` is the chosen group.

**The Qini curve** (Radcliffe 2007): customers sorted by predicted uplift, best first; at each
depth k, ``Q(k) = Yt(k) − Yc(k) · Nt(k) / Nc(k)`` — the treated's outcome in the top k less the
control's scaled to the same number of treated: the incremental outcome of treating the top k.
A random order gives, on average, the straight line from 0 to ``Q(N)``. **AUUC** is the area
under ``Q`` over the share targeted (0 to 1, in the outcome's unit); the **Qini coefficient** is
that area less the random line's (``Q(N) / 2``): 0 for a random order, positive when the model
puts the persuadable first.

On the simulated shop (:mod:`archer.sample.simulate`) the truth is known, and
:func:`evaluate_on_simulator` measures each policy — uplift, RFM value tier, random and the
oracle — with the simulator's own functions (see there).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd
from sqlalchemy import select

from archer.errors import Invalid, NotFound
from archer.facts import Snapshot
from archer.measurement.results import run_outcomes
from archer.schema import UPLIFT_SCORES  # the last choice: one row per scored customer

if TYPE_CHECKING:
    from archer.workspace import Workspace

MAX_TRAIN_ROWS = 200_000  # runs learned from; a hashed sample beyond
MAX_CANDIDATES = 2_000_000  # customers scored
MAX_BUDGET = 10**9  # yuan
MIN_ARM = 50  # runs each arm needs before anything is learned
FOLDS = 5  # customers split by hash: each is judged by a model fitted on the other folds
MIN_REDEEM = 0.02  # the chance of redemption is never taken below this (a cost floor)
FEATURES = (
    "tenure_days", "paid_orders", "purchase_days", "net_spent", "avg_order", "largest_order",
    "days_since_last_purchase", "days_since_first_purchase", "total_refunded",
    "discount_share", "discount_sensitive", "price_position", "visits", "views", "searches",
    "cart_adds", "favorites", "days_since_last_event", "email_reachable", "sms_reachable",
)  # fmt: skip
LEARNERS = ("two_model", "transformed_outcome")


# -- features ------------------------------------------------------------------------------------
def features(ws: Workspace, as_of: date) -> pd.DataFrame:
    """Per member (index ``customer_id``): the :data:`FEATURES` as of the end of ``as_of``,
    from the profile's own summaries (orders, discounts, behaviour, price position)."""
    from archer.customers import lifecycle as lc
    from archer.customers import preferences as pref

    rules = ws.settings.profile
    with ws.warehouse() as wh:
        s = Snapshot.at(wh, as_of, ws.tz)
        c = s.customers
        has = lambda col: col.notnull() & (col.strip() != "")  # noqa: E731
        m = c.select(
            "customer_id",
            tenure_days=s.local_days_before(c.registered_at),
            email_reachable=(has(c.email) & c.email_opt_in.fill_null(False)).cast("int64"),
            sms_reachable=(has(c.phone) & c.sms_opt_in.fill_null(False)).cast("int64"),
        )
        o = lc.order_summary(s)
        o = o.select(
            _oc="customer_id", paid_orders="paid_orders", purchase_days="purchase_days",
            net_spent="net_spent", largest_order="largest_order",
            total_refunded="total_refunded", discounted_orders="discounted_orders",
            days_since_last_purchase=s.days_before_as_of(o.last_purchase_day),
            days_since_first_purchase=s.days_before_as_of(o.first_purchase_day),
        )  # fmt: skip
        b = lc.behaviour_summary(s)
        b = b.select(
            _bc="customer_id", visits="visits", views="views", searches="searches",
            cart_adds="cart_adds", favorites="favorites",
            days_since_last_event=s.local_days_before(b.last_event_at),
        )  # fmt: skip
        p = pref.price_bands(s).select(_pc="customer_id", price_position="price_position")
        j = m.left_join(o, m.customer_id == o._oc).drop("_oc")
        j = j.left_join(b, j.customer_id == b._bc).drop("_bc")
        j = j.left_join(p, j.customer_id == p._pc).drop("_pc")
        df = j.execute()
    df = df.set_index("customer_id").astype("float64")  # money may come back as Decimal
    # The warehouse sums in parallel: the last bits of a sum vary from query to query, and a
    # tree's bins (cut between distinct values) with them. Rounded, the features are the same.
    df = df.round(6)
    for col in ("paid_orders", "purchase_days", "net_spent", "total_refunded", "visits",
                "views", "searches", "cart_adds", "favorites", "discounted_orders"):  # fmt: skip
        df[col] = df[col].fillna(0)
    paid = df.paid_orders.where(df.paid_orders > 0)
    df["avg_order"] = df.net_spent / paid
    df["discount_share"] = df.discounted_orders / paid
    df["discount_sensitive"] = (
        (df.paid_orders >= rules.discount_min_orders) & (df.discount_share > rules.discount_share)
    ).astype("int64")
    return df[list(FEATURES)].astype("float64")


# -- training data -------------------------------------------------------------------------------
@dataclass
class Training:
    """One row per customer of the campaign: features, arm, outcome, redeemed."""

    campaign: str
    features_as_of: date
    window: str
    rows: pd.DataFrame  # FEATURES + treated, y (gross profit), sales, buyer, redeemed; by id
    sampled_from: int  # runs before the cap
    coupon_template: str | None


def training(ws: Workspace, campaign: str, *, window: str | None = None) -> Training:
    """The campaign's runs with their arm and outcome (see the module), joined to features as
    of the day before its first enrolment."""
    out, meta = run_outcomes(ws, campaign, window=window)
    if meta["kind"] != "customer":
        raise Invalid(f"campaign {campaign!r} runs per unpaid order: targeting learns from a "
                      "campaign that sends to customers")  # fmt: skip
    if out.empty:
        raise Invalid(f"campaign {campaign!r} has enrolled nobody yet")
    out = out.sort_values(["entered_at", "run"]).drop_duplicates("customer_id")
    n_t, n_h = int((out.arm == "treatment").sum()), int((out.arm == "holdout").sum())
    if n_t < MIN_ARM or n_h < MIN_ARM:
        raise Invalid(f"campaign {campaign!r} has {n_t} treated and {n_h} holdout customers: "
                      f"uplift is learned from at least {MIN_ARM} in each arm (give the "
                      "campaign a holdout)")  # fmt: skip
    total = len(out)
    if total > MAX_TRAIN_ROWS:
        keep = _hash01("train", out.customer_id.astype(str)) < MAX_TRAIN_ROWS / total
        out = out[keep]
    first = pd.Timestamp(out.entered_at.min()).tz_localize("UTC").tz_convert(ws.tz)
    as_of = first.date() - timedelta(days=1)
    x = features(ws, as_of)
    rows = out.set_index("customer_id")[["arm", "gross_profit", "coupon_cost"]].join(x, how="left")
    rows[list(FEATURES)] = rows[list(FEATURES)].astype("float64")
    rows["treated"] = (rows.arm == "treatment").astype("int64")
    rows["y"] = rows.gross_profit.astype("float64")
    rows["redeemed"] = (rows.coupon_cost > 0).astype("int64")
    rows["buyer"] = out.set_index("customer_id").buyer.reindex(rows.index).astype("int64")
    steps = meta["definition"].get("steps", [])
    template = next((st.get("template") for st in steps if st.get("type") == "coupon"), None)
    rows["sales"] = out.set_index("customer_id").sales.reindex(rows.index).astype("float64")
    cols = [*FEATURES, "treated", "y", "sales", "buyer", "redeemed"]
    return Training(campaign, as_of, meta["window"], rows[cols], total, template)


# -- learners ------------------------------------------------------------------------------------
def _regressor():
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=60, learning_rate=0.05, max_depth=2, min_samples_leaf=200,
        l2_regularization=10.0, random_state=0,
    )  # fmt: skip


class TwoModel:
    """T-learner: the outcome modelled per arm; the uplift is the difference."""

    name = "two_model"

    def fit(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> TwoModel:
        self.treated = _regressor().fit(x[w == 1], y[w == 1])
        self.control = _regressor().fit(x[w == 0], y[w == 0])
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.treated.predict(x) - self.control.predict(x)


class TransformedOutcome:
    """One model of ``z = y (w − p) / (p (1 − p))``, p the treated share: E[z | x] is the
    uplift at x (Athey & Imbens 2015)."""

    name = "transformed_outcome"

    def fit(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> TransformedOutcome:
        p = float(w.mean())
        z = y * (w - p) / (p * (1 - p))
        self.model = _regressor().fit(x, z)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)


def learner(name: str) -> TwoModel | TransformedOutcome:
    return TwoModel() if name == "two_model" else TransformedOutcome()


# -- Qini and AUUC -------------------------------------------------------------------------------
def qini_curve(score, y, treated) -> tuple[np.ndarray, np.ndarray]:
    """(share targeted, incremental outcome Q) at every depth of the order by ``score`` (best
    first; ties in the order given), from 0: ``Q(k) = Yt(k) − Yc(k) · Nt(k) / Nc(k)``."""
    score, y = np.asarray(score, float), np.asarray(y, float)
    w = np.asarray(treated, bool)
    order = np.argsort(-score, kind="stable")
    y, w = y[order], w[order]
    nt, nc = np.cumsum(w), np.cumsum(~w)
    yt, yc = np.cumsum(np.where(w, y, 0.0)), np.cumsum(np.where(w, 0.0, y))
    q = yt - np.divide(yc * nt, nc, out=np.zeros_like(yc), where=nc > 0)
    x = np.arange(1, len(y) + 1) / max(len(y), 1)
    return np.concatenate([[0.0], x]), np.concatenate([[0.0], q])


def auuc(score, y, treated) -> float:
    """The area under the Qini curve over the share targeted (outcome units)."""
    x, q = qini_curve(score, y, treated)
    return float(np.trapezoid(q, x))


def qini(score, y, treated) -> float:
    """The Qini coefficient: AUUC less the random order's (the line from 0 to Q(N))."""
    x, q = qini_curve(score, y, treated)
    return float(np.trapezoid(q, x) - q[-1] / 2)


# -- the choice ----------------------------------------------------------------------------------
@dataclass
class Targeting:
    campaign: str
    budget: float
    coupon: str
    coupon_value: float
    features_as_of: str
    scored_as_of: str
    window: str
    runs: int  # customers learned from
    sampled_from: int
    held_out: int  # customers judged out of fold (all of them)
    learners: dict[str, dict[str, float]]
    learner: str
    scored: int  # buyers scored
    chosen: int
    expected_cost: float
    expected_incremental_profit: float
    audience: str  # the audience query of the chosen group
    saved_audience: str | None = None
    notes: list[str] = field(default_factory=list)
    among: str | None = None  # the audience (a name or a query) the candidates were drawn from
    among_members: int | None = None  # its size
    expected_incremental_buyers: float = 0.0
    expected_incremental_sales: float = 0.0
    compared: dict[str, dict[str, float]] = field(default_factory=dict)  # see :func:`compare`
    cutoffs: dict[str, Any] = field(default_factory=dict)  # see :func:`cutoffs`
    curve: dict[str, Any] = field(default_factory=dict)  # see :func:`curve`
    scores: pd.DataFrame | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("scores")
        return d


def target(ws: Workspace, campaign: str, budget: float, **options: Any) -> Targeting:
    """:func:`choose_by_uplift` with the trees fitted on one thread, so that their sums add
    up in one order: with the features rounded (:func:`features`), the same workspace gives
    the same choice every time — the CLI, REST and the page agree to the fen."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return choose_by_uplift(ws, campaign, budget, **options)


def choose_by_uplift(
    ws: Workspace,
    campaign: str,
    budget: float,
    *,
    coupon: str | None = None,
    window: str | None = None,
    save: bool = True,
    audience: str | None = None,
    among: str | None = None,
    user: str = "targeting",
) -> Targeting:
    """Learn from ``campaign`` (with a holdout) who a coupon persuades; choose whom a coupon
    of ``coupon`` (a template; by default the campaign's own) should go to within ``budget``
    yuan of expected promotion cost — among the members of ``among`` (a saved audience's name
    or an audience query) when given, else among every buyer; with ``save``, write
    ``uplift_scores`` — and with ``audience``, save an audience of that name,
    ``uplift_rank <= N``, the chosen group (it follows the last targeting: targeting again
    changes who is in it). The answer also holds what the same budget buys by RFM value tier
    and at random by the same model (:func:`compare`), the cut-offs (:func:`cutoffs`) and the
    expected uplift curve (:func:`curve`)."""
    if audience is not None:  # its name checked before any work
        from archer.store.audiences import check_name

        if not save:
            raise Invalid("an audience of the choice needs the scores saved")
        audience = check_name(audience)
    if not (budget > 0) or budget > MAX_BUDGET:
        raise Invalid(f"budget: a number of yuan above 0 and at most {MAX_BUDGET:,}, got {budget}")
    from archer.audiences.evaluate import profile_as_of

    if among is not None:
        among = among.strip()
        if not among or len(among) > MAX_AMONG:
            raise Invalid(f"audience: a saved audience's name or a query of 1 to {MAX_AMONG:,} "
                          f"characters, got {len(among):,}")  # fmt: skip
    tr = training(ws, campaign, window=window)
    name = coupon or tr.coupon_template
    if name is None:
        raise Invalid(f"campaign {campaign!r} gives no coupon: name one with --coupon")
    value = coupon_value(ws, name)
    rows = tr.rows
    x, w = rows[list(FEATURES)].to_numpy(), rows.treated.to_numpy()
    b, y = rows.buyer.to_numpy().astype(float), rows.y.to_numpy()
    fold = np.floor(_hash01("fold", rows.index.astype(str)) * FOLDS).astype(int)
    judged: dict[str, dict[str, float]] = {}

    def judge(s: np.ndarray) -> dict[str, float]:
        return {"qini": qini(s, b, w), "auuc": auuc(s, b, w),
                "qini_gross_profit": qini(s, y, w), "auuc_gross_profit": auuc(s, y, w)}  # fmt: skip

    for lname in LEARNERS:  # each customer scored by the model fitted on the other folds
        held = np.zeros(len(rows))
        for k in range(FOLDS):
            f = fold == k
            held[f] = learner(lname).fit(x[~f], b[~f], w[~f]).predict(x[f])
        judged[lname] = judge(held)
    judged["random"] = judge(_hash01("random-order", rows.index.astype(str)))
    best = max(LEARNERS, key=lambda k: judged[k]["qini"])
    model = Profit(learner(best).fit(x, b, w), _order_profit_model(rows), _redeem_model(rows),
                   _order_profit_model(rows, "sales"))  # fmt: skip
    with ws.warehouse() as wh:
        scored_as_of = profile_as_of(wh)
    members = None if among is None else among_ids(ws, among)
    cand = features(ws, scored_as_of)
    cand = cand[cand.purchase_days > 0]
    if members is not None:
        cand = cand[cand.index.isin(members)]
    notes = []
    if len(cand) > MAX_CANDIDATES:
        notes.append(f"scored the first {MAX_CANDIDATES:,} of {len(cand):,} buyers (by id)")
        cand = cand.sort_index().iloc[:MAX_CANDIDATES]
    scores = model.score(cand, value)
    picked = choose(scores.ratio, scores.expected_cost, budget, positive=scores.uplift > 0)
    scores["uplift_rank"] = pd.array([pd.NA] * len(scores), dtype="Int64")
    scores.loc[picked.index, "uplift_rank"] = np.arange(1, len(picked) + 1)
    n = len(picked)
    out = Targeting(
        campaign, float(budget), name, value, str(tr.features_as_of), str(scored_as_of),
        tr.window, len(rows), tr.sampled_from, len(rows),
        {k: {m: round(v, 4) for m, v in d.items()} for k, d in judged.items()}, best,
        len(scores), n, round(float(scores.expected_cost[picked.index].sum()), 2),
        round(float(scores.uplift[picked.index].sum()), 2), f"uplift_rank <= {n}",
        notes=notes, among=among, among_members=None if members is None else len(members),
        expected_incremental_buyers=round(float(scores.buy_uplift[picked.index].sum()), 2),
        expected_incremental_sales=round(float(scores.sales[picked.index].sum()), 2),
        scores=scores,
    )  # fmt: skip
    if members is not None and not len(cand):
        out.notes.append("nobody in the audience has bought yet: there is no one to score")
    rfm_key = _rfm_order(ws, scores.index)
    out.compared = compare(scores, picked, rfm_key, budget)
    out.cutoffs = cutoffs(scores, n)
    out.curve = curve(scores, rfm_key, n, peak=out.cutoffs["peak_customers"])
    if judged[best]["qini"] <= judged["random"]["qini"]:
        out.notes.append("the learner does no better than a random order on the held-out "
                         "customers: the campaign may be too small to learn from")  # fmt: skip
    if save:
        save_scores(ws, scores)
    if audience is not None:
        from archer.audiences.service import save as save_query

        save_query(
            ws,
            audience,
            out.audience,
            user=user,
            description=f"coupon {name} by uplift from {campaign}, budget {budget:g}",
        )
        out.saved_audience = audience
    return out


def coupon_value(ws: Workspace, template: str) -> float:
    """A coupon template's face value in yuan (what a redeemed coupon costs)."""
    from archer.store.offers import CouponTemplate

    with ws.session() as s:
        t = s.scalar(select(CouponTemplate).where(CouponTemplate.name == template))
    if t is None:
        raise NotFound(f"no coupon template named {template!r}")
    fen = t.amount_fen or t.max_saving_fen or 0
    if fen <= 0:
        raise Invalid(f"coupon template {template!r} has no face value (a rate coupon needs a "
                      "max saving) to cost a coupon by")  # fmt: skip
    return fen / 100


@dataclass
class Profit:
    """Expected incremental gross profit of a coupon: ``Δbuy(x) · GP(x) − value ·
    max(p(x) − Δbuy(x), 0)`` — the extra buyers it makes times the gross profit of a treated
    buyer's orders (after the coupon's discount), less the coupons redeemed by those who would
    have bought anyway (``p(x)`` the chance the coupon is redeemed): a subsidy, not an effect."""

    uplift: Any  # the learner of Δbuy
    order_profit: Any  # x → gross profit of a treated buyer in the window
    redeem: Any  # x → chance of redemption
    order_sales: Any = None  # x → sales (net of refunds) of a treated buyer in the window

    def score(self, cand: pd.DataFrame, value: float) -> pd.DataFrame:
        """Per candidate: the conversion uplift, the expected incremental gross profit
        (``uplift``), the chance of redemption, the expected cost, profit per yuan, and the
        expected incremental sales (``sales``: the extra buyers × a treated buyer's sales)."""
        x = cand[list(FEATURES)].to_numpy()
        if not len(x):
            return pd.DataFrame(columns=["buy_uplift", "uplift", "p_redeem", "expected_cost",
                                         "ratio", "sales"], index=cand.index,
                                dtype="float64")  # fmt: skip
        d = np.clip(self.uplift.predict(x), -1.0, 1.0)
        p = np.clip(self.redeem(x), MIN_REDEEM, 1.0)
        up = d * self.order_profit(x) - value * np.clip(p - np.clip(d, 0, None), 0, None)
        cost = value * p
        sales = d * self.order_sales(x) if self.order_sales is not None else np.zeros(len(x))
        return pd.DataFrame(
            {"buy_uplift": d, "uplift": up, "p_redeem": p, "expected_cost": cost,
             "ratio": up / cost, "sales": sales},
            index=cand.index,
        )  # fmt: skip


def _order_profit_model(rows: pd.DataFrame, outcome: str = "y"):
    """The gross profit (or, with ``outcome="sales"``, the sales) a treated buyer brings in the
    window, from the treated buyers (their mean when fewer than :data:`MIN_ARM`)."""
    t = rows[(rows.treated == 1) & (rows.buyer == 1)]
    if len(t) < MIN_ARM:
        mean = float(t[outcome].mean()) if len(t) else 0.0
        return lambda x: np.full(len(x), mean)
    m = _regressor().fit(t[list(FEATURES)].to_numpy(), t[outcome].to_numpy())
    return lambda x: np.clip(m.predict(x), 0, None)


def choose(order_key: pd.Series, cost: pd.Series, budget: float, *, positive=None) -> pd.Series:
    """The customers taken in descending ``order_key`` (ties by id) while the running cost
    stays within ``budget``; with ``positive``, only those marked. Returns their cost, in
    order."""
    keep = order_key.index if positive is None else order_key.index[np.asarray(positive, bool)]
    k = pd.DataFrame({"key": order_key[keep], "cost": cost[keep]})
    k = k.sort_index().sort_values("key", ascending=False, kind="stable")
    within = k.cost.cumsum() <= budget
    return k.cost[within]


MAX_AMONG = 20_000  # characters of the audience the candidates are drawn from
CURVE_POINTS = 60  # points of each policy's expected curve


def among_ids(ws: Workspace, among: str) -> set[str]:
    """The members of ``among``: a saved audience when one has that name, else an audience
    query (its mistakes are the language's, with their place)."""
    from archer.audiences import service as aud
    from archer.audiences.evaluate import members
    from archer.store.audiences import get as get_audience

    with ws.session() as s:
        saved = get_audience(s, among)
        query = saved.query if saved is not None else among
    got = members(ws, query, resolve=aud.resolver(ws))
    return set(got.customer_id.astype(str))


def _ordered(key: pd.Series) -> pd.Index:
    """The ids by descending ``key``, ties by id (the order :func:`choose` takes them in)."""
    return key.sort_index().sort_values(ascending=False, kind="stable").index


def _random_key(index: pd.Index) -> pd.Series:
    return pd.Series(_hash01("random-policy", index.astype(str)), index=index)


def compare(
    scores: pd.DataFrame, picked: pd.Series, rfm_key: pd.Series, budget: float
) -> dict[str, dict[str, float]]:
    """What the same budget buys, by the model's expectation, when the coupon goes by uplift
    (``picked``), by RFM value tier (top first) and at random (a hashed order): per policy the
    customers, expected cost, incremental buyers, sales and gross profit. The model judges all
    three, so they differ only by whom they choose (the simulator measures them against the
    truth: :func:`evaluate_on_simulator`)."""
    cost = scores.expected_cost
    chosen = {
        "uplift": picked,
        "rfm": choose(rfm_key, cost, budget),
        "random": choose(_random_key(scores.index), cost, budget),
    }
    return {
        k: {
            "customers": len(p),
            "expected_cost": round(float(p.sum()), 2),
            "expected_incremental_buyers": round(float(scores.buy_uplift[p.index].sum()), 2),
            "expected_incremental_sales": round(float(scores.sales[p.index].sum()), 2),
            "expected_incremental_profit": round(float(scores.uplift[p.index].sum()), 2),
        }
        for k, p in chosen.items()
    }


def cutoffs(scores: pd.DataFrame, chosen: int) -> dict[str, Any]:
    """Where the choice stops: the last chosen customer's expected profit per yuan and
    incremental profit, the first left out's profit per yuan, and the audience size (and its
    expected cost) at which the expected incremental profit of the uplift order peaks — past
    it, a bigger budget loses money."""
    order = _ordered(scores.ratio)
    s = scores.loc[order]
    cum = s.uplift.cumsum().to_numpy()
    peak = int(np.argmax(cum)) + 1 if len(cum) and cum.max() > 0 else 0
    last = s.iloc[chosen - 1] if chosen else None
    after = s.iloc[chosen] if chosen < len(s) else None
    r4 = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
    return {
        "rank": chosen,
        "last_profit_per_yuan": r4(None if last is None else last.ratio),
        "last_expected_incremental_profit": r4(None if last is None else last.uplift),
        "next_profit_per_yuan": r4(None if after is None else after.ratio),
        "peak_customers": peak,
        "peak_expected_cost": round(float(s.expected_cost.iloc[:peak].sum()), 2),
        "peak_expected_incremental_profit": round(float(cum[peak - 1]) if peak else 0.0, 2),
    }


def curve(
    scores: pd.DataFrame, rfm_key: pd.Series, chosen: int, *, peak: int = 0
) -> dict[str, Any]:
    """The expected incremental gross profit (by the model) of giving the coupon to the first
    k customers of each order — uplift, RFM, random — at up to :data:`CURVE_POINTS` sizes k
    from 0 to every scored customer, and at the chosen size and the uplift order's ``peak``."""
    n = len(scores)
    even = np.linspace(0, n, CURVE_POINTS).round().astype(int).tolist()
    sizes = sorted({0, n, chosen, peak, *even})
    keys = {"uplift": scores.ratio, "rfm": rfm_key, "random": _random_key(scores.index)}
    out: dict[str, Any] = {"sizes": sizes, "chosen": chosen, "peak": peak}
    for name, key in keys.items():
        cum = np.concatenate([[0.0], scores.uplift.loc[_ordered(key)].cumsum().to_numpy()])
        out[name] = [round(float(cum[k]), 2) for k in sizes]
    return out


def _redeem_model(rows: pd.DataFrame):
    """The chance a treated customer redeems the coupon, from the treated runs (a constant when
    every or no treated customer redeemed)."""
    t = rows[rows.treated == 1]
    r = t.redeemed.to_numpy()
    if r.sum() == 0:
        raise Invalid("no treated customer redeemed the campaign's coupon: the cost of a coupon "
                      "cannot be learned from it")  # fmt: skip
    if r.min() == r.max():
        return lambda x: np.full(len(x), float(r[0]))
    from sklearn.ensemble import HistGradientBoostingClassifier

    m = HistGradientBoostingClassifier(max_iter=80, learning_rate=0.05, max_depth=3,
                                       min_samples_leaf=40, random_state=0)  # fmt: skip
    m.fit(t[list(FEATURES)].to_numpy(), r)
    return lambda x: m.predict_proba(x)[:, 1]


def save_scores(ws: Workspace, scores: pd.DataFrame) -> None:
    """Write the choice as ``uplift_scores``: customer_id, uplift, p_redeem, expected_cost,
    expected_incremental_profit, uplift_rank (empty for those not chosen)."""
    df = pd.DataFrame({
        "customer_id": scores.index.astype(str),
        "uplift": scores.uplift.round(4).to_numpy(),
        "p_redeem": scores.p_redeem.round(4).to_numpy(),
        "expected_cost": scores.expected_cost.round(4).to_numpy(),
        "expected_incremental_profit": scores.uplift.round(4).to_numpy(),
        "uplift_rank": scores.uplift_rank.astype("Int64").to_numpy(),
    })  # fmt: skip
    with ws.warehouse() as wh:
        wh.save(UPLIFT_SCORES, ibis.memtable(df))


def _hash01(what: str, keys) -> np.ndarray:
    """A uniform number in [0, 1) per key, from sha256(what, key): the same on every run."""
    out = np.empty(len(keys))
    for i, k in enumerate(keys):
        h = hashlib.sha256(f"archer-targeting:{what}:{k}".encode()).digest()
        out[i] = int.from_bytes(h[:7], "big") / 2**56
    return out


# -- measured on the simulated shop --------------------------------------------------------------
@dataclass
class Policy:
    name: str
    customers: int
    expected_cost: float  # the budget charged (the learned cost, the same for every policy)
    true_cost: float  # the coupons' value the simulator says would be redeemed
    true_incremental_profit: float  # gross profit, by the simulator's truth

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def evaluate_on_simulator(
    ws: Workspace,
    t: Targeting,
    *,
    sample_dir: Path | None = None,
    channel: str = "inbox",
    at: datetime | None = None,
) -> dict[str, Policy]:
    """Each policy at the budget of ``t`` (see :func:`simulator_truth`)."""
    truth = simulator_truth(ws, t, sample_dir=sample_dir, channel=channel, at=at)
    return policies(t, truth)


def simulator_truth(
    ws: Workspace,
    t: Targeting,
    *,
    sample_dir: Path | None = None,
    channel: str = "inbox",
    at: datetime | None = None,
) -> pd.DataFrame:
    """Per scored customer, the true expected incremental gross ``profit`` and ``cost`` of
    the coupon, and the RFM policy's sort key, by the simulator's truth for a coupon sent at
    ``at`` (shop-local; default 10:00 the day after the scores' as-of day).

    Per candidate, with the simulator's own functions: θ (:func:`~archer.sample.simulate.
    response_thetas` with a coupon, on ``channel``), whether the member buys anyway within the
    response window (the simulator's baseline draws), and the order a persuaded member places
    with the coupon (``_new_order``, its refund taken at the category's rate). The true expected
    incremental gross profit is ``(1 − anyway) · θ · GP(order with coupon) + anyway ·
    sensitive · P(uses it anyway) · (GP with − GP without the coupon)`` — the second term the
    subsidy of a coupon given to one who buys anyway. Policies: **uplift** (the learned
    ranking), **rfm** (value tier, top first, then RFM score, then net spent), **random** (a
    hashed order) and **oracle** (the true profit per yuan of learned cost, positive only);
    each takes customers in its order until the learned expected cost reaches the budget."""
    from archer.sample import simulate as sim

    sample_dir = Path(sample_dir or ws.home / "sample")
    truth, meta = sim.read_truth(sample_dir)
    seed = int(meta["seed"])
    scores = t.scores
    if scores is None or scores.empty:
        raise Invalid("no scores to evaluate")
    day = date.fromisoformat(t.scored_as_of) + timedelta(days=1)
    at = at or datetime.combine(day, time(10))
    start = datetime.combine(date.fromisoformat(meta["end"]) + timedelta(days=1), time(0))
    if at < start:
        raise Invalid(f"the send {at} is before the simulated period starts ({start})")
    window = timedelta(days=sim.WINDOW_DAYS)
    ids = scores.index.astype(str)
    tr = truth.reindex(ids)
    known = tr.customer_id.notna().to_numpy()
    base = sim.baseline(truth, start, at + window, seed)
    inside = base[(base["at"] >= at) & (base["at"] < at + window)]
    anyway = np.isin(ids, inside.customer_id.unique())
    moment = pd.Series([at] * len(ids), index=tr.index)
    theta = sim.response_thetas(
        tr.fillna({"engagement": 0, "discount_sensitive": False, "n_purchases": 0}),
        pd.Series([channel] * len(ids), index=tr.index),
        pd.Series(True, index=tr.index),
        sim._alive_at(tr, moment),
    )
    sensitive = tr.discount_sensitive.fillna(False).astype(bool).to_numpy()
    shop = sim.Shop.read(ws, sample_dir, meta.get("format", "csv"))
    tmpl = _template_row(ws, t.coupon)
    far = at + timedelta(days=3650)
    cats = dict(zip(shop.products.product_id, shop.products.category, strict=True))
    profit, cost = np.zeros(len(ids)), np.zeros(len(ids))
    for i, cid in enumerate(ids):
        if not known[i]:
            continue
        traits = truth.loc[cid]
        if not anyway[i]:
            gp, disc = _order_gp(sim, shop, cats, traits, cid, at, seed, far, tmpl)
            profit[i], cost[i] = theta[i] * gp, theta[i] * disc
        elif sensitive[i]:
            gp_with, disc = _order_gp(sim, shop, cats, traits, cid, at, seed, far, tmpl)
            gp_without, _ = _order_gp(sim, shop, cats, traits, cid, at, seed, far, None)
            profit[i] = sim.COUPON_USE_ANYWAY * (gp_with - gp_without)
            cost[i] = sim.COUPON_USE_ANYWAY * disc
    true = pd.DataFrame({"profit": profit, "cost": cost}, index=scores.index)
    true["rfm_key"] = _rfm_order(ws, scores.index)
    return true


def policies(t: Targeting, truth: pd.DataFrame, budget: float | None = None) -> dict[str, Policy]:
    """Each policy at ``budget`` (default: the targeting's), measured with ``truth`` (from
    :func:`simulator_truth`)."""
    scores, budget = t.scores, t.budget if budget is None else budget
    cost = scores.expected_cost
    rnd = _random_key(scores.index)
    orders = {
        "uplift": choose(scores.ratio, cost, budget, positive=scores.uplift > 0),
        "rfm": choose(truth.rfm_key, cost, budget),
        "random": choose(rnd, cost, budget),
        "oracle": choose(truth.profit / cost, cost, budget, positive=truth.profit > 0),
    }
    return {
        name: Policy(name, len(p), float(p.sum()), float(truth.cost[p.index].sum()),
                     float(truth.profit[p.index].sum()))
        for name, p in orders.items()
    }  # fmt: skip


def _template_row(ws: Workspace, name: str) -> tuple[str, int, int]:
    from archer.store.offers import CouponTemplate

    with ws.session() as s:
        t = s.scalar(select(CouponTemplate).where(CouponTemplate.name == name))
    return ("TARGETED", int(t.amount_fen or t.max_saving_fen or 0), int(t.threshold_fen or 0))


def _order_gp(sim, shop, categories, traits, cid, at, seed, far, coupon) -> tuple[float, float]:
    """The expected gross profit and discount of the order the simulator would write for
    ``cid`` at ``at`` (with ``coupon`` when given): net of the category's refund rate."""
    orders, items = [], []
    sim._new_order(f"T{cid}", cid, at, traits, shop, orders, items, [], [], seed, end=far,
                   coupon=coupon)  # fmt: skip
    o, it = orders[0], items[0]
    kept = 1 - sim._refund_rate(str(categories.get(it["product_id"], "")))
    gp = kept * (float(o["paid_amount"]) - it["quantity"] * float(it["unit_cost"]))
    return gp, kept * float(o["discount_amount"])


def _rfm_order(ws: Workspace, ids: pd.Index) -> pd.Series:
    """A key that sorts by value tier (top first), then RFM score, then net spent."""
    from archer.customers.rfm import VALUE_TIERS
    from archer.schema import PROFILE

    tiers = {t: i for i, t in enumerate(reversed(list(dict.fromkeys(VALUE_TIERS.values()))))}
    with ws.warehouse() as wh:
        p = wh.table(PROFILE).select("customer_id", "value_tier", "rfm_score", "net_spent")
        df = p.execute().set_index("customer_id").reindex(ids)
    tier = df.value_tier.map(tiers).fillna(-1).to_numpy(float)
    return pd.Series(
        tier * 1e12 + df.rfm_score.fillna(0).to_numpy(float) * 1e8
        + df.net_spent.fillna(0).clip(0, 9e7).to_numpy(float),
        index=ids,
    )  # fmt: skip


__all__ = [
    "FEATURES", "UPLIFT_SCORES", "Policy", "Targeting", "Training", "TransformedOutcome",
    "TwoModel", "among_ids", "auuc", "choose", "choose_by_uplift", "compare", "curve", "cutoffs",
    "evaluate_on_simulator", "features", "policies", "qini", "qini_curve", "simulator_truth",
    "target", "training",
]  # fmt: skip
