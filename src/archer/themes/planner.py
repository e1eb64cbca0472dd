"""The theme planner: for a festival or a date range (and chosen hot words) the target group,
the products, their stock risk and the send windows of a theme broadcast.

* **Evidence** is the festival's latest window that has ended by the as-of day (the year
  before, while one is under way); the **target** is its next window. For a date range the
  target is the range and the evidence the same days of the latest year that has ended by then.
* **Words**: the ones given, else the words rising in the evidence window
  (:mod:`archer.analytics.hotwords`). **Categories**: where those words led (buyers, then
  viewers); with no search data, the categories the evidence window's buyers bought most —
  and the plan says so.
* **Target group**, in the audience language (the operator edits it): searched one of the
  words since the evidence window began, or bought or favourited one of the categories in the
  last year, or a festival buyer — in the price bands of the selected products (or with no
  purchase yet, so no band). Its size and
  reach by channel come from the audience engine. The operator's own query replaces it.
* **Products** of those categories, ranked by ``0.5 × conversion rank + 0.3 × margin rank +
  0.2 × band fit`` over the last :data:`LOOKBACK_DAYS` days (conversion: buyers ÷ viewers).
  The operator removes products (``remove``) and adds any of the catalogue (``add``, kept
  whatever their rank; :func:`find_products` searches by id and name).
  The **discount depth** is the median depth (1 − paid ÷ list price) of the discounted lines of
  the category in the evidence window (the shop's past promotion), and the margin left is
  ``(list × (1 − depth) − cost) ÷ (list × (1 − depth))``.
* **Stock risk**: expected units = group size × the product's buyer rate in the evidence
  window (its buyers ÷ the customers then) × units per buyer, with a 95 % Poisson interval on
  the buyers; ``oversell`` when the expected units exceed the stock, ``at_risk`` when the upper
  bound does, ``low_stock`` when the stock is under twice the expected units; a product with no
  stock left is ``oversell`` whatever its demand.
* **Send windows**, on the target window's first and main day (shop time): when at least
  :data:`MIN_HOURS` of the group have a preferred hour in their profiles, e-mail at the group's
  most common hour and the most common one at least :data:`EMAIL_GAP` hours from it, SMS at its
  most common hour inside the legal window (outside the quiet hours); else e-mail at
  07:30 and 17:00 and SMS at the first full hour two hours after the SMS quiet hours end
  (``campaigns.quiet_hours``), which :mod:`archer.messaging.guards` enforces again at sending.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd
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
MAX_RANGE_DAYS = 92
MAX_EDITS = 50  # products added or removed by hand
MAX_ID_CHARS = 100
MAX_QUERY_CHARS = 20_000
MIN_HOURS = 30  # members with a preferred hour before their hours set the send windows
EMAIL_GAP = 4  # hours between the two e-mail times (a second reading moment of the day)
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


def _ids(ids: list[str] | None, what: str) -> list[str]:
    out: list[str] = []
    for i in ids or []:
        i = str(i).strip()
        if len(i) > MAX_ID_CHARS:
            raise Invalid(f"{what} {i[:20]!r}…: a product id has at most {MAX_ID_CHARS} characters")
        if i and i not in out:
            out.append(i)
    if len(out) > MAX_EDITS:
        raise Invalid(f"{len(out)} products to {what}: at most {MAX_EDITS}")
    return out


def _year_back(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def _range_windows(start: date, end: date, as_of: date) -> tuple[Festival, Festival]:
    """The range as the target, and the same days of the latest year ended by ``as_of``."""
    if end < start:
        raise Invalid(f"range: end {end} is before start {start}")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise Invalid(f"range {start} … {end}: at most {MAX_RANGE_DAYS} days")
    target = Festival(f"{start.isoformat()} – {end.isoformat()}", "range", start, end, None)
    years = 0 if end <= as_of else 1
    while _year_back(end, years) > as_of:
        years += 1
    ev = Festival(target.name, "range", _year_back(start, years), _year_back(end, years), None)
    return ev, target


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


def _products(snap: Snapshot, cats: list[str], evidence: Period, add: list[str]):
    """The candidate products of ``cats`` (and those in ``add``) with conversion, margin, price
    band, past discount depth and the evidence window's buyers and units."""
    since = snap.as_of - timedelta(days=LOOKBACK_DAYS - 1)
    p = snap.products
    p = p.filter(p.category.isin(cats or [""]) | p.product_id.isin(add or [""]))
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
    festival: str | None = None,
    words: list[str] | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    as_of: date | None = None,
    top: int = 10,
    add: list[str] | None = None,
    remove: list[str] | None = None,
    query: str | None = None,
) -> dict[str, Any]:
    """The theme plan of ``festival``'s next window, or of the range ``start`` … ``end`` (see
    the module docstring). ``words``: None for the rising ones, ``[]`` for none; ``add`` and
    ``remove``: product ids; ``query``: the operator's target group instead of the suggested."""
    if not 1 <= top <= MAX_PRODUCTS:
        raise Invalid(f"top {top}: expected 1 … {MAX_PRODUCTS}")
    if not festival and not (start and end):
        raise Invalid("choose a festival, or a range with a start and an end")
    if query is not None and len(query) > MAX_QUERY_CHARS:
        raise Invalid(f"the target group's query: at most {MAX_QUERY_CHARS} characters")
    chosen = _words(words)
    added, removed = _ids(add, "add"), _ids(remove, "remove")
    notes: list[str] = []
    with snapshot(ws, as_of) as snap:
        if festival:
            evidence, target = _windows(festival, snap.as_of)
        else:
            evidence, target = _range_windows(start, end, snap.as_of)  # type: ignore[arg-type]
        ep = Period(evidence.start, evidence.end)
        doc = hot_words(snap, ep, top=200)
        if words is None:
            chosen = [r["word"] for r in doc["rising"][:5]]
        cats = _categories(doc, chosen)[:N_CATEGORIES] if chosen else []
        if doc["searchers"] == 0:
            notes.append("no search data in the evidence window: the group and the products "
                         "come from the festival's buyers and their categories")  # fmt: skip
            chosen = []
        if not cats:
            cats = _festival_categories(snap, ep)
            if doc["searchers"] and chosen:
                notes.append("the words led to no category: using the categories the "
                             "festival's buyers bought most")  # fmt: skip
        df = _products(snap, cats, ep, added) if cats or added else None
        missing = sorted(set(added) - set([] if df is None else df.product_id))
        if missing:
            raise Invalid(f"no product {', '.join(missing)} in the catalogue")
        customers = int(snap.customers.count().execute())
        day = snap.as_of
    products = _rank(df, top, added, removed)
    bands = sorted({p["price_band"] for p in products}, key=BANDS.index)
    since_days = (day - evidence.start).days + 1
    suggested = _audience(chosen, cats, bands, since_days)
    used = suggested
    if query is not None and query.strip():
        from archer.audiences.grammar import normalise

        used = normalise(query.strip())[0]
    group = _group(ws, used)
    hours = group.pop("hours")
    risk = _risk(products, group["count"], customers)
    top_words = [{"word": r["word"], "searchers": r["searchers"], "rising": r["word"] in
                  {x["word"] for x in doc["rising"]}} for r in doc["words"][:20]]  # fmt: skip
    return {
        "festival": festival or target.name,
        "range": None if festival else {"start": start.isoformat(), "end": end.isoformat()},  # type: ignore[union-attr]
        "as_of": day.isoformat(),
        "evidence": {"start": evidence.start.isoformat(), "end": evidence.end.isoformat()},
        "target": {"start": target.start.isoformat(), "end": target.end.isoformat(),
                   "day": target.day.isoformat() if target.day else None},
        "words": chosen,
        "rising": [r["word"] for r in doc["rising"]],
        "top_words": top_words,
        "categories": cats,
        "search_data": doc["searchers"] > 0,
        "group": {"query": used, "suggested": suggested, "edited": used != suggested, **group},
        "products": risk,
        "added": added,
        "removed": removed,
        "oversold": [p["product_id"] for p in risk if p["risk"] == "oversell"],
        "send_windows": send_windows(ws, target, hours),
        "preferred_hours": {"known": sum(hours.values()), "min": MIN_HOURS,
                            "used": sum(hours.values()) >= MIN_HOURS},
        "notes": notes,
    }  # fmt: skip


