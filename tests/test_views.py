"""Shop-level views on a generated shop, checked against plain DuckDB SQL and the generator."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from archer.analytics import affinities, cohorts, funnel, kpis, recommendations
from archer.cli import app
from archer.facts import Snapshot
from archer.ingest.importer import import_file
from archer.sample import data as sd
from archer.sample import generate
from archer.schema import LOAD_ORDER
from archer.warehouse import Warehouse
from conftest import NOW
from support import workspace

AS_OF = date(2026, 6, 30)
CUT = "TIMESTAMP '2026-06-30 16:00:00'"  # the end of AS_OF in Asia/Shanghai, in UTC
LOCAL = "INTERVAL 8 HOUR"


def build_shop(root: Path, customers: int, seed: int):
    generate(root / "data", customers=customers, seed=seed, fmt="parquet")
    ws = workspace(root / "ws")
    for t in LOAD_ORDER:
        r = import_file(ws, t, root / "data" / f"{t}.parquet", now=NOW + timedelta(days=400))
        assert r.rejected == 0
    return ws


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    ws = build_shop(root, 3_000, seed=5)
    truth = json.loads((root / "data" / "truth.json").read_text(encoding="utf-8"))
    with ws.warehouse() as wh:
        yield ws, wh, Snapshot.at(wh, AS_OF, ws.tz), truth


def sql(wh: Warehouse, query: str) -> pd.DataFrame:
    """Plain DuckDB SQL on the warehouse, with the paid-order rules written out again."""
    prelude = f"""
    WITH o AS (
      SELECT *, (paid_at IS NOT NULL AND paid_at < {CUT}) OR (paid_at IS NULL
                 AND status IN ('paid', 'shipped', 'completed', 'refunded')) AS paid,
             COALESCE(paid_at, created_at) AS pay_ts
      FROM orders WHERE created_at < {CUT}),
    r AS (SELECT order_id, SUM(amount)::DOUBLE AS refunded FROM refunds
          WHERE refunded_at < {CUT} GROUP BY 1),
    po AS (
      SELECT o.order_id, o.customer_id, CAST(o.pay_ts + {LOCAL} AS DATE) AS pay_day,
             o.paid_amount::DOUBLE AS amount,
             LEAST(COALESCE(r.refunded, 0), o.paid_amount::DOUBLE) AS refunded,
             o.paid_amount::DOUBLE - LEAST(COALESCE(r.refunded, 0), o.paid_amount::DOUBLE) AS net
      FROM o LEFT JOIN r USING (order_id) WHERE o.paid),
    cu AS (SELECT * FROM customers WHERE registered_at IS NULL OR registered_at < {CUT}),
    ev AS (SELECT * FROM events WHERE occurred_at < {CUT}),
    ids AS (SELECT anonymous_id, MIN(customer_id) AS person FROM ev
            WHERE anonymous_id IS NOT NULL AND customer_id IS NOT NULL GROUP BY 1),
    pe AS (SELECT ev.type, COALESCE(ev.customer_id, ids.person) AS person,
                  ev.anonymous_id AS anon FROM ev LEFT JOIN ids USING (anonymous_id))
    """
    return wh.con.con.sql(prelude + query).df()


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return a == pytest.approx(b, rel=rel, abs=1e-9)


# -- funnel ------------------------------------------------------------------------------------
FUNNEL_SQL = """
, m AS (
  SELECT cu.customer_id, COALESCE(NULLIF(cu.acquisition_channel, ''), '(unknown)') AS ch,
    EXISTS (SELECT 1 FROM pe WHERE pe.type = 'view' AND pe.person = cu.customer_id) AS view,
    EXISTS (SELECT 1 FROM pe WHERE pe.type = 'cart_add' AND pe.person = cu.customer_id) AS cart,
    EXISTS (SELECT 1 FROM o WHERE o.customer_id = cu.customer_id) AS ordered,
    (SELECT COUNT(*) FROM po WHERE po.customer_id = cu.customer_id) AS n_paid,
    (SELECT COUNT(DISTINCT pay_day) FROM po WHERE po.customer_id = cu.customer_id) AS days,
    (SELECT COALESCE(SUM(net), 0) FROM po WHERE po.customer_id = cu.customer_id) AS net,
    EXISTS (SELECT 1 FROM pe WHERE pe.type = 'visit' AND pe.person = cu.customer_id) AS visit
  FROM cu)
