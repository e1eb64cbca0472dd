"""The import's scratch folders under ``<workspace>/tmp``: one per import, removed when it
ends, and those of imports that died (killed, machine stopped) removed when the next starts.

A folder is ``import-<pid>-<random>`` and holds ``.lock``, which its import keeps locked
(``flock``) while it runs; the lock goes with the process, however it ends. A folder whose
lock can be taken belongs to no running import. One without a lock yet is being made: it
is left alone while its process lives.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "import-"
LOCK = ".lock"


@contextlib.contextmanager
def scratch_dir(tmp: Path) -> Iterator[Path]:
    """A fresh scratch folder in ``tmp`` for one import, removed afterwards, whatever happens.

    Stale folders of dead imports are removed first.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    sweep(tmp)
    d = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=tmp))
    try:
        fd = os.open(d / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield d
        finally:
            os.close(fd)  # releases the lock
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sweep(tmp: Path) -> list[Path]:
    """Remove the scratch folders in ``tmp`` that no running import holds; return them."""
    removed = []
    for d in sorted(tmp.glob(f"{PREFIX}*")):
        if d.is_dir() and _abandoned(d):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _abandoned(d: Path) -> bool:
    try:
        fd = os.open(d / LOCK, os.O_RDWR)
    except FileNotFoundError:
        # Not locked yet: being made by its process, or left by one that died first.
        return not _alive(_pid_of(d))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # an import holds it
    finally:
        os.close(fd)
    return True


def _pid_of(d: Path) -> int | None:
    head = d.name.removeprefix(PREFIX).split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int | None) -> bool:
    """Whether a process ``pid`` exists (a folder of an older Archer, without a pid: no)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
