"""Imports: ``POST /api/imports`` (upload a file with its table, preset and mapping),
``GET /api/imports`` (the last imports) and ``GET /api/imports/{id}/quarantine`` (the rows an
import rejected, as CSV). The same rules as ``archer import``: nothing read is dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse

from archer.errors import ArcherError
from archer.ingest import uploads
from archer.web.api.common import Cursor, Limit, Page, core, offset_of, page, plain
from archer.web.api.problems import Problem, from_error
from archer.workspace import Workspace

router = APIRouter(tags=["imports"])


@router.post("/imports", status_code=201)
async def upload(
    request: Request,
    file: Annotated[UploadFile, File(description="The shop's export: CSV, Excel or Parquet.")],
    table: Annotated[str, Form(max_length=50, description="customers, orders, …")],
    preset: Annotated[str | None, Form(max_length=50)] = None,
    mapping: Annotated[
        str | None, Form(max_length=10_000, description='{"src": "dst"} or src=dst,…')
    ] = None,
    ignore_unknown_columns: Annotated[
        bool,
        Form(description="import even when a leftover header looks like a misspelt column"),
    ] = False,
) -> dict[str, Any]:
    """Import an uploaded file into ``table``: rows taken, updated and rejected; the rejected
    ones are in the quarantine (``quarantine_url``)."""
    ws = request.app.state.ws
    try:
        cols = uploads.parse_mapping(mapping)
        path = await uploads.save(ws, file.filename, uploads.chunks_of(file))
    except ArcherError as e:
        raise from_error(e) from None
    doc = await core(
        uploads.import_upload,
        ws,
        table,
        path,
        preset,
        cols,
        ignore_unknown_columns=ignore_unknown_columns,
    )
    return plain(doc)


def _last(ws: Workspace, n: int) -> list[dict]:
    with ws.warehouse() as wh:
        return wh.last_imports(n)


def _find(ws: Workspace, import_id: str) -> dict | None:
    with ws.warehouse() as wh:
        return wh.find_import(import_id)


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
    rows = await core(_last, request.app.state.ws, offset + limit + 1)
    items = [_public(r) for r in rows[offset : offset + limit]]
    return page(request, items, offset, limit, len(rows) > offset + limit)


@router.get("/imports/{import_id}/quarantine", response_class=FileResponse)
async def quarantine(request: Request, import_id: str) -> FileResponse:
    """The rows an import rejected, with line numbers and reasons, as CSV."""
    ws = request.app.state.ws
    settings = ws.settings
    row = await core(_find, ws, import_id)
    if row is None:
        raise Problem(404, f"no import {import_id!r}: see GET /api/imports", kind="not-found")
    if not row.get("quarantine"):
        raise Problem(404, f"import {import_id!r} rejected no rows", kind="not-found")
    path = Path(row["quarantine"]).resolve()
    if not path.is_relative_to(settings.quarantine_dir.resolve()) or not path.is_file():
        raise Problem(410, f"the quarantine file of import {import_id!r} is gone", kind="gone")
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=path.name)
