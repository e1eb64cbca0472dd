"""The synthetic shop: determinism, canonical shape, integrity, and the behaviour it carries."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from archer.festivals import festival_windows, second_sunday_of_may, shop_closures
from archer.sample import generate
from archer.schema import TABLES

N = 3000
START, END = date(2024, 11, 1), date(2026, 10, 31)
FILES = ("customers", "products", "orders", "order_items", "refunds", "events")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    stages: list[tuple[str, float]] = []
    counts = generate(out, customers=N, seed=7, progress=lambda s, f: stages.append((s, f)))
    assert counts["customers"] == N and counts["truth"] == N
    assert stages[-1] == ("done", 1.0)
    assert [f for _, f in stages] == sorted(f for _, f in stages)
    return out


@pytest.fixture(scope="module")
def db(shop: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in (*FILES, "truth"):
        cols = TABLES[name].columns if name in TABLES else ()
        money = {c.name: "DECIMAL(18,2)" for c in cols if c.kind == "money"}
        con.read_csv(str(shop / f"{name}.csv"), dtype=money or None).create_view(name)
    con.execute(
        "CREATE TABLE period AS SELECT ?::TIMESTAMP lo, ?::TIMESTAMP hi",
        [f"{START} 00:00:00", f"{END} 23:59:59"],
    )
    con.execute("CREATE TABLE windows (lo DATE, hi DATE)")
    con.executemany(
        "INSERT INTO windows VALUES (?, ?)",
        [(f.start, f.end) for f in festival_windows(START, END)],
    )
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, customers=2000, seed=3)
    generate(b, customers=2000, seed=3)
    generate(c, customers=2000, seed=4)
    names = [f"{n}.csv" for n in (*FILES, "truth")] + ["truth.json"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in ("customers.csv", "orders.csv", "events.csv", "truth.csv"):
        assert (a / name).read_bytes() != (c / name).read_bytes(), name


def test_every_file_has_exactly_the_canonical_columns(shop: Path) -> None:
    for name in FILES:
        with (shop / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh))
        assert header == TABLES[name].names, name


def test_text_formats_are_those_of_a_shop_export(shop: Path) -> None:
    with (shop / "orders.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    paid = [r for r in rows if r["paid_at"]]
    assert paid and all(len(r["created_at"]) == 19 and r["created_at"][10] == " " for r in rows)
    assert all(r["goods_amount"].split(".")[1].__len__() == 2 for r in rows)
    assert any(r["customer_id"] == "" for r in rows)  # guests: empty, not "None"
    with (shop / "customers.csv").open(encoding="utf-8", newline="") as fh:
        cust = list(csv.DictReader(fh))
    assert {r["email_opt_in"] for r in cust} == {"true", "false"}
    assert {r["gender"] for r in cust} == {"f", "m", ""}
    assert all(json.loads(r["attributes"]) is not None for r in cust if r["attributes"])
    assert all(len(r["birthday"]) == 10 for r in cust if r["birthday"])


def test_keys_are_unique(db: duckdb.DuckDBPyConnection) -> None:
    for name in FILES:
        key = ", ".join(TABLES[name].key)
        dupes = one(db, f"SELECT count(*) FROM (SELECT {key} FROM {name} GROUP BY ALL "
                        "HAVING count(*) > 1)")  # fmt: skip
        assert dupes == 0, name
    for col in ("email", "phone"):
        assert one(db, f"SELECT count({col}) - count(DISTINCT {col}) FROM customers") == 0
    assert one(db, "SELECT min(line_no) FROM order_items") == 1


def test_references_resolve(db: duckdb.DuckDBPyConnection) -> None:
    checks = {
        "order_items→orders": "order_items WHERE order_id NOT IN (SELECT order_id FROM orders)",
        "order_items→products":
            "order_items WHERE product_id NOT IN (SELECT product_id FROM products)",
        "refunds→orders": "refunds WHERE order_id NOT IN (SELECT order_id FROM orders)",
        "orders→customers": "orders WHERE customer_id NOT IN (SELECT customer_id FROM customers)",
        "events→customers": "events WHERE customer_id NOT IN (SELECT customer_id FROM customers)",
        "events→products": "events WHERE product_id NOT IN (SELECT product_id FROM products)",
        "orders without lines":
            "orders WHERE order_id NOT IN (SELECT order_id FROM order_items)",
    }  # fmt: skip
    for what, sql in checks.items():
        assert one(db, f"SELECT count(*) FROM {sql}") == 0, what


def test_times_are_ordered_and_inside_the_period(db: duckdb.DuckDBPyConnection) -> None:
    lo, hi = "(SELECT lo FROM period)", "(SELECT hi FROM period)"
    bad = {
        "registration": f"customers WHERE registered_at NOT BETWEEN {lo} AND {hi}",
        "order in period": f"orders WHERE created_at NOT BETWEEN {lo} AND {hi} "
                           f"OR paid_at > {hi} OR cancelled_at > {hi}",
        "paid before created": "orders WHERE paid_at < created_at",
        "cancelled before created": "orders WHERE cancelled_at < created_at",
        "order before registration": "orders o JOIN customers c USING (customer_id) "
                                     "WHERE o.created_at < c.registered_at",
        "refund before payment": "refunds r JOIN orders o USING (order_id) "
                                 f"WHERE r.refunded_at < o.paid_at OR o.paid_at IS NULL "
                                 f"OR r.refunded_at > {hi}",
        "event in period": f"events WHERE occurred_at NOT BETWEEN {lo} AND {hi}",
        "member event before registration":
            "events e JOIN customers c USING (customer_id) WHERE e.occurred_at < c.registered_at",
        "linked anonymous event after registration":
            "events e JOIN truth t USING (anonymous_id) JOIN customers c ON "
            "c.customer_id = t.customer_id WHERE e.customer_id IS NULL "
            "AND e.occurred_at >= c.registered_at",
        "events numbered in time order": "(SELECT occurred_at < lag(occurred_at) OVER "
                                         "(ORDER BY event_id) AS bad FROM events) WHERE bad",
        "orders numbered in time order": "(SELECT created_at < lag(created_at) OVER "
                                         "(ORDER BY order_id) AS bad FROM orders) WHERE bad",
        "register event not at registration":
            "events e JOIN customers c USING (customer_id) WHERE e.type = 'register' "
            "AND e.occurred_at <> c.registered_at",
    }  # fmt: skip
    for what, sql in bad.items():
        assert one(db, f"SELECT count(*) FROM {sql}") == 0, what


def test_money_adds_up(db: duckdb.DuckDBPyConnection) -> None:
    bad = {
        "goods = sum of lines": "orders o JOIN (SELECT order_id, sum(quantity * unit_price) g "
                                "FROM order_items GROUP BY 1) i USING (order_id) "
                                "WHERE o.goods_amount <> i.g",
        "paid = goods - discount + shipping":
            "orders WHERE paid_at IS NOT NULL AND "
            "paid_amount <> goods_amount - discount_amount + shipping_fee",
        "unpaid has no paid amount": "orders WHERE (paid_at IS NULL) <> (paid_amount IS NULL)",
        "status vs payment": "orders WHERE (status IN ('created', 'cancelled')) "
                             "<> (paid_at IS NULL)",
        "cancelled_at iff cancelled": "orders WHERE (status = 'cancelled') "
                                      "<> (cancelled_at IS NOT NULL)",
        "refund at most paid": "refunds r JOIN orders o USING (order_id) "
                               "WHERE r.amount > o.paid_amount OR r.amount <= 0",
        "refunded status iff full refund":
            "orders o LEFT JOIN refunds r USING (order_id) WHERE (o.status = 'refunded') "
            "<> coalesce(r.amount = o.paid_amount, false)",
        "cost within 40-75% of price":
            "products WHERE unit_cost < 0.39 * list_price OR unit_cost > 0.76 * list_price",
    }  # fmt: skip
    for what, sql in bad.items():
        assert one(db, f"SELECT count(*) FROM {sql}") == 0, what


def test_shop_has_realistic_proportions(db: duckdb.DuckDBPyConnection) -> None:
    buy = one(db, "SELECT avg((n_purchases > 0)::int) FROM truth")
    repeat = one(db, "SELECT avg((n_purchases > 1)::int) FROM truth WHERE n_purchases > 0")
    # BG/NBD: nobody drops out on the first purchase, so most buyers of two years buy again.
    assert 0.4 <= buy <= 0.6 and 0.5 <= repeat <= 0.68
    refund_rate = one(db, "SELECT (SELECT count(*) FROM refunds) / count(*) FROM orders "
                          "WHERE paid_at IS NOT NULL")  # fmt: skip
    assert 0.04 <= refund_rate <= 0.09
    statuses = {r[0] for r in db.execute("SELECT DISTINCT status FROM orders").fetchall()}
    assert statuses == set(TABLES["orders"].column("status").choices)
    per_customer = one(db, "SELECT count(*) FROM events") / N
    assert 10 <= per_customer <= 30
    types = {r[0] for r in db.execute("SELECT DISTINCT type FROM events").fetchall()}
    assert {"visit", "register", "view", "search", "favorite", "cart_add", "cart_remove",
            "checkout", "coupon_claim", "login"} <= types  # fmt: skip
    guests = one(db, "SELECT avg((customer_id IS NULL)::int) FROM orders")
    assert 0.01 <= guests <= 0.06
    unknown_gender = one(db, "SELECT avg((gender IS NULL)::int) FROM customers")
    assert 0.03 <= unknown_gender <= 0.07
    assert 0.08 <= one(db, "SELECT avg((birthday IS NULL)::int) FROM customers") <= 0.12
    late = one(db, "SELECT count(*) FROM orders WHERE paid_at > created_at + INTERVAL 1 HOUR")
    open_unpaid = one(db, "SELECT count(*) FROM orders WHERE status = 'created' "
                          "AND created_at < (SELECT hi FROM period) - INTERVAL 7 DAY")  # fmt: skip
    assert late > 0 and open_unpaid > 0


def test_truth_covers_every_customer(db: duckdb.DuckDBPyConnection, shop: Path) -> None:
    assert one(db, "SELECT count(*) FROM customers c FULL JOIN truth t USING (customer_id) "
                   "WHERE c.customer_id IS NULL OR t.customer_id IS NULL") == 0  # fmt: skip
    same = one(db, "SELECT count(*) FROM customers c JOIN truth t USING (customer_id) WHERE "
                   "c.acquisition_channel = t.acquisition_channel "
                   "AND c.registered_at = t.registered_at")  # fmt: skip
    assert same == N
    info = json.loads((shop / "truth.json").read_text(encoding="utf-8"))
    assert info["seed"] == 7 and info["customers"] == N
    assert set(info["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert set(info["gamma_gamma"]) == {"p", "q", "gamma"}
    assert {f["key"] for f in info["festivals"]} >= {"singles_day", "618", "spring_festival"}
    assert len(info["categories"]) >= 15


def test_latent_purchase_rate_shows_in_order_counts(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "WITH b AS (SELECT t.customer_id, t.lam, count(o.order_id) n FROM truth t "
        "LEFT JOIN orders o ON o.customer_id = t.customer_id AND o.paid_at IS NOT NULL "
        "WHERE t.n_purchases > 0 GROUP BY ALL) "
        "SELECT q, avg(n) FROM (SELECT ntile(4) OVER (ORDER BY lam) q, n FROM b) "
        "GROUP BY q ORDER BY q"
    ).fetchall()
    quartile_means = [r[1] for r in rows]
    assert quartile_means == sorted(quartile_means)
    assert quartile_means[-1] > 1.5 * quartile_means[0]


def test_festival_buyers_buy_in_festival_windows(db: duckdb.DuckDBPyConnection) -> None:
    rows = dict(db.execute(
        "SELECT t.festival_buyer, avg(EXISTS (SELECT 1 FROM windows w WHERE "
        "o.created_at::DATE BETWEEN w.lo AND w.hi)::int) FROM orders o "
        "JOIN truth t USING (customer_id) WHERE o.paid_at IS NOT NULL GROUP BY 1"
    ).fetchall())  # fmt: skip
    assert rows[True] > 0.85
    assert rows[False] < 0.5
    assert rows[True] > rows[False] + 0.35


def test_preferred_category_is_the_most_bought(db: duckdb.DuckDBPyConnection) -> None:
    share = one(
        db,
        """
        WITH lines AS (
            SELECT o.customer_id, p.category, count(*) n FROM order_items i
            JOIN orders o USING (order_id) JOIN products p USING (product_id)
            WHERE o.customer_id IS NOT NULL GROUP BY ALL),
        top AS (SELECT customer_id, arg_max(category, n) cat, sum(n) items
                FROM lines GROUP BY 1)
        SELECT avg((top.cat = t.preferred_category)::int) FROM top JOIN truth t
        USING (customer_id) WHERE items >= 3
    """,
    )
    assert share > 0.6


def test_discount_sensitive_members_use_more_coupons(db: duckdb.DuckDBPyConnection) -> None:
    rows = dict(db.execute(
        "SELECT t.discount_sensitive, avg((o.coupon_code IS NOT NULL)::int) FROM orders o "
        "JOIN truth t USING (customer_id) GROUP BY 1"
    ).fetchall())  # fmt: skip
    assert rows[True] > rows[False] + 0.3


def test_price_band_and_spend_show_in_orders(db: duckdb.DuckDBPyConnection) -> None:
    spend = [r[1] for r in db.execute(
        "SELECT t.price_band, avg(o.goods_amount) FROM orders o JOIN truth t "
        "USING (customer_id) GROUP BY 1 ORDER BY array_position(['budget', 'mid', 'premium'], "
        "t.price_band)"
    ).fetchall()]  # fmt: skip
    assert spend == sorted(spend)


def test_behaviour_events_tell_the_story(db: duckdb.DuckDBPyConnection) -> None:
    never_buyers_browse = one(
        db,
        """
        SELECT count(DISTINCT e.customer_id) FROM events e JOIN truth t USING (customer_id)
        WHERE t.n_purchases = 0 AND e.type IN ('view', 'cart_add')""",
    )
    assert never_buyers_browse > 0.3 * one(db, "SELECT count(*) FROM truth WHERE n_purchases = 0")
    abandoned = one(
        db,
        """
        SELECT count(*) FROM events e WHERE e.type = 'cart_add' AND e.customer_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM orders o JOIN order_items i USING (order_id)
                        WHERE o.customer_id = e.customer_id AND i.product_id = e.product_id
                        AND o.created_at >= e.occurred_at)""",
    )
    assert abandoned > 0
    checkouts = one(
        db,
        """
        SELECT count(*) FROM events e JOIN orders o
        ON e.properties->>'order_id' = o.order_id AND e.customer_id = o.customer_id
        WHERE e.type = 'checkout' AND e.occurred_at <= o.created_at""",
    )
    assert checkouts == one(db, "SELECT count(*) FROM orders WHERE customer_id IS NOT NULL")
    linked = one(db, "SELECT count(*) FROM events WHERE type = 'register' "
                     "AND anonymous_id IS NOT NULL")  # fmt: skip
    pure_anonymous = one(db, "SELECT count(DISTINCT anonymous_id) FROM events "
                             "WHERE anonymous_id NOT IN (SELECT anonymous_id FROM truth "
                             "WHERE anonymous_id IS NOT NULL)")  # fmt: skip
    assert linked > 0.7 * N and pure_anonymous > 0.2 * N
    hot_in = one(db, "SELECT count(*) FROM events WHERE type = 'search' AND query = '双十一' "
                     "AND month(occurred_at) IN (10, 11)")  # fmt: skip
    hot_all = one(db, "SELECT count(*) FROM events WHERE query = '双十一'")
    assert hot_all > 0 and hot_in == hot_all
    utm = one(db, "SELECT count(*) FROM events WHERE type = 'visit' AND source IS NOT NULL")
    assert utm > 0


def test_parquet_holds_the_same_data_as_csv(tmp_path: Path) -> None:
    generate(tmp_path / "c", customers=1500, seed=11, fmt="csv")
    generate(tmp_path / "p", customers=1500, seed=11, fmt="parquet")
    generate(tmp_path / "p2", customers=1500, seed=11, fmt="parquet")
    for name in FILES:
        file = f"{name}.parquet"
        assert (tmp_path / "p" / file).read_bytes() == (tmp_path / "p2" / file).read_bytes()
    con = duckdb.connect()
    for name in FILES:
        cols = TABLES[name].names
        from_csv = con.read_csv(str(tmp_path / "c" / f"{name}.csv"), all_varchar=True)
        from_parquet = con.read_parquet(str(tmp_path / "p" / f"{name}.parquet"))
        assert from_parquet.columns == cols, name
        as_text = ", ".join(f"{c}::VARCHAR" for c in cols)
        a = from_csv.select(as_text).order("ALL").fetchall()
        b = from_parquet.select(as_text).order("ALL").fetchall()
        assert a == b, name


def test_tiny_shops_and_short_periods_work(tmp_path: Path) -> None:
    counts = generate(tmp_path / "one", customers=1, seed=1)
    assert counts["customers"] == 1 and counts["events"] > 0
    counts = generate(tmp_path / "short", customers=200, start=date(2025, 3, 1),
                      end=date(2025, 3, 10))  # fmt: skip
    con = duckdb.connect()
    events = con.read_csv(str(tmp_path / "short" / "events.csv"))
    lo, hi = events.aggregate("min(occurred_at), max(occurred_at)").fetchone()
    assert lo.date() >= date(2025, 3, 1) and hi.date() <= date(2025, 3, 10)
    assert counts["events"] == len(events)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        generate(tmp_path, customers=10, fmt="xlsx")
    with pytest.raises(ValueError, match="customers"):
        generate(tmp_path, customers=0)


def test_festival_calendar() -> None:
    fests = {(f.key, f.day.year): f for f in festival_windows(date(2025, 1, 1), date(2025, 12, 31))}
    sf = fests[("spring_festival", 2025)]
    assert sf.day == date(2025, 1, 29)
    assert (sf.start, sf.end) == (date(2025, 1, 8), date(2025, 1, 26))
    assert fests[("singles_day", 2025)].start == date(2025, 10, 31)
    assert (fests[("618", 2025)].start, fests[("618", 2025)].end) == (
        date(2025, 6, 1),
        date(2025, 6, 18),
    )
    assert fests[("mothers_day", 2025)].day == date(2025, 5, 11) == second_sunday_of_may(2025)
    assert fests[("qixi", 2025)].day == date(2025, 8, 29)
    assert fests[("mid_autumn", 2025)].day == date(2025, 10, 6)
    assert fests[("double_12", 2025)].day == date(2025, 12, 12)
    assert shop_closures(date(2026, 1, 1), date(2026, 12, 31)) == [
        (date(2026, 2, 16), date(2026, 2, 23))
    ]
