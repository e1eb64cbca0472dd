"""``archer build`` as a pipeline of named steps, published all at once or not at all.

A step is a function of the :class:`Build` in progress. Compute steps write their tables
with :meth:`Build.write`, which puts them under a staging name (``_build_<id>_<table>``);
when every compute step has run, :func:`build` swaps all staged tables in under their real
names in ONE warehouse transaction, and runs the publish steps (the audience snapshots,
later the campaign triggers) inside that same transaction, together with a row of the
``build_log``. A build killed at any point before the commit leaves the previous build whole;
the staging tables it left behind are dropped the next time a process opens the warehouse
(:meth:`~archer.warehouse.Warehouse.remove_strays`).

Packages contribute steps; this module is the one place that lists them, in order
(:func:`default_steps`), so that no package reaches into another to call it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from archer.clock import elapsed, naive_utc
from archer.errors import Conflict
from archer.facts import Snapshot
from archer.schema import BUILD_LOG, BUILD_LOG_SCHEMA
from archer.warehouse import STAGING_PREFIX, Warehouse

if TYPE_CHECKING:
    from archer.workspace import Workspace

Report = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Step:
    """A named part of the build. ``publish`` steps run inside the publishing transaction,
    after the staged tables are in place under their real names."""

    name: str
    run: Callable[[Build], dict[str, Any] | None]
    publish: bool = False


@dataclass
class Build:
    """What a step works with: the workspace, the warehouse, the snapshot, and where to write."""

    ws: Workspace
    wh: Warehouse
    snapshot: Snapshot
    report: Report
    build_id: str
    staged: dict[str, str] = field(default_factory=dict)  # table → its staging name
    scratch: list[ir.Table] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    def write(self, name: str, expr: ir.Table) -> ir.Table:
        """Write ``expr`` as table ``name`` of this build (under a staging name until publish)."""
        if name in self.staged:
            raise Conflict(f"the build writes {name!r} twice")
        staging = f"{STAGING_PREFIX}{self.build_id}_{name}"
        t = self.wh.con.create_table(staging, expr, overwrite=True)
        self.staged[name] = staging
        return t

    def table(self, name: str) -> ir.Table:
        """A table as this build sees it: its own staged version if it wrote one."""
        return self.wh.table(self.staged.get(name, name))

    def stage(self, expr: ir.Table, hint: str) -> ir.Table:
        """A scratch table for the rest of the build (dropped at its end)."""
        t = self.wh.stage(expr, hint)
        self.scratch.append(t)
        return t

    def use_snapshot(self, snapshot: Snapshot) -> None:
        """Let later steps see ``snapshot`` (e.g. with the staged identity map)."""
        self.snapshot = snapshot


@dataclass
class BuildResult:
    """What a build found: each step's figures under its own name in ``steps``, and the ones
    every build has (the profile's states, the models, the audiences) as attributes."""

    build_id: str
    as_of: date
    customers: int
    seconds: float
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)

    def _part(self, key: str) -> dict[str, Any]:
        return next((part[key] for part in self.steps.values() if key in part), {})

    @property
    def lifecycle(self) -> dict[str, int]:
        return self._part("lifecycle")

    @property
    def stages(self) -> dict[str, int]:
        return self._part("stages")

    @property
    def segments(self) -> dict[str, int]:
        return self._part("rfm_segments")

    @property
    def models(self) -> dict[str, Any]:
        return self._part("models")

    @property
    def audiences(self) -> dict[str, Any]:
        return self._part("audiences")

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "build_id": self.build_id,
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "seconds": round(self.seconds, 2),
        }
        for part in self.steps.values():
            doc.update(part)
        doc["tables"] = self.tables
        return doc


def default_steps() -> list[Step]:
    """The build, in order: profile → shop views → offers (redemptions, points) → the
    campaigns' ledger → audience snapshots (which may use the ledger: ``received(…)``)."""
    from archer.analytics.views import STEP as views
    from archer.audiences.snapshots import STEP as audiences
    from archer.campaigns.export import STEP as ledger
    from archer.customers.profile import STEP as profile
    from archer.offers.build import STEP as offers

    return [profile, views, offers, ledger, audiences]


def build(
    ws: Workspace,
    as_of: date | None = None,
    report: Report | None = None,
    steps: Sequence[Step] | None = None,
) -> BuildResult:
    """Run the steps as of ``as_of`` (default: the day of the latest activity) and publish."""
    report = report or (lambda *a: None)
    steps = list(steps) if steps is not None else default_steps()
    started = elapsed()
    build_id = uuid.uuid4().hex[:12]
    with ws.warehouse() as wh:
        wh.remove_strays()
        snap = Snapshot.at(wh, as_of, ws.tz, today=ws.today())
        b = Build(ws, wh, snap, report, build_id)
        try:
            for st in steps:
                if not st.publish:
                    b.results[st.name] = st.run(b) or {}
            for t in b.scratch:
                wh.drop_stage(t)
            b.scratch.clear()
            _publish(b, [st for st in steps if st.publish], started)
        finally:
            for t in b.scratch:
                wh.drop_stage(t)
            for staging in b.staged.values():  # left only when the build failed
                if staging.startswith(STAGING_PREFIX) and wh.has_table(staging):
                    wh.con.drop_table(staging, force=True)
        tables = {name: int(wh.table(name).count().execute()) for name in b.staged}
        customers = tables.get("customer_profile", 0)
    return BuildResult(build_id, snap.as_of, customers, elapsed() - started, b.results, tables)


def _publish(b: Build, steps: list[Step], started: float) -> None:
    wh = b.wh
    total = len(b.staged) + len(steps)
    with wh.transaction():
        for i, (name, staging) in enumerate(b.staged.items()):
            b.report("publish", i, total)
            wh.replace_with(name, staging)
        b.staged = {name: name for name in b.staged}  # in place now, under their own names
        for j, st in enumerate(steps):
            b.report("publish", len(b.staged) + j, total)
            b.results[st.name] = st.run(b) or {}
        _log(b, started)
    b.report("publish", total, total)


def _log(b: Build, started: float) -> None:
    wh = b.wh
    if not wh.has_table(BUILD_LOG):
        wh.con.create_table(BUILD_LOG, schema=BUILD_LOG_SCHEMA)
    row = {
        "build_id": b.build_id,
        "as_of": b.snapshot.as_of,
        "finished_at": naive_utc(b.ws.now()),
        "seconds": elapsed() - started,
        "tables": json.dumps(sorted(b.staged)),
    }
    wh.con.insert(BUILD_LOG, ibis.memtable(pd.DataFrame([row])).cast(BUILD_LOG_SCHEMA))


def last_build(wh: Warehouse) -> dict[str, Any] | None:
    """The newest row of the build log (its id, as-of day and when it finished), if any."""
    if not wh.has_table(BUILD_LOG):
        return None
    t = wh.table(BUILD_LOG)
    rows = t.order_by(ibis.desc(t.finished_at)).limit(1).to_pyarrow().to_pylist()
    return rows[0] if rows else None


def with_devices(snapshot: Snapshot, devices: ir.Table) -> Snapshot:
    return replace(snapshot, identity_map=devices)
