"""Favourites: a favourited product whose price dropped or whose stock ran low.

The trigger reads the favourites (``favorite`` events of members), the price and stock history
that products imports keep (:mod:`archer.ingest.history`) and the paid order lines, at the
round's instant:

* **price** — the product's latest price change was a drop, observed after the customer's
  latest favourite of it, and the price stands at least ``min_drop`` under the price when they
  favourited it (the price in force then; the first one Archer saw, if it saw none before);
* **stock** — the stock is above 0 and under ``low_stock``, and went there after the
  favourite (from a row that was not low: a product first seen low is no news).

A favourite older than ``favourited_within`` is forgotten, and one whose product the customer
bought since is done. The key is ``reason:value:observed:product`` — the observation that
started the current price (or low-stock spell) — so the same drop notes once, a further
drop (a new observation) notes again, and re-importing a file (no new observation) nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import numpy as np
import pandas as pd

from archer.campaigns.definition import Definition, parse_duration, parse_percent
from archer.clock import naive_utc
from archer.facts import Snapshot
from archer.messaging import templates
from archer.schema import PRODUCT_HISTORY
from archer.store.campaigns import KEY_MAX

FAVOURITE = "favorite"  # the event type (schema.EVENT_TYPES)
STAMP = "%Y%m%dT%H%M%S%f"
REASONS = ("price", "stock")


def make_key(reason: str, value: int, observed: datetime, product_id: str) -> str:
    return f"{reason}:{int(value)}:{pd.Timestamp(observed):{STAMP}}:{product_id}"


def parse_key(key: str) -> tuple[str, int, datetime, str] | None:
    """(reason, value, observed (naive UTC), product id) of a favourite's key; None if it is
    not one."""
    parts = str(key).split(":", 3)
    if len(parts) != 4 or parts[0] not in REASONS or not parts[3]:
        return None
    try:
        return parts[0], int(parts[1]), datetime.strptime(parts[2], STAMP), parts[3]
    except ValueError:
        return None


# -- reading the shop ------------------------------------------------------------------------------
def _favourites(snap: Snapshot, since: datetime, products: list[str]) -> ibis.Table:
    """Each member's latest favourite of each of ``products`` since ``since`` (naive UTC),
    unless they bought the product after it."""
    e = snap.member_events()
    e = e.filter((e.type == FAVOURITE) & (e.occurred_at >= ibis.literal(since, type="timestamp")))
    # joined with the products as a table: a long IN list costs more to compile than to run
    wanted = ibis.memtable(pd.DataFrame({"_pid": pd.Series(products, dtype="object")}))
    e = e.semi_join(wanted, e.product_id == wanted._pid)
    fav = e.group_by("customer_id", "product_id").aggregate(favourited_at=e.occurred_at.max())
    lines = snap.paid_lines()
    lines = lines.select(_c=lines.customer_id, _p=lines.product_id, _t=lines.pay_time)
    return fav.anti_join(
        lines,
        [fav.customer_id == lines._c, fav.product_id == lines._p, lines._t >= fav.favourited_at],
    )


def _history(snap: Snapshot, products: ibis.Table | list[str]) -> pd.DataFrame:
    """The price (in fen) and stock rows of ``products``, observed by the round's instant,
    in time order per product."""
    cols = {"product_id": "object", "cents": "int64", "stock": "float64",
            "valid_from": "datetime64[us]"}  # fmt: skip
    if not snap.wh.has_table(PRODUCT_HISTORY):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})
    h = snap.wh.table(PRODUCT_HISTORY)
    h = h.filter(h.valid_from <= snap.cut)
    if isinstance(products, list):
        h = h.filter(h.product_id.isin(products))
    else:
        wanted = products.select(_pid=products.product_id).view()
        h = h.semi_join(wanted, h.product_id == wanted._pid)
    df = h.select(
        "product_id",
        cents=(h.list_price.cast("float64") * 100).round().cast("int64"),
        stock=h.stock.cast("float64"),
        valid_from=h.valid_from,
    ).execute()
    df["valid_from"] = pd.to_datetime(df["valid_from"])
    df = df.dropna(subset=["cents"])  # a product without a price has no price to drop
    return df.sort_values(["product_id", "valid_from"], kind="stable").reset_index(drop=True)


def _spells(h: pd.DataFrame, low_stock: int) -> pd.DataFrame:
    """Per product: its latest price and the observation that started it (``price_at``), the
    price before (``prev_cents``); when its stock is low now, the observation that started the
    low spell (``low_at``) and the stock then (``low_value``)."""
    g = h.groupby("product_id", sort=False)
    first = g.cumcount() == 0
    price_changed = first | (h.cents != g.cents.shift())
    low = (h.stock > 0) & (h.stock < low_stock)
    low_changed = first | (low != low.groupby(h.product_id).shift())
    h = h.assign(
        _pstart=np.where(price_changed, h.index, np.nan),
        _lstart=np.where(low_changed, h.index, np.nan),
        _low=low,
    )
    h["_pstart"] = h.groupby("product_id")["_pstart"].ffill()
    h["_lstart"] = h.groupby("product_id")["_lstart"].ffill()
    last = h.groupby("product_id", sort=False).tail(1)
    pstart = last._pstart.astype(int).to_numpy()
    lstart = last._lstart.astype(int).to_numpy()
    is_first = ~h.product_id.duplicated()  # a product's first row
    out = pd.DataFrame(
        {
            "product_id": last.product_id.to_numpy(),
            "cents": last.cents.to_numpy(),
            "price_at": h.valid_from.to_numpy()[pstart],
            "prev_cents": h.cents.groupby(h.product_id).shift().to_numpy()[pstart],
            "low": last._low.to_numpy() & ~is_first.to_numpy()[lstart],
            "low_at": h.valid_from.to_numpy()[lstart],
            "low_value": h.stock.to_numpy()[lstart],
        }
    )
    return out


def _price_when(h: pd.DataFrame, pairs: pd.DataFrame, at: str) -> np.ndarray:
    """Per row of ``pairs`` (``product_id``, column ``at``): the price in fen in force at that
    moment, or the first price Archer saw of the product when it saw none before."""
    if pairs.empty:
        return np.array([], dtype="float64")
    left = pairs[["product_id", at]].rename(columns={at: "_t"}).reset_index(names="_row")
    left["_t"] = pd.to_datetime(left["_t"]).astype("datetime64[us]")
    right = h[["product_id", "valid_from", "cents"]].rename(columns={"valid_from": "_t"})
    right["_t"] = right["_t"].astype("datetime64[us]")
    got = pd.merge_asof(
        left.sort_values("_t"), right.sort_values("_t"), on="_t", by="product_id"
    ).set_index("_row")["cents"]
    first = h.groupby("product_id").cents.first()
    out = got.reindex(range(len(pairs))).to_numpy(dtype="float64")
    fallback = pairs.product_id.map(first).to_numpy(dtype="float64")
    return np.where(np.isnan(out), fallback, out)


# -- the trigger ---------------------------------------------------------------------------------
def candidates(snap: Snapshot, d: Definition, now: datetime) -> pd.DataFrame:
    """The (customer, favourite note) runs the trigger selects at ``now``.

    Products come first: only those an import saw drop in price or run low within
    ``lookback`` are looked for among the favourites, so a round with no such change (most
    rounds: they run every minute) reads no favourites at all.
    """
    t = d.trigger
    share = parse_percent(t.favourite("min_drop"))
    low_stock = int(t.favourite("low_stock"))
    since_fav = naive_utc(now - parse_duration(t.favourite("favourited_within")))
    since_obs = pd.Timestamp(naive_utc(now - parse_duration(t.lookback)))
    empty = pd.DataFrame({"customer_id": [], "trigger_key": [], "entered_at": []})
    if not snap.wh.has_table(PRODUCT_HISTORY):
        return empty
    hist = snap.wh.table(PRODUCT_HISTORY)
    seen = hist.filter(
        (hist.valid_from >= ibis.literal(since_obs.to_pydatetime(), type="timestamp"))
        & (hist.valid_from <= snap.cut)
    )
    h = _history(snap, seen.select("product_id").distinct())
    if h.empty:
        return empty
    s = _spells(h, low_stock)
    s["drop"] = s.prev_cents.notna() & (s.cents < s.prev_cents) & (s.price_at >= since_obs)
    s["low"] = s.low & (s.low_at >= since_obs) & (low_stock > 0)
    s = s[s["drop"] | s["low"]]
    if s.empty:
        return empty
    favs = _favourites(snap, since_fav, sorted(s.product_id)).execute()
    j = favs.merge(s, on="product_id", how="inner")
    j["favourited_at"] = pd.to_datetime(j.favourited_at)
    parts = []
    # price: the latest change a drop, seen after the favourite, far enough under the price
    # when favourited
    p = j[j["drop"] & (j.price_at > j.favourited_at)].reset_index(drop=True)
    if not p.empty:
        ref = _price_when(h, p, "favourited_at")
        p = p[p.cents.to_numpy() <= ref * (1 - share) + 1e-6]
        parts.append(_keyed(p, "price", "cents", "price_at"))
    low = j[j["low"] & (j.low_at > j.favourited_at)]
    if not low.empty:
        parts.append(_keyed(low, "stock", "low_value", "low_at"))
    parts = [x for x in parts if not x.empty]
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True)
    return out[out.trigger_key.str.len() <= KEY_MAX].reset_index(drop=True)


def _keyed(df: pd.DataFrame, reason: str, value: str, at: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": df.customer_id.to_numpy(),
            "trigger_key": [
                make_key(reason, v, t, pid)
                for v, t, pid in zip(df[value], df[at], df.product_id, strict=True)
            ],
            "entered_at": pd.to_datetime(df[at]).to_numpy(),
        }
    )


def bought(snap: Snapshot, runs: list[tuple[str, str, datetime]]) -> set[tuple[str, str]]:
    """The (customer, key) of the runs ``(customer, key, entered_at)`` whose product the
    customer paid for after the run entered."""
    wanted = [(c, k, naive_utc(at), parse_key(k)) for c, k, at in runs]
    wanted = [(c, k, at, parsed[3]) for c, k, at, parsed in wanted if parsed]
    if not wanted:
        return set()
    lines = snap.paid_lines()
    lines = lines.filter(
        lines.customer_id.isin(sorted({w[0] for w in wanted}))
        & lines.product_id.isin(sorted({w[3] for w in wanted}))
    )
    got = lines.group_by("customer_id", "product_id").aggregate(last=lines.pay_time.max())
    latest = {
        (c, p): pd.Timestamp(t)
        for c, p, t in got.execute().itertuples(index=False)
        if not pd.isna(t)
    }
    out = set()
    for c, k, at, pid in wanted:
        t = latest.get((c, pid))
        if t is not None and t > pd.Timestamp(at):
            out.add((c, k))
    return out


# -- what a note may show --------------------------------------------------------------------------
FIELDS = templates.PRODUCT_FIELDS


def context(snap: Snapshot, runs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Per run (customer, key): the product it is about — its name, category and brand; the
    price now (``price``) and when the customer favourited it (``old_price``), the drop in
    percent (``drop_pct``); its stock."""
    parsed = [(c, k, parse_key(k)) for c, k in runs]
    parsed = [(c, k, p) for c, k, p in parsed if p]
    if not parsed:
        return {}
    pids = sorted({p[3] for _, _, p in parsed})
    custs = sorted({c for c, _, _ in parsed})
    prods = _products(snap, pids)
    e = snap.member_events()
    e = e.filter(
        (e.type == FAVOURITE) & e.customer_id.isin(custs) & e.product_id.isin(pids)
    ).select("customer_id", "product_id", "occurred_at")
    favs = e.execute()
    favs["occurred_at"] = pd.to_datetime(favs.occurred_at)
    h = _history(snap, pids)
    rows = pd.DataFrame(
        [(c, k, p[3], pd.Timestamp(p[2])) for c, k, p in parsed],
        columns=["customer_id", "key", "product_id", "observed"],
    )
    # the customer's latest favourite before the observation
    m = rows.merge(favs, on=["customer_id", "product_id"], how="left")
    m = m[m.occurred_at.isna() | (m.occurred_at < m.observed)]
    last = m.groupby(["customer_id", "key"], sort=False).occurred_at.max()
    pairs = zip(rows.customer_id, rows.key, strict=True)
    rows["favourited_at"] = [last.get(pair) for pair in pairs]
    known = rows.favourited_at.notna()
    ref = np.full(len(rows), np.nan)
    if known.any() and not h.empty:
        ref[known.to_numpy()] = _price_when(h, rows[known].reset_index(drop=True), "favourited_at")
    now_price = _price_when(h, rows, "observed") if not h.empty else np.full(len(rows), np.nan)
    out = {}
    for i, (c, k, p) in enumerate(parsed):
        facts = prods.get(p[3], {})
        new = p[1] if p[0] == "price" else now_price[i]
        stock = facts.get("stock")  # now; for a stock note, else the stock when it ran low
        if stock is None and p[0] == "stock":
            stock = p[1]
        out[(c, k)] = _fields(p[3], facts, p[0], new, ref[i], stock, rows.favourited_at.iloc[i])
    return out


