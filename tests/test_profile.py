"""The customer profile (issue 3) on the synthetic shop: rules checked against independent SQL,
and the generator's truth recovered."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from archer.cli import app
from archer.customers.lifecycle import LIFECYCLE_STATES, STAGES
from archer.customers.rfm import SEGMENTS
from archer.ingest.importer import import_file
from archer.pipeline import build
from archer.sample import generate
from archer.schema import LOAD_ORDER
from conftest import NOW
from support import workspace

pytestmark = pytest.mark.xdist_group("profile")  # one worker builds the shop once

AS_OF = date(2026, 10, 31)
CUTOFF = "2026-10-31 16:00:00"  # end of the as-of day in Asia/Shanghai, in UTC


def load_sample(tmp_path_factory, name: str, customers: int, seed: int):
    d = tmp_path_factory.mktemp(name)
    generate(d / "sample", customers=customers, seed=seed, fmt="parquet")
    ws = workspace(d / "shop")
    for t in LOAD_ORDER:
        r = import_file(ws, t, d / "sample" / f"{t}.parquet", now=NOW)
        assert r.rejected == 0
    truth = pd.read_csv(d / "sample" / "truth.csv")
    return ws, truth


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws, truth = load_sample(tmp_path_factory, "profile", customers=6_000, seed=5)
    result = build(ws, AS_OF)
    profile = Sql(ws).df("select * from customer_profile")
    return ws, truth, result, profile, Sql(ws)


class Sql:
    """Plain DuckDB SQL on the workspace's warehouse, each query on its own connection."""

    def __init__(self, ws):
        self.path = str(ws.home / "warehouse.duckdb")

    def df(self, query: str) -> pd.DataFrame:
        con = duckdb.connect(self.path, read_only=True)
        try:
            return con.sql(query).df()
        finally:
            con.close()


def test_one_row_per_member_with_one_state_and_a_consistent_stage(shop):
    ws, truth, result, p, con = shop
    assert len(p) == len(truth) == result.customers == p.customer_id.nunique()
    assert set(p.lifecycle) == set(LIFECYCLE_STATES)
    assert set(p.stage) == set(STAGES)
    assert sum(result.lifecycle.values()) == len(p)
    buyers = p.purchase_days > 0
    assert (p.stage[~buyers] == "potential").all()
    assert (p.stage[p.lifecycle == "repeat_buyer"] == "loyal").all()
    assert (p.stage[buyers & (p.lifecycle != "repeat_buyer")] == "target").all()
    assert set(p.rfm_segment.dropna()) == set(SEGMENTS)
    assert p.rfm_segment.isna().sum() == (~buyers).sum()


def test_states_of_members_who_never_paid_follow_their_rule(shop):
    ws, truth, result, p, con = shop
    # A cart filled before signing in counts when an event links the device to the member.
    facts = con.df(
        f"""
        with links as (
          select anonymous_id, min(customer_id) as person from events
          where anonymous_id is not null and customer_id is not null
            and occurred_at < '{CUTOFF}' group by anonymous_id)
        select c.customer_id,
          exists(select 1 from orders o where o.customer_id = c.customer_id
                 and o.created_at < '{CUTOFF}') as ordered,
          exists(select 1 from orders o where o.customer_id = c.customer_id
                 and o.paid_at < '{CUTOFF}') as paid,
          exists(select 1 from events e where e.type = 'cart_add'
                 and e.occurred_at < '{CUTOFF}'
                 and (e.customer_id = c.customer_id
                      or (e.customer_id is null and e.anonymous_id in (
                          select anonymous_id from links l where l.person = c.customer_id))))
            as carted
        from customers c"""
    )
    m = p.merge(facts, on="customer_id")
    never_paid = m[~m.paid]
    expected = np.where(
        never_paid.ordered,
        "ordered_unpaid",
        np.where(never_paid.carted, "cart_no_order", "registered_no_cart"),
    )
    assert (never_paid.lifecycle.to_numpy() == expected).all()
    assert (m[m.paid].purchase_days > 0).all()


