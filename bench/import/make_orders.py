"""Write a realistic orders CSV of N lines for the import benchmark, the same bytes every time.

The file has the canonical columns of ``archer.schema.ORDERS`` as a shop platform
exports them: shop-local times ``YYYY-MM-DD HH:MM:SS`` (Asia/Shanghai), amounts with
two decimals, half the rows with Chinese province, city and status words. About 0.1%
of the rows are bad on purpose: unreadable or impossible dates, amounts that are not
numbers, a negative shipping fee, and order ids given twice (as an identical copy or
with other values).

Usage: ``.venv/bin/python bench/import/make_orders.py OUT.csv --lines 10000000``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import duckdb

from common.archer_calls import places_csv

# Shares of rows spoiled on purpose (drawn independently; a row can have several faults).
BAD_CREATED = 0.0004  # unreadable, impossible or missing created_at
BAD_PAID = 0.0001  # paid_at in a format no shop writes
BAD_AMOUNT = 0.0003  # goods_amount that is not a number
NEGATIVE_FEE = 0.0001  # shipping_fee below zero
DUPLICATE = 0.0002  # the order id of the line before (half identical copies, half not)

# Rows are pure functions of their number: a small integer hash (multiply, xor-shift,
# multiply, all below 2^63) instead of random(), which is not repeatable across threads.
_SETUP = """
CREATE OR REPLACE TEMP MACRO mix(x, k) AS (
    (xor(((x + 1) * (1103515245 + k * 2654435)) % 2147483647,
         (((x + 1) * (1103515245 + k * 2654435)) % 2147483647) >> 11) * 69069 + k)
    % 2147483647
);
CREATE OR REPLACE TEMP MACRO unif(x, k) AS mix(x, k) / 2147483647.0;
CREATE OR REPLACE TEMP MACRO pick(x, k, words) AS words[1 + mix(x, k) % len(words)];
"""

# Places weighted by their share of shoppers: each place repeated ceil(weight) times.
_PLACES = """
CREATE OR REPLACE TEMP TABLE places_w AS
SELECT row_number() OVER (ORDER BY province, city, n) - 1 AS k,
       province, province_zh, city, city_zh
