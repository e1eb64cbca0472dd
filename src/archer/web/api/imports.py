"""Imports: ``POST /api/imports`` (upload a file with its table, preset and mapping),
``GET /api/imports`` (the last imports) and ``GET /api/imports/{id}/quarantine`` (the rows an
import rejected, as CSV). The same rules as ``archer import``: nothing read is dropped silently.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse

from archer.ingest.importer import import_file
from archer.warehouse import Warehouse
from archer.web.api.common import Cursor, Limit, Page, core, offset_of, page, plain
from archer.web.api.problems import Problem

router = APIRouter(tags=["imports"])
SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".xlsx", ".xlsm", ".xls", ".parquet", ".pq")
LOOKUP_DEPTH = 10_000  # imports searched for an id


def _safe_name(filename: str | None) -> str:
    """A file name to keep on disk: its last part, plain characters only, its suffix kept."""
    name = Path((filename or "upload").replace("\\", "/")).name
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = re.sub(r"[^\w.-]+", "_", stem)[:80] or "upload"
    if suffix not in SUFFIXES:
        raise Problem(
            415,
            f"the file {filename!r} is not one the importer reads: send CSV (.csv, .tsv, "
            ".txt, .gz), Excel (.xlsx) or Parquet (.parquet)",
            kind="unsupported-file",
        )
    return stem + suffix


def parse_mapping(text: str | None) -> dict[str, str]:
    """``{"src": "dst"}`` as JSON, or ``src=dst`` pairs separated by commas or new lines."""
    if not text or not text.strip():
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise Problem(422, f"mapping is not valid JSON: {e}", kind="invalid-value") from None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
            raise Problem(422, "mapping maps column names to column names", kind="invalid-value")
        return doc
    out: dict[str, str] = {}
    for part in re.split(r"[,\n]", text):
        if not part.strip():
            continue
        src, eq, dst = part.partition("=")
        if not eq or not src.strip() or not dst.strip():
            raise Problem(
                422, f"mapping part {part.strip()!r}: write SOURCE=TARGET", kind="invalid-value"
            )
        out[src.strip()] = dst.strip()
    return out


def _run_import(settings, table: str, path: Path, preset: str | None, mapping: dict) -> dict:
    try:
        result = import_file(settings, table, path, preset=preset, mapping=mapping)
        doc = result.to_dict()
        with Warehouse.connect(settings.warehouse_url) as wh:
            logged = [r for r in wh.last_imports(50) if r["source"] == str(path)]
        doc["import_id"] = logged[0]["import_id"] if logged else None
        doc["source"] = path.name.split("-", 1)[-1]
        if doc.get("import_id") and doc.get("quarantine"):
            doc["quarantine_url"] = f"/api/imports/{doc['import_id']}/quarantine"
        return doc
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


@router.post("/imports", status_code=201)
async def upload(
    request: Request,
    file: Annotated[UploadFile, File(description="The shop's export: CSV, Excel or Parquet.")],
    table: Annotated[str, Form(max_length=50, description="customers, orders, …")],
    preset: Annotated[str | None, Form(max_length=50)] = None,
    mapping: Annotated[
        str | None, Form(max_length=10_000, description='{"src": "dst"} or src=dst,…')
    ] = None,
) -> dict[str, Any]:
    """Import an uploaded file into ``table``: rows taken, updated and rejected; the rejected
    ones are in the quarantine (``quarantine_url``)."""
    settings = request.app.state.settings
    name = _safe_name(file.filename)
    cols = parse_mapping(mapping)
    work = settings.home / "uploads" / uuid.uuid4().hex
    work.mkdir(parents=True)
    path = work / f"{uuid.uuid4().hex[:8]}-{name}"
    try:
        with path.open("wb") as f:
            while chunk := await file.read(1024 * 1024):
                f.write(chunk)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return plain(await core(_run_import, settings, table, path, preset or None, cols))


def _last(settings, n: int) -> list[dict]:
    with Warehouse.connect(settings.warehouse_url) as wh:
        return wh.last_imports(n)


def _public(row: dict) -> dict:
    doc = plain(row)
    if doc.get("source"):
        doc["source"] = Path(doc["source"]).name
    if doc.get("quarantine"):
        doc["quarantine_url"] = f"/api/imports/{doc['import_id']}/quarantine"
        doc["quarantine"] = Path(doc["quarantine"]).name
    return doc


@router.get("/imports")
async def last_imports(
    request: Request, limit: Limit = 20, cursor: Cursor = None
) -> Page[dict[str, Any]]:
    """The imports, newest first."""
    offset = offset_of(cursor)
    rows = await core(_last, request.app.state.settings, offset + limit + 1)
    items = [_public(r) for r in rows[offset : offset + limit]]
    return page(request, items, offset, limit, len(rows) > offset + limit)


@router.get("/imports/{import_id}/quarantine", response_class=FileResponse)
async def quarantine(request: Request, import_id: str) -> FileResponse:
    """The rows an import rejected, with line numbers and reasons, as CSV."""
    settings = request.app.state.settings
    rows = await core(_last, settings, LOOKUP_DEPTH)
    row = next((r for r in rows if r["import_id"] == import_id), None)
    if row is None:
        raise Problem(404, f"no import {import_id!r}: see GET /api/imports", kind="not-found")
    if not row.get("quarantine"):
        raise Problem(404, f"import {import_id!r} rejected no rows", kind="not-found")
    path = Path(row["quarantine"]).resolve()
    if not path.is_relative_to(settings.quarantine_dir.resolve()) or not path.is_file():
        raise Problem(410, f"the quarantine file of import {import_id!r} is gone", kind="gone")
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=path.name)