def test_rfm_agrees_with_plain_sql(shop):
    ws, truth, result, p, con = shop
    sql = con.df(
        f"""
        with paid as (
          select order_id, customer_id, paid_amount::double as amt,
                 cast(paid_at + interval 8 hour as date) as d
          from orders where customer_id is not null and paid_at < '{CUTOFF}'),
        ref as (select order_id, sum(amount)::double as r from refunds
                where refunded_at < '{CUTOFF}' group by order_id)
        select customer_id, count(distinct d) as frequency,
               sum(amt - least(coalesce(r, 0), amt)) as monetary, max(amt) as largest,
               date_diff('day', max(d), date '{AS_OF}') as recency
        from paid left join ref using (order_id) group by customer_id"""
    )
    m = p.merge(sql, on="customer_id", how="inner")
    assert len(m) == (p.purchase_days > 0).sum() == len(sql)
    assert (m.purchase_days == m.frequency).all()
    assert (m.days_since_last_purchase == m.recency).all()
    np.testing.assert_allclose(m.net_spent, m.monetary, rtol=1e-9)
    np.testing.assert_allclose(m.largest_order, m.largest, rtol=1e-9)
    # Scores: quintiles of the percent rank; ties share a score; more is better.
    for col, score in (("frequency", "f_score"), ("monetary", "m_score")):
        ranks = m[col].rank(method="min")
        pr = (ranks - 1) / (len(m) - 1)
        expected = np.minimum(5, 1 + np.floor(pr * 5 + 1e-12)).astype(int)
        assert (m[score].to_numpy() == expected.to_numpy()).all(), col
    rec = (-m.recency).rank(method="min")
    expected_r = np.minimum(5, 1 + np.floor((rec - 1) / (len(m) - 1) * 5 + 1e-12))
    assert (m.r_score.to_numpy() == expected_r.astype(int).to_numpy()).all()
    assert (m.groupby("frequency").f_score.nunique() == 1).all()
    champs = m[m.rfm_segment == "Champions"]
    assert (champs.r_score >= 4).all() and ((champs.f_score + champs.m_score) >= 7).all()


def test_lapse_thresholds_are_shrunk_quantiles_of_purchase_gaps(shop):
    ws, truth, result, p, con = shop
    rules = ws.settings.profile
    gaps = con.df(
        """
        with days as (select distinct customer_id, cast(paid_at + interval 8 hour as date) d
                      from orders where customer_id is not null and paid_at is not null)
        select customer_id, d - lag(d) over (partition by customer_id order by d) as gap
        from days qualify gap is not null"""
    )
    cells = p[["customer_id", "main_category", "gender"]].copy()
    cells["gender"] = cells.gender.where(cells.gender.isin(["f", "m"]), "unknown")
    every = gaps.merge(cells, on="customer_id")
    g = every.dropna(subset=["main_category"])
    th = con.df("select * from lapse_thresholds")

    def q(x):
        return float(np.quantile(x, rules.lapse_quantile, method="inverted_cdf"))

    k, floor = rules.lapse_prior_gaps, rules.lapse_min_days
    shop_q = q(every.gap)  # the shop counts every gap, with or without a category
    shop_row = th[(th.category == "all") & (th.gender == "all")].iloc[0]
    assert shop_row.n_gaps == len(every) and shop_row.quantile_days == shop_q
    for cat, cg in g.groupby("main_category"):
        cat_t = max((len(cg) * q(cg.gap) + k * shop_q) / (len(cg) + k), floor)
        row = th[(th.category == cat) & (th.gender == "all")].iloc[0]
        assert row.threshold_days == pytest.approx(cat_t, rel=1e-12)
        for gender, gg in cg.groupby("gender"):
            cell = th[(th.category == cat) & (th.gender == gender)].iloc[0]
            want = max((len(gg) * q(gg.gap) + k * cat_t) / (len(gg) + k), floor)
            assert cell.n_gaps == len(gg)
            assert cell.threshold_days == pytest.approx(want, rel=1e-12)
    # Each buyer is judged against their own cell, else their category, else the shop.
    b = p[p.purchase_days > 0].copy()
    b["g"] = b.gender.where(b.gender.isin(["f", "m"]), "unknown")
    lookup = {(r.category, r.gender): r.threshold_days for r in th.itertuples()}
    want = [
        lookup.get((c, g), lookup.get((c, "all"), lookup[("all", "all")]))
        for c, g in zip(b.main_category, b.g, strict=True)
    ]
    np.testing.assert_allclose(b.lapse_threshold_days, want, rtol=1e-12)
    lapsing = b[b.lifecycle == "lapsing"]
    assert (lapsing.days_since_last_purchase > lapsing.lapse_threshold_days).all()
    lost = b[b.lifecycle == "lost"]
    assert (lost.days_since_last_purchase > rules.lost_factor * lost.lapse_threshold_days).all()


