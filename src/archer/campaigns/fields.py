"""What a message may show about its customer and order, read from the warehouse when the
message is planned and kept with it, so a worker sends it with nothing but the store."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import pandas as pd
import pyarrow as pa

from archer.audiences.catalog import CUSTOMER_FIELDS
from archer.campaigns.definition import Definition, contents
from archer.customers.profile import PROFILE_COLUMNS
from archer.facts import Snapshot, due_amount
from archer.messaging import templates
from archer.schema import CUSTOMER_POINTS, PROFILE
from archer.warehouse import Warehouse

CONTACT = ("name", "email", "phone", "email_opt_in", "sms_opt_in")
POINTS_FIELDS = ("points_balance", "points_expiring_30d")  # joined in by the audiences' base
# lists read from the shop's facts at the round's instant: products bought together with what
# the customer bought (the basket affinities); the goods in their open cart, with stock
PRODUCT_FIELDS = ("recommended", "cart_items")
KNOWN = tuple(
    dict.fromkeys((*PROFILE_COLUMNS, *CUSTOMER_FIELDS, *POINTS_FIELDS, *PRODUCT_FIELDS, "name"))
)
RECOMMENDED = 3  # products a message may show
CART_ITEMS = 20  # carted products a message may show
ORDER_LINES = 20  # lines of an order a message may show
CHUNK = 5000
WECOM_ID = "wecom_id"  # the customer's WeCom external_userid, read from their attributes
CUSTOMER_CHUNK = 50_000  # customers per query: joined, not listed


def used_fields(d: Definition) -> set[str]:
    """The customer fields the definition's templates show."""
    out: set[str] = set()
    for _, part, text in contents(d):
        out |= templates.check(text, html=part == "html", customer_fields=KNOWN)
    return out


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.isoformat()
    if isinstance(v, datetime | date):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def customer_context(
    wh: Warehouse, ids: list[str], fields: Iterable[str], snap: Snapshot | None = None
) -> dict[str, dict]:
    """Per customer id: the contact fields and ``fields`` (profile or customer columns, and the
    product lists of :data:`PRODUCT_FIELDS` as of ``snap``: the round's instant)."""
    wanted = list(dict.fromkeys((*CONTACT, *fields)))
    c = wh.table("customers")
    built = wh.has_table(PROFILE)
    from_profile = [f for f in wanted if f not in CUSTOMER_FIELDS and f in PROFILE_COLUMNS]
    from_customers = [f for f in wanted if f in c.columns and f not in from_profile]
    out: dict[str, dict] = {}
    for i in range(0, len(ids), CUSTOMER_CHUNK):
        part = ids[i : i + CUSTOMER_CHUNK]
        # a join with the ids as a table: an IN list of thousands costs more to compile than
        # to run
        wanted_ids = ibis.memtable(pd.DataFrame({"_wid": pd.Series(part, dtype="object")}))
        t = c.join(wanted_ids, c.customer_id == wanted_ids._wid).select(
            "customer_id", *from_customers
        )
        if built and from_profile:
            p = wh.table(PROFILE)
            p = p.select(_pid=p.customer_id, **{f: p[f] for f in from_profile})
            t = t.left_join(p, t.customer_id == p._pid).drop("_pid")
        points = [f for f in wanted if f in POINTS_FIELDS]
        if points:
            t = _with_points(wh, t, points)
        out.update(_records(t.to_pyarrow()))
    products = [f for f in PRODUCT_FIELDS if f in wanted]
    if products and ids:
        snap = snap or Snapshot.at(wh, None, ZoneInfo("UTC"))  # as of the latest activity
        for f in products:
            got = (recommended if f == "recommended" else cart_items)(snap, ids)
            for cid, row in out.items():
                row[f] = got.get(cid, [])
    return out


def _stock(v: Any) -> int | None:
    v = _plain(v)
    return None if v is None else int(v)


def _only(t, ids: list[str]):
    """``t`` cut to the customers ``ids`` (a join: a long IN list compiles slowly)."""
    w = ibis.memtable(pd.DataFrame({"_wid": pd.Series(ids, dtype="object")}))
    return t.join(w, t.customer_id == w._wid).drop("_wid")


