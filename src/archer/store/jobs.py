"""Background jobs in the store: what ran, who started it, how far it got, how it ended.

A partial unique index allows one ``running`` row per kind, so two processes sharing the store
(the server and a CLI command) cannot run two builds at once; a row left ``running`` by a
process that died is found by its owner (host and pid) or its stale heartbeat and marked
``interrupted`` (see :mod:`archer.jobs`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from archer.store.db import Base

STATES = ("running", "done", "failed", "interrupted")


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16))
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime]
    owner: Mapped[str] = mapped_column(String(200))
    params: Mapped[str] = mapped_column(Text, default="{}")
    stage: Mapped[str | None] = mapped_column(String(100))
    progress: Mapped[str] = mapped_column(Text, default="{}")
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "uq_jobs_running_kind",
            "kind",
            unique=True,
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
        Index("ix_jobs_started_at", "started_at"),
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "params": json.loads(self.params or "{}"),
            "stage": self.stage,
            "progress": json.loads(self.progress or "{}"),
            "result": json.loads(self.result) if self.result else None,
            "error": self.error,
        }


def running(s: Session, kind: str) -> JobRow | None:
    return s.scalar(select(JobRow).where(JobRow.kind == kind, JobRow.state == "running"))


def recent(s: Session, kind: str | None = None, limit: int = 50) -> list[JobRow]:
    q = select(JobRow).order_by(JobRow.started_at.desc(), JobRow.id).limit(limit)
    if kind is not None:
        q = q.where(JobRow.kind == kind)
    return list(s.scalars(q))