def test_lifecycle_tracks_who_is_really_still_a_customer(shop):
    ws, truth, result, p, con = shop
    m = p.merge(truth, on="customer_id")
    b = m[m.purchase_days > 0]
    # The true rate of future purchases: λ while alive, 0 once dropped out. (Under BG/NBD a
    # one-time buyer never drops out, so "alive" alone cannot tell who stopped buying.)
    future = (b.lam * b.alive_at_end).groupby(b.lifecycle).mean()
    active = min(future["one_time_buyer"], future["repeat_buyer"])
    assert active > 2 * future["lapsing"] > 2 * future["lost"], future.to_dict()


def test_preferences_recover_the_truth(shop):
    ws, truth, result, p, con = shop
    m = p.merge(truth, on="customer_id", suffixes=("", "_true"))
    b = m[m.purchase_days > 0]
    top = (b.top_category == b.preferred_category).mean()
    band = (b.price_band == b.price_band_true).mean()
    assert top > 0.85, top
    # Baskets are priced to each order's drawn value, so tiers blur; still far above chance
    # (1/3), and a budget buyer is hardly ever taken for a premium one.
    assert band > 0.55, band
    order = {"budget": 0, "mid": 1, "premium": 2}
    two_off = (b.price_band.map(order) - b.price_band_true.map(order)).abs() == 2
    assert two_off.mean() < 0.08
    judged = b[b.paid_orders >= ws.settings.profile.discount_min_orders]
    flagged = judged.discount_sensitive
    precision = (flagged & judged.discount_sensitive_true).sum() / flagged.sum()
    recall = (flagged & judged.discount_sensitive_true).sum() / judged.discount_sensitive_true.sum()
    assert precision > 0.8 and recall > 0.65, (precision, recall)
    fest = b.festival_buyer
    f_precision = (fest & b.festival_buyer_true).sum() / fest.sum()
    enough = b[b.purchase_days >= 5]
    f_recall = (enough.festival_buyer & enough.festival_buyer_true).sum() / (
        enough.festival_buyer_true.sum()
    )
    assert f_precision > 0.8 and f_recall > 0.5, (f_precision, f_recall)
    # A single purchase is never evidence enough for a festival buyer.
    assert not b[b.purchase_days == 1].festival_buyer.any()


def test_flags(shop):
    ws, truth, result, p, con = shop
    c = con.df("select customer_id, birthday, email, email_opt_in from customers")
    m = p.merge(c, on="customer_id", suffixes=("", "_c"))

    def days_to(b):
        if pd.isna(b):
            return None
        b = pd.Timestamp(b).date()
        for year in (AS_OF.year, AS_OF.year + 1):
            try:
                nxt = b.replace(year=year)
            except ValueError:  # 29 February in a common year
                nxt = date(year, 2, 28)
            if nxt >= AS_OF:
                return (nxt - AS_OF).days
        raise AssertionError

    want = m.birthday_c.map(days_to)
    has = want.notna()
    assert (m.days_to_birthday[has].astype(int) == want[has].astype(int)).all()
    assert (m.birthday_soon == (has & (want <= ws.settings.profile.birthday_window_days))).all()
    reach = m.email.notna() & m.email_opt_in.fillna(False).astype(bool)
    assert (m.email_reachable == reach).all()
    unpaid = con.df(
        f"""select customer_id, count(*) n from orders
            where customer_id is not null and created_at < '{CUTOFF}'
              and (paid_at is null or paid_at >= '{CUTOFF}') and status = 'created'
            group by 1"""
    )
    u = p.merge(unpaid, on="customer_id", how="left")
    assert (u.has_unpaid_order == u.n.notna()).all()
    assert (u.unpaid_order_age_days[u.has_unpaid_order] >= 0).all()


def test_an_earlier_as_of_sees_only_the_past(tmp_path_factory):
    ws, truth = load_sample(tmp_path_factory, "asof", customers=400, seed=9)
    early = date(2025, 6, 30)
    result = build(ws, early)
    assert result.as_of == early
    p = Sql(ws).df("select * from customer_profile")
    first = pd.to_datetime(truth.first_purchase_at)
    later_buyers = truth.customer_id[first > datetime(2025, 7, 1) + timedelta(days=8)]
    registered_late = pd.to_datetime(truth.registered_at) >= datetime(2025, 7, 1)
    assert len(p) == (~registered_late).sum()
    assert (p.set_index("customer_id").reindex(later_buyers).purchase_days.dropna() == 0).all()
    assert (pd.to_datetime(p.last_purchase_day.dropna()) <= pd.Timestamp(early)).all()


