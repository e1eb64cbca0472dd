"""Builds: ``POST /api/builds`` starts ``archer build`` in a background thread and answers its
id at once; ``GET /api/builds/{id}`` tells its state and the progress of each stage, as the
build reports it. One build runs at a time per app; the last few are remembered in memory.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from archer.config import Settings
from archer.web.api.common import Cursor, Limit, Page, page_of_list, problem_of
from archer.web.api.problems import Problem
from archer.web.auth import ApiPrincipal

router = APIRouter(tags=["builds"])
KEEP = 50  # finished builds remembered


class BuildCreate(BaseModel):
    as_of: date | None = None


class StageProgress(BaseModel):
    done: int
    total: int


class BuildPublic(BaseModel):
    id: str
    state: Literal["running", "done", "failed"]
    as_of: str | None
    started_by: str
    started_at: str
    finished_at: str | None = None
    stage: str | None = None
    progress: dict[str, StageProgress] = {}
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Build:
    id: str
    as_of: date | None
    started_by: str
    started_at: datetime
    state: str = "running"
    finished_at: datetime | None = None
    stage: str | None = None
    progress: dict[str, dict[str, int]] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "stage": self.stage,
            "progress": {k: dict(v) for k, v in self.progress.items()},
            "result": self.result,
            "error": self.error,
        }


class Builds:
    """The app's builds: at most one running, the last :data:`KEEP` remembered."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._all: OrderedDict[str, Build] = OrderedDict()

    def running(self) -> Build | None:
        return next((b for b in self._all.values() if b.state == "running"), None)

    def start(self, as_of: date | None, who: str) -> Build:
        with self._lock:
            busy = self.running()
            if busy is not None:
                raise Problem(
                    409,
                    f"a build is running already (started by {busy.started_by}): follow it at "
                    f"/api/builds/{busy.id}",
                    kind="build-running",
                    build=busy.id,
                )
            b = Build(uuid.uuid4().hex, as_of, who, datetime.now(UTC))
            self._all[b.id] = b
            while len(self._all) > KEEP:
                self._all.popitem(last=False)
        threading.Thread(target=self._run, args=(b,), name=f"build-{b.id[:8]}", daemon=True).start()
        return b

    def _run(self, b: Build) -> None:
        from archer.customers.profile import build

        def report(stage: str, done: int, total: int) -> None:
            with self._lock:
                b.stage = stage
                b.progress[stage] = {"done": int(done), "total": int(total)}

        try:
            result = build(self.settings, b.as_of, report)
        except Exception as e:  # the build's own errors are the operator's to read
            p = problem_of(e)
            with self._lock:
                b.state, b.error = "failed", p.detail if p else f"{type(e).__name__}: {e}"
                b.finished_at = datetime.now(UTC)
            return
        with self._lock:
            b.state, b.result = "done", result.to_dict()
            b.as_of = b.as_of or result.as_of
            b.finished_at = datetime.now(UTC)

    def get(self, build_id: str) -> dict[str, Any]:
        with self._lock:
            b = self._all.get(build_id)
            if b is None:
                raise Problem(
                    404,
                    f"no build {build_id!r} (builds are remembered while the "
                    "server runs): see GET /api/builds",
                    kind="not-found",
                )
            return b.public()

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [b.public() for b in reversed(self._all.values())]


def builds_of(request: Request) -> Builds:
    app = request.app
    if getattr(app.state, "builds", None) is None:
        app.state.builds = Builds(app.state.settings)
    return app.state.builds


@router.post("/builds", status_code=202)
async def start_build(
    request: Request, response: Response, who: ApiPrincipal, body: BuildCreate | None = None
) -> BuildPublic:
    """Start a build of the profiles, the shop views and the audience snapshots."""
    b = builds_of(request).start(body.as_of if body else None, who.actor)
    response.headers["Location"] = f"/api/builds/{b.id}"
    return BuildPublic(**b.public())


@router.get("/builds")
async def list_builds(
    request: Request, limit: Limit = 20, cursor: Cursor = None
) -> Page[BuildPublic]:
    """The builds since the server started, newest first."""
    return page_of_list(request, builds_of(request).all(), cursor, limit)


@router.get("/builds/{build_id}")
async def get_build(request: Request, build_id: str) -> BuildPublic:
    """A build's state (running, done, failed), its current stage and the progress of each."""
    return BuildPublic(**builds_of(request).get(build_id))
