"""What the overview draws, read from the tables the last build wrote (``customer_profile``
and the shop-level views of :data:`archer.analytics.views.SHOP_TABLES`), so a page costs a
few small aggregates whatever the size of the shop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd

from archer.analytics.funnel import DID
from archer.analytics.funnel import notes as funnel_notes
from archer.customers.lifecycle import LIFECYCLE_STATES, STAGES
from archer.plain import records
from archer.schema import PROFILE
from archer.warehouse import Warehouse

FUNNEL_STEPS = (
    ("visitors", "Visited"),
    ("registered", "Registered"),
    ("viewed", "Viewed a product"),
    ("carted", "Added to cart"),
    ("ordered", "Ordered"),
    ("paid", "Paid"),
    ("repeated", "Bought again"),
)
COHORT_ROWS = 12  # the latest cohorts shown in the heat map
COHORT_MONTHS = 12
CLV_BINS = 20

if TYPE_CHECKING:
    from archer.workspace import Workspace


def overview(ws: Workspace) -> dict[str, Any] | None:
    """Everything the overview shows, or None before the first build."""
    with ws.warehouse() as wh:
        if not wh.has_table(PROFILE):
            return None
        p = wh.table(PROFILE)
        head = p.aggregate(as_of=p.as_of.max(), customers=p.count()).to_pyarrow().to_pylist()[0]
        return {
            "as_of": head["as_of"].isoformat() if head["as_of"] else None,
            "customers": int(head["customers"]),
            "kpis": _kpis(wh),
            **dict(zip(("funnel", "funnel_notes"), _funnel(wh), strict=True)),
            "lifecycle": _counts(p, "lifecycle", LIFECYCLE_STATES),
            "stages": _counts(p, "stage", STAGES),
            "rfm": _rfm(p),
            "cohorts": _cohorts(wh),
            "clv": _clv(p),
        }


def _kpis(wh: Warehouse) -> list[dict[str, Any]]:
    if not wh.has_table("shop_kpis"):
        return []
    return records(wh.table("shop_kpis").order_by("period").to_pandas(), days=True)


def _funnel(wh: Warehouse) -> tuple[list[dict[str, Any]], list[str]]:
    """The whole shop's funnel: the per-channel table summed (each person is in one group);
    each step's people who reached it and (visit, view, cart) who did it, and notes on the
    steps the imported data cannot tell (null in the table)."""
    if not wh.has_table("shop_funnel"):
        return [], []
    f = wh.table("shop_funnel")
    cols = [k for k, _ in FUNNEL_STEPS] + [c for c in DID.values() if c in f.columns]
    row = f.aggregate(**{k: f[k].sum() for k in cols if k in f.columns}).to_pyarrow()
    row = row.to_pylist()[0]
    out, prev, top = [], None, None
    for key, label in FUNNEL_STEPS:
        n = row.get(key)
        n = None if n is None else int(n)
        did = row.get(DID.get(key, ""))
        if n is not None and top is None:
            top = n
        out.append(
            {
                "step": key,
                "label": label,
                "people": n,
                "did": None if did is None else int(did),
                "of_previous": (n / prev) if prev and n is not None else None,
                "of_visitors": (n / top) if top and n is not None else None,
            }
        )
        prev = n if n is not None else prev
    return out, funnel_notes(row)


def _counts(p: ibis.Table, col: str, order: tuple[str, ...]) -> list[dict[str, Any]]:
    got = p.group_by(col).aggregate(n=p.count()).to_pyarrow().to_pylist()
    n = {r[col]: int(r["n"]) for r in got if r[col] is not None}
    total = sum(n.values()) or 1
    keys = [k for k in order if k in n] + sorted(k for k in n if k not in order)
    return [{"name": k, "customers": n[k], "share": n[k] / total} for k in keys]


def _rfm(p: ibis.Table) -> dict[str, Any]:
    """Buyers per recency score (rows) and FM = ⌈(F + M)/2⌉ (columns), as in docs/profile.md."""
    b = p.filter(p.r_score.notnull())
    fm = ((b.f_score + b.m_score + 1) // 2).cast("int64")
    got = (
        b.mutate(fm=fm)
        .group_by(["r_score", "fm"])
        .aggregate(n=ibis._.count(), segment=ibis._.rfm_segment.arbitrary())
        .to_pyarrow()
        .to_pylist()
    )
    cells = {(int(r["r_score"]), int(r["fm"])): r for r in got}
    grid = []
    for r in range(5, 0, -1):
        grid.append(
            {
                "r": r,
                "cells": [
                    {
                        "fm": f,
                        "customers": int(cells[(r, f)]["n"]) if (r, f) in cells else 0,
                        "segment": cells[(r, f)]["segment"] if (r, f) in cells else None,
                    }
                    for f in range(1, 6)
                ],
            }
        )
    return {"buyers": sum(int(r["n"]) for r in got), "grid": grid}


def _cohorts(wh: Warehouse) -> dict[str, Any]:
    if not wh.has_table("shop_cohorts"):
        return {"cohorts": [], "months": [], "cells": []}
    c = wh.table("shop_cohorts")
    df = c.filter(c.months_since <= COHORT_MONTHS).to_pandas()
    if df.empty:
        return {"cohorts": [], "months": [], "cells": []}
    df["cohort"] = pd.to_datetime(df.cohort).dt.strftime("%Y-%m")
    keep = sorted(df.cohort.unique())[-COHORT_ROWS:]
    df = df[df.cohort.isin(keep)]
    sizes = df.groupby("cohort").cohort_size.max().to_dict()
    months = list(range(int(df.months_since.max()) + 1))
    cells = [
        {
            "cohort": r.cohort,
            "months_since": int(r.months_since),
            "retention": None if pd.isna(r.retention) else float(r.retention),
            "active": int(r.active),
        }
        for r in df.sort_values(["cohort", "months_since"]).itertuples()
    ]
    return {
        "cohorts": [{"cohort": k, "size": int(sizes[k])} for k in keep],
        "months": months,
        "cells": cells,
    }


def _clv(p: ibis.Table) -> dict[str, Any] | None:
    """A histogram of ``expected_value_365d`` up to its 99th percentile (the rest in the last
    bar), or None when the build fitted no model."""
    if "expected_value_365d" not in p.columns:
        return None
    v = p.filter(p.expected_value_365d.notnull()).expected_value_365d
    stats = (
        p.filter(p.expected_value_365d.notnull())
        .aggregate(n=ibis._.count(), hi=v.quantile(0.99), mean=v.mean(), median=v.median())
        .to_pyarrow()
        .to_pylist()[0]
    )
    if not stats["n"]:
        return None
    hi = float(stats["hi"] or 0) or 1.0
    width = hi / CLV_BINS
    scored = p.filter(p.expected_value_365d.notnull())
    b = (scored.expected_value_365d / width).floor().cast("int64")
    b = ibis.greatest(ibis.least(b, CLV_BINS - 1), 0)
    got = scored.mutate(bin=b).group_by("bin").aggregate(n=ibis._.count()).to_pyarrow()
    n = {int(r["bin"]): int(r["n"]) for r in got.to_pylist()}
    bins = [
        {
            "from": i * width,
            "to": (i + 1) * width if i < CLV_BINS - 1 else None,
            "customers": n.get(i, 0),
        }
        for i in range(CLV_BINS)
    ]
    return {
        "scored": int(stats["n"]),
        "mean": float(stats["mean"]),
        "median": float(stats["median"]),
        "bins": bins,
    }
