"""Purchases, orders, order lines and refunds of the synthetic shop (see ``sample.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archer.sample import data as sd
from archer.sample.calendar import RULE_KEYS, Calendar
from archer.sample.population import Customers, Products

# Order kinds: a purchase of the BG/NBD timeline, an unpaid order left before one, an unpaid
# order of a member who never buys, and a guest's order.
PURCHASE, UNPAID_BEFORE, UNPAID_ONLY, GUEST = 0, 1, 2, 3
CREATED, PAID, SHIPPED, COMPLETED, CANCELLED, REFUNDED = range(6)
AUTO_CLOSE_DAYS = 60.0
MINUTE = 1 / 1440


@dataclass
class Timeline:
    """Each buyer's purchase times and dropout (the BG/NBD truth)."""

    cust: np.ndarray  # customer index of each purchase
    t: np.ndarray
    first: np.ndarray  # per customer: first purchase time, nan if none in the period
    n_purchases: np.ndarray
    churned: np.ndarray
    churned_at: np.ndarray


@dataclass
class Orders:
    """Orders, their lines and refunds, sorted by time; money in cents."""

    cust: np.ndarray
    created: np.ndarray
    paid: np.ndarray
    cancelled: np.ndarray
    status: np.ndarray
    goods: np.ndarray
    discount: np.ndarray
    shipping: np.ndarray
    coupon: np.ndarray
    channel: np.ndarray
    place: np.ndarray
    kind: np.ndarray
    item_order: np.ndarray
    item_line: np.ndarray
    item_product: np.ndarray
    item_qty: np.ndarray
    item_price: np.ndarray
    item_cost: np.ndarray
    refund_order: np.ndarray
    refund_t: np.ndarray
    refund_amount: np.ndarray
    refund_reason: np.ndarray
    coupons: list[str]

    @property
    def n(self) -> int:
        return len(self.cust)

    @property
    def is_paid(self) -> np.ndarray:
        return ~np.isnan(self.paid)


