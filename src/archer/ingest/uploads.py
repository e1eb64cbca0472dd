"""Uploaded files: one path for the web app's Data page and ``POST /api/imports``.

An upload is written under ``<home>/uploads/<random>/<safe name>`` while it is imported and
removed afterwards, whatever happened: the import log and the quarantine keep what matters
(the file's own name, the rows, the rejected lines). Messages name the file, never the
workspace's folders.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archer.errors import Invalid

if TYPE_CHECKING:
    from archer.workspace import Workspace

UPLOADS = "uploads"
SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".xlsx", ".xlsm", ".xls", ".parquet", ".pq")
CHUNK = 1024 * 1024


class UnsupportedFile(Invalid):
    status, kind, title = 415, "unsupported-file", "Unsupported file"


def safe_name(filename: str | None) -> str:
    """The file's own name to keep on disk: its last part, harmless characters only, its
    suffix (which decides how it is read) kept; an unreadable kind of file is refused."""
    name = Path((filename or "upload").replace("\\", "/")).name
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    if stem.lower().endswith((".csv", ".tsv", ".txt")) and suffix == ".gz":
        stem, suffix = Path(stem).stem, Path(stem).suffix.lower() + suffix
    stem = re.sub(r"[^\w.-]+", "_", stem, flags=re.UNICODE).strip("._")[:80] or "upload"
    if not suffix.endswith(SUFFIXES):
        raise UnsupportedFile(
            f"the file {filename!r} is not one the importer reads: send CSV (.csv, .tsv, "
            ".txt, .gz), Excel (.xlsx) or Parquet (.parquet)"
        )
    return stem + suffix


def parse_mapping(text: str | None) -> list[str]:
    """A mapping as the importer takes it (``SOURCE=column`` items) from a form field:
    ``{"src": "dst"}`` as JSON, or ``src=dst`` pairs separated by commas or new lines."""
    if not text or not text.strip():
        return []
    text = text.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise Invalid(f"mapping is not valid JSON: {e}") from None
        if not isinstance(doc, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
        ):
            raise Invalid("mapping maps column names to column names")
        return [f"{k}={v}" for k, v in doc.items()]
    out = []
    for part in re.split(r"[,\n]", text):
        if not part.strip():
            continue
        src, eq, dst = part.partition("=")
        if not eq or not src.strip() or not dst.strip():
            raise Invalid(f"mapping part {part.strip()!r}: write SOURCE=TARGET")
        out.append(f"{src.strip()}={dst.strip()}")
    return out


def new_upload(ws: Workspace, filename: str | None) -> Path:
    """Where to write an upload of ``filename`` (its folder is made; :func:`discard` removes
    it)."""
    name = safe_name(filename)
    folder = ws.home / UPLOADS / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder / name


async def save(ws: Workspace, filename: str | None, chunks: AsyncIterator[bytes]) -> Path:
    """Write an uploaded body to its place in the workspace; nothing is left on failure."""
    path = new_upload(ws, filename)
    try:
        with path.open("wb") as f:
            async for chunk in chunks:
                f.write(chunk)
    except BaseException:
        discard(path)
        raise
    return path


def discard(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)


# The CLI's options, as a form (the Data page's or POST /api/imports') names them.
OPTIONS = {
    "--ignore-unknown-columns": "ignore_unknown_columns",
    "(--map ": "(a mapping line ",
}


def import_upload(
    ws: Workspace,
    table: str,
    path: Path,
    preset: str | None,
    mapping: list[str],
    *,
    ignore_unknown_columns: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Import an uploaded file, then remove it: the import's document with its ``import_id``
    and the file's own name as ``source``. ``progress(stage, done, total)`` hears how far it
    got."""
    from archer.ingest.importer import import_file

    try:
        r = import_file(
            ws,
            table,
            path,
            preset=preset or None,
            mapping=mapping or None,
            ignore_unknown_columns=ignore_unknown_columns,
            name=path.name,
            progress=progress,
        )
    except (ValueError, KeyError) as e:
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        msg = msg.replace(str(path), path.name).replace(str(path.parent), "")
        for option, field in OPTIONS.items():
            msg = msg.replace(option, field)
        raise Invalid(msg) from None
    finally:
        discard(path)
    doc = r.to_dict()
    doc["source"] = path.name
    if r.quarantine:
        doc["quarantine_file"] = Path(r.quarantine).name
        doc["quarantine_url"] = f"/api/imports/{r.import_id}/quarantine"
    return doc


async def chunks_of(upload: Any) -> AsyncIterator[bytes]:
    """The body of a Starlette ``UploadFile``, a chunk at a time."""
    while chunk := await upload.read(CHUNK):
        yield chunk


def sweep(ws: Workspace) -> int:
    """Remove uploads a stopped server left behind (run at start-up); how many."""
    root = ws.home / UPLOADS
    if not root.is_dir():
        return 0
    gone = 0
    for entry in root.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        gone += 1
    return gone
