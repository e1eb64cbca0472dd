"""The theme planner: for a festival (and chosen hot words) the target group, the products,
their stock risk and the send windows of a theme broadcast.

* **Evidence** is the festival's latest window that has ended by the as-of day (the year
  before, while one is under way); the **target** is its next window.
* **Words**: the ones given, else the words rising in the evidence window
  (:mod:`archer.analytics.hotwords`). **Categories**: where those words led (buyers, then
  viewers); with no search data, the categories the evidence window's buyers bought most —
  and the plan says so.
* **Target group**, in the audience language (the operator edits it): searched one of the
  words since the evidence window began, or bought or favourited one of the categories in the
  last year, or a festival buyer — in the price bands of the selected products (or with no
  purchase yet, so no band). Its size and
  reach by channel come from the audience engine.
* **Products** of those categories, ranked by ``0.5 × conversion rank + 0.3 × margin rank +
  0.2 × band fit`` over the last :data:`LOOKBACK_DAYS` days (conversion: buyers ÷ viewers).
  The **discount depth** is the median depth (1 − paid ÷ list price) of the discounted lines of
  the category in the evidence window (the shop's past promotion), and the margin left is
  ``(list × (1 − depth) − cost) ÷ (list × (1 − depth))``.
* **Stock risk**: expected units = group size × the product's buyer rate in the evidence
  window (its buyers ÷ the customers then) × units per buyer, with a 95 % Poisson interval on
  the buyers; ``oversell`` when the expected units exceed the stock, ``at_risk`` when the upper
  bound does, ``low_stock`` when the stock is under twice the expected units.
* **Send windows**: e-mail at 07:30 and 17:00 shop time on the target window's first and main
  day; SMS at the first full hour two hours after the SMS quiet hours end
  (``campaigns.quiet_hours``), which :mod:`archer.messaging.guards` enforces again at sending.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
from scipy import stats

from archer.analytics.hotwords import (
    Period,
    clean_query,
    festival_window,
    hot_words,
    next_festival_window,
)
from archer.analytics.reports import snapshot
from archer.errors import Invalid
from archer.festivals import Festival

if TYPE_CHECKING:
    from archer.facts import Snapshot
    from archer.workspace import Workspace

LOOKBACK_DAYS = 90
MAX_WORDS = 10
MAX_WORD_CHARS = 30
MAX_PRODUCTS = 50
N_CATEGORIES = 3
EMAIL_TIMES = (time(7, 30), time(17, 0))
BANDS = ("budget", "mid", "premium")


def _words(words: list[str] | None) -> list[str]:
    if not words:
        return []
    if len(words) > MAX_WORDS:
        raise Invalid(f"{len(words)} words: at most {MAX_WORDS}")
    out = []
    for w in words:
        c = clean_query(w).replace('"', "").replace("\\", "")[:MAX_WORD_CHARS].strip()
        if c and c not in out:
            out.append(c)
    return out


def _windows(name: str, as_of: date) -> tuple[Festival, Festival]:
    target = next_festival_window(name, as_of + timedelta(days=1))
    evidence = festival_window(name, as_of)
    if evidence.start >= target.start or evidence.end > as_of:
        evidence = festival_window(name, evidence.start - timedelta(days=1))
    return evidence, target


def _categories(doc: dict, words: list[str]) -> list[str]:
    score: dict[str, tuple[int, int]] = {}
    for r in doc["rising"] + doc["words"]:
        if r["word"] not in words:
            continue
        for c in r.get("categories", []):
            b, v = score.get(c["category"], (0, 0))
            score[c["category"]] = (b + c["buyers"], v + c["viewers"])
    return [c for c, _ in sorted(score.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))]


def _festival_categories(snap: Snapshot, p: Period) -> list[str]:
    pl = snap.paid_lines()
    pl = pl.filter((pl.day >= p.start) & (pl.day <= p.end) & pl.category.notnull())
    g = pl.group_by("category").aggregate(sales=pl.line_amount.sum()).order_by(ibis.desc("sales"))
    return list(g.limit(N_CATEGORIES).execute().category)


def _products(snap: Snapshot, cats: list[str], evidence: Period):
    """The candidate products of ``cats`` with conversion, margin, price band, past discount
    depth and the evidence window's buyers and units."""
    since = snap.as_of - timedelta(days=LOOKBACK_DAYS - 1)
    p = snap.products.filter(snap.products.category.isin(cats))
    ev = snap.people(snap.events)
    v = ev.filter((ev.type == "view") & ev.product_id.notnull())
    v = v.filter(snap.local_day(v.occurred_at) >= since)
    views = v.group_by(_v="product_id").aggregate(
        viewers=v.person.coalesce(v.anonymous, v.anonymous_id).nunique()
    )
    pl = snap.paid_lines()
    recent = pl.filter(pl.day >= since)
    buys = recent.group_by(_b="product_id").aggregate(buyers=recent.customer_id.nunique())
    fest = pl.filter((pl.day >= evidence.start) & (pl.day <= evidence.end))
    fb = fest.group_by(_f="product_id").aggregate(
        fest_buyers=fest.customer_id.nunique(), fest_units=fest.quantity.sum()
    )
    disc = fest.filter(fest.discounted & (fest.list_price > 0))
    depth = disc.group_by(_c="category").aggregate(
        depth=(1 - disc.unit_price / disc.list_price).median()
    )
    j = (
        p.left_join(views, p.product_id == views._v)
        .left_join(buys, p.product_id == buys._b)
        .left_join(fb, p.product_id == fb._f)
        .left_join(depth, p.category == depth._c)
    )
    df = j.select(
        "product_id", "name", "category", "list_price", "unit_cost", "stock",
        viewers=j.viewers.fill_null(0), buyers=j.buyers.fill_null(0),
        fest_buyers=j.fest_buyers.fill_null(0), fest_units=j.fest_units.fill_null(0),
        depth=j.depth,
    ).execute()  # fmt: skip
    return df


