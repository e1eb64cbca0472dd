"""The Workspace: one shop, now — its settings, its warehouse, its store and its clock.

Core functions take a ``ws`` rather than settings plus connections of their own:

* ``with ws.warehouse() as wh:`` lends the process's one warehouse connection. On DuckDB each
  thread works through its own cursor of that connection (cursors of one database see each
  other's commits); the file is opened when the first user arrives and closed when the last
  leaves, so another process (``archer import`` beside ``archer serve``) can take its turn. A
  file held by another process is waited for, up to ``busy_seconds``, then
  :class:`~archer.errors.Unavailable` says so.
* ``ws.session(write=True)`` is a transaction of the operational store.
* ``ws.clock`` is the only source of "now"; tests hold a :class:`~archer.clock.ManualClock`.

For an analyst: ``ws = archer.open("myshop")``, then ``ws.audiences.count('…')``,
``ws.profile("C0000006")``, ``ws.view("shop_kpis")`` (see docs/python.md).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from archer.clock import SYSTEM, Clock, local_today
from archer.config import CONFIG_FILE, Settings, load_settings
from archer.errors import Invalid, NotFound, Unavailable
from archer.warehouse import Warehouse, WarehouseBusy

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from archer.audiences.service import Audiences

BUSY_SECONDS = 10.0  # how long a command waits for another process to let go of the warehouse


class Workspace:
    """One shop's settings, warehouse connection, store sessions and clock."""

    def __init__(
        self, settings: Settings, clock: Clock | None = None, *, busy_seconds: float = BUSY_SECONDS
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SYSTEM
        self.busy_seconds = busy_seconds
        self._lock = threading.Lock()
        self._root: Warehouse | None = None
        self._users = 0
        self._local = threading.local()

    # -- what it is ------------------------------------------------------------------------
    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    def now(self) -> datetime:
        """The clock's moment (aware, UTC)."""
        return self.clock.now()

    def today(self) -> date:
        """Today in the shop's time zone."""
        return local_today(self.clock, self.tz)

    def exists(self) -> bool:
        return (self.home / CONFIG_FILE).is_file()

    def require(self) -> Workspace:
        """This workspace, or :class:`NotFound` when ``archer init`` never made it."""
        if not self.exists():
            raise NotFound(f"no workspace at {self.home}: run `archer init` first")
        return self

    def replace(self, **changes: Any) -> Workspace:
        """The same shop with some settings changed (another store, another engine), on the
        same clock."""
        return Workspace(self.settings.model_copy(update=changes), self.clock)

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r}, clock={self.clock!r})"

    # -- the warehouse ---------------------------------------------------------------------
    @contextlib.contextmanager
    def warehouse(self) -> Iterator[Warehouse]:
        """Lend the warehouse to this thread for the block (nested blocks share one cursor)."""
        mine: Warehouse | None = getattr(self._local, "wh", None)
        if mine is not None:
            self._local.depth += 1
            try:
                yield mine
            finally:
                self._local.depth -= 1
            return
        root = self._acquire()
        try:
            mine = root.cursor()
            self._local.wh, self._local.depth = mine, 1
            try:
                yield mine
            finally:
                self._local.wh = None
                if mine is not root:
                    mine.close()
        finally:
            self._release()

    def _acquire(self) -> Warehouse:
        with self._lock:
            if self._root is None:
                self._root = self._open_waiting()
            self._users += 1
            return self._root

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._root is not None:
                root, self._root = self._root, None
                root.close()

    def _open_waiting(self) -> Warehouse:
        deadline = time.monotonic() + self.busy_seconds
        pause = 0.05
        while True:
            try:
                wh = Warehouse.connect(self.settings.warehouse_url)
                wh.ensure_tables()
                if wh.engine == "duckdb":  # this process alone has the file: no build runs
                    wh.remove_strays()
                return wh
            except WarehouseBusy as e:
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        f"the warehouse is busy: {e.reason} — another archer process "
                        f"(an import, a build or a sync) is writing it; retry when it is done"
                    ) from None
                time.sleep(pause)  # waiting on another process's lock, not on time itself
                pause = min(pause * 2, 0.5)

    def close(self) -> None:
        """Close the warehouse if no one holds it (a server's shutdown, a test's end)."""
        with self._lock:
            if self._users == 0 and self._root is not None:
                self._root.close()
                self._root = None

    # -- the operational store --------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A store transaction: committed at the end of the block, rolled back on an error."""
        from archer.store.db import session

        with session(self.settings, write=write) as s:
            yield s

    def engine(self):
        from archer.store.db import engine

        return engine(self.settings)

    # -- for the analyst -------------------------------------------------------------------
    @property
    def audiences(self) -> Audiences:
        """Count, list, save and export audiences: ``ws.audiences.count('net_spent > 500')``."""
        from archer.audiences.service import Audiences

        return Audiences(self)

    def profile(self, customer_id: str) -> dict[str, Any]:
        """One customer's profile row as plain Python values."""
        from archer.customers.describe import load_profile

        return load_profile(self, customer_id)

    def view(self, name: str, limit: int | None = None) -> pd.DataFrame:
        """A table of the warehouse (canonical or built) as a pandas DataFrame."""
        from archer.schema import known_tables

        known = known_tables()
        if name not in known:
            from archer.errors import did_you_mean

            raise NotFound(f"no table {name!r}{did_you_mean(name, known)}")
        with self.warehouse() as wh:
            if not wh.has_table(name):
                from archer.errors import NotBuilt

                raise NotBuilt(f"no table {name!r} yet: run `archer build`")
            t = wh.table(name)
            return (t.limit(limit) if limit is not None else t).to_pandas()

    def build(self, as_of: date | None = None, report=None):
        """Run the build pipeline (profile → shop views → audience snapshots → …)."""
        from archer.pipeline import build

        return build(self, as_of, report)


def open_workspace(
    home: Path | str | None = None, clock: Clock | None = None, *, create: bool = False
) -> Workspace:
    """The workspace at ``home`` (default ``ARCHER_HOME`` or ./archer-data).

    Only ``archer init`` (``create=True``) makes a new one; otherwise a folder without
    ``archer.toml`` is :class:`~archer.errors.NotFound`, so a mistyped ``--home`` never
    becomes a stray empty shop.
    """
    try:
        settings = load_settings(home)
    except ValueError as e:
        raise Invalid(str(e)) from None
    ws = Workspace(settings, clock)
    return ws if create else ws.require()