def find_products(ws: Workspace, text: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """Products whose id or name holds ``text`` (case-insensitive), for adding to a plan."""
    text = clean_query(text or "")[:MAX_ID_CHARS].strip()
    if not text or not 1 <= limit <= MAX_PRODUCTS:
        return []
    with snapshot(ws, None) as snap:
        p = snap.products
        hit = p.product_id.lower().contains(text) | p.name.lower().contains(text)
        df = (p.filter(hit).select("product_id", "name", "category", "list_price", "stock")
              .order_by("product_id").limit(limit).execute())  # fmt: skip
    return [{"product_id": r.product_id, "name": r.name, "category": r.category,
             "list_price": float(r.list_price),
             "stock": None if r.stock is None or np.isnan(r.stock) else int(r.stock)}
            for r in df.itertuples()]  # fmt: skip


def _rank(df, top: int, add: list[str], remove: list[str]) -> list[dict[str, Any]]:
    """The ``top`` best-scored products not removed, those in stock first, then the added ones
    not among them."""
    if df is None or df.empty:
        return []
    df = df[~df.product_id.isin(remove) | df.product_id.isin(add)].copy()
    if df.empty:
        return []
    lp, cost = df.list_price.astype(float), df.unit_cost.astype(float)
    df["conversion"] = np.where(df.viewers > 0, df.buyers / df.viewers.clip(lower=1), 0.0)
    df["margin"] = np.where(lp > 0, (lp - cost) / lp.where(lp > 0, 1), 0.0)
    pos = df.groupby("category").list_price.rank(pct=True)
    df["price_band"] = np.where(pos <= 1 / 3, "budget", np.where(pos > 2 / 3, "premium", "mid"))
    main = df.price_band.mode().iloc[0]
    fit = (df.price_band == main).astype(float)
    df["score"] = (0.5 * df.conversion.rank(pct=True) + 0.3 * df.margin.rank(pct=True)
                   + 0.2 * fit)  # fmt: skip
    # Products with none left come last: a theme cannot sell what the shop cannot ship (an
    # operator may still add one by hand, and it is flagged).
    df["in_stock"] = ~(df.stock.astype(float) <= 0)
    df = df.sort_values(["in_stock", "score", "product_id"], ascending=[False, False, True])
    best = df[~df.product_id.isin(add)].head(top)
    df = pd.concat([best, df[df.product_id.isin(add)]]) if add else best
    out = []
    for r in df.itertuples():
        depth = 0.0 if r.depth is None or np.isnan(r.depth) else max(0.0, round(float(r.depth), 3))
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
            "score": round(float(r.score), 4), "added": r.product_id in add,
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

    m = members(ws, query, fields=["email_reachable", "sms_reachable", "preferred_hour"])
    hours = Counter(int(h) for h in m.preferred_hour.dropna())
    return {
        "count": len(m),
        "reach": {"email": int(m.email_reachable.fillna(False).astype(bool).sum()),
                  "sms": int(m.sms_reachable.fillna(False).astype(bool).sum())},
        "hours": hours,
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
        elif exp_units > stock or stock <= 0:  # none left is overselling whatever the demand
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


def send_times(
    hours: Counter[int] | dict[int, int] | None, quiet: str | None
) -> tuple[list[time], time, str]:
    """E-mail times, the SMS time and where they come from (``profiles`` or ``default``), from
    the group's preferred hours (hour → members) and the SMS quiet hours (``22:00-08:00``)."""
    sms_at = time(10, 0)
    open_from, open_to = 8, 21  # the SMS hours allowed: [open_from, open_to]
    if quiet:
        q0, q1 = (_hm(x) for x in quiet.split("-"))
        sms_at = time(min(q1.hour + 2 + (1 if q1.minute else 0), 20), 0)
        open_from = q1.hour + (1 if q1.minute else 0)
        open_to = (q0.hour - 1) % 24
    known = sum((hours or {}).values())
    if known < MIN_HOURS:
        return list(EMAIL_TIMES), sms_at, "default"
    ranked = sorted(hours.items(), key=lambda kv: (-kv[1], kv[0]))  # type: ignore[union-attr]
    first = ranked[0][0]
    apart = [h for h, _ in ranked[1:] if min((h - first) % 24, (first - h) % 24) >= EMAIL_GAP]
    email = sorted(time(h, 0) for h in [first, *apart[:1]])

    def legal(h: int) -> bool:
        if open_from <= open_to:
            return open_from <= h <= open_to
        return h >= open_from or h <= open_to

    sms = next((time(h, 0) for h, _ in ranked if legal(h)), sms_at)
    return email, sms, "profiles"


def send_windows(
    ws: Workspace, target: Festival, hours: Counter[int] | dict[int, int] | None = None
) -> list[dict[str, str]]:
    """E-mail and SMS at :func:`send_times` on the target window's first day and its main day
    (shop-local times)."""
    days = [target.start] + ([target.day] if target.day and target.day != target.start else [])
    quiet = ws.settings.campaigns.quiet_hours.get("sms")
    email, sms_at, source = send_times(hours, quiet)
    out = []
    for d in days:
        for t in email:
            out.append({"channel": "email", "at": datetime.combine(d, t).isoformat(),
                        "source": source})  # fmt: skip
        out.append({"channel": "sms", "at": datetime.combine(d, sms_at).isoformat(),
                    "quiet_hours": quiet or "", "source": source})  # fmt: skip
    return out
