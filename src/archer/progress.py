"""Progress of long engine work, reported as (stage, done, total) to whoever shows it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import ibis

Report = Callable[[str, int, int], None]


@contextlib.contextmanager
def engine_progress(con: ibis.BaseBackend, report: Report, stage: str) -> Iterator[None]:
    """Report DuckDB's own query progress for ``stage`` while the block runs."""
    raw = getattr(con, "con", None)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.2):
            try:
                pct = raw.query_progress()
            except Exception:
                return
            if pct is not None and pct >= 0:
                report(stage, int(pct), 100)

    thread = None
    if raw is not None and hasattr(raw, "query_progress"):
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
    report(stage, 0, 100)
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        report(stage, 100, 100)
