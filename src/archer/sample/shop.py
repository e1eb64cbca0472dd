"""The synthetic shop: a realistic, deterministic shop of any size, and the truth behind it.

``generate`` writes the six canonical tables plus ``truth.csv`` (each customer's latent
traits) and ``truth.json`` (population parameters and settings). Everything is vectorised
with NumPy; the same seed gives byte-identical files. Timestamps are shop-local
(Asia/Shanghai) and naive, as a shop platform's export writes them.

Purchases follow BG/NBD: after a first order a member makes repeat purchases at rate
λ ~ Gamma(r, α) per day (their number exact, their times bent by the festival calendar) and
drops out after each repeat purchase with p ~ Beta(a, b); each order's goods amount follows
Gamma-Gamma (Gamma(p, ν) with ν ~ Gamma(q, γ)). See docs/sample.md and
tests/test_sample_truth.py: fits on the paid orders recover the parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from archer.festivals import shop_closures
from archer.sample import data as sd
from archer.sample import io as io
from archer.sample.behaviour import EventMaker
from archer.sample.calendar import Calendar
from archer.sample.catalogue import product_columns, write_catalogue
from archer.sample.io import id_width
from archer.sample.orders import CANCELLED, Orders, Timeline, make_orders, timeline
from archer.sample.population import (
    Customers,
    PlaceTable,
    Products,
    customer_columns,
    make_customers,
    make_products,
)
from archer.schema import EVENT_TYPES, ORDER_STATUSES, TABLES

TIMEZONE = "Asia/Shanghai"
BGNBD, GAMMA_GAMMA = sd.BGNBD, sd.GAMMA_GAMMA
Progress = Callable[[str, float], None]


def _cols(table: str) -> list[str]:
    return TABLES[table].names


def generate(
    out_dir: Path,
    customers: int = 10_000,
    seed: int = 0,
    fmt: str = "csv",
    start: date = date(2024, 11, 1),
    end: date = date(2026, 10, 31),
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write the synthetic shop's tables and its truth to ``out_dir``; rows written per file."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown format {fmt!r}: expected 'csv' or 'parquet'")
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda stage, fraction: None)
    # the seventh stream, the catalogue snapshots, leaves the first six (and their files) as
    # they were before it
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(seed).spawn(7)]
    cal = Calendar.build(start, end)
    places = PlaceTable()
    base = (start - date(1970, 1, 1)).days * 86_400
    report("customers", 0.0)
    prods = make_products(rngs[0], max(200, customers // 500))
    cust = make_customers(rngs[1], cal, customers, places)
    report("orders", 0.1)
    tl = timeline(rngs[2], cal, cust)
    orders = make_orders(rngs[3], cal, cust, prods, tl, len(places.p), places.p)
    maker = EventMaker(rngs[4], cal, cust, prods, orders, tl)
    w = {
        "C": id_width(7, customers), "P": id_width(5, prods.n), "O": id_width(9, orders.n),
        "R": id_width(7, len(orders.refund_t)), "A": id_width(9, maker.n_anon),
    }  # fmt: skip
    path = {t: out / f"{t}.{fmt}" for t in TABLES}
    counts: dict[str, int] = {}
    report("write", 0.2)
    counts["customers"] = io.write_table(
        path["customers"],
        _cols("customers"),
        fmt,
        customer_columns(rngs[5], cal, cust, places, base, w["C"]),
    )
    counts["products"] = io.write_table(
        path["products"], _cols("products"), fmt,
        product_columns(prods, w["P"], prods.price, prods.stock),
    )  # fmt: skip
    counts["orders"] = io.write_table(
        path["orders"], _cols("orders"), fmt, _order_columns(orders, places, base, w)
    )
    counts["order_items"] = io.write_table(path["order_items"], _cols("order_items"), fmt, {
        "order_id": io.fixed_ids("O", orders.item_order + 1, w["O"]),
        "line_no": io.ints(orders.item_line),
        "product_id": io.fixed_ids("P", orders.item_product + 1, w["P"]),
        "quantity": io.ints(orders.item_qty),
        "unit_price": io.money(orders.item_price),
        "unit_cost": io.money(orders.item_cost),
    })  # fmt: skip
    counts["refunds"] = io.write_table(path["refunds"], _cols("refunds"), fmt, {
        "refund_id": io.fixed_ids("R", np.arange(1, len(orders.refund_t) + 1), w["R"]),
        "order_id": io.fixed_ids("O", orders.refund_order + 1, w["O"]),
        "refunded_at": io.timestamps(base, orders.refund_t),
        "amount": io.money(orders.refund_amount),
        "reason": io.coded(orders.refund_reason, sd.REFUND_REASONS),
    })  # fmt: skip
    report("events", 0.3)
    counts["events"], favourites = _write_events(maker, path["events"], fmt, base, w, report)
    snapshots = write_catalogue(out, fmt, rngs[6], cal, prods, favourites, w["P"])
    report("truth", 0.95)
    counts["truth"] = _write_truth(out, fmt, cal, cust, tl, prods, base, w, seed, counts, snapshots)
    report("done", 1.0)
    return counts


def _order_columns(
    orders: Orders, places: PlaceTable, base: int, w: dict[str, int]
) -> dict[str, pa.Array]:
    paid = orders.is_paid
    return {
        "order_id": io.fixed_ids("O", np.arange(1, orders.n + 1), w["O"]),
        "customer_id": io.fixed_ids("C", orders.cust + 1, w["C"], orders.cust >= 0),
        "created_at": io.timestamps(base, orders.created),
        "paid_at": io.timestamps(base, orders.paid, paid),
        "cancelled_at": io.timestamps(base, orders.cancelled, orders.status == CANCELLED),
        "status": io.coded(orders.status, ORDER_STATUSES),
        "goods_amount": io.money(orders.goods),
        "discount_amount": io.money(orders.discount),
        "shipping_fee": io.money(orders.shipping),
        "paid_amount": io.money(orders.goods - orders.discount + orders.shipping, paid),
        "coupon_code": io.coded(orders.coupon, orders.coupons),
        "channel": io.coded(orders.channel, sd.ORDER_CHANNELS),
        "province": io.coded(places.prov_code[orders.place], places.provinces),
        "city": io.coded(orders.place, places.city),
    }


EVENT_CHUNK = 100_000  # members per generation chunk (fixed: the output depends on it)
WRITE_ROWS = 2_000_000


def _write_events(maker: EventMaker, path: Path, fmt: str, base: int, w: dict[str, int],
                  report: Progress) -> tuple[int, np.ndarray]:  # fmt: skip
    """Generate events chunk by chunk, sort them by time, and write them in slices; the rows
    written and the favourites of each product."""
    n, v = maker.cust.n, maker.visitors
    chunks = []
    for lo in range(0, n, EVENT_CHUNK):
        hi = min(n, lo + EVENT_CHUNK)
        chunks.append(maker.make(lo, hi, lo * v // n, hi * v // n))
        report("events", 0.3 + 0.3 * hi / n)
    ev = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    del chunks
    fav = (ev["type"] == EVENT_TYPES.index("favorite")) & (ev["product"] >= 0)
    favourites = np.bincount(ev["product"][fav], minlength=maker.prods.n)
    order = np.argsort(ev["sec"], kind="stable")
    total = len(order)
    width = id_width(10, total)
    writer = io.TableWriter(path, _cols("events"), fmt)
    for lo in range(0, max(total, 1), WRITE_ROWS):
        sl = order[lo : lo + WRITE_ROWS]
        e = {k: a[sl] for k, a in ev.items()}
        props = io.coded(e["prop"], maker.props).cast(pa.string())
        checkout = e["order"] >= 0
        order_json = io.fixed_ids('{"order_id":"O', e["order"] + 1, w["O"], checkout, '"}')
        writer.write({
            "event_id": io.fixed_ids("E", np.arange(lo + 1, lo + len(sl) + 1), width),
            "customer_id": io.fixed_ids("C", e["customer"] + 1, w["C"], e["customer"] >= 0),
            "anonymous_id": io.fixed_ids("A", e["anon"], w["A"], e["anon"] >= 0),
            "type": io.coded(e["type"], EVENT_TYPES),
            "occurred_at": io.timestamps_s(base, e["sec"]),
            "product_id": io.fixed_ids("P", e["product"] + 1, w["P"], e["product"] >= 0),
            "category": io.coded(e["category"], sd.CATEGORY_KEYS),
            "query": io.coded(e["query"], maker.queries),
            "source": io.coded(e["source"], maker.sources),
            "medium": io.coded(e["medium"], maker.mediums),
            "campaign": io.coded(e["campaign"], maker.campaigns),
            "properties": pc.if_else(pa.array(checkout), order_json, props),
        })  # fmt: skip
        report("events", 0.6 + 0.35 * min(1.0, (lo + len(sl)) / max(total, 1)))
    return writer.close(), favourites


def _write_truth(
    out: Path,
    fmt: str,
    cal: Calendar,
    cust: Customers,
    tl: Timeline,
    prods: Products,
    base: int,
    w: dict[str, int],
    seed: int,
    counts: dict[str, int],
    catalogue: dict | None = None,
) -> int:
    """truth.csv: each member's latent traits; truth.json: the population and settings."""
    n = cust.n
    first = ~np.isnan(tl.first)
    table = {
        "customer_id": io.fixed_ids("C", np.arange(1, n + 1), w["C"]),
        "anonymous_id": io.fixed_ids("A", cust.anon, w["A"], cust.anon >= 0),
        "acquisition_channel": io.coded(cust.channel, sd.CHANNELS),
        "registered_at": io.timestamps(base, cust.reg),
        "lam": pa.array(cust.lam),
        "p_dropout": pa.array(cust.pdrop),
        "nu": pa.array(cust.nu),
        "mean_spend": pa.array(np.round(cust.mean_spend, 2)),
        "preferred_category": io.coded(cust.pref, sd.CATEGORY_KEYS),
        "price_band": io.coded(cust.band, sd.TIERS),
        "discount_sensitive": io.bools(cust.discount),
        "festival_buyer": io.bools(cust.festival),
        "basket_size": pa.array(np.round(cust.basket, 3)),
        "engagement": pa.array(np.round(cust.engagement, 3)),
        "converts": io.bools(cust.converts),
        "first_purchase_at": io.timestamps(base, tl.first, first),
        "n_purchases": io.ints(tl.n_purchases),
        "churned": io.bools(tl.churned),
        "churned_at": io.timestamps(base, tl.churned_at, tl.churned),
        "alive_at_end": io.bools(first & ~tl.churned),
    }
    rows = io.write_table(out / "truth.csv", list(table), "csv", table)
    settings = {
        "seed": seed, "start": cal.start.isoformat(), "end": cal.end.isoformat(),
        "timezone": TIMEZONE, "time_unit": "day", "n": n, "customers": n,
        "products": prods.n,
        "format": fmt,
        "bgnbd": dict(BGNBD), "gamma_gamma": dict(GAMMA_GAMMA),
        "notes": {
            "lam": "lambda: repeat purchases per day after the first, ~ Gamma(r, alpha); "
                   "their number is Poisson(lambda * days), their times bent by the festival "
                   "calendar (festival buyers buy almost only in windows)",
            "p_dropout": "probability of dropping out after each repeat purchase (not the "
                         "first, as in BG/NBD), ~ Beta(a, b)",
            "mean_spend": "expected goods amount per order (yuan) = p / nu, nu ~ Gamma(q, "
                          "gamma); each order's goods amount ~ Gamma(p, nu)",
            "n_purchases": "purchases drawn in the period (first included), paid or not",
            "timestamps": "shop-local time (Asia/Shanghai), naive",
        },
        "festivals": cal.windows_json(),
        "shop_closures": [{"start": a.isoformat(), "end": b.isoformat()}
                          for a, b in shop_closures(cal.start, cal.end)],
        "categories": list(sd.CATEGORY_KEYS),
        "price_bands": list(sd.TIERS),
        "channels": {ch: {"share": sd.CHANNEL_SHARE[i], "convert": sd.CHANNEL_CONVERT[i],
                          "discount_sensitive": sd.CHANNEL_DISCOUNT[i],
                          "festival_buyer": sd.CHANNEL_FESTIVAL[i],
                          "lambda_tilt": sd.CHANNEL_LAM_TILT[i],
                          "dropout_tilt": sd.CHANNEL_DROP_TILT[i]}
                     for i, ch in enumerate(sd.CHANNELS)},
        "rows": counts,
        **({"catalogue": catalogue} if catalogue else {}),
    }  # fmt: skip
    (out / "truth.json").write_text(
        json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return rows
