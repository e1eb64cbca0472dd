"""Shared builders for tests: a workspace, and a sample shop imported (and built) in one.

Import with ``from support import …`` (tests/ is on the path, as for conftest).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from archer.clock import Clock
from archer.config import init_workspace
from archer.ingest.importer import import_file
from archer.pipeline import build
from archer.sample import generate
from archer.schema import LOAD_ORDER
from archer.workspace import Workspace

NOW = datetime(2026, 11, 1)


def workspace(home: Path | str | None = None, clock: Clock | None = None, **kw) -> Workspace:
    """A new workspace at ``home`` (``archer init``), on ``clock`` (the wall clock if None)."""
    return Workspace(init_workspace(home, **kw), clock)


def with_store(ws: Workspace, db: Path) -> Workspace:
    """The same shop (its warehouse) with an operational store of its own at ``db``."""
    settings = ws.settings.model_copy(update={"database": f"sqlite:///{db}"})
    return Workspace(settings, ws.clock)


def sample_shop(
    root: Path,
    *,
    customers: int,
    seed: int,
    fmt: str = "parquet",
    edit: Callable[[Path], None] | None = None,
    as_of: date | None = None,
    now: datetime = NOW,
    clock: Clock | None = None,
    **generate_kw,
) -> Workspace:
    """The synthetic shop written to ``root/sample`` (``edit`` may change its files), imported
    into a workspace at ``root/shop`` with no row rejected, and built as of ``as_of`` if given."""
    generate(root / "sample", customers=customers, seed=seed, fmt=fmt, **generate_kw)
    if edit is not None:
        edit(root / "sample")
    ws = workspace(root / "shop", clock)
    for t in LOAD_ORDER:
        r = import_file(ws, t, root / "sample" / f"{t}.{fmt}", now=now)
        assert r.rejected == 0, (t, r.reasons)
    if as_of is not None:
        build(ws, as_of)
    return ws
