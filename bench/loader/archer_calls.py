"""Every call the loader benchmark makes into archer in-process, in one place: a tracking source
in a copied workspace, the inbox filled as the tracking API fills it (without HTTP), the sync,
and what the inbox holds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

SOURCE = "bench"  # the source's name: its events' ids are "bench:<messageId>"


def workspace(home: Path):
    from archer.config import init_workspace
    from archer.workspace import Workspace

    return Workspace(init_workspace(Path(home)))


def fill_inbox(home: Path, bodies: Iterable[bytes]) -> int:
    """Store the events of ``bodies`` (``/v1/batch`` request bodies) in the inbox of a new
    source ``bench``, as the API does: the same parsing, normalisation and ``inbox.append``,
    committed in groups of the API writer's size. Returns the events stored."""
    from archer.store import inbox, sources
    from archer.tracking.spec import normalise, parse_body

    ws = workspace(home)
    with ws.session(write=True) as s:
        src, _ = sources.create(s, SOURCE, now=ws.now())
        source_id = src.id
    stored = 0
    group: list[inbox.Batch] = []
    size = 0

    def commit() -> int:
        with ws.session(write=True) as s:
            answers = inbox.append(s.connection(), group)
        return sum(a.stored for a in answers)

    for raw in bodies:
        received = ws.now()
        events = normalise("batch", parse_body(raw), received)
        group.append(inbox.Batch(source_id, received, [(e.message_id, e.body) for e in events]))
        size += len(events)
        if size >= inbox.GROUP_MAX_EVENTS:
            stored += commit()
            group, size = [], 0
    if group:
        stored += commit()
    return stored


def inbox_bodies(home: Path, chunk: int = 50_000) -> Iterator[str]:
    """The stored JSON of every event in the inbox, in arrival order."""
    from sqlalchemy import select

    from archer.store.inbox import InboxEvent

    ws = workspace(home)
    t = InboxEvent.__table__
    last = 0
    while True:
        with ws.session() as s:
            got = s.connection().execute(
                select(t.c.seq, t.c.body).where(t.c.seq > last).order_by(t.c.seq).limit(chunk)
            )
            rows = got.all()
        if not rows:
            return
        for _, body in rows:
            yield body
        last = rows[-1][0]


def pending(home: Path) -> int:
    from archer.tracking.loader import pending

    return pending(workspace(home))


def sync(home: Path, **kw):
    """``archer.tracking.loader.sync`` on the workspace: its :class:`SyncResult`."""
    from archer.tracking.loader import sync

    return sync(workspace(home), **kw)
