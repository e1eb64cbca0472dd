"""RFM on the UCI Online Retail data agrees with an independent computation in plain DuckDB SQL
over the raw file (issue 3)."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pytest

from archer.pipeline import build
from conftest import run_import, shared
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
    return path, result, profile


def test_rfm_matches_plain_sql_on_the_raw_file(retail):
    path, result, p = retail
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
        select customer_id, count(distinct day) as frequency, sum(amount) as monetary,
               max(amount) as largest, date '{AS_OF}' - max(day) as recency
        from invoices group by customer_id"""
    ).df()
    buyers = p[p.purchase_days > 0].merge(ref, on="customer_id", how="outer", indicator=True)
    assert (buyers._merge == "both").all(), buyers._merge.value_counts()
    assert len(buyers) == len(ref) > 4_000
    assert (buyers.purchase_days == buyers.frequency).all()
    assert (buyers.days_since_last_purchase == buyers.recency).all()
    np.testing.assert_allclose(buyers.net_spent, buyers.monetary, rtol=1e-9, atol=0.005)
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
    path, result, p = retail
    n = duckdb.sql(
        f"select count(distinct CustomerID) from read_csv('{path}') where CustomerID is not null"
    ).fetchone()[0]
    assert result.customers == len(p) == n == 4_372
    # Customers whose only invoices were cancellations ordered but never paid.
    assert (p[p.purchase_days == 0].lifecycle == "ordered_unpaid").all()