SELECT ch AS "group", COUNT(*) AS visitors, COUNT(*) AS registered,
  COUNT(*) FILTER (WHERE view OR cart OR ordered) AS viewed,
  COUNT(*) FILTER (WHERE cart OR ordered) AS carted, COUNT(*) FILTER (WHERE ordered) AS ordered,
  COUNT(*) FILTER (WHERE n_paid > 0) AS paid, COUNT(*) FILTER (WHERE days >= 2) AS repeated,
  SUM(net) AS net_sales, COUNT(*) FILTER (WHERE visit) AS did_visit,
  COUNT(*) FILTER (WHERE view) AS did_view, COUNT(*) FILTER (WHERE cart) AS did_cart
FROM m GROUP BY 1
UNION ALL
SELECT '(not registered)', COUNT(*), 0, 0, 0, 0, 0, 0, 0, COUNT(*), 0, 0 FROM (
  SELECT DISTINCT CASE WHEN person IS NULL THEN 'a:' || anon ELSE 'm:' || person END
  FROM pe WHERE type = 'visit' AND (person IS NULL AND anon IS NOT NULL
                                    OR person NOT IN (SELECT customer_id FROM cu)))
"""
STEP_COLUMNS = ("visitors", "registered", "viewed", "carted", "ordered", "paid", "repeated")


def test_funnel_by_channel_matches_sql(shop):
    _, wh, snap, _ = shop
    got = funnel(snap, "channel").execute().set_index("group")
    want = sql(wh, FUNNEL_SQL).set_index("group")
    assert sorted(got.index) == sorted(want.index)
    for g, w in want.iterrows():
        for col in (*STEP_COLUMNS, "did_visit", "did_view", "did_cart"):
            assert got.loc[g, col] == w[col], (g, col)
        assert close(got.loc[g, "net_sales"], w["net_sales"])
    assert got.loc["(not registered)", "visitors"] > 0


def test_funnel_groups_add_up_and_steps_nest(shop):
    _, _, snap, _ = shop
    overall = funnel(snap).execute()
    assert list(overall.group) == ["all"]
    row = overall.iloc[0]
    counts = [row[s] for s in STEP_COLUMNS]
    assert row.did_visit <= row.visitors and row.did_view <= row.viewed
    assert row.did_cart <= row.carted
    assert counts == sorted(counts, reverse=True) and counts[-1] > 0
    assert close(row.paid_rate, row.paid / row.ordered)
    assert close(row.repeated_overall, row.repeated / row.visitors)
    assert close(row.per_capita, row.net_sales / row.registered)
    for by in ("channel", "month"):
        parts = funnel(snap, by).execute()
        for col in (*STEP_COLUMNS, "did_visit", "did_view", "did_cart"):
            assert parts[col].sum() == row[col], (by, col)
        assert close(parts.net_sales.sum(), row.net_sales, 1e-12)
    months = funnel(snap, "month").execute()
    assert "2026-07" not in set(months.group) and "2026-06" in set(months.group)


def test_funnel_recovers_channel_conversion(shop):
    """truth.json: group_buy converts to a first order far more often than ads."""
    _, _, snap, truth = shop
    ch = truth["channels"]
    assert ch["group_buy"]["convert"] > ch["ads"]["convert"]
    got = funnel(snap, "channel").execute().set_index("group")
    assert got.loc["group_buy", "paid_overall"] > got.loc["ads", "paid_overall"] + 0.1
    # Channels ranked by paid conversion follow the generator's ranking closely.
    rank = got.drop(index="(not registered)").paid_overall.rank()
    truth_rank = pd.Series({k: v["convert"] for k, v in ch.items()}).rank()
    assert rank.corr(truth_rank.loc[rank.index], method="spearman") > 0.7


# -- cohorts -----------------------------------------------------------------------------------
def test_cohorts_match_pandas(shop):
    _, wh, snap, _ = shop
    po = sql(wh, "SELECT customer_id, pay_day, net FROM po WHERE customer_id IS NOT NULL")
    po["m"] = pd.to_datetime(po.pay_day).dt.to_period("M")
    po["cohort"] = po.groupby("customer_id").m.transform("min")
    po["k"] = (po.m - po.cohort).apply(lambda d: d.n)
    act = po.groupby(["cohort", "k"]).agg(active=("customer_id", "nunique"), net=("net", "sum"))
    size = po.groupby("cohort").customer_id.nunique()

    got = cohorts(snap).execute()
    got["c"] = pd.to_datetime(got.cohort).dt.to_period("M")
    assert set(got.c) == set(size.index)
    last = pd.Period(AS_OF, "M")
    assert len(got) == sum((last - c).n + 1 for c in size.index)
    for r in got.itertuples():
        assert r.cohort_size == size[r.c]
        a = act.loc[(r.c, r.months_since)] if (r.c, r.months_since) in act.index else None
        assert r.active == (0 if a is None else a.active)
        assert close(r.net_revenue, 0.0 if a is None else a.net)
        assert close(r.retention, r.active / r.cohort_size)
    assert (got[got.months_since == 0].retention == 1.0).all()
    one = got[got.c == got.c.min()]
    assert close(
        one.cumulative_revenue_per_customer.iloc[-1],
        one.net_revenue.sum() / one.cohort_size.iloc[0],
    )


def test_registration_cohorts(shop):
    _, wh, snap, _ = shop
    got = cohorts(snap, "registration").execute()
    regs = (
        sql(
            wh,
            f"SELECT strftime(registered_at + {LOCAL}, '%Y-%m') AS m, COUNT(*) AS n FROM cu "
            "WHERE registered_at IS NOT NULL GROUP BY 1",
        )
        .set_index("m")
        .n
    )
    sizes = got.groupby(pd.to_datetime(got.cohort).dt.strftime("%Y-%m")).cohort_size.first()
    assert sizes.to_dict() == regs.to_dict()
    buyers = sql(
        wh, "SELECT COUNT(DISTINCT po.customer_id) AS n FROM po JOIN cu USING (customer_id)"
    )
    # Every buying member is active in at least one month of their registration cohort.
    assert got.active.sum() >= buyers.n[0]
    assert (got.retention <= 1).all()


# -- basket affinities -------------------------------------------------------------------------
PAIRS_SQL = """
, li AS (SELECT DISTINCT po.order_id, p.category FROM po
         JOIN order_items i USING (order_id) JOIN products p USING (product_id)
         WHERE po.customer_id IS NOT NULL AND p.category IS NOT NULL)
