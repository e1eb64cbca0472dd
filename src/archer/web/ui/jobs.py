"""The build the operator starts from the Data page: one background thread per app, its
progress kept in memory for the page to poll (``GET /ui/build/progress``)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from archer.config import Settings

log = logging.getLogger(__name__)


@dataclass
class BuildJob:
    """The latest build: ``idle`` → ``running`` → ``done`` or ``failed``."""

    state: str = "idle"
    stage: str = ""
    done: int = 0
    total: int = 0
    started_at: str | None = None
    started_by: str | None = None
    seconds: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state": self.state,
                "stage": self.stage,
                "done": self.done,
                "total": self.total,
                "started_at": self.started_at,
                "started_by": self.started_by,
                "seconds": self.seconds,
                "result": self.result,
                "error": self.error,
            }

    def start(self, settings: Settings, user: str) -> bool:
        """Start a build unless one is running; True when this call started it."""
        with self._lock:
            if self.state == "running":
                return False
            self.state, self.stage, self.done, self.total = "running", "starting", 0, 0
            self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
            self.started_by, self.result, self.error, self.seconds = user, None, None, None
            self._thread = threading.Thread(
                target=self._run, args=(settings,), name="archer-ui-build", daemon=True
            )
            self._thread.start()
            return True

    def _report(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self.stage, self.done, self.total = stage, done, total

    def _run(self, settings: Settings) -> None:
        from archer.customers.profile import build

        t0 = time.perf_counter()
        try:
            r = build(settings, report=self._report).to_dict()
        except Exception as e:  # shown to the operator; the page stays usable
            log.exception("build started from the app failed")
            with self._lock:
                self.state, self.error = "failed", f"{type(e).__name__}: {e}"
                self.seconds = time.perf_counter() - t0
            return
        with self._lock:
            self.state, self.result = "done", r
            self.seconds = time.perf_counter() - t0

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
