"""The pandas peer of ``archer import orders``: the script a careful analyst would write.

It does what archer's import does to an orders export, in the usual pandas idiom:
read every cell as text, parse the shop-local times (ISO format) and the amounts,
flag rows with unreadable or impossible values, negative fees, unknown statuses,
paid or cancelled before created, drop identical copies of a row and refuse the ids
given twice with other values, convert Asia/Shanghai to UTC, put provinces, cities
and statuses in canonical form, write the good rows to Parquet and the bad ones,
with their line and a reason, to a CSV. Money stays float64 (archer: DECIMAL(18,2)).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from common.archer_calls import places_csv

TIMEZONE = "Asia/Shanghai"
TIMES = ("created_at", "paid_at", "cancelled_at")
MONEY = ("goods_amount", "discount_amount", "shipping_fee", "paid_amount")
NONNEGATIVE = ("discount_amount", "shipping_fee")
STATUS = {
    "created": "created", "等待买家付款": "created", "待付款": "created",
    "paid": "paid", "买家已付款，等待卖家发货": "paid", "已付款": "paid",
    "shipped": "shipped", "卖家已发货，等待买家确认": "shipped", "已发货": "shipped",
    "completed": "completed", "交易成功": "completed", "已完成": "completed",
    "cancelled": "cancelled", "canceled": "cancelled", "交易关闭": "cancelled",
    "refunded": "refunded", "退款成功": "refunded", "已退款": "refunded",
}  # fmt: skip


def _places() -> tuple[dict[str, str], dict[str, str]]:
    """Province and city names (Chinese or English) to canonical English."""
    p = pd.read_csv(places_csv(), dtype=str)
    province = dict(zip(p.province_zh, p.province, strict=True))
    province.update(zip(p.province, p.province, strict=True))
    city = dict(zip(p.city_zh, p.city, strict=True))
    city.update(zip(p.city, p.city, strict=True))
    return province, city


def check_orders(csv: Path, good_out: Path, bad_out: Path) -> tuple[int, int, int]:
    """Check ``csv``; write good rows to ``good_out`` (Parquet), bad rows to ``bad_out``.

    Returns (rows read, rows kept, rows rejected).
    """
    # Only an empty cell is missing: pandas would also read "N/A", "NA", "null" … as missing.
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    n = len(raw)
    raw.index = pd.RangeIndex(2, n + 2, name="line")  # the header is line 1

    # Identical copies of a row are one row; an id given again with other cells is
    # ambiguous, and every row with it is refused.
    repeated_id = raw.order_id.duplicated(keep=False)
    copies = raw[repeated_id].duplicated(keep="first").reindex(raw.index, fill_value=False)
    df = raw[~copies]
    conflict = df.order_id.duplicated(keep=False)

    problems: dict[str, pd.Series] = {"order_id given more than once": conflict}
    out = pd.DataFrame(index=df.index)
    out["order_id"] = df.order_id.str.strip()
    out["customer_id"] = df.customer_id.str.strip()
    problems["order_id is missing"] = out.order_id.isna()

    low, high = pd.Timestamp("1990-01-01"), pd.Timestamp(datetime.now() + timedelta(days=1))
    for c in TIMES:
        local = pd.to_datetime(df[c], format="%Y-%m-%d %H:%M:%S", errors="coerce")
        problems[f"{c} is not a date/time"] = df[c].notna() & local.isna()
        problems[f"{c} is outside the possible range"] = (local < low) | (local > high)
        out[c] = local.dt.tz_localize(TIMEZONE).dt.tz_convert("UTC").dt.tz_localize(None)
    problems["created_at is missing"] = df.created_at.isna()
    problems["paid_at is before created_at"] = out.paid_at < out.created_at
    problems["cancelled_at is before created_at"] = out.cancelled_at < out.created_at

    status = df.status.str.strip().str.lower().map(STATUS)
    problems["status is unknown"] = df.status.notna() & status.isna()
    derived = np.where(
        out.cancelled_at.notna(), "cancelled", np.where(out.paid_at.notna(), "paid", "created")
    )
    out["status"] = status.fillna(pd.Series(derived, index=df.index))

    for c in MONEY:
        amount = pd.to_numeric(df[c], errors="coerce")
        problems[f"{c} is not an amount"] = df[c].notna() & amount.isna()
        if c in NONNEGATIVE:
            problems[f"{c} is negative"] = amount < 0
        out[c] = amount
    out["coupon_code"] = df.coupon_code
    out["channel"] = df.channel
    province, city = _places()
    out["province"] = df.province.map(province).fillna(df.province)
    out["city"] = df.city.map(city).fillna(df.city)

    bad = np.logical_or.reduce([p.to_numpy() for p in problems.values()])
    out[~bad].to_parquet(good_out, index=False)

    rejected = df[bad].copy()
    reasons = pd.DataFrame({k: v[bad] for k, v in problems.items()})
    why = [
        "; ".join(name for name, hit in zip(reasons.columns, row, strict=True) if hit)
        for row in reasons.itertuples(index=False)
    ]
    rejected.insert(0, "reason", why)
    rejected.to_csv(bad_out)
    return n, int((~bad).sum()), int(bad.sum())
