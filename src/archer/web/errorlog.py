"""The server's unexpected errors: one line in the server's log (its id, its type, where the
details are) and the whole traceback in ``<home>/logs/errors.log``.

A traceback written to stderr can block the server: when ``archer serve`` runs as the child of
a process that does not read its stderr pipe (a supervisor, a test), the pipe fills up after
64 KB and the event loop waits on the write, for every request. One bounded line per error
keeps what is written to stderr small; the file keeps the details, rotated at
:data:`MAX_BYTES` with :data:`BACKUPS` older files, each traceback cut to
:data:`MAX_TRACEBACK` characters.
"""

from __future__ import annotations

import logging
import secrets
import threading
import traceback
from pathlib import Path

from archer.clock import SYSTEM

log = logging.getLogger("archer.web")

LOG_FILE = Path("logs") / "errors.log"
MAX_BYTES = 2_000_000
BACKUPS = 2
MAX_TRACEBACK = 20_000  # characters kept of one traceback (its head and its tail)
MAX_LINE = 300  # characters of the one line in the server's log
RECORDED = "_archer_error_id"  # set on an exception once it is recorded

_lock = threading.Lock()


def record(home: Path, exc: BaseException, where: str) -> str:
    """Write ``exc``'s traceback to the workspace's error log and one line to the server's
    log; the error's id (for the answer, so an operator can find the details)."""
    known = getattr(exc, RECORDED, None)
    if known:
        return known
    error_id = secrets.token_hex(6)
    text = "".join(traceback.format_exception(exc))
    if len(text) > MAX_TRACEBACK:
        half = MAX_TRACEBACK // 2
        text = f"{text[:half]}\n… ({len(text) - MAX_TRACEBACK:,} characters cut) …\n{text[-half:]}"
    stamp = SYSTEM.now().isoformat(timespec="seconds")
    path = home / LOG_FILE
    try:
        _append(path, f"--- {stamp} error {error_id} in {where}\n{text}\n")
        details = f"traceback in {LOG_FILE}"
    except OSError as e:  # the details are lost, the line is not
        details = f"the error log could not be written: {e.strerror}"
    said = " ".join(str(exc).split())
    line = f"unexpected error {error_id} in {where}: {type(exc).__name__}: {said}"
    if len(line) > MAX_LINE:
        line = line[: MAX_LINE - 1] + "…"
    log.error("%s (%s)", line, details)
    try:
        setattr(exc, RECORDED, error_id)
    except AttributeError:
        pass
    return error_id


def _append(path: Path, entry: str) -> None:
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size + len(entry) > MAX_BYTES:
            for i in range(BACKUPS, 0, -1):
                older = path.with_name(f"{path.name}.{i}")
                newer = path.with_name(f"{path.name}.{i - 1}") if i > 1 else path
                if newer.exists():
                    newer.replace(older)
        with path.open("a", encoding="utf-8") as f:
            f.write(entry)
