"""Shop-level views over a :class:`~archer.facts.Snapshot`: lifecycle funnel,
acquisition cohorts, basket affinities and KPIs over time.

Each view is a function of the snapshot returning an unexecuted Ibis table, so it runs on any
warehouse engine; ``.execute()`` gives a pandas DataFrame. The rules behind every number are in
each module's docstring and in ``docs/views.md``.
"""

from archer.analytics.baskets import affinities, recommendations
from archer.analytics.cohorts import cohorts, retention_matrix
from archer.analytics.funnel import funnel, funnel_steps
from archer.analytics.kpis import kpis

__all__ = [
    "affinities",
    "cohorts",
    "funnel",
    "funnel_steps",
    "kpis",
    "recommendations",
    "retention_matrix",
]
