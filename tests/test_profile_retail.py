"""RFM on the UCI Online Retail data agrees with an independent computation in plain DuckDB SQL
and pandas over the raw file (issue 3); credit notes are refunds (issue 12)."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pytest

from archer.analytics.kpis import kpis
from archer.facts import Snapshot
from archer.pipeline import build
from conftest import run_import, shared
from retail_ref import reference
from support import workspace

AS_OF = date(2011, 12, 9)  # the last day of the data


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    path = shared("online_retail", "online_retail.csv.gz")
    ws = workspace(tmp_path_factory.mktemp("retail"), timezone="Europe/London")
    run_import(ws, "orders", path, preset="online-retail")
    result = build(ws, AS_OF)
    con = duckdb.connect(str(ws.home / "warehouse.duckdb"), read_only=True)
    try:
        profile = con.sql("select * from customer_profile").df()
    finally:
        con.close()
    with ws.warehouse() as wh:
        months = kpis(Snapshot.at(wh, AS_OF, ws.tz), "month").to_pandas()
        r, o = wh.table("refunds"), wh.table("orders")
        j = r.join(o, r.order_id == o.order_id)
        refunds = j.select(j.customer_id, j.refunded_at).to_pandas()
    return path, result, profile, months, refunds


def test_rfm_matches_plain_sql_on_the_raw_file(retail):
    path, result, p, *_ = retail
    # Invoices of known customers that are not cancellations (C…); lines the shop itself
    # marks as stock adjustments (negative quantity outside a cancellation) or bad-debt
    # write-offs (negative price) are not sales.
    ref = duckdb.sql(
        f"""
        with lines as (
          select * from read_csv('{path}')
          where not (Quantity < 0 and InvoiceNo not like 'C%') and UnitPrice >= 0),
        invoices as (
          select InvoiceNo, replace(CustomerID::varchar, '.0', '') as customer_id,
                 min(InvoiceDate)::date as day, round(sum(Quantity * UnitPrice), 2) as amount
          from lines where InvoiceNo not like 'C%' and CustomerID is not null
          group by all)
        select customer_id, count(distinct day) as frequency, sum(amount) as gross,
               max(amount) as largest, date '{AS_OF}' - max(day) as recency
        from invoices group by customer_id"""
    ).df()
    # Monetary is spend net of refunds: the credit notes matched to the invoices (retail_ref).
    orders = reference(path).orders
    net = orders[orders.customer != ""].groupby("customer").net.sum().round(2)
    ref["monetary"] = ref.customer_id.map(net)
    buyers = p[p.purchase_days > 0].merge(ref, on="customer_id", how="outer", indicator=True)
    assert (buyers._merge == "both").all(), buyers._merge.value_counts()
    assert len(buyers) == len(ref) > 4_000
    assert (buyers.purchase_days == buyers.frequency).all()
    assert (buyers.days_since_last_purchase == buyers.recency).all()
    np.testing.assert_allclose(buyers.total_spent, buyers.gross, rtol=1e-9, atol=0.005)
    np.testing.assert_allclose(buyers.net_spent, buyers.monetary, rtol=1e-9, atol=0.005)
    assert buyers.gross.sum() - buyers.monetary.sum() > 500_000  # the credit notes count
    np.testing.assert_allclose(buyers.largest_order, buyers.largest, rtol=1e-9, atol=0.005)
    # Quintile scores by percent rank, ties sharing a score.
    for col, score in (("frequency", "f_score"), ("monetary", "m_score")):
        pr = (buyers[col].rank(method="min") - 1) / (len(buyers) - 1)
        expected = np.minimum(5, 1 + np.floor(pr * 5 + 1e-12)).astype(int)
        assert (buyers[score].to_numpy() == expected.to_numpy()).all(), col
    pr = ((-buyers.recency).rank(method="min") - 1) / (len(buyers) - 1)
    expected = np.minimum(5, 1 + np.floor(pr * 5 + 1e-12)).astype(int)
    assert (buyers.r_score.to_numpy() == expected.to_numpy()).all()


def test_every_customer_of_the_file_is_profiled(retail):
    path, result, p, *_ = retail
    n = duckdb.sql(
        f"select count(distinct CustomerID) from read_csv('{path}') where CustomerID is not null"
    ).fetchone()[0]
    assert result.customers == len(p) == n == 4_372
    # Customers whose only invoices are credit notes (for sales before the file begins)
    # ordered nothing in it: they are not "ordered but never paid".
    credit_only = p[p.purchase_days == 0]
    assert len(credit_only) > 0
    assert (credit_only.lifecycle == "registered_no_cart").all()
    assert (credit_only.n_orders == 0).all()


def test_credit_notes_are_refunds_net_sales_per_month(retail):
    """Net sales, refunds and the refund rate per month agree with the raw file (issue 12)."""
    path, _, _, months, _ = retail
    ref = reference(path).orders
    by_month = ref.groupby("month").agg(
        gross=("amount", "sum"), refunded=("refunded", "sum"), net=("net", "sum")
    )
    got = months.assign(month=months.period.astype(str).str[:7]).set_index("month")
    assert list(got.index) == list(by_month.index)  # 2010-12 .. 2011-12
    np.testing.assert_allclose(got.gross_sales, by_month.gross, atol=0.01)
    np.testing.assert_allclose(got.refunded, by_month.refunded, atol=0.01)
    np.testing.assert_allclose(got.net_sales, by_month.net, atol=0.01)
    assert (got.refund_rate > 0).all()
    # Most of the −611,342.09 of known customers' credit notes nets against their sales; the
    # rest credits sales made before the file begins (or more than the invoice cost).
    assert 500_000 < got.refunded.sum() < 611_342.09


def test_refund_users_per_month(retail):
    """The customers with a refund in each month are those with a credit note in that month
    and a purchase before it, counted over the raw file."""
    path, _, _, _, refunds = retail
    cr = reference(path).credits
    cr = cr[(cr.customer != "") & cr.order.notna()]
    expected = cr.groupby("month").customer.nunique()
    local = refunds.refunded_at.dt.tz_localize("UTC").dt.tz_convert("Europe/London")
    got = refunds.assign(month=local.dt.strftime("%Y-%m")).groupby("month").customer_id.nunique()
    assert got.to_dict() == expected.to_dict()
    assert expected.sum() > 1_000


def test_customer_who_returned_everything_spent_nothing(retail):
    """12346 bought 77,183.60 (invoice 541431) and returned all of it the same day (C541433)."""
    path, _, p, _, _ = retail
    raw = duckdb.sql(
        f"select sum(Quantity * UnitPrice) from read_csv('{path}') where CustomerID = 12346"
    ).fetchone()[0]
    assert raw == pytest.approx(0.0, abs=0.005)
    c = p[p.customer_id == "12346"].iloc[0]
    assert c.total_spent == pytest.approx(77_183.60)
    assert c.total_refunded == pytest.approx(77_183.60)
    assert c.net_spent == 0
    assert c.value_tier == "low"