FROM (SELECT *, unnest(range(CAST(ceil(weight) AS BIGINT))) AS n FROM places_src)
"""

_ROWS = """
WITH ids AS (
    SELECT range AS i,
           i > 0 AND unif(range, 1) < $dup AS dup,
           unif(range, 2) < 0.5 AS identical
    FROM range($lines)
),
src AS (
    -- An identical copy takes every cell of the line before; a conflicting one only its id.
    SELECT i,
           CASE WHEN dup THEN i - 1 ELSE i END AS id_src,
           CASE WHEN dup AND identical THEN i - 1 ELSE i END AS v
    FROM ids
),
base AS (
    SELECT i, id_src, v,
           unif(v, 3) < 0.5 AS zh,
           TIMESTAMP '2024-11-01 00:00:00'
               + to_seconds(CAST(unif(v, 4) * 729 * 86400 AS BIGINT)) AS created,
           unif(v, 5) AS st,
           9.9 + floor(pow(unif(v, 6), 2) * 200000) / 100 AS goods,
           CASE WHEN unif(v, 7) < 0.4 THEN 0
                ELSE floor((9.9 + floor(pow(unif(v, 6), 2) * 200000) / 100)
                           * (0.05 + 0.25 * unif(v, 8))) END AS discount,
           CASE WHEN unif(v, 9) < 0.7 THEN 0
                ELSE [6, 8, 10, 12, 15][1 + mix(v, 10) % 5] END AS fee,
           unif(v, 11) < $bad_created AS bad_created,
           unif(v, 12) < $bad_paid AS bad_paid,
           unif(v, 13) < $bad_amount AS bad_amount,
           unif(v, 14) < $negative_fee AS negative_fee,
           mix(v, 15) % (SELECT count(*) FROM places_w) AS place
    FROM src
),
typed AS (
    SELECT *,
           CASE WHEN st < 0.06 THEN 'created' WHEN st < 0.14 THEN 'cancelled'
                WHEN st < 0.22 THEN 'paid' WHEN st < 0.32 THEN 'shipped'
                WHEN st < 0.97 THEN 'completed' ELSE 'refunded' END AS status_en,
           created + to_seconds(30 + mix(v, 16) % 1800) AS paid,
           created + to_seconds(600 + mix(v, 17) % 86400) AS cancelled
    FROM base
)
SELECT t.i,
       'O' || lpad(CAST(id_src + 1 AS VARCHAR), 10, '0') AS order_id,
       CASE WHEN unif(v, 18) < 0.03 THEN NULL
            ELSE 'C' || lpad(CAST(1 + mix(v, 19) % greatest($lines // 5, 1) AS VARCHAR), 9, '0')
       END AS customer_id,
       CASE WHEN NOT bad_created THEN strftime(created, '%Y-%m-%d %H:%M:%S')
            ELSE pick(v, 20, ['not a date', '2025-02-30 10:00:00', NULL, '1899-12-31 23:59:59'])
       END AS created_at,
       CASE WHEN status_en IN ('created', 'cancelled') THEN NULL
            WHEN bad_paid THEN strftime(paid, '%d.%m.%y %H.%M')
            ELSE strftime(paid, '%Y-%m-%d %H:%M:%S') END AS paid_at,
       CASE WHEN status_en = 'cancelled' THEN strftime(cancelled, '%Y-%m-%d %H:%M:%S')
            ELSE NULL END AS cancelled_at,
       CASE WHEN NOT zh THEN status_en
            WHEN status_en = 'created' THEN '等待买家付款'
            WHEN status_en = 'cancelled' THEN '交易关闭'
            WHEN status_en = 'paid' THEN '买家已付款，等待卖家发货'
            WHEN status_en = 'shipped' THEN '卖家已发货，等待买家确认'
            WHEN status_en = 'completed' THEN '交易成功'
            ELSE '退款成功' END AS status,
       CASE WHEN bad_amount THEN pick(v, 21, ['N/A', '12.3.4', '待定', '--'])
            ELSE CAST(CAST(goods AS DECIMAL(12, 2)) AS VARCHAR) END AS goods_amount,
       CAST(CAST(discount AS DECIMAL(12, 2)) AS VARCHAR) AS discount_amount,
       CAST(CAST(CASE WHEN negative_fee THEN -fee - 5 ELSE fee END AS DECIMAL(12, 2)) AS VARCHAR)
           AS shipping_fee,
       CASE WHEN status_en IN ('created', 'cancelled') THEN NULL
            ELSE CAST(CAST(goods - discount + fee AS DECIMAL(12, 2)) AS VARCHAR)
       END AS paid_amount,
       CASE WHEN discount > 0 AND unif(v, 22) < 0.6
            THEN pick(v, 23, ['NEW10', 'VIP20', 'DOUBLE11', '618SALE', 'SPRING5', 'FREESHIP'])
            ELSE NULL END AS coupon_code,
       pick(v, 24, ['tmall', 'tmall', 'jd', 'douyin', 'wechat', 'app', 'web', 'pinduoduo'])
           AS channel,
       CASE WHEN zh THEN p.province_zh ELSE p.province END AS province,
       CASE WHEN zh THEN p.city_zh ELSE p.city END AS city,
       bad_created OR bad_amount OR negative_fee
           OR (bad_paid AND status_en NOT IN ('created', 'cancelled')) AS bad,
       v
FROM typed t JOIN places_w p ON p.k = t.place
"""

COLUMNS = (
    "order_id, customer_id, created_at, paid_at, cancelled_at, status, goods_amount, "
    "discount_amount, shipping_fee, paid_amount, coupon_code, channel, province, city"
)

# What a validating import should reject: each distinct (id, content) line that is bad
# or whose id comes with other content too. Identical copies count once.
_EXPECTED = """
WITH d AS (SELECT order_id, v, bool_or(bad) AS bad, count(*) AS n FROM rows GROUP BY ALL),
k AS (SELECT order_id, count(*) > 1 AS conflict FROM d GROUP BY ALL)
SELECT count(*) FILTER (WHERE bad OR conflict) AS rejected,
       sum(n - 1) FILTER (WHERE NOT conflict) AS repeats,
       sum(n) FILTER (WHERE conflict) AS conflict_rows
FROM d JOIN k USING (order_id)
"""


@dataclass
class OrdersFile:
    path: Path
    lines: int  # data lines, without the header
    bytes: int
    expected_rejected: int  # rows a validating import should refuse
    expected_repeats: int  # identical copies a validating import should take once
    seconds: float


def make_orders(
    path: Path, lines: int, *, threads: int | None = None, clean: bool = False
) -> OrdersFile:
    """Write ``lines`` orders (plus a header) to ``path`` as UTF-8 CSV; ``clean``: with no
    bad row and no id given twice (the same rows otherwise)."""
    if lines < 1:
        raise ValueError(f"lines must be at least 1, got {lines}")
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        if threads:
            con.execute("SET threads = ?", [threads])
        con.execute(_SETUP)
        con.read_csv(str(places_csv())).create("places_src")
        con.execute(_PLACES)
        rates = {
            "dup": DUPLICATE,
            "bad_created": BAD_CREATED,
            "bad_paid": BAD_PAID,
            "bad_amount": BAD_AMOUNT,
            "negative_fee": NEGATIVE_FEE,
        }
        params = {"lines": lines} | {k: 0.0 if clean else v for k, v in rates.items()}
        con.execute("CREATE TEMP TABLE rows AS " + _ROWS, params)
        # ORDER BY makes the bytes repeatable whatever the thread count.
        con.sql(f"SELECT {COLUMNS} FROM rows ORDER BY i").write_csv(str(path), header=True)
        rejected, repeats, _ = con.execute(_EXPECTED).fetchone()
    finally:
        con.close()
    return OrdersFile(
        path=path,
        lines=lines,
        bytes=path.stat().st_size,
        expected_rejected=int(rejected or 0),
        expected_repeats=int(repeats or 0),
        seconds=round(time.perf_counter() - started, 2),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="CSV file to write")
    ap.add_argument("--lines", type=int, default=10_000_000, help="data lines (default 10M)")
    ap.add_argument("--clean", action="store_true", help="no bad rows and no repeated ids")
    args = ap.parse_args()
    f = make_orders(args.out, args.lines, clean=args.clean)
    print(
        f"{f.path}: {f.lines:,} lines, {f.bytes / 1e6:,.0f} MB in {f.seconds:.1f} s; "
        f"expected rejected {f.expected_rejected:,}, identical copies {f.expected_repeats:,}"
    )


if __name__ == "__main__":
    main()
