"""Chart specifications for ``static/app.js``: small documents (kind, axes, series) that say
what to draw, built from the pages' data; the script turns them into ECharts options."""

from __future__ import annotations

from typing import Any

LIFECYCLE_LABELS = {
    "registered_no_cart": "Registered, no cart",
    "cart_no_order": "Cart, no order",
    "ordered_unpaid": "Ordered, unpaid",
    "one_time_buyer": "One-time buyer",
    "repeat_buyer": "Repeat buyer",
    "lapsing": "Lapsing",
    "lost": "Lost",
}
RFM_SHORT = ("", "1", "2", "3", "4", "5")


def kpis(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Net sales (bars) and active buyers, new buyers (lines) per month."""
    months = [str(r["period"])[:7] for r in rows]
    return {
        "kind": "combo",
        "categories": months,
        "axes": ["Net sales", "Customers"],
        "series": [
            {"name": "Net sales", "type": "bar", "axis": 0, "data": [r["net_sales"] for r in rows]},
            {"name": "Active buyers", "type": "line", "axis": 1,
             "data": [r["active_buyers"] for r in rows]},
            {"name": "New buyers", "type": "line", "axis": 1,
             "data": [r["new_buyers"] for r in rows]},
            {"name": "Registrations", "type": "line", "axis": 1,
             "data": [r["registrations"] for r in rows]},
        ],
    }  # fmt: skip


def funnel(steps: list[dict[str, Any]]) -> dict[str, Any]:
    known = [s for s in steps if s["people"] is not None]  # a step the data cannot tell: left out
    return {"kind": "funnel", "steps": [{"name": s["label"], "value": s["people"]} for s in known]}


def shares(rows: list[dict[str, Any]], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """One horizontal bar per state, longest first as listed."""
    labels = labels or {}
    return {
        "kind": "bars",
        "horizontal": True,
        "categories": [labels.get(r["name"], r["name"]) for r in rows],
        "series": [{"name": "Customers", "data": [r["customers"] for r in rows]}],
    }


def rfm(grid: dict[str, Any]) -> dict[str, Any]:
    """Recency (rows, 5 on top) × FM (columns): buyers per cell, labelled with the segment."""
    cells = []
    for yi, row in enumerate(reversed(grid["grid"])):  # y axis grows upwards: R 1 … 5
        for xi, c in enumerate(row["cells"]):
            cells.append([xi, yi, c["customers"], c["segment"] or ""])
    return {
        "kind": "heatmap",
        "x": [f"FM {i}" for i in range(1, 6)],
        "y": [f"R {i}" for i in range(1, 6)],
        "xname": "Frequency & money",
        "yname": "Recency",
        "cells": cells,
        "percent": False,
        "labels": True,
    }


def cohorts(doc: dict[str, Any]) -> dict[str, Any]:
    """First-purchase month (rows, oldest on top) × months since: the share still buying."""
    names = [c["cohort"] for c in doc["cohorts"]]
    at = {name: i for i, name in enumerate(reversed(names))}
    cells = [
        [c["months_since"], at[c["cohort"]], c["retention"], ""]
        for c in doc["cells"]
        if c["retention"] is not None and c["cohort"] in at
    ]
    return {
        "kind": "heatmap",
        "x": [str(m) for m in doc["months"]],
        "y": list(reversed(names)),
        "xname": "Months since first purchase",
        "yname": "",
        "cells": cells,
        "percent": True,
        "labels": True,
    }


def clv(doc: dict[str, Any]) -> dict[str, Any]:
    cats = []
    for b in doc["bins"]:
        cats.append(
            f"{b['from']:,.0f}–{b['to']:,.0f}" if b["to"] is not None else f"{b['from']:,.0f}+"
        )
    return {
        "kind": "bars",
        "horizontal": False,
        "categories": cats,
        "series": [{"name": "Customers", "data": [b["customers"] for b in doc["bins"]]}],
    }


def history(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """An audience's size per build day, with who entered and left."""
    return {
        "kind": "combo",
        "categories": [r["as_of"] for r in rows],
        "axes": ["Members", "Changes"],
        "series": [
            {"name": "Members", "type": "line", "axis": 0, "data": [r["size"] for r in rows]},
            {"name": "Entered", "type": "bar", "axis": 1, "data": [r["entered"] for r in rows]},
            {"name": "Left", "type": "bar", "axis": 1, "data": [-r["left"] for r in rows]},
        ],
    }