def plan(
    ws: Workspace,
    festival: str,
    words: list[str] | None = None,
    *,
    as_of: date | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """The theme plan of ``festival``'s next window (see the module docstring)."""
    if not 1 <= top <= MAX_PRODUCTS:
        raise Invalid(f"top {top}: expected 1 … {MAX_PRODUCTS}")
    chosen = _words(words)
    notes: list[str] = []
    with snapshot(ws, as_of) as snap:
        evidence, target = _windows(festival, snap.as_of)
        ep = Period(evidence.start, evidence.end)
        doc = hot_words(snap, ep, top=200)
        if not chosen:
            chosen = [r["word"] for r in doc["rising"][:5]]
        cats = _categories(doc, chosen)[:N_CATEGORIES] if chosen else []
        if doc["searchers"] == 0:
            notes.append("no search data in the evidence window: the group and the products "
                         "come from the festival's buyers and their categories")  # fmt: skip
            chosen = []
        if not cats:
            cats = _festival_categories(snap, ep)
            if doc["searchers"]:
                notes.append("the words led to no category: using the categories the "
                             "festival's buyers bought most")  # fmt: skip
        df = _products(snap, cats, ep) if cats else None
        customers = int(snap.customers.count().execute())
        day = snap.as_of
    products = _rank(df, top)
    bands = sorted({p["price_band"] for p in products}, key=BANDS.index)
    since_days = (day - evidence.start).days + 1
    query = _audience(chosen, cats, bands, since_days)
    group = _group(ws, query)
    risk = _risk(products, group["count"], customers)
    return {
        "festival": festival,
        "as_of": day.isoformat(),
        "evidence": {"start": evidence.start.isoformat(), "end": evidence.end.isoformat()},
        "target": {"start": target.start.isoformat(), "end": target.end.isoformat(),
                   "day": target.day.isoformat() if target.day else None},
        "words": chosen,
        "rising": [r["word"] for r in doc["rising"]],
        "categories": cats,
        "search_data": doc["searchers"] > 0,
        "group": {"query": query, **group},
        "products": risk,
        "oversold": [p["product_id"] for p in risk if p["risk"] == "oversell"],
        "send_windows": send_windows(ws, target),
        "notes": notes,
    }  # fmt: skip


def _rank(df, top: int) -> list[dict[str, Any]]:
    if df is None or df.empty:
        return []
    df = df.copy()
    lp, cost = df.list_price.astype(float), df.unit_cost.astype(float)
    df["conversion"] = np.where(df.viewers > 0, df.buyers / df.viewers.clip(lower=1), 0.0)
    df["margin"] = np.where(lp > 0, (lp - cost) / lp.where(lp > 0, 1), 0.0)
    pos = df.groupby("category").list_price.rank(pct=True)
    df["price_band"] = np.where(pos <= 1 / 3, "budget", np.where(pos > 2 / 3, "premium", "mid"))
    main = df.price_band.mode().iloc[0]
    fit = (df.price_band == main).astype(float)
    df["score"] = (0.5 * df.conversion.rank(pct=True) + 0.3 * df.margin.rank(pct=True)
                   + 0.2 * fit)  # fmt: skip
    df = df.sort_values(["score", "product_id"], ascending=[False, True]).head(top)
    out = []
    for r in df.itertuples():
        depth = 0.0 if r.depth is None or np.isnan(r.depth) else round(float(r.depth), 3)
        price = float(r.list_price) * (1 - depth)
        left = (price - float(r.unit_cost)) / price if price > 0 else None
        out.append({
            "product_id": r.product_id, "name": r.name, "category": r.category,
            "list_price": float(r.list_price), "unit_cost": float(r.unit_cost),
            "price_band": r.price_band, "viewers": int(r.viewers), "buyers": int(r.buyers),
            "conversion": round(float(r.conversion), 4), "margin": round(float(r.margin), 4),
            "discount_depth": depth, "price_after": round(price, 2),
            "margin_left": None if left is None else round(left, 4),
            "stock": None if r.stock is None or np.isnan(r.stock) else int(r.stock),
            "fest_buyers": int(r.fest_buyers), "fest_units": int(r.fest_units),
            "score": round(float(r.score), 4),
        })  # fmt: skip
    return out


def _audience(words: list[str], cats: list[str], bands: list[str], since_days: int) -> str:
    parts = [f'searched("{w}", within = {since_days}d)' for w in words]
    for c in cats:
        parts += [f'bought(category = "{c}", within = 365d)',
                  f'favorited(category = "{c}", within = 90d)']  # fmt: skip
    parts.append("festival_buyer")
    q = "(" + " or ".join(parts) + ")"
    if bands and len(bands) < len(BANDS):
        inside = ", ".join(f'"{b}"' for b in bands)
        q += f" and (price_band in ({inside}) or purchase_days = 0)"  # no band before buying
    return q


def _group(ws: Workspace, query: str) -> dict[str, Any]:
    from archer.audiences import members

    m = members(ws, query, fields=["email_reachable", "sms_reachable"])
    return {
        "count": len(m),
        "reach": {"email": int(m.email_reachable.fillna(False).astype(bool).sum()),
                  "sms": int(m.sms_reachable.fillna(False).astype(bool).sum())},
    }  # fmt: skip


def _risk(products: list[dict], group: int, customers: int) -> list[dict[str, Any]]:
    """Expected units of each product with a 95 % interval, against its stock."""
    out = []
    for p in products:
        rate = p["fest_buyers"] / customers if customers else 0.0
        per = p["fest_units"] / p["fest_buyers"] if p["fest_buyers"] else 1.0
        mu = group * rate
        lo, hi = stats.poisson.ppf([0.025, 0.975], mu) if mu > 0 else (0.0, 0.0)
        exp_units = mu * per
        stock = p["stock"]
        if stock is None:
            risk = "unknown"
        elif exp_units > stock:
            risk = "oversell"
        elif hi * per > stock:
            risk = "at_risk"
        elif stock < 2 * exp_units:
            risk = "low_stock"
        else:
            risk = "ok"
        out.append({**p, "expected_units": round(exp_units, 1),
                    "units_interval": [round(lo * per, 1), round(hi * per, 1)],
                    "risk": risk})  # fmt: skip
    return out


def _hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def send_windows(ws: Workspace, target: Festival) -> list[dict[str, str]]:
    """E-mail at :data:`EMAIL_TIMES` and SMS two hours after its quiet hours end, on the
    target window's first day and its main day (shop-local times)."""
    days = [target.start] + ([target.day] if target.day and target.day != target.start else [])
    quiet = ws.settings.campaigns.quiet_hours.get("sms")
    sms_at = time(10, 0)
    if quiet:
        end = _hm(quiet.split("-")[1])
        sms_at = time(min(end.hour + 2 + (1 if end.minute else 0), 20), 0)
    out = []
    for d in days:
        for t in EMAIL_TIMES:
            out.append({"channel": "email", "at": datetime.combine(d, t).isoformat()})
        out.append({"channel": "sms", "at": datetime.combine(d, sms_at).isoformat(),
                    "quiet_hours": quiet or ""})  # fmt: skip
    return out
