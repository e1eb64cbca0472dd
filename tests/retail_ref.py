"""Figures computed straight from the raw UCI Online Retail file with pandas, for tests that
check the ``online-retail`` preset and what is built on it. Nothing of Archer is used here.

The shop's rules, as the file's provenance states them: an invoice ``C…`` is a credit note (its
lines have negative quantities); a line with a negative quantity outside a credit note is a
stock adjustment and a negative price is a bad-debt write-off, neither a sale. A credit line
refunds the customer's latest earlier invoice with the same product, else the customer's latest
earlier invoice; what an invoice gets back is at most what it cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd


@dataclass
class Retail:
    orders: pd.DataFrame  # invoice, customer, time, month, amount, refunded, net
    credits: pd.DataFrame  # one row per credit line: customer, time, month, amount, invoice


@cache
def reference(path: Path) -> Retail:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw["q"] = raw.Quantity.astype(int)
    raw["p"] = raw.UnitPrice.astype(float)
    raw["t"] = pd.to_datetime(raw.InvoiceDate)
    raw["cust"] = raw.CustomerID.str.replace(".0", "", regex=False)
    raw["value"] = raw.q * raw.p
    credit = raw.InvoiceNo.str.startswith("C")
    sale = raw[~credit & (raw.q >= 0) & (raw.p >= 0)]
    orders = sale.groupby("InvoiceNo").agg(
        customer=("cust", "min"), time=("t", "min"), amount=("value", "sum")
    )
    orders["amount"] = orders.amount.round(2)

    # Candidate sales for the matching: known customers' lines with a positive quantity.
    cand = sale[(sale.cust != "") & (sale.q > 0)][["cust", "StockCode", "t", "InvoiceNo"]]
    cand = cand.drop_duplicates().sort_values(["t", "InvoiceNo"]).rename(columns={"t": "st"})
    cr = raw[credit].copy()
    cr["amount"] = (-cr.value).round(2)
    cr = cr.sort_values("t")
    by_product = pd.merge_asof(
        cr, cand, left_on="t", right_on="st", by=["cust", "StockCode"], suffixes=("", "_p")
    )
    by_customer = pd.merge_asof(
        cr, cand.drop(columns="StockCode").drop_duplicates(), left_on="t", right_on="st",
        by="cust", suffixes=("", "_c"),
    )  # fmt: skip
    cr["order"] = by_product.InvoiceNo_p.fillna(by_customer.InvoiceNo_c).to_numpy()
    cr.loc[cr.cust == "", "order"] = None
    back = cr.dropna(subset=["order"]).groupby("order").amount.sum()
    orders["refunded"] = back.reindex(orders.index).fillna(0.0).clip(upper=orders.amount)
    orders["net"] = orders.amount - orders.refunded
    orders["month"] = orders.time.dt.strftime("%Y-%m")
    cr["month"] = cr.t.dt.strftime("%Y-%m")
    credits = cr.rename(columns={"cust": "customer", "t": "time", "InvoiceNo": "invoice"})
    return Retail(orders, credits[["customer", "time", "month", "amount", "invoice", "order"]])