def recommended(snap: Snapshot, ids: list[str]) -> dict[str, list[dict]]:
    """Per customer: up to :data:`RECOMMENDED` products, one from each category the basket
    affinities recommend to them (``customer_recommendations`` of the last build: categories
    they never bought that buyers of their categories buy with lift above 1, best first) —
    the category's best seller (units paid) that is not out of stock."""
    wh = snap.wh
    if not wh.has_table("customer_recommendations"):
        return {}
    rec = wh.table("customer_recommendations")
    rec = _only(rec.filter(rec["rank"] <= RECOMMENDED), ids)
    lines = snap.paid_lines()
    sold = lines.group_by("product_id").aggregate(units=lines.quantity.sum())
    p = snap.products
    p = p.filter(p.stock.isnull() | (p.stock > 0))
    p = p.left_join(sold, p.product_id == sold.product_id).select(
        p.product_id, p.name, p.category, p.stock, units=sold.units.fill_null(0)
    )
    best = p.mutate(
        _r=ibis.row_number().over(group_by="category", order_by=[ibis.desc("units"), "product_id"])
    )
    best = best.filter(best._r == 0).select(
        _cat="category", product_id="product_id", name="name", stock="stock"
    )
    j = rec.join(best, rec.category == best._cat)
    df = j.select("customer_id", "rank", "category", "because", "product_id", "name", "stock")
    out: dict[str, list[dict]] = {}
    for r in df.order_by(["customer_id", "rank"]).execute().itertuples(index=False):
        out.setdefault(str(r.customer_id), []).append(
            {"product_id": str(r.product_id), "name": _plain(r.name) or str(r.product_id),
             "category": _plain(r.category), "because": _plain(r.because),
             "stock": _stock(r.stock)}
        )  # fmt: skip
    return out


def cart_items(snap: Snapshot, ids: list[str]) -> dict[str, list[dict]]:
    """Per customer: the products in their open cart (added since their last order, at the
    snapshot's instant), latest first, with the catalogue's name, category and stock (None
    when the catalogue does not say)."""
    e = snap.member_events()
    adds = _only(e.filter((e.type == "cart_add") & e.product_id.notnull()), ids)
    o = _only(snap.orders, ids)
    last = o.group_by(_c="customer_id").aggregate(_last=o.created_at.max())
    j = adds.left_join(last, adds.customer_id == last._c)
    j = j.filter(j._last.isnull() | (j.occurred_at > j._last))
    carted = j.group_by("customer_id", "product_id").aggregate(at=j.occurred_at.max())
    p = snap.products.select(_pid="product_id", name="name", category="category", stock="stock")
    k = carted.left_join(p, carted.product_id == p._pid)
    df = k.select("customer_id", "product_id", "name", "category", "stock", "at").execute()
    out: dict[str, list[dict]] = {}
    df = df.sort_values(["customer_id", "at", "product_id"], ascending=[True, False, True])
    for r in df.itertuples(index=False):
        items = out.setdefault(str(r.customer_id), [])
        if len(items) < CART_ITEMS:
            items.append({"product_id": str(r.product_id),
                          "name": _plain(r.name) or str(r.product_id),
                          "category": _plain(r.category), "stock": _stock(r.stock)})  # fmt: skip
    return out


def _with_points(wh: Warehouse, t, names: list[str]):
    """``t`` with the customers' points as the last build copied them (0 when none)."""
    if not wh.has_table(CUSTOMER_POINTS):
        return t.mutate(**{n: ibis.literal(0, "int64") for n in names})
    pts = wh.table(CUSTOMER_POINTS)
    pts = pts.select(_ptid=pts.customer_id, **{f"_{n}": pts[n] for n in names})
    j = t.left_join(pts, t.customer_id == pts._ptid)
    return j.mutate(**{n: j[f"_{n}"].fill_null(0) for n in names}).drop(
        "_ptid", *(f"_{n}" for n in names)
    )


