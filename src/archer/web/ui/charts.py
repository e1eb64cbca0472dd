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


def arms(doc: dict[str, Any]) -> dict[str, Any]:
    """A campaign's arms side by side: sales, gross profit and promotion cost per run."""
    figures = (("sales", "Sales per run"), ("gross_profit", "Gross profit per run"),
               ("promotion_cost", "Promotion cost per run"))  # fmt: skip
    series = []
    for a in doc["arms"].values():
        n = a["runs"] or 1
        series.append({"name": a["arm"], "data": [round(a[k] / n, 2) for k, _ in figures]})
    return {"kind": "bars", "horizontal": False, "categories": [label for _, label in figures],
            "series": series}  # fmt: skip


def intervals_svg(rows: list[dict[str, Any]], *, percent: bool, title: str) -> str:
    """Differences with their intervals as an inline SVG drawn on the server (a forest plot):
    one row per ``{"label", "diff", "low", "high", "mde", "verdict"}``, a line at zero, the
    interval as a bar coloured by the verdict, the difference as a dot, the MDE as a dashed
    mark. Rows without an interval are listed with an en dash. Every text is escaped."""
    from html import escape

    shown = [r for r in rows if r.get("low") is not None and r.get("high") is not None]
    ends = [0.0] + [v for r in shown for v in (r["low"], r["high"])]
    ends += [r["mde"] for r in shown if r.get("mde") is not None]
    lo, hi = min(ends), max(ends)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    width, left, right, row_h, top = 640, 180, 24, 34, 28
    height = top + row_h * max(1, len(rows)) + 24

    def x(v: float) -> float:
        return round(left + (v - lo) / (hi - lo) * (width - left - right), 1)

    def fmt(v: float) -> str:
        return f"{v * 100:+.2f} pts" if percent else f"{v:+,.2f}"

    out = [
        f'<svg class="intervals" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" style="max-width:100%;height:auto" '
        f'role="img" aria-label="{escape(title)}" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{x(0)}" y1="{top - 10}" x2="{x(0)}" y2="{height - 20}" stroke="#9aa5b1"/>',
        f'<text x="{x(0)}" y="{height - 6}" text-anchor="middle" fill="#52606d">0</text>',
    ]
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        out.append(f'<text x="8" y="{y + 4}" fill="#1f2933">{escape(str(r["label"]))}</text>')
        if r.get("low") is None or r.get("high") is None:
            out.append(f'<text x="{left}" y="{y + 4}" fill="#52606d">–</text>')
            continue
        # coloured by the verdict: an interval clear of 0 but below the MDE is not a finding
        colour = {"higher": "#0f766e", "lower": "#b91c1c"}.get(r.get("verdict"), "#52606d")
        out.append(f'<line x1="{x(r["low"])}" y1="{y}" x2="{x(r["high"])}" y2="{y}" '
                   f'stroke="{colour}" stroke-width="4" stroke-linecap="round"/>')  # fmt: skip
        if r.get("mde") is not None:
            out.append(f'<line x1="{x(r["mde"])}" y1="{y - 9}" x2="{x(r["mde"])}" y2="{y + 9}" '
                       'stroke="#d97706" stroke-dasharray="3 2"/>')  # fmt: skip
        out.append(f'<circle cx="{x(r["diff"])}" cy="{y}" r="5" fill="{colour}">'
                   f"<title>{escape(fmt(r['diff']))} ({escape(fmt(r['low']))} … "
                   f"{escape(fmt(r['high']))})</title></circle>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)
