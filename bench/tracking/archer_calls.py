"""Every call the tracking benchmark makes into archer in-process, in one place (the server
itself is ``archer serve``, started through ``common/server.py``)."""

from __future__ import annotations

from pathlib import Path


def workspace_with_source(home: Path) -> str:
    """A fresh workspace with one tracking source, ``bench``: its write key."""
    from archer.config import init_workspace
    from archer.store import sources
    from archer.workspace import Workspace

    ws = Workspace(init_workspace(home))
    with ws.session(write=True) as s:
        return sources.create(s, "bench", now=ws.now())[1]
