"""Archer: precision marketing for online shops.

``archer.open("myshop")`` gives the shop's :class:`~archer.workspace.Workspace`: its audiences,
profiles, views and builds, the same numbers as the app and the CLI (docs/python.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from archer.clock import Clock
    from archer.workspace import Workspace

__all__ = ["open"]


def open(home: str | Path | None = None, clock: Clock | None = None) -> Workspace:  # noqa: A001
    """The workspace at ``home`` (made by ``archer init``), on ``clock`` (the wall clock)."""
    from archer.workspace import open_workspace

    return open_workspace(home, clock)
