"""Who enters a flow now, and per what key: one function per trigger source, over the warehouse.

Each source answers a DataFrame of ``customer_id``, ``trigger_key`` (never null),
``entered_at`` (naive UTC: when the subject's run starts, the base of its first delay) and
``order`` (the order's facts, for order-keyed flows). Facts come from :class:`Snapshot` cut at
the round's instant, so "unpaid" means what it means everywhere else, at that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

import ibis
import pandas as pd

from archer.campaigns import favourites as fav
from archer.campaigns.definition import Definition, parse_duration
from archer.clock import naive_utc
from archer.facts import Snapshot
from archer.schema import PROFILE
from archer.warehouse import Warehouse

COLUMNS = ["customer_id", "trigger_key", "entered_at"]
Members = Callable[[str], frozenset[str]]


def candidates(
    wh: Warehouse, d: Definition, now: datetime, tz: tzinfo, members: Members
) -> pd.DataFrame:
    """The subjects ``d``'s trigger selects at ``now`` (aware), before re-entry rules."""
    snap = Snapshot.instant(wh, now, tz)
    out = SOURCES[d.trigger.on](snap, d, now, members)
    if d.trigger.audience and d.trigger.on != "audience":
        keep = members(d.trigger.audience)
        out = out[out.customer_id.isin(keep)]
    out = out.dropna(subset=["customer_id", "trigger_key"])
    return out.reset_index(drop=True)


def unpaid_orders(snap: Snapshot, d: Definition, now: datetime, members: Members) -> pd.DataFrame:
    """Each order of a member created within the lookback and neither paid nor closed."""
    o = snap.orders
    since = naive_utc(now - parse_duration(d.trigger.lookback))
    o = o.filter(
        o.customer_id.notnull()
        & (o.created_at >= ibis.literal(since, type="timestamp"))
        & ~snap.is_closed(o)
    )
    return o.select(
        customer_id=o.customer_id, trigger_key=o.order_id, entered_at=o.created_at
    ).execute()


def open_carts(snap: Snapshot, d: Definition, now: datetime, members: Members) -> pd.DataFrame:
    """Each member's cart: goods added since their last order and left for ``idle``; the key is
    the moment of the cart's first add, so the same cart enters once."""
    e = snap.member_events()
    adds = e.filter(e.type == "cart_add")
    orders = snap.orders.filter(snap.orders.customer_id.notnull())
    last_order = orders.group_by(_c="customer_id").aggregate(_last=orders.created_at.max())
    j = adds.left_join(last_order, adds.customer_id == last_order._c)
    j = j.filter(j._last.isnull() | (j.occurred_at > j._last))
    carts = j.group_by("customer_id").aggregate(first=j.occurred_at.min(), last=j.occurred_at.max())
    idle = parse_duration(d.trigger.idle)
    since = naive_utc(now - parse_duration(d.trigger.lookback))
    ripe = carts.filter(
        (carts["last"] <= ibis.literal(naive_utc(now - idle), type="timestamp"))
        & (carts["first"] >= ibis.literal(since, type="timestamp"))
    )
    df = ripe.execute()
    return pd.DataFrame(
        {
            "customer_id": df.customer_id,
            "trigger_key": pd.to_datetime(df["first"]).dt.strftime("cart:%Y-%m-%dT%H:%M:%S"),
            "entered_at": pd.to_datetime(df["last"]) + idle,
        }
    )


def audience(snap: Snapshot, d: Definition, now: datetime, members: Members) -> pd.DataFrame:
    """Customers who match the trigger's condition, keyed per customer, per year or per lapse
    (their last purchase day: buying again and lapsing again is a new key)."""
    ids = sorted(members(d.trigger.audience or ""))
    at = naive_utc(now)
    df = pd.DataFrame({"customer_id": pd.Series(ids, dtype="object")})
    df["entered_at"] = at
    key = d.trigger.key
    if key == "customer":
        df["trigger_key"] = "customer"
    elif key == "customer_year":
        df["trigger_key"] = f"year:{now.astimezone(snap.tz).year}"
    elif key == "customer_month":
        df["trigger_key"] = f"month:{now.astimezone(snap.tz):%Y-%m}"
    else:  # customer_lapse
        last = _last_purchase(snap, ids)
        df["trigger_key"] = [f"lapse:{last.get(c, 'never')}" for c in ids]
    return df


def _last_purchase(snap: Snapshot, ids: list[str]) -> dict[str, str]:
    """The last purchase day the audience saw: the profile's (as of the last build, like the
    condition), so a purchase since then is not taken for a new lapse of someone who still
    matches until the next build; the shop's purchases when nothing is built."""
    if not ids:
        return {}
    if snap.wh.has_table(PROFILE):
        t = snap.wh.table(PROFILE)
        t = t.filter(t.last_purchase_day.notnull())
        t = t.filter(t.customer_id.isin(ids)) if len(ids) <= 50_000 else t
        got = t.select("customer_id", "last_purchase_day").execute()
        return {
            str(c): str(pd.Timestamp(v).date())
            for c, v in zip(got.customer_id, got.last_purchase_day, strict=True)
        }
    p = snap.purchases()
    p = p.filter(p.customer_id.isin(ids)) if len(ids) <= 50_000 else p
    last = p.group_by("customer_id").aggregate(day=p.day.max()).execute()
    return {c: str(pd.Timestamp(v).date()) for c, v in zip(last.customer_id, last.day, strict=True)}


def favourites(snap: Snapshot, d: Definition, now: datetime, members: Members) -> pd.DataFrame:
    """Each member's favourited product whose price dropped or stock ran low, keyed per
    product, reason and observation (:mod:`archer.campaigns.favourites`)."""
    return fav.candidates(snap, d, now)


SOURCES = {"order_unpaid": unpaid_orders, "cart": open_carts, "audience": audience,
           "favourite": favourites}  # fmt: skip