def preview(snap: Snapshot, customer_id: str) -> dict[str, Any]:
    """The product a note would be about for ``customer_id``: their latest favourite, its price
    now against the price when they favourited it."""
    e = snap.member_events()
    e = e.filter((e.type == FAVOURITE) & (e.customer_id == customer_id) & e.product_id.notnull())
    last = e.order_by(ibis.desc(e.occurred_at)).limit(1).select("product_id", "occurred_at")
    got = last.execute()
    if got.empty:
        return {f: None for f in FIELDS} | {"name": "—", "reason": "price"}
    pid, fav_at = str(got.product_id.iloc[0]), pd.Timestamp(got.occurred_at.iloc[0])
    h = _history(snap, [pid])
    pair = pd.DataFrame({"product_id": [pid], "favourited_at": [fav_at]})
    old = _price_when(h, pair, "favourited_at")[0] if not h.empty else np.nan
    new = float(h.cents.iloc[-1]) if not h.empty else np.nan
    facts = _products(snap, [pid]).get(pid, {})
    return _fields(pid, facts, "price", new, old, facts.get("stock"), fav_at)


def _fields(pid: str, facts: dict, reason: str, new: float, old: float, stock: Any,
            fav_at: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "product_id": pid,
        "name": facts.get("name") or pid,
        "category": facts.get("category"),
        "brand": facts.get("brand"),
        "reason": reason,
        "price": _yuan(new),
        "old_price": _yuan(old),
        "drop_pct": _drop(old, new),
        "stock": None if stock is None or pd.isna(stock) else int(stock),
        "favourited_at": None
        if fav_at is None or pd.isna(fav_at)
        else pd.Timestamp(fav_at).isoformat(),
    }


def _products(snap: Snapshot, pids: list[str]) -> dict[str, dict]:
    """Name, category, brand and stock (now) of each product."""
    p = snap.products
    p = p.filter(p.product_id.isin(pids))
    got = p.select("product_id", "name", "category", "brand", "stock").execute()
    got = got.astype(object).where(got.notna(), None)
    return {str(r.pop("product_id")): r for r in got.to_dict("records")}


def _yuan(cents: float) -> float | None:
    return None if cents is None or np.isnan(cents) else round(float(cents) / 100, 2)


def _drop(old: float, new: float) -> int | None:
    """The drop from ``old`` to ``new`` (fen) in whole percent, rounded down (a 9.6% drop is
    not sold as 10%)."""
    if old is None or new is None or np.isnan(old) or np.isnan(new) or old <= 0:
        return None
    return max(int(np.floor((1 - new / old) * 100 + 1e-9)), 0)