def _group_rank(owner: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal (sorted) owners."""
    idx = np.arange(len(owner))
    start = np.searchsorted(owner, owner, side="left")
    return idx - start


def timeline(rng: np.random.Generator, cal: Calendar, cust: Customers) -> Timeline:
    """First purchase after registration, then Poisson(λ) repeats until a Beta(a, b) dropout."""
    n = cust.n
    # Many buy in the session they sign up in; festival buyers wait for the next festival.
    soon = (rng.random(n) < 0.4) & ~cust.festival
    delay = np.where(soon, rng.exponential(0.03, n), rng.lognormal(np.log(8.0), 1.3, n))
    first = cal.warp(cust.festival, cust.reg + MINUTE, delay)
    buyer = cust.converts & np.isfinite(first)
    b = np.flatnonzero(buyer)
    t0, fest = first[b], cust.festival[b]
    end = np.full(len(b), float(cal.days))
    m = rng.poisson(cust.lam[b] * (end - t0))
    k = rng.geometric(cust.pdrop[b])  # repeat purchases made before dropping out
    owner = np.repeat(np.arange(len(b)), m)
    u = np.sort(owner + rng.random(len(owner))) - owner
    keep = _group_rank(owner) < k[owner]
    owner, u = owner[keep], u[keep]
    t_rep = cal.between(fest[owner], t0[owner], end[owner], u)
    n_rep = np.bincount(owner, minlength=len(b))
    churned_b = k <= m
    last = t0.copy()
    if len(owner):
        ends = np.cumsum(n_rep) - 1
        has = n_rep > 0
        last[has] = t_rep[ends[has]]
    firsts = np.full(n, np.nan)
    firsts[b] = t0
    n_purchases = np.zeros(n, np.int64)
    n_purchases[b] = 1 + n_rep
    churned = np.zeros(n, bool)
    churned[b] = churned_b
    churned_at = np.full(n, np.nan)
    churned_at[b[churned_b]] = last[churned_b]
    p_cust = np.concatenate([b, b[owner]])
    p_t = np.concatenate([t0, t_rep])
    return Timeline(p_cust, p_t, firsts, n_purchases, churned, churned_at)


def category_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Affinity partners per category and gift categories per festival rule (-1 padded).

    The gift table has one extra empty row, so a rule index of -1 finds no gift.
    """
    aff = np.full((len(sd.CATEGORIES), 3), -1)
    for i, key in enumerate(sd.CATEGORY_KEYS):
        for j, other in enumerate(sd.AFFINITY[key]):
            aff[i, j] = sd.CATEGORY_KEYS.index(other)
    gifts = np.full((len(RULE_KEYS) + 1, 4), -1)
    for i, key in enumerate(RULE_KEYS):
        for j, other in enumerate(sd.FESTIVAL_GIFTS.get(key, ())):
            gifts[i, j] = sd.CATEGORY_KEYS.index(other)
    return aff, (aff >= 0).sum(1), gifts, (gifts >= 0).sum(1)


def _lines(
    rng: np.random.Generator,
    cal: Calendar,
    cust: Customers,
    prods: Products,
    o_cust: np.ndarray,
    o_created: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Order lines: categories by preference/affinity/festival gifts, products and quantities
    filling the order value drawn from Gamma-Gamma (goods amount = that value)."""
    ncat = len(sd.CATEGORIES)
    guest = o_cust < 0
    c = np.where(guest, 0, o_cust)
    pop = np.array([x.popularity for x in sd.CATEGORIES])
    pop /= pop.sum()
    mean_spend = np.where(guest, np.median(cust.mean_spend), cust.mean_spend[c])
    p_gg = sd.GAMMA_GAMMA["p"]
    z = rng.gamma(p_gg, 1.0, len(c)) * mean_spend / p_gg * 100  # cents
    basket = np.where(guest, 1.5, cust.basket[c])
    n_lines = 1 + np.minimum(rng.poisson(basket - 1.0), 4)
    lo = np.repeat(np.arange(len(c)), n_lines)
    pos = _group_rank(lo)
    nl = len(lo)
    pref = cust.pref[c][lo]
    u = rng.random(nl)
    pop_cat = rng.choice(ncat, nl, p=pop)
    aff, n_aff, gifts, n_gifts = category_tables()
    aff_cat = aff[pref, (rng.random(nl) * n_aff[pref]).astype(np.int64)]
    cat = np.where(pos == 0, np.where(u < 0.85, pref, pop_cat),
                   np.where(u < 0.5, pref, np.where(u < 0.8, aff_cat, pop_cat)))  # fmt: skip
    cat = np.where(guest[lo], pop_cat, cat)
    rule = cal.rule_of(o_created)[lo]  # -1 picks the empty last row
    gift = gifts[rule, (rng.random(nl) * np.maximum(n_gifts[rule], 1)).astype(np.int64)]
    cat = np.where((gift >= 0) & (rng.random(nl) < 0.3), gift, cat)
    # The basket fills the order's value: each line gets an equal share of it and takes the
    # product of its category whose price (after any promotion cut) fits that share best.
    max_q = np.array([x.max_quantity for x in sd.CATEGORIES])
    want_q = np.minimum(1 + rng.poisson(0.3, nl), max_q[cat])
    big = np.isin(rule, [RULE_KEYS.index(k) for k in sd.BIG_SALES])
    p_promo = np.where(big, 0.45, np.where(rule >= 0, 0.25, 0.1))
    cut = np.where(rng.random(nl) < p_promo, rng.uniform(0.7, 0.95, nl), 1.0)
    share = z[lo] / n_lines[lo]
    product = prods.nearest(rng, cat, share / (want_q * cut))
    # One line per product in an order (lines that chose the same product pool their shares).
    _, first_idx, same = np.unique(
        lo.astype(np.int64) * prods.n + product, return_index=True, return_inverse=True
    )
    pooled = np.bincount(same, weights=share)[np.argsort(first_idx)]
    keep = np.sort(first_idx)
    lo, product, cut, share = lo[keep], product[keep], cut[keep], pooled
    pos = _group_rank(lo)
    price = prods.price[product] * cut
    # Big budgets in cheap categories stock up beyond the usual quantity.
    qty = np.clip(np.round(share / price), 1, 3 * max_q[prods.category[product]]).astype(np.int64)
    # What is left between the basket and the order's value is a small price change of its
    # lines (the same factor for all), so the goods amount is the drawn value to the cent.
    nominal = np.bincount(lo, weights=qty * price, minlength=len(c))
    unit = np.maximum(np.round(price * (z / nominal)[lo]).astype(np.int64), 1)
    return lo, pos + 1, product, qty, unit, prods.cost[product]


def _coupons(
    rng: np.random.Generator,
    cal: Calendar,
    o_cust: np.ndarray,
    o_created: np.ndarray,
    goods: np.ndarray,
    first_order: np.ndarray,
    cust: Customers,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Coupon discount (cents) and code index: festival codes, SAVE codes, NEW10."""
    guest = o_cust < 0
    c = np.where(guest, 0, o_cust)
    rule = cal.rule_of(o_created)
    p = np.where(cust.discount[c], 0.75, 0.08) * np.where(rule >= 0, 1.4, 1.0)
    p = np.where(guest, 0.03, np.minimum(p, 0.95))
    prefixes = [sd.FESTIVAL_CODES[k] for k in RULE_KEYS] + ["SAVE"]
    codes = [f"{pre}-{v}" if pre != "SAVE" else f"SAVE{v}" for pre in prefixes
             for v in sd.COUPON_VALUES] + ["NEW10"]  # fmt: skip
    level = np.searchsorted(sd.COUPON_THRESHOLDS, goods, side="right") - 1
    use = (rng.random(len(goods)) < p) & (level >= 0)
    pre = np.where(rule >= 0, rule, len(RULE_KEYS))
    code = np.where(use, pre * len(sd.COUPON_VALUES) + np.maximum(level, 0), -1)
    value = np.where(use, np.array(sd.COUPON_VALUES)[np.maximum(level, 0)] * 100, 0)
    new = first_order & (goods >= 5900) & (rng.random(len(goods)) < 0.35) & ~use
    code = np.where(new, len(codes) - 1, code)
    value = np.where(new, 1000, value)
    big = np.isin(rule, [RULE_KEYS.index(k) for k in sd.BIG_SALES])
    promo = np.where(big & (rng.random(len(goods)) < 0.85), goods // 30000 * 3000, 0)
    return np.minimum(value + promo, goods // 2), code.astype(np.int16), codes


def make_orders(
    rng: np.random.Generator,
    cal: Calendar,
    cust: Customers,
    prods: Products,
    tl: Timeline,
    n_places: int,
    place_p: np.ndarray,
) -> Orders:
    """All orders with lines, payments, cancellations, shipping states and refunds."""
    end = float(cal.days)
    n_p = len(tl.t)
    # Unpaid orders left shortly before a purchase, and by members who never buy.
    pre = np.flatnonzero(rng.random(n_p) < 0.07)
    pc, pt = tl.cust[pre], tl.t[pre]
    reg = cust.reg[pc]
    pre_t = np.maximum(pt - rng.uniform(0.005, 2.0, len(pre)), reg + (pt - reg) * 0.5)
    never = np.flatnonzero(np.isnan(tl.first) & (rng.random(cust.n) < 0.12))
    never_t = cust.reg[never] + rng.lognormal(np.log(2.0), 1.2, len(never))
    never = never[never_t < end]
    never_t = never_t[never_t < end]
    n_guest = int(round(0.03 * n_p))
    guest_t = cal.sample("regular", rng.random(n_guest))
    o_cust = np.concatenate([tl.cust, pc, never, np.full(n_guest, -1)]).astype(np.int64)
    created = np.concatenate([tl.t, pre_t, never_t, guest_t])
    kind = np.repeat([PURCHASE, UNPAID_BEFORE, UNPAID_ONLY, GUEST],
                     [n_p, len(pre), len(never), n_guest]).astype(np.int8)  # fmt: skip
    created = np.minimum(created, end - 1 / 86400)
    n = len(created)
    first_order = np.zeros(n, bool)
    first_order[:n_p] = tl.t == tl.first[tl.cust]

    lo, line, product, qty, unit, cost = _lines(rng, cal, cust, prods, o_cust, created)
    goods = np.bincount(lo, weights=qty * unit, minlength=n).astype(np.int64)
    discount, coupon, codes = _coupons(rng, cal, o_cust, created, goods, first_order, cust)
    guest = o_cust < 0
    c = np.where(guest, 0, o_cust)
    moved = guest | (rng.random(n) < 0.07)
    place = np.where(moved, rng.choice(n_places, n, p=place_p), cust.place[c])
    remote = np.where(guest, False, cust.remote[c])
    net = goods - discount
    shipping = np.where(net >= 9900, 0, np.where(remote, 1500, 800))
    main = np.where(guest, 1 + (rng.random(n) < 0.5), cust.order_channel[c])
    channel = np.where(rng.random(n) < 0.85, main, rng.integers(0, 3, n)).astype(np.int8)

    # Payment: most within minutes, some hours or days late; unpaid kinds never pay.
    u = rng.random(n)
    delay = np.where(u < 0.85, 20 / 86400 + rng.exponential(2 * MINUTE, n),
                     np.where(u < 0.95, 30 * MINUTE + rng.exponential(0.2, n),
                              rng.uniform(1.0, 7.0, n)))  # fmt: skip
    paid = created + delay
    payable = (kind == PURCHASE) | (kind == GUEST)
    paid = np.where(payable & (paid < end), paid, np.nan)
    is_paid = ~np.isnan(paid)
    # Unpaid orders: the member cancels (within a day or two; before re-ordering when a
    # purchase follows) or the shop closes the order after AUTO_CLOSE_DAYS.
    gap = np.where(kind == UNPAID_BEFORE, 0.0, 2.0)
    gap[n_p : n_p + len(pre)] = pt - pre_t
    user = rng.random(n) < np.where(kind == UNPAID_BEFORE, 0.7, 0.4)
    cancel_at = np.where(user, created + gap * rng.uniform(0.05, 0.9, n),
                         created + AUTO_CLOSE_DAYS)  # fmt: skip
    cancelled = np.where(~payable & (cancel_at < end), cancel_at, np.nan)
    ship = cal.after_closure(paid + rng.uniform(0.2, 2.5, n))  # no parcels over the holiday
    done = ship + rng.uniform(3.0, 12.0, n)
    status = np.full(n, CREATED, np.int8)
    status[is_paid] = PAID
    status[is_paid & (ship <= end)] = SHIPPED
    status[is_paid & (done <= end)] = COMPLETED
    status[~np.isnan(cancelled)] = CANCELLED

    # Refunds: by the first line's category; some before shipping (always full).
    first_line = np.searchsorted(lo, np.arange(n))
    first_cat = prods.category[product[np.minimum(first_line, len(lo) - 1)]]
    rate = np.array([x.refund_rate for x in sd.CATEGORIES])[first_cat]
    r_idx = np.flatnonzero(is_paid & (rng.random(n) < rate))
    m = len(r_idx)
    early = rng.random(m) < 0.2
    r_t = np.where(
        early,
        paid[r_idx] + (ship[r_idx] - paid[r_idx]) * rng.uniform(0.05, 0.9, m),
        ship[r_idx] + rng.uniform(2.0, 15.0, m),
    )
    ok = r_t < end
    r_idx, r_t, early = r_idx[ok], r_t[ok], early[ok]
    m = len(r_idx)
    paid_amount = net + shipping
    full = early | (rng.random(m) < 0.55)
    fl = np.minimum(first_line[r_idx], len(lo) - 1)
    part = np.round(qty[fl] * unit[fl] * rng.uniform(0.2, 1.0, m)).astype(np.int64)
    part = np.clip(part, 1, np.maximum(paid_amount[r_idx] - 1, 1))
    amount = np.where(full, paid_amount[r_idx], part)
    n_r = len(sd.REFUND_REASONS)
    reason = np.where(full, rng.choice(n_r, m, p=sd.FULL_REASON_SHARE),
                      rng.choice(n_r, m, p=sd.PARTIAL_REASON_SHARE))  # fmt: skip
    apparel = first_cat[r_idx] == sd.CATEGORY_KEYS.index("apparel")
    reason = np.where(apparel & (rng.random(m) < 0.45), 1, reason)
    reason = np.where(early, 3, reason)  # cancelled before shipping: changed mind
    status[r_idx[full]] = REFUNDED

    # Number orders by creation time, refunds by refund time.
    perm = np.argsort(created, kind="stable")
    rank = np.empty(n, np.int64)
    rank[perm] = np.arange(n)
    i_order = np.lexsort((line, rank[lo]))
    r_perm = np.argsort(r_t, kind="stable")
    return Orders(
        cust=o_cust[perm], created=created[perm], paid=paid[perm], cancelled=cancelled[perm],
        status=status[perm], goods=goods[perm], discount=discount[perm],
        shipping=shipping[perm], coupon=coupon[perm], channel=channel[perm],
        place=place[perm], kind=kind[perm],
        item_order=rank[lo][i_order], item_line=line[i_order], item_product=product[i_order],
        item_qty=qty[i_order], item_price=unit[i_order], item_cost=cost[i_order],
        refund_order=rank[r_idx][r_perm], refund_t=r_t[r_perm], refund_amount=amount[r_perm],
        refund_reason=reason[r_perm], coupons=codes,
    )  # fmt: skip
