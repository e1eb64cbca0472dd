"""The catalogue as the shop exported it on earlier days: price drops and stock running low.

``products.<fmt>`` is the catalogue at the end of the period. ``catalogue/products-<day>.<fmt>``
are whole exports of it 28 and 14 days before the end (those inside the period). Imported in
day order, each at its day, and ``products`` last, they give the price and stock history that a
favourites campaign reads (:mod:`archer.ingest.history`):

* about one product in twenty, picked by weight of its favourites among those in stock, was
  dearer before: one drop (between the last export and the end) or two (one after each
  export), each of 10–30%, prices still ending in 9 (.90);
* stock only goes down: each export holds what was sold since (0–14 units a step), and a
  product that ends low (1–9 left) had at least 10 at the last export, so its low spell starts
  at the end.

The draws come from their own random stream, so the other files are what they were without it.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from archer.sample import data as sd
from archer.sample import io
from archer.sample.calendar import Calendar
from archer.sample.population import Products
from archer.schema import TABLES

DAYS_BEFORE_END = (28, 14)
DROP_SHARE = 0.05  # of the products
DROPS = (0.10, 0.15, 0.20, 0.25, 0.30)
LOW = 10  # stock under this is low (the favourites campaign's default)
SOLD_PER_STEP = 15  # units sold between two exports: 0 .. this - 1
FOLDER = "catalogue"


def product_columns(prods: Products, width: int, price: np.ndarray, stock: np.ndarray):
    """The products table's columns for the catalogue at given prices (fen) and stock."""
    return {
        "product_id": io.fixed_ids("P", np.arange(1, prods.n + 1), width),
        "name": pa.array(prods.name),
        "category": io.coded(prods.category, sd.CATEGORY_KEYS),
        "brand": io.coded(prods.brand, prods.brands),
        "list_price": io.money(price),
        "unit_cost": io.money(prods.cost),
        "stock": io.ints(stock),
    }


def export_days(cal: Calendar) -> list[date]:
    """The days of the earlier exports, oldest first."""
    days = {cal.end - timedelta(days=d) for d in DAYS_BEFORE_END}
    return sorted(d for d in days if d >= cal.start)


def write_catalogue(
    out: Path,
    fmt: str,
    rng: np.random.Generator,
    cal: Calendar,
    prods: Products,
    favourites: np.ndarray,
    width: int,
) -> dict:
    """Write the earlier exports; what they hold, for truth.json."""
    n = prods.n
    in_stock = np.flatnonzero(prods.stock > 0)
    weight = favourites[in_stock] + 1.0
    k = min(len(in_stock), max(3, round(n * DROP_SHARE)))
    chosen = np.sort(rng.choice(in_stock, size=k, replace=False, p=weight / weight.sum()))
    steps = rng.integers(1, 3, k)  # one drop or two
    cut = rng.choice(np.array(DROPS), size=(k, 2))
    sold = rng.integers(0, SOLD_PER_STEP, (2, n))
    days = export_days(cal)
    # back from the end: the export before each drop was dearer and held more stock
    price, stock = prods.price.copy(), prods.stock.copy()
    low_end = (stock > 0) & (stock < LOW)
    exports: list[tuple[np.ndarray, np.ndarray]] = []
    for j in range(len(days)):
        before = np.ceil((price[chosen] / (1 - cut[:, j]) + 10) / 100).astype(np.int64) * 100 - 10
        price = price.copy()
        price[chosen] = np.where(steps > j, before, price[chosen])
        stock = stock + sold[j]
        if j == 0:
            stock = np.where(low_end, np.maximum(stock, LOW), stock)
        exports.append((price, stock))
    folder = out / FOLDER
    files = []
    if days:
        folder.mkdir(exist_ok=True)
    for day, (p, s) in zip(days, reversed(exports), strict=True):
        name = f"products-{day.isoformat()}.{fmt}"
        io.write_table(folder / name, TABLES["products"].names, fmt,
                       product_columns(prods, width, p, s))  # fmt: skip
        files.append(f"{FOLDER}/{name}")
    ids = [f"P{i + 1:0{width}d}" for i in chosen]
    return {
        "files": files,
        "days": [d.isoformat() for d in days],
        "price_drops": {
            pid: int(min(s, len(days))) for pid, s in zip(ids, steps, strict=True) if days
        },
        "low_stock_at_end": int(low_end.sum()) if days else 0,
        "low_stock_under": LOW,
        "notes": "earlier exports of products; import them in day order, then products, for "
        "the price and stock history (price_drops: product → drops before the end)",
    }