, n AS (SELECT COUNT(DISTINCT order_id) AS n FROM li)
, single AS (SELECT category, COUNT(*) AS c FROM li GROUP BY 1)
SELECT a.category AS antecedent, b.category AS consequent, COUNT(*) AS pair_count,
       ANY_VALUE(sa.c) AS ca, ANY_VALUE(sb.c) AS cb, ANY_VALUE(n.n) AS n
FROM li a JOIN li b ON a.order_id = b.order_id AND a.category <> b.category
JOIN single sa ON sa.category = a.category JOIN single sb ON sb.category = b.category, n
GROUP BY 1, 2
"""


def test_order_pairs_match_sql(shop):
    _, wh, snap, _ = shop
    got = affinities(snap, "category", "order", min_support=0).execute()
    want = sql(wh, PAIRS_SQL)
    assert len(got) == len(want) > 50
    m = got.merge(want, on=["antecedent", "consequent"], suffixes=("", "_w"))
    assert len(m) == len(want)
    assert (m.pair_count == m.pair_count_w).all()
    assert (m.transactions == m.n).all()
    for r in m.itertuples():
        assert close(r.support, r.pair_count_w / r.n)
        assert close(r.confidence, r.pair_count_w / r.ca)
        assert close(r.lift, r.pair_count_w * r.n / (r.ca * r.cb))
    high = affinities(snap, "category", "order", min_support=0.01).execute()
    assert (high.support >= 0.01).all() and len(high) == (got.support >= 0.01).sum()
    assert list(high.lift) == sorted(high.lift, reverse=True)


def test_customer_window_pairs_match_pandas(shop):
    _, wh, snap, _ = shop
    lines = sql(
        wh,
        "SELECT DISTINCT po.customer_id, p.category, po.pay_day FROM po "
        "JOIN order_items i USING (order_id) JOIN products p USING (product_id) "
        "WHERE po.customer_id IS NOT NULL AND p.category IS NOT NULL",
    )
    lines["pay_day"] = pd.to_datetime(lines.pay_day)
    j = lines.merge(lines, on="customer_id")
    j = j[(j.category_x != j.category_y) & ((j.pay_day_x - j.pay_day_y).abs().dt.days <= 14)]
    pairs = j.groupby(["category_x", "category_y"]).customer_id.nunique()
    n_cat = lines.groupby("category").customer_id.nunique()
    n = lines.customer_id.nunique()
    got = affinities(snap, "category", "customer", window_days=14, min_support=0).execute()
    assert len(got) == len(pairs)
    for r in got.itertuples():
        k = pairs[(r.antecedent, r.consequent)]
        assert r.pair_count == k and r.transactions == n
        assert close(r.lift, k * n / (n_cat[r.antecedent] * n_cat[r.consequent]))
    wide = affinities(snap, "category", "customer", window_days=365, min_support=0).execute()
    merged = got.merge(wide, on=["antecedent", "consequent"])
    assert (merged.pair_count_y >= merged.pair_count_x).all()


def test_affinities_recover_the_generators_related_categories(shop):
    """sample_data.AFFINITY: the categories the generator puts in the same baskets."""
    _, _, snap, _ = shop
    related = {(a, b) for a, bs in sd.AFFINITY.items() for b in bs}
    related |= {(b, a) for a, b in related}
    for scope in ("order", "customer"):
        got = affinities(snap, "category", scope, min_support=0).execute()
        is_rel = [(a, b) in related for a, b in zip(got.antecedent, got.consequent, strict=True)]
        rel, other = got[is_rel], got[[not x for x in is_rel]]
        assert rel.lift.mean() > 1.1 and other.lift.mean() < 0.8, scope
        assert (rel.lift > 1).mean() > 0.6 and (other.lift > 1).mean() < 0.05, scope
        top = got.head(20)
        assert (
            sum((a, b) in related for a, b in zip(top.antecedent, top.consequent, strict=True))
            >= 16
        )
    cust = affinities(snap, "category", "customer", min_support=0).execute()
    lift = {(a, b): v for a, b, v in zip(cust.antecedent, cust.consequent, cust.lift, strict=True)}
    assert lift[("skincare", "cosmetics")] > 1 and lift[("tea", "snacks")] > 1


def test_product_pairs(shop):
    _, _, snap, _ = shop
    got = affinities(snap, "product", "order", min_support=0).execute()
    assert got.antecedent.str.startswith("P").all() and (got.pair_count >= 1).all()
    assert (got.confidence <= 1).all()


def test_recommendations(shop):
    _, wh, snap, _ = shop
    rules = affinities(snap, "category", "customer", min_support=0.001).execute()
    rules = rules[rules.lift > 1]
    best = {(a, b): (lift, conf) for a, b, lift, conf in rules[
        ["antecedent", "consequent", "lift", "confidence"]].itertuples(index=False)}  # fmt: skip
    recs = recommendations(snap, k=3).execute()
    owned = sql(
        wh,
        "SELECT DISTINCT po.customer_id, p.category FROM po JOIN order_items USING (order_id) "
        "JOIN products p USING (product_id) WHERE po.customer_id IS NOT NULL",
    )
    owned = owned.groupby("customer_id").category.agg(set)
    assert recs.customer_id.nunique() > 0.9 * len(owned)
    assert (
        recs.groupby("customer_id")["rank"]
        .apply(lambda r: list(r) == list(range(1, len(r) + 1)))
        .all()
    )
    for r in recs.itertuples():
        mine = owned[r.customer_id]
        assert r.category not in mine and r.because in mine
        assert best[(r.because, r.category)] == (r.lift, r.confidence)
        # No category the customer owns offers a stronger rule to this recommendation.
        assert all(best.get((a, r.category), (0, 0))[0] <= r.lift for a in mine)
    for _, g in recs.groupby("customer_id"):
        assert list(g.lift) == sorted(g.lift, reverse=True)


# -- KPIs --------------------------------------------------------------------------------------
def test_monthly_kpis_match_sql(shop):
    _, wh, snap, _ = shop
    got = kpis(snap, "month").execute()
    got["m"] = pd.to_datetime(got.period).dt.strftime("%Y-%m")
    got = got.set_index("m")
    sales = sql(
        wh,
        "SELECT strftime(pay_day, '%Y-%m') AS m, COUNT(*) AS orders, SUM(amount) AS gross, "
        "SUM(refunded) AS refunded, COUNT(DISTINCT customer_id) AS active FROM po GROUP BY 1",
    ).set_index("m")
    firsts = sql(
        wh,
        "SELECT strftime(MIN(pay_day), '%Y-%m') AS m FROM po WHERE customer_id IS NOT NULL "
        "GROUP BY customer_id",
    ).m.value_counts()
    repeat = (
        sql(
            wh,
            """, d AS (SELECT customer_id, pay_day, strftime(pay_day, '%Y-%m') AS m,
                   MIN(pay_day) OVER (PARTITION BY customer_id) AS first FROM po
                   WHERE customer_id IS NOT NULL)
        SELECT m, COUNT(DISTINCT customer_id) FILTER (WHERE pay_day > first) AS n
        FROM d GROUP BY 1""",
        )
        .set_index("m")
        .n
    )
    regs = (
        sql(
            wh,
            f"SELECT strftime(registered_at + {LOCAL}, '%Y-%m') AS m, COUNT(*) AS n FROM cu "
            "WHERE registered_at IS NOT NULL GROUP BY 1",
        )
        .set_index("m")
        .n
    )
    assert got.index[0] == "2024-11" and got.index[-1] == "2026-06" and len(got) == 20
    assert not got.partial.any()  # 30 June closes June
    for m, r in got.iterrows():
        assert r.registrations == regs.get(m, 0)
        assert r.new_buyers == firsts.get(m, 0)
        assert r.repeat_buyers == repeat.get(m, 0)
        s = sales.loc[m]
        assert r.orders == s.orders
        assert close(r.gross_sales, s.gross) and close(r.refunded, s.refunded)
        assert close(r.net_sales, s.gross - s.refunded)
        assert close(r.aov, s.gross / s.orders) and close(r.refund_rate, s.refunded / s.gross)
    # Guest orders count in orders and sales, not in buyers.
    guests = sql(wh, "SELECT COUNT(*) AS n FROM po WHERE customer_id IS NULL").n[0]
    members = sql(wh, "SELECT COUNT(DISTINCT customer_id) AS n FROM po").n[0]
    assert got.orders.sum() == sql(wh, "SELECT COUNT(*) AS n FROM po").n[0] and guests > 0
    assert got.new_buyers.sum() == members


def test_grains_agree(shop):
    _, _, snap, _ = shop
    day, week, month = (kpis(snap, g).execute() for g in ("day", "week", "month"))
    for col in ("registrations", "new_buyers", "orders"):
        assert day[col].sum() == week[col].sum() == month[col].sum()
    assert close(day.net_sales.sum(), month.net_sales.sum(), 1e-12)
    assert (pd.to_datetime(week.period).dt.dayofweek == 0).all()  # weeks start on Monday
    assert pd.to_datetime(day.period).diff().dropna().dt.days.eq(1).all()  # no day missing
    assert day.period.iloc[-1] == pd.Timestamp(AS_OF) and not day.partial.iloc[-1]
    assert week.partial.iloc[-1]  # 30 June 2026 is a Tuesday
    assert (month.active_buyers >= month.new_buyers).all()


# -- the CLI -----------------------------------------------------------------------------------
def run_cli(ws, *args):
    r = CliRunner().invoke(app, [*args, "--home", str(ws.home), "--as-of", AS_OF.isoformat()])
    return r


@pytest.mark.parametrize(
    "args, keys",
    [
        (["funnel", "--by", "channel"], {"group", "visitors", "per_capita", "paid_rate"}),
        (["cohorts", "--months", "3"], {"cohort", "months_since", "retention", "net_revenue"}),
        (["affinities", "--limit", "5"], {"antecedent", "consequent", "support", "lift"}),
        (["affinities", "--recommend", "--top", "2", "--limit", "9"], {"customer_id", "rank"}),
        (["kpis", "--grain", "week"], {"period", "registrations", "repeat_rate", "aov"}),
    ],
)
def test_cli_json(shop, args, keys):
    ws = shop[0]
    r = run_cli(ws, *args, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["as_of"] == "2026-06-30" and keys <= set(doc["rows"][0])
    if args[0] == "cohorts":
        assert max(row["months_since"] for row in doc["rows"]) == 3
    if args[0] == "affinities":
        assert len(doc["rows"]) == (9 if "--recommend" in args else 5)


def test_cli_tables_and_errors(shop):
    ws = shop[0]
    r = run_cli(ws, "funnel")
    assert r.exit_code == 0 and "registered" in r.stdout and "Net sales" in r.stdout
    for args in (["cohorts", "--show", "revenue"], ["affinities", "--scope", "customer"],
                 ["kpis", "--last", "2"]):  # fmt: skip
        r = run_cli(ws, *args)
        assert r.exit_code == 0, r.output
        assert "…" not in r.stdout  # no number cut short
    bad = run_cli(ws, "kpis", "--grain", "fortnight")
    assert bad.exit_code == 1 and "day, week, month" in bad.stderr
    bad = CliRunner().invoke(app, ["funnel", "--home", str(ws.home), "--as-of", "30/06/2026"])
    assert bad.exit_code == 1 and "YYYY-MM-DD" in bad.stderr
    for opt in ("--by", "--months", "--min-support", "--grain", "--as-of"):
        cmd = {"--by": "funnel", "--months": "cohorts", "--min-support": "affinities"}.get(
            opt, "kpis"
        )
        h = CliRunner().invoke(app, [cmd, "--help"])
        assert opt in h.stdout


def test_as_of_moves_everything(shop):
    ws, wh, _, _ = shop
    early = Snapshot.at(wh, date(2025, 1, 31), ws.tz)
    f = funnel(early).execute().iloc[0]
    regs = wh.con.con.sql(
        "SELECT COUNT(*) FROM customers WHERE registered_at < TIMESTAMP '2025-01-31 16:00:00'"
    ).fetchone()[0]
    assert f.registered == regs
    k = kpis(early, "month").execute()
    assert pd.to_datetime(k.period).max() == datetime(2025, 1, 1)