def test_build_and_customer_commands(shop):
    ws, truth, result, p, con = shop
    runner = CliRunner()
    home = str(ws.home)
    r = runner.invoke(app, ["customer", "C0000006", "--home", home, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    row = p.set_index("customer_id").loc["C0000006"]
    assert doc["lifecycle"] == row.lifecycle and doc["rfm_segment"] == row.rfm_segment
    r = runner.invoke(app, ["customer", "C0000006", "--home", home])
    assert r.exit_code == 0
    assert "State" in r.stdout and "C0000006" in r.stdout
    r = runner.invoke(app, ["customer", "nobody", "--home", home])
    assert r.exit_code == 1 and "no customer 'nobody'" in r.stderr
    r = runner.invoke(app, ["build", "--as-of", "2026-02-30", "--home", home])
    assert r.exit_code != 0 and "--as-of" in r.output


def test_customer_before_any_build_says_what_to_do(ws):
    r = CliRunner().invoke(app, ["customer", "C1", "--home", str(ws.home)])
    assert r.exit_code == 1 and "archer build" in r.stderr


def test_build_command_json(shop):
    ws, truth, result, p, con = shop
    r = CliRunner().invoke(app, ["build", "--home", str(ws.home), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["customers"] == len(truth) and doc["as_of"] == AS_OF.isoformat()
    assert doc["lifecycle"] == result.lifecycle  # the same data and day: the same answer
    assert doc["tables"]["customer_profile"] == len(truth)


def test_model_scores_are_chosen_by_holdout_error_and_rank_who_is_alive(shop):
    ws, truth, result, p, con = shop
    models = result.models
    assert models["chosen"] in ws.settings.profile.clv_models and not models["notes"]
    rmse = {name: c["holdout_rmse"] for name, c in models["candidates"].items()}
    assert set(rmse) == set(ws.settings.profile.clv_models)
    assert models["chosen"] == min(rmse, key=rmse.get)
    assert 0 < models["margin"] < 1  # learned from the unit costs of the lines sold
    buyers = p[p.purchase_days > 0].merge(truth, on="customer_id")
    assert buyers.p_alive.between(0, 1).all() and (buyers.expected_value_365d >= 0).all()
    assert p[p.purchase_days == 0][["p_alive", "churn_risk"]].isna().all().all()
    # Members still alive at the end have a higher p(alive), and the expected purchases follow
    # the true future rate (λ while alive, 0 once dropped out).
    alive = buyers.groupby("alive_at_end").p_alive.mean()
    assert alive[True] - alive[False] > 0.15
    future = buyers.lam * buyers.alive_at_end
    assert buyers.expected_purchases_90d.corr(future, method="spearman") > 0.35
    assert buyers.expected_purchases_90d.corr(future) > 0.5
    rules = ws.settings.profile
    bands = np.where(
        buyers.p_alive < rules.churn_high,
        "high",
        np.where(buyers.p_alive < rules.churn_medium, "medium", "low"),
    )
    assert (buyers.churn_risk.to_numpy() == bands).all()


def test_profile_md_documents_every_column_rule_state_and_segment():
    from archer.analytics.views import SHOP_TABLES
    from archer.customers.profile import PROFILE_COLUMNS
    from archer.customers.rules import ProfileRules

    text = (Path(__file__).resolve().parents[1] / "docs" / "profile.md").read_text("utf-8")
    missing = [c for c in PROFILE_COLUMNS if f"`{c}`" not in text]
    assert not missing, f"profile.md does not explain {missing}"
    rules = text.split("<!-- rules:start -->")[1].split("<!-- rules:end -->")[0]
    documented = re.findall(r"^\| `(\w+)` \|", rules, flags=re.M)
    assert documented == list(ProfileRules.model_fields)
    for name in (*LIFECYCLE_STATES, *STAGES, *SHOP_TABLES):
        assert f"`{name}`" in text, name
    for segment in SEGMENTS:
        assert segment in text, segment


def test_a_build_snapshots_every_saved_audience(shop):
    from archer.audiences import count
    from archer.audiences.service import save
    from archer.audiences.snapshots import history

    ws, truth, result, p, con = shop
    query = 'stage = "loyal" and email_reachable'
    save(ws, "loyal_mail", query, user="test")
    again = build(ws, AS_OF)
    assert again.audiences["audiences"] == {"loyal_mail": count(ws, query)["count"]}
    days = history(ws, "loyal_mail")
    assert [d["as_of"] for d in days] == [AS_OF.isoformat()]
