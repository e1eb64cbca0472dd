"""A stand-in for Hillstrom's MineThatData E-Mail Analytics challenge file (2008), built from
its published per-arm aggregates — not the real file, which is not in ../shared/data.

Per arm (``segment``): customers, buyers (``conversion`` = 1) and total ``spend``, exactly as
published. Rows are in a fixed interleaved order; each buyer's spend is spread
deterministically from about a tenth to twice the arm's spend per buyer, scaled so that the
arm's total is exact to the cent. Conversion and spend per customer of each arm are therefore
the published ones; the spread of spend among buyers is made up (it moves the spend intervals,
not the means).
"""

from __future__ import annotations

import csv
from decimal import Decimal
from itertools import zip_longest
from pathlib import Path

# arm → (customers, buyers, spend): the published figures
ARMS = {
    "Mens E-Mail": (21_307, 267, Decimal("30311.69")),
    "Womens E-Mail": (21_387, 189, Decimal("23038.11")),
    "No E-Mail": (21_306, 122, Decimal("13908.33")),
}
CONTROL = "No E-Mail"


def spends(buyers: int, total: Decimal) -> list[Decimal]:
    """``buyers`` amounts summing to ``total`` exactly, spread by a fixed arithmetic rule."""
    weights = [2999 + (i * 7919) % 47000 for i in range(buyers)]  # cents, 29.99 … ~499.98
    cents = int(total * 100)
    scaled = [w * cents // sum(weights) for w in weights]
    for i in range(cents - sum(scaled)):  # the cents lost to rounding down, one each
        scaled[i % buyers] += 1
    return [Decimal(c) / 100 for c in scaled]


def rows() -> list[tuple[int, str, int, Decimal]]:
    """(customer, segment, conversion, spend) for all 64,000 customers."""
    per_arm = []
    for arm, (n, buyers, total) in ARMS.items():
        amounts = spends(buyers, total)
        # buyers spaced evenly through the arm's customers
        at = {round(k * n / buyers) for k in range(buyers)}
        assert len(at) == buyers
        out, it = [], iter(amounts)
        for j in range(n):
            out.append((arm, 1, next(it)) if j in at else (arm, 0, Decimal("0.00")))
        per_arm.append(out)
    interleaved = [r for group in zip_longest(*per_arm) for r in group if r is not None]
    return [(i + 1, *r) for i, r in enumerate(interleaved)]


def write_csv(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["customer", "segment", "conversion", "spend"])
        for customer, arm, conv, spend in rows():
            w.writerow([customer, arm, conv, f"{spend:.2f}"])
    return path


def write_parquet(path: Path) -> Path:
    import pandas as pd

    frame = pd.DataFrame(rows(), columns=["customer", "segment", "conversion", "spend"])
    frame["spend"] = frame["spend"].astype(float)
    frame.to_parquet(path, index=False)
    return path
