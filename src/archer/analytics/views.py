"""The build's shop-views step: the views a build keeps as tables, for the app and for SQL.

Each is also a function of :mod:`archer.analytics` that answers for any day and grouping on
demand; the build stores the shop's standard cut of each, as of the build's day.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis.expr.types as ir

from archer.analytics.baskets import affinities, recommendations
from archer.analytics.cohorts import cohorts
from archer.analytics.funnel import funnel
from archer.analytics.kpis import kpis
from archer.facts import Snapshot
from archer.pipeline import Build, Step
from archer.schema import SHOP_VIEWS

SHOP_TABLES: dict[str, Callable[[Snapshot], ir.Table]] = {
    "shop_kpis": lambda s: kpis(s, "month"),
    "shop_funnel": lambda s: funnel(s, "channel"),
    "shop_cohorts": lambda s: cohorts(s),
    "category_affinities": lambda s: affinities(s, "category", "order"),
    "customer_recommendations": lambda s: recommendations(s),
}
assert tuple(SHOP_TABLES) == SHOP_VIEWS


def run(b: Build) -> dict:
    for i, (name, view) in enumerate(SHOP_TABLES.items()):
        b.report("shop views", i, len(SHOP_TABLES))
        b.write(name, view(b.snapshot))
    b.report("shop views", len(SHOP_TABLES), len(SHOP_TABLES))
    return {}


STEP = Step("shop views", run)
