"""The tracking inbox: events received from the sites, durable before they are acknowledged.

Two tables. ``tracking_inbox`` holds each accepted event (its normalised JSON) until the loader
has written it to the warehouse and deletes it. ``tracking_message_ids`` remembers every
``(source, messageId)`` for :data:`DEDUP_DAYS` days: a message sent again — an SDK retrying
after a lost answer, a server killed between commit and reply — is acknowledged again but not
stored twice.

The HTTP routes hand their events to one :class:`InboxWriter` thread, which commits whatever
has queued up in one transaction (group commit) and only then answers the waiting requests;
should that commit fail, the requests are committed one by one, so one bad request fails
alone. On SQLite its connection runs with ``synchronous=FULL``: the WAL is synced to disk at
every commit, so an acknowledged event survives a killed process and a power cut alike.

Each commit holds the store's write lock (SQLite's, or the advisory lock on PostgreSQL, see
:mod:`archer.store.db`), also when several servers share one PostgreSQL database: so a
message id is checked and stored by one writer at a time, and inbox rows become visible in
``seq`` order — which the loader relies on when it removes everything up to the last ``seq``
it loaded.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Row,
    String,
    Text,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from archer.store.db import _IMMEDIATE, Base

DEDUP_DAYS = 7
MESSAGE_ID_MAX = 200
_IN_CHUNK = 400  # bound parameters per IN (…): below every engine's limit
GROUP_MAX_EVENTS = 20_000  # one commit takes at most this many events

log = logging.getLogger(__name__)


class InboxEvent(Base):
    __tablename__ = "tracking_inbox"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_MAX))
    received_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)


class SeenMessage(Base):
    __tablename__ = "tracking_message_ids"

    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_MAX), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True)
class Batch:
    """Events of one request: ``(messageId, normalised JSON)`` pairs from one source."""

    source_id: int
    received_at: datetime
    events: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Accepted:
    stored: int
    duplicates: int


def append(conn: Connection, batches: Sequence[Batch]) -> list[Accepted]:
    """Store the events not seen before, in the caller's transaction; one answer per batch.

    Repeats are found against the ledger and within the batches themselves (the first copy
    wins), so the order of arrival decides and nothing is stored twice.
    """
    ids_t, inbox_t = SeenMessage.__table__, InboxEvent.__table__
    seen: dict[int, set[str]] = {}
    for source_id, mids in _ids_by_source(batches).items():
        known: set[str] = set()
        for i in range(0, len(mids), _IN_CHUNK):
            part = mids[i : i + _IN_CHUNK]
            known.update(
                conn.scalars(
                    select(ids_t.c.message_id).where(
                        ids_t.c.source_id == source_id, ids_t.c.message_id.in_(part)
                    )
                )
            )
        seen[source_id] = known
    answers: list[Accepted] = []
    id_rows: list[dict] = []
    inbox_rows: list[dict] = []
    for b in batches:
        known = seen[b.source_id]
        stored = 0
        for mid, body in b.events:
            if mid in known:
                continue
            known.add(mid)
            stored += 1
            id_rows.append(
                {"source_id": b.source_id, "message_id": mid, "received_at": b.received_at}
            )
            inbox_rows.append(
                {
                    "source_id": b.source_id,
                    "message_id": mid,
                    "received_at": b.received_at,
                    "body": body,
                }
            )
        answers.append(Accepted(stored, len(b.events) - stored))
    if id_rows:
        conn.execute(insert(ids_t), id_rows)
        conn.execute(insert(inbox_t), inbox_rows)
    return answers


def _ids_by_source(batches: Iterable[Batch]) -> dict[int, list[str]]:
    out: dict[int, set[str]] = {}
    for b in batches:
        out.setdefault(b.source_id, set()).update(mid for mid, _ in b.events)
    return {k: sorted(v) for k, v in out.items()}


def pending(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(InboxEvent.__table__)) or 0)


def next_events(conn: Connection, limit: int) -> list[InboxEvent]:
    """The oldest ``limit`` events waiting for the warehouse, in arrival order."""
    t = InboxEvent.__table__
    return list(conn.execute(select(t).order_by(t.c.seq).limit(limit)).all())


def next_bodies(conn: Connection, limit: int, after: int = 0) -> list[Row]:
    """The loader's read: ``(seq, source_id, body)`` of the oldest ``limit`` events after
    ``after``, in arrival order (only the columns it needs: no time to convert)."""
    t = InboxEvent.__table__
    q = select(t.c.seq, t.c.source_id, t.c.body).where(t.c.seq > after)
    return list(conn.execute(q.order_by(t.c.seq).limit(limit)).all())


def remove_through(conn: Connection, last_seq: int) -> int:
    """Forget the events up to ``last_seq`` (inclusive): the warehouse has them."""
    t = InboxEvent.__table__
    return conn.execute(delete(t).where(t.c.seq <= last_seq)).rowcount or 0


def prune_ids(conn: Connection, now: datetime, days: int = DEDUP_DAYS) -> int:
    """Drop message ids older than ``days``: a copy arriving later is taken as new."""
    t = SeenMessage.__table__
    cutoff = now - timedelta(days=days)
    return conn.execute(delete(t).where(t.c.received_at < cutoff)).rowcount or 0


class InboxWriter:
    """One thread that commits queued batches together and then answers their futures."""

    def __init__(self, eng: Engine) -> None:
        self._eng = eng
        self._queue: queue.Queue[tuple[Batch, Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="archer-inbox", daemon=True)
        self._conn: Connection | None = None

    def start(self) -> None:
        conn = self._eng.execution_options(**{_IMMEDIATE: True}).connect()
        if conn.dialect.name == "sqlite":
            # Outside any transaction (SQLite refuses it inside): sync the WAL at each commit.
            conn.connection.driver_connection.execute("PRAGMA synchronous=FULL")
        self._conn = conn
        self._thread.start()

    def submit(self, batch: Batch) -> Future:
        fut: Future = Future()
        self._queue.put((batch, fut))
        return fut

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            group = [item]
            n = len(item[0].events)
            while n < GROUP_MAX_EVENTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
                n += len(more[0].events)
            self._commit(group)

    def _commit(self, group: list[tuple[Batch, Future]]) -> None:
        assert self._conn is not None
        try:
            with self._conn.begin():
                answers = append(self._conn, [b for b, _ in group])
        except Exception as e:
            if len(group) > 1:  # one request's bad row must not fail the others: one by one
                for item in group:
                    self._commit([item])
                return
            # The request answers 503 and the SDK sends again. One bounded line, no traceback:
            # an unread stderr pipe must not stop the writer (see archer.web.errorlog).
            said = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            log.error("inbox commit failed: %s", said)
            group[0][1].set_exception(e)
            return
        for (_, fut), a in zip(group, answers, strict=True):
            fut.set_result(a)