def with_wecom_ids(ctx: dict[str, dict], key: str) -> None:
    """Replace each customer's ``attributes`` (JSON text) by the one value a WeCom message
    needs: ``attributes[key]``, the external_userid, as ``wecom_id``."""
    for c in ctx.values():
        raw = c.pop("attributes", None)
        try:
            attrs = json.loads(raw) if isinstance(raw, str) and len(raw) <= 100_000 else raw
        except ValueError:
            attrs = None
        value = attrs.get(key) if isinstance(attrs, dict) else None
        c[WECOM_ID] = value if isinstance(value, str) and 0 < len(value) <= 200 else None


def _records(frame: pa.Table) -> dict[str, dict]:
    """Per customer id, its row as plain values, a column at a time (text, flags and whole
    numbers are plain already)."""
    plain = (pa.types.is_string, pa.types.is_large_string, pa.types.is_boolean,
             pa.types.is_integer)  # fmt: skip
    cols: dict[str, list] = {}
    for name, typ in zip(frame.schema.names, frame.schema.types, strict=True):
        values = frame.column(name).to_pylist()
        if name != "customer_id" and not any(is_(typ) for is_ in plain):
            values = [_plain(v) for v in values]
        cols[name] = values
    ids = cols.pop("customer_id")
    names = list(cols)
    rows = zip(*cols.values(), strict=True) if names else ([] for _ in ids)
    return {
        str(cid): dict(zip(names, row, strict=True)) for cid, row in zip(ids, rows, strict=True)
    }


def product_context(snap: Snapshot, runs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Per run (customer, key) of a favourites flow: ``product`` — its name, ``price`` now and
    ``old_price`` when favourited, ``drop_pct``, ``stock`` (:func:`favourites.context`); a run
    whose key names no product gets every field empty."""
    from archer.campaigns.favourites import FIELDS, context

    got = context(snap, runs)
    return {run: got.get(run) or dict.fromkeys(FIELDS) for run in runs}


def order_context(wh: Warehouse, order_ids: list[str]) -> dict[str, dict]:
    """Per order id: its id, time, amount, number of items and ``lines`` — its first
    :data:`ORDER_LINES` lines with the catalogue's name and stock now (None when the catalogue
    does not say), so a reminder can name a product running low."""
    o = wh.table("orders")
    i = wh.table("order_items")
    out: dict[str, dict] = {}
    for k in range(0, len(order_ids), CHUNK):
        part = order_ids[k : k + CHUNK]
        items = i.filter(i.order_id.isin(part))
        n = items.group_by(_oid=items.order_id).aggregate(items=items.quantity.sum())
        oo = o.filter(o.order_id.isin(part))
        j = oo.left_join(n, oo.order_id == n._oid)
        amount = due_amount(j)
        frame = j.select(
            "order_id",
            "created_at",
            amount=amount.round(2),
            goods_amount=j.goods_amount.cast("float64"),
            items=j["items"].fill_null(0),
        ).execute()
        lines = _order_lines(wh, items)
        for rec in frame.to_dict("records"):
            oid = str(rec["order_id"])
            out[oid] = {k2: _plain(v) for k2, v in rec.items()}
            out[oid]["lines"] = lines.get(oid, [])
    return out


def _order_lines(wh: Warehouse, items) -> dict[str, list[dict]]:
    """Per order: its lines (by line number) with product id, name, quantity and stock."""
    if wh.has_table("products"):
        p = wh.table("products").select(_pid="product_id", name="name", stock="stock")
        j = items.left_join(p, items.product_id == p._pid)
        df = j.select("order_id", "line_no", "product_id", "quantity", "name", "stock").execute()
    else:
        df = items.select("order_id", "line_no", "product_id", "quantity").execute()
        df["name"], df["stock"] = None, None
    out: dict[str, list[dict]] = {}
    for r in df.sort_values(["order_id", "line_no"]).itertuples(index=False):
        got = out.setdefault(str(r.order_id), [])
        if len(got) < ORDER_LINES:
            got.append({"product_id": _plain(r.product_id),
                        "name": _plain(r.name) or _plain(r.product_id),
                        "quantity": _plain(r.quantity), "stock": _stock(r.stock)})  # fmt: skip
    return out
