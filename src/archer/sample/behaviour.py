"""Behaviour on the synthetic shop's site: sessions of visits, searches, views, favourites,
carts, coupon claims and checkouts, built around each member's registration and orders.

A session is a visit (with its UTM source) followed by product interactions (search → view
→ favourite → cart add → cart remove, each step optional); order sessions end with the
ordered lines put in the cart and a checkout. Events are returned as compact arrays.
"""

from __future__ import annotations

import json

import numpy as np

from archer.sample import data as sd
from archer.sample.calendar import RULE_KEYS, Calendar
from archer.sample.orders import Orders, Timeline, category_tables
from archer.sample.population import Customers, Products
from archer.schema import EVENT_TYPES

T = {name: i for i, name in enumerate(EVENT_TYPES)}
S_REGISTER, S_ANON_PRE, S_ANON, S_BROWSE, S_ORDER = range(5)
STEPS = (T["search"], T["view"], T["favorite"], T["cart_add"], T["cart_remove"])
R_REGISTER, R_FREE, R_LINES, R_COUPON, R_CHECKOUT = 2, 10, 400, 480, 490
SECOND = 1 / 86400
MAX_FREE = 40
VISITOR_SHARE = 0.35  # anonymous visitors who never register, per member
FIXED_CAMPAIGNS = ("always_on", "weekly_picks", "group_buy_day", "live_weekly")
DEVICES = ("ios", "android", "wechat", "pc", "h5")


def _dump(d: dict[str, object]) -> str:
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False)


