"""The views as plain documents (dicts of JSON-ready rows) for the CLI and the web app.

Each ``*_report`` opens the workspace's warehouse, takes the snapshot as of the given day (the
latest activity when none), runs one view and returns ``{"as_of": …, <options>, "rows": […]}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

from archer.analytics.baskets import affinities, recommendations
from archer.analytics.cohorts import cohorts
from archer.analytics.funnel import funnel
from archer.analytics.funnel import notes as funnel_notes
from archer.analytics.kpis import kpis
from archer.facts import Snapshot
from archer.plain import records

if TYPE_CHECKING:
    from archer.workspace import Workspace


@contextmanager
def snapshot(ws: Workspace, as_of: date | None) -> Iterator[Snapshot]:
    with ws.warehouse() as wh:
        yield Snapshot.at(wh, as_of, ws.tz, today=ws.today())


def funnel_report(ws: Workspace, as_of: date | None = None, by: str | None = None) -> dict:
    with snapshot(ws, as_of) as snap:
        rows = records(funnel(snap, by).execute(), days=True)
        return {"as_of": snap.as_of.isoformat(), "by": by or "all", "rows": rows,
                "notes": funnel_notes(rows[0]) if rows else []}  # fmt: skip


def cohorts_report(
    ws: Workspace,
    as_of: date | None = None,
    by: str = "first_purchase",
    months: int | None = None,
) -> dict:
    with snapshot(ws, as_of) as snap:
        t = cohorts(snap, by)
        if months is not None:
            t = t.filter(t.months_since <= months)
        rows = records(t.execute(), days=True)
        return {"as_of": snap.as_of.isoformat(), "by": by, "rows": rows}


def affinities_report(
    ws: Workspace,
    as_of: date | None = None,
    level: str = "category",
    scope: str = "order",
    window_days: int = 30,
    min_support: float = 0.001,
    limit: int | None = None,
) -> dict:
    notes = []
    with snapshot(ws, as_of) as snap:
        if level == "category" and _uncategorised(snap):
            level = "product"
            notes.append("no product bought has a category: the pairs are of products")
        t = affinities(snap, level, scope, window_days, min_support)
        if limit:
            t = t.limit(limit)
        rows = records(t.execute(), days=True)
        if level == "product":
            names = _product_names(snap, {r[k] for r in rows for k in ("antecedent", "consequent")})
            for r in rows:
                r["antecedent_name"] = names.get(r["antecedent"])
                r["consequent_name"] = names.get(r["consequent"])
        doc = {
            "as_of": snap.as_of.isoformat(),
            "level": level,
            "scope": scope,
            "window_days": window_days if scope == "customer" else None,
            "min_support": min_support,
            "rows": rows,
            "notes": notes,
        }
        return doc


def _uncategorised(snap: Snapshot) -> bool:
    """Whether the shop has paid lines but none with a category (e.g. Online Retail)."""
    lines = snap.paid_lines()
    got = lines.aggregate(
        n=lines.count(), with_category=lines.count(where=lines.category.notnull()
                                                   & (lines.category != ""))
    ).execute()  # fmt: skip
    return int(got.n[0]) > 0 and int(got.with_category[0]) == 0


def _product_names(snap: Snapshot, ids: set[str]) -> dict[str, str]:
    """The catalogue's names of ``ids`` (those it has)."""
    if not ids:
        return {}
    p = snap.products
    got = p.filter(p.product_id.isin(sorted(ids)) & p.name.notnull()).select("product_id", "name")
    return dict(got.execute().itertuples(index=False))


def recommendations_report(
    ws: Workspace,
    as_of: date | None = None,
    k: int = 3,
    scope: str = "customer",
    window_days: int = 30,
    min_support: float = 0.001,
    customer: str | None = None,
    limit: int | None = None,
) -> dict:
    with snapshot(ws, as_of) as snap:
        t = recommendations(snap, k, scope, window_days, min_support)
        if customer is not None:
            t = t.filter(t.customer_id == customer)
        if limit:
            t = t.limit(limit)
        return {
            "as_of": snap.as_of.isoformat(),
            "k": k,
            "scope": scope,
            "window_days": window_days if scope == "customer" else None,
            "min_support": min_support,
            "rows": records(t.execute(), days=True),
        }


def kpis_report(
    ws: Workspace, as_of: date | None = None, grain: str = "month", last: int | None = None
) -> dict:
    with snapshot(ws, as_of) as snap:
        df = kpis(snap, grain).execute()
        if last:
            df = df.tail(last)
        return {"as_of": snap.as_of.isoformat(), "grain": grain, "rows": records(df, days=True)}
