"""Background work with progress: builds, syncs, imports and (later) campaign rounds.

:class:`Jobs` belongs to a workspace's process (the server holds one; a CLI command makes one
for its single job). ``start`` runs a job in a thread and answers at once; ``run`` runs it in
the caller's thread (the CLI). Either way the job's row in the store says what it is, who
started it, its stage and progress, and how it ended, so a restarted server still knows what
ran, and one kind of job runs once at a time across every process sharing the store.

A job is a function ``work(report) -> dict``; ``report(stage, done, total)`` records progress.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from archer.clock import elapsed
from archer.errors import ArcherError, Conflict, NotFound
from archer.store import jobs as rows

if TYPE_CHECKING:
    from archer.workspace import Workspace

Report = Callable[[str, int, int], None]
Work = Callable[[Report], dict[str, Any]]
HEARTBEAT_SECONDS = 2.0  # progress is written to the store at most this often
STALE_AFTER = timedelta(minutes=10)  # a running job of another host silent this long is dead
OWNER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class _Live:
    """A job running in this process: its progress, fresher than its row."""

    id: str
    kind: str
    stage: str | None = None
    progress: dict[str, dict[str, int]] = field(default_factory=dict)
    flushed: float = 0.0
    thread: threading.Thread | None = None


class Jobs:
    """The jobs of one workspace, seen from this process."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._lock = threading.Lock()
        self._live: dict[str, _Live] = {}

    # -- starting ------------------------------------------------------------------------------
    def start(self, kind: str, work: Work, *, who: str, params: dict | None = None) -> dict:
        """Start ``work`` in a background thread; its public document at once."""
        live = self._claim(kind, who, params or {})
        t = threading.Thread(
            target=self._execute, args=(live, work), name=f"{kind}-{live.id[:8]}", daemon=True
        )
        live.thread = t
        t.start()
        return self.get(live.id)

    def run(self, kind: str, work: Work, *, who: str, params: dict | None = None) -> dict:
        """Run ``work`` here and now; its finished document (errors re-raised)."""
        live = self._claim(kind, who, params or {})
        error = self._execute(live, work)
        if error is not None:
            raise error
        return self.get(live.id)

    def wait(self, job_id: str, timeout: float | None = None) -> dict:
        """Wait for a job started here to end (tests, shutdown); its document."""
        live = self._live.get(job_id)
        if live is not None and live.thread is not None:
            live.thread.join(timeout)
        return self.get(job_id)

    # -- reading -------------------------------------------------------------------------------
    def get(self, job_id: str) -> dict:
        with self.ws.session() as s:
            row = s.get(rows.JobRow, job_id)
            if row is None:
                raise NotFound(f"no job {job_id!r}: see the list of recent jobs")
            doc = row.to_dict()
        return self._fresh(doc)

    def recent(self, kind: str | None = None, limit: int = 50) -> list[dict]:
        with self.ws.session() as s:
            docs = [r.to_dict() for r in rows.recent(s, kind, limit)]
        return [self._fresh(d) for d in docs]

    def running(self, kind: str) -> dict | None:
        with self.ws.session() as s:
            row = rows.running(s, kind)
            return self._fresh(row.to_dict()) if row is not None else None

    def _fresh(self, doc: dict) -> dict:
        with self._lock:
            live = self._live.get(doc["id"])
            if live is not None and doc["state"] == "running":
                doc["stage"] = live.stage
                doc["progress"] = {k: dict(v) for k, v in live.progress.items()}
        return doc

    # -- inside --------------------------------------------------------------------------------
    def _claim(self, kind: str, who: str, params: dict) -> _Live:
        """Write the job's ``running`` row, unless one of its kind runs (a dead one is
        marked ``interrupted`` first)."""
        for _ in range(2):
            now = self.ws.now()
            job_id = uuid.uuid4().hex
            try:
                with self.ws.session(write=True) as s:
                    busy = rows.running(s, kind)
                    if busy is not None and self._dead(busy, now):
                        busy.state, busy.finished_at = "interrupted", now
                        busy.error = "the process running it stopped before it finished"
                        s.flush()
                        busy = None
                    if busy is not None:
                        raise Conflict(
                            f"a {kind} is running already (started by {busy.started_by} at "
                            f"{busy.started_at:%Y-%m-%d %H:%M} UTC, job {busy.id}): "
                            "wait for it to finish",
                            job=busy.id,
                        )
                    s.add(
                        rows.JobRow(
                            id=job_id,
                            kind=kind,
                            state="running",
                            started_by=who,
                            started_at=now,
                            heartbeat_at=now,
                            owner=OWNER,
                            params=json.dumps(params, default=str),
                            progress="{}",
                        )
                    )
            except IntegrityError:  # another process claimed the kind between our read and write
                continue
            live = _Live(job_id, kind)
            with self._lock:
                self._live[job_id] = live
            return live
        raise Conflict(f"a {kind} is running already: wait for it to finish")

    def _dead(self, row: rows.JobRow, now) -> bool:
        host, _, pid = row.owner.rpartition(":")
        if row.owner == OWNER:
            with self._lock:
                return row.id not in self._live
        if host == socket.gethostname() and pid.isdigit():
            return not _alive(int(pid))
        return now - row.heartbeat_at > STALE_AFTER

    def _execute(self, live: _Live, work: Work) -> BaseException | None:
        def report(stage: str, done: int, total: int) -> None:
            with self._lock:
                live.stage = stage
                live.progress[stage] = {"done": int(done), "total": int(total)}
                due = elapsed() - live.flushed >= HEARTBEAT_SECONDS
            if due:
                self._flush(live)

        state, result, error, caught = "done", None, None, None
        try:
            result = work(report)
        except Exception as e:  # the job's own errors are the operator's to read
            state, caught = "failed", e
            error = str(e) if isinstance(e, ArcherError) else f"{type(e).__name__}: {e}"
        with self.ws.session(write=True) as s:
            row = s.get(rows.JobRow, live.id)
            row.state, row.error = state, error
            row.result = json.dumps(result, default=str) if result is not None else None
            row.finished_at = row.heartbeat_at = self.ws.now()
            row.stage = live.stage
            row.progress = json.dumps(live.progress)
        with self._lock:
            self._live.pop(live.id, None)
        return caught

    def _flush(self, live: _Live) -> None:
        with self._lock:
            live.flushed = elapsed()
            stage, progress = live.stage, json.dumps(live.progress)
        try:
            with self.ws.session(write=True) as s:
                row = s.get(rows.JobRow, live.id)
                if row is not None and row.state == "running":
                    row.stage, row.progress = stage, progress
                    row.heartbeat_at = self.ws.now()
        except Exception:  # progress is best effort: the job goes on if the store is busy
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