class EventMaker:
    """Makes the events of a range of members and anonymous visitors at a time."""

    def __init__(
        self,
        rng: np.random.Generator,
        cal: Calendar,
        cust: Customers,
        prods: Products,
        orders: Orders,
        tl: Timeline,
    ) -> None:
        self.rng, self.cal, self.cust, self.prods, self.orders, self.tl = (
            rng,
            cal,
            cust,
            prods,
            orders,
            tl,
        )
        n = cust.n
        self.visitors = int(round(VISITOR_SHARE * n))
        has = np.flatnonzero(cust.anon >= 0)
        numbers = rng.permutation(len(has) + self.visitors) + 1
        cust.anon[has] = numbers[: len(has)]
        self.visitor_anon = numbers[len(has) :]
        self.n_anon = len(numbers)
        with_cust = np.flatnonzero(orders.cust >= 0)
        self.by_cust = with_cust[np.argsort(orders.cust[with_cust], kind="stable")]
        self.cust_off = np.searchsorted(orders.cust[self.by_cust], np.arange(n + 1))
        self.item_off = np.searchsorted(orders.item_order, np.arange(orders.n + 1))
        self.aff, self.n_aff, self.gifts, self.n_gifts = category_tables()
        self.pop = np.array([c.popularity for c in sd.CATEGORIES])
        self.pop /= self.pop.sum()
        self._vocab()

    def _vocab(self) -> None:
        """Dictionaries for queries, UTM pairs, campaigns and properties."""
        words: list[str] = []
        self.cw_off, self.cw_n = [], []
        for c in sd.CATEGORIES:
            self.cw_off.append(len(words))
            self.cw_n.append(len(c.words))
            words += c.words
        self.brand_off = len(words)
        words += self.prods.brands
        self.noun_off = len(words)
        words += self.prods.nouns
        self.hw_off, self.hw_n = [], []
        from archer.festivals import RULES_BY_KEY

        for key in RULE_KEYS:
            self.hw_off.append(len(words))
            self.hw_n.append(len(RULES_BY_KEY[key].hot_words))
            words += RULES_BY_KEY[key].hot_words
        self.cw_off, self.cw_n = np.array(self.cw_off), np.array(self.cw_n)
        self.hw_off, self.hw_n = np.array(self.hw_off + [0]), np.array(self.hw_n + [0])
        self.queries = words
        pairs = sorted({p for v in sd.CHANNEL_UTM.values() for p in v}
                       | {(s, m) for s, m, _ in sd.VISIT_UTM if s})  # fmt: skip
        self.pairs = pairs
        self.sources = sorted({s for s, _ in pairs})
        self.mediums = sorted({m for _, m in pairs})
        self.pair_source = np.array([self.sources.index(s) for s, _ in pairs])
        self.pair_medium = np.array([self.mediums.index(m) for _, m in pairs])
        self.ch_pairs = np.full((len(sd.CHANNELS), 3), -1)
        for i, ch in enumerate(sd.CHANNELS):
            for j, p in enumerate(sd.CHANNEL_UTM[ch]):
                self.ch_pairs[i, j] = pairs.index(p)
        self.ch_n = (self.ch_pairs >= 0).sum(1)
        self.visit_pairs = np.array([pairs.index((s, m)) if s else -1 for s, m, _ in sd.VISIT_UTM])
        w = np.array([x for _, _, x in sd.VISIT_UTM])
        self.visit_p = w / w.sum()
        fest_names = [f"{f.key}_{f.day.year if f.day else f.end.year}" for f in self.cal.festivals]
        self.campaigns = sorted(set(fest_names)) + list(FIXED_CAMPAIGNS)
        self.fest_campaign = np.array([self.campaigns.index(x) for x in fest_names] + [-1])
        props = [_dump({"device": d}) for d in DEVICES]
        self.qty_off = len(props)
        props += [_dump({"quantity": q}) for q in range(1, 6)]
        self.coupon_off = len(props)
        props += [_dump({"coupon": c}) for c in self.orders.coupons]
        self.props = props

    def _visit_pairs(self, n: int, email: np.ndarray, sms: np.ndarray) -> np.ndarray:
        pair = self.visit_pairs[self.rng.choice(len(self.visit_p), n, p=self.visit_p)]
        med = np.where(pair >= 0, self.pair_medium[np.maximum(pair, 0)], -1)
        blocked = ((med == self.mediums.index("email")) & ~email) | (
            (med == self.mediums.index("sms")) & ~sms
        )
        return np.where(blocked, -1, pair)

    def _acq_pairs(self, owner: np.ndarray) -> np.ndarray:
        ch = self.cust.channel[owner]
        j = (self.rng.random(len(owner)) * np.maximum(self.ch_n[ch], 1)).astype(np.int64)
        return self.ch_pairs[ch, j]

    def _sessions(self, c_lo: int, c_hi: int, v_lo: int, v_hi: int) -> dict[str, np.ndarray]:
        rng, cal, cust, orders, tl = self.rng, self.cal, self.cust, self.orders, self.tl
        end = float(cal.days)
        ci = np.arange(c_lo, c_hi)
        parts: list[dict[str, np.ndarray]] = []

        def add(kind: int, owner, t, n_free, visitor=None, order=None, focus=None):
            m = len(t)
            none = np.full(m, -1, np.int64)
            parts.append({
                "kind": np.full(m, kind, np.int8), "owner": np.asarray(owner, np.int64),
                "visitor": none if visitor is None else visitor, "t": t,
                "n_free": np.minimum(n_free, MAX_FREE),
                "order": none if order is None else order,
                "focus": none if focus is None else focus,
            })  # fmt: skip

        add(S_REGISTER, ci, cust.reg[ci], rng.poisson(1.2, len(ci)))
        k = rng.poisson(0.8, len(ci)) * (cust.anon[ci] >= 0)
        o = np.repeat(ci, k)
        t = cust.reg[o] - rng.exponential(10.0, len(o)) - rng.exponential(0.05, len(o))
        add(S_ANON_PRE, o[t >= 0], t[t >= 0], 1 + rng.poisson(1.3, int((t >= 0).sum())))
        vi = np.arange(v_lo, v_hi)
        k = 1 + rng.poisson(0.4, len(vi))
        vo = np.repeat(vi, k)
        first = cal.sample("regular", rng.random(len(vi)))
        t = first[vo - v_lo] + np.where(np.diff(vo, prepend=-1) == 0,
                                        rng.exponential(3.0, len(vo)), 0.0)  # fmt: skip
        keep = t < end
        add(
            S_ANON,
            np.full(int(keep.sum()), -1),
            t[keep],
            1 + rng.poisson(1.0, int(keep.sum())),
            visitor=vo[keep],
        )
        oi = self.by_cust[self.cust_off[c_lo] : self.cust_off[c_hi]]
        add(
            S_ORDER,
            orders.cust[oi],
            orders.created[oi] - 10 * SECOND,
            rng.poisson(1.0, len(oi)),
            order=oi,
        )
        n_ord = self.cust_off[ci + 1] - self.cust_off[ci]
        nb = rng.poisson(cust.engagement[ci] * (0.5 + 0.9 * tl.n_purchases[ci]))
        bo = np.repeat(ci, nb)
        m = len(bo)
        has_ord = np.repeat(n_ord, nb) > 0
        pick = self.cust_off[bo] + (rng.random(m) * np.repeat(n_ord, nb)).astype(np.int64)
        anchor_order = self.by_cust[np.minimum(pick, len(self.by_cust) - 1)]
        anchored = has_ord & (rng.random(m) < 0.5)
        t_anch = np.maximum(orders.created[anchor_order] - rng.exponential(2.5, m), cust.reg[bo])
        buyer = tl.n_purchases[bo] > 0
        act_end = np.where(tl.churned[bo], tl.churned_at[bo] + rng.exponential(20.0, m), end)
        act_end = np.where(buyer, np.minimum(act_end, end), cust.reg[bo])
        t_act = cal.between(cust.festival[bo], cust.reg[bo], act_end, rng.random(m))
        t = np.where(anchored, t_anch,
                     np.where(buyer, t_act, cust.reg[bo] + rng.exponential(40.0, m)))  # fmt: skip
        first_item = orders.item_product[
            np.minimum(self.item_off[anchor_order], len(orders.item_product) - 1)
        ]
        focus = np.where(anchored, first_item, -1)
        keep = t < end
        add(S_BROWSE, bo[keep], t[keep], 1 + rng.poisson(2.0, int(keep.sum())), focus=focus[keep])
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def make(self, c_lo: int, c_hi: int, v_lo: int, v_hi: int) -> dict[str, np.ndarray]:
        """Events of members ``c_lo:c_hi`` and visitors ``v_lo:v_hi``, in session order."""
        rng, cal, cust, prods, orders = self.rng, self.cal, self.cust, self.prods, self.orders
        s = self._sessions(c_lo, c_hi, v_lo, v_hi)
        ns = len(s["t"])
        kind, owner, o0 = s["kind"], s["owner"], np.maximum(s["owner"], 0)
        is_cust = owner >= 0
        member = (kind == S_BROWSE) | (kind == S_ORDER)

        # Session attributes: device, UTM pair and campaign.
        oc = np.where(is_cust, cust.order_channel[o0], rng.integers(0, 3, ns))
        device = np.where(oc == 0, rng.integers(0, 2, ns),
                          np.where(oc == 1, 2, 3 + rng.integers(0, 2, ns)))  # fmt: skip
        pair = self._visit_pairs(ns, member & cust.email_opt[o0], member & cust.sms_opt[o0])
        acq = self._acq_pairs(o0)
        pair = np.where(
            (kind == S_REGISTER) | ((kind == S_ANON_PRE) & (rng.random(ns) < 0.5)), acq, pair
        )
        med = np.where(pair >= 0, self.pair_medium[np.maximum(pair, 0)], -1)
        mname = np.array(self.mediums + [""])[med]
        fest = cal.festival_of(s["t"])
        paid_medium = np.isin(mname, ["cpc", "email", "sms", "live", "group_buy"])
        fixed = {"cpc": "always_on", "email": "weekly_picks", "sms": "weekly_picks",
                 "group_buy": "group_buy_day", "live": "live_weekly"}  # fmt: skip
        camp = np.full(ns, -1, np.int64)
        for medium, name in fixed.items():
            camp[mname == medium] = self.campaigns.index(name)
        camp = np.where(paid_medium & (fest >= 0), self.fest_campaign[fest], camp)

        blocks: list[dict[str, np.ndarray]] = []

        def block(sid, rank, etype, product=None, qty=None, coupon=None):
            m = len(sid)
            none = np.full(m, -1, np.int64)
            blocks.append({
                "s": sid, "rank": np.broadcast_to(rank, m), "type": np.broadcast_to(etype, m),
                "product": none if product is None else product,
                "qty": none if qty is None else qty, "coupon": none if coupon is None else coupon,
            })  # fmt: skip

        sid = np.arange(ns)
        block(sid[(kind != S_REGISTER) | (cust.anon[o0] >= 0)], 0, T["visit"])
        block(sid[member & (rng.random(ns) < 0.3)], 1, T["login"])
        block(sid[kind == S_REGISTER], R_REGISTER, T["register"])

        # Free product interactions.
        n_free = s["n_free"]
        i_s = np.repeat(sid, n_free)
        ipos = np.arange(len(i_s)) - np.repeat(np.cumsum(n_free) - n_free, n_free)
        ni = len(i_s)
        io_ = o0[i_s]
        i_cust = is_cust[i_s]
        pop_cat = rng.choice(len(self.pop), ni, p=self.pop)
        cat = np.where(i_cust & (rng.random(ni) < 0.6), cust.pref[io_], pop_cat)
        rule = cal.rule_of(s["t"][i_s])
        gift = self.gifts[rule, (rng.random(ni) * np.maximum(self.n_gifts[rule], 1)).astype(int)]
        cat = np.where((gift >= 0) & (rng.random(ni) < 0.25), gift, cat)
        tier = np.where(i_cust & (rng.random(ni) < 0.65), cust.band[io_], rng.integers(0, 3, ni))
        product = prods.pick(rng, cat, tier)
        focused = (ipos == 0) & (s["focus"][i_s] >= 0)
        product = np.where(focused, s["focus"][i_s], product)
        k = kind[i_s]
        anon_only = (k == S_ANON) | (k == S_ANON_PRE)
        p_fav = np.where(focused, 0.3, np.where(anon_only, 0.0, 0.06))
        p_cart = np.where(
            focused, 0.35, np.where(anon_only, 0.04, np.where(k == S_ORDER, 0.05, 0.09))
        )
        flags = np.empty((ni, 5), bool)
        flags[:, 0] = rng.random(ni) < 0.22
        flags[:, 1] = True
        flags[:, 2] = rng.random(ni) < p_fav
        flags[:, 3] = rng.random(ni) < p_cart
        flags[:, 4] = flags[:, 3] & (rng.random(ni) < 0.3)
        r, step = np.nonzero(flags)
        block(
            i_s[r],
            R_FREE + 8 * ipos[r] + step,
            np.array(STEPS)[step],
            product[r],
            np.ones(len(r), np.int64),
        )

        # The ordered lines: viewed and put in the cart, then the checkout.
        osid = sid[kind == S_ORDER]
        oid = s["order"][osid]
        n_items = self.item_off[oid + 1] - self.item_off[oid]
        l_s = np.repeat(osid, n_items)
        li = np.repeat(self.item_off[oid], n_items) + (
            np.arange(len(l_s)) - np.repeat(np.cumsum(n_items) - n_items, n_items)
        )
        flags = np.zeros((len(li), 5), bool)
        flags[:, 0] = rng.random(len(li)) < 0.25
        flags[:, 1] = True
        flags[:, 2] = rng.random(len(li)) < 0.04
        flags[:, 3] = True
        r, step = np.nonzero(flags)
        block(
            l_s[r],
            R_LINES + 8 * orders.item_line[li[r]] + step,
            np.array(STEPS)[step],
            orders.item_product[li[r]],
            orders.item_qty[li[r]],
        )
        o_coupon = orders.coupon[oid]
        claim = (o_coupon >= 0) & (rng.random(len(oid)) < 0.6)
        block(osid[claim], R_COUPON, T["coupon_claim"], coupon=o_coupon[claim].astype(np.int64))
        block(osid, R_CHECKOUT, T["checkout"])
        bsid = sid[kind == S_BROWSE]
        claim = rng.random(len(bsid)) < np.where(cust.discount[o0[bsid]], 0.25, 0.04)
        bsid = bsid[claim]
        b_rule = cal.rule_of(s["t"][bsid])
        code = (np.where(b_rule >= 0, b_rule, len(RULE_KEYS)) * len(sd.COUPON_VALUES)
                + rng.integers(0, len(sd.COUPON_VALUES), len(bsid)))  # fmt: skip
        block(bsid, R_COUPON, T["coupon_claim"], coupon=code)

        e = {k: np.concatenate([np.asarray(b[k]) for b in blocks]) for k in blocks[0]}
        order_ = np.argsort(e["s"] * 1024 + e["rank"])
        e = {k: v[order_] for k, v in e.items()}
        return self._finish(s, e, pair, camp, device)

    def _finish(
        self,
        s: dict[str, np.ndarray],
        e: dict[str, np.ndarray],
        pair: np.ndarray,
        camp: np.ndarray,
        device: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Times, identities, queries, UTM and properties of the events in session order."""
        rng, cal, cust, prods = self.rng, self.cal, self.cust, self.prods
        es, rank, etype = e["s"], e["rank"], e["type"]
        n = len(es)
        kind = s["kind"][es]
        owner = s["owner"][es]
        o0 = np.maximum(owner, 0)
        first = np.ones(n, bool)
        first[1:] = es[1:] != es[:-1]
        cs = np.cumsum(np.where(first, 0.0, rng.exponential(35 * SECOND, n)))
        starts = np.flatnonzero(first)
        cum = cs - np.repeat(cs[starts], np.diff(np.append(starts, n)))
        anchor = np.zeros(len(s["t"]))
        is_anchor = ((kind == S_REGISTER) & (rank == R_REGISTER)) | (
            (kind == S_ORDER) & (rank == R_CHECKOUT)
        )
        anchor[es[is_anchor]] = cum[is_anchor]
        t = s["t"][es] + cum - anchor[es]
        anon_only = (kind == S_ANON) | (kind == S_ANON_PRE) | ((kind == S_REGISTER) & (rank == 0))
        has_cust = (owner >= 0) & ~anon_only
        reg = cust.reg[o0]
        t = np.where(has_cust, np.maximum(t, reg), t)
        t = np.where(anon_only & (owner >= 0), np.minimum(t, reg - SECOND), t)
        keep = (t >= 0) & (t < cal.days)
        visitor_anon = np.append(self.visitor_anon, -1)  # -1: not a visitor
        anon_no = np.where(owner >= 0, cust.anon[o0], visitor_anon[s["visitor"][es]])
        has_anon = anon_only | ((kind == S_REGISTER) & (rank == R_REGISTER))
        anon_no = np.where(has_anon, anon_no, -1)
        product = e["product"]
        category = np.where(product >= 0, prods.category[np.maximum(product, 0)], -1)

        # Searches: festival hot words in festival windows, else category/brand/product words.
        srch = etype == T["search"]
        rule = np.where(srch, cal.rule_of(t), -1)
        p0 = np.maximum(product, 0)
        u = rng.random(n)
        hot = srch & (rule >= 0) & (rng.random(n) < 0.4)
        c0 = np.maximum(category, 0)
        word = np.where(u < 0.45, self.cw_off[c0] + (rng.random(n) * self.cw_n[c0]).astype(int),
                        np.where(u < 0.7, self.brand_off + prods.brand[p0],
                                 self.noun_off + prods.noun[p0]))  # fmt: skip
        hot_word = self.hw_off[rule] + (rng.random(n) * self.hw_n[rule]).astype(int)
        query = np.where(srch, np.where(hot, hot_word, word), -1)
        category = np.where(hot, -1, category)
        product = np.where(srch, -1, product)

        utm = (etype == T["visit"]) | (etype == T["register"])
        e_pair = np.where(utm, pair[es], -1)
        prop = np.full(n, -1, np.int64)
        prop = np.where(etype == T["visit"], device[es], prop)
        prop = np.where(etype == T["cart_add"], self.qty_off + np.clip(e["qty"], 1, 5) - 1, prop)
        prop = np.where(etype == T["coupon_claim"], self.coupon_off + e["coupon"], prop)
        order = np.where(etype == T["checkout"], s["order"][es], -1)
        out = {
            "customer": np.where(has_cust, owner, -1),
            "anon": anon_no,
            "type": etype.astype(np.int8),
            "sec": np.floor(t * 86400).astype(np.int64),
            "product": product,
            "category": category,
            "query": query,
            "source": np.where(e_pair >= 0, self.pair_source[np.maximum(e_pair, 0)], -1),
            "medium": np.where(e_pair >= 0, self.pair_medium[np.maximum(e_pair, 0)], -1),
            "campaign": np.where(utm, camp[es], -1),
            "prop": prop,
            "order": order,
        }
        small = {"type": np.int8, "category": np.int8, "source": np.int8, "medium": np.int8,
                 "campaign": np.int16, "prop": np.int16, "query": np.int16,
                 "customer": np.int32, "anon": np.int32, "product": np.int32,
                 "order": np.int32}  # fmt: skip
        return {k: v[keep].astype(small.get(k, v.dtype)) for k, v in out.items()}
