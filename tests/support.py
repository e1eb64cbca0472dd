"""Shared builders for tests: a workspace, and a sample shop imported (and built) in one.

Import with ``from support import …`` (tests/ is on the path, as for conftest).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import func, select

from archer.clock import Clock
from archer.config import init_workspace
from archer.ingest.importer import import_file
from archer.pipeline import build
from archer.sample import generate
from archer.schema import LOAD_ORDER
from archer.store.campaigns import Message
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


# -- processes of the CLI and the ledger they write (the crash and PostgreSQL tests) -------------
def archer(env: dict[str, str], log: Path, *args: str, setup: str = "") -> subprocess.Popen:
    """``archer ARGS`` in a child process with ``env``, its output appended to ``log``;
    ``setup`` is Python run in the child before the CLI starts (named where a test uses it)."""
    out = log.open("ab")
    cmd = [sys.executable, "-m", "archer.cli", *args]
    if setup:
        cmd = [sys.executable, "-c", f"{setup}\nimport sys\nsys.argv[0] = 'archer'\n"
               "from archer.cli import main\nmain()", *args]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=out)


def count(ws: Workspace, model) -> int:
    """How many rows of ``model`` the store holds."""
    with ws.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def unsent(ws: Workspace) -> int:
    """How many messages of the ledger are not sent yet."""
    with ws.session() as s:
        q = select(func.count()).where(Message.state != "sent")
        return s.scalar(q.select_from(Message)) or 0
