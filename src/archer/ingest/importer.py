"""``archer import``: one file into the warehouse, all or nothing, bad rows quarantined.

The flow: stage the file as text (``sources``), match headers to columns
(``columns``) or let a preset shape it (``presets``), type and check every row
in the engine (``validate``), upsert the good rows by key and write the others
to a quarantine CSV with their line, reason and original cells.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from archer.clock import naive_utc
from archer.config import Settings
from archer.ingest.columns import CATCH_ALL, ColumnMapping, parse_map_options, resolve
from archer.ingest.load import TableResult, load_table
from archer.ingest.parse import ParseContext, clean, parse
from archer.ingest.presets import Preset, get_preset
from archer.ingest.quarantine import quarantine_path, write_quarantine
from archer.ingest.sources import Progress, Source, close_source, open_source
from archer.ingest.validate import place_map, typed_rows
from archer.places import sole_cities
from archer.progress import engine_progress
from archer.schema import LOAD_ORDER, get_table
from archer.warehouse import UpsertResult

if TYPE_CHECKING:
    from archer.workspace import Workspace


class ImportError_(ValueError):
    """The import cannot start (missing column, unknown preset …); nothing was written."""


@dataclass
class ImportResult:
    source: str
    table: str
    preset: str | None
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    quarantine: str | None
    repeats: int = 0  # identical copies of a row, taken once; rows_read counts them
    tables: dict[str, TableResult] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    encoding: str = "utf-8"
    delimiter: str = ","
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    summary: dict[str, int] = field(default_factory=dict)
    import_id: str = ""  # its row in the import log

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def _places_rows() -> list[dict]:
    from archer.places import alias_table

    return alias_table().to_dict("records")


def places_table(reader: ibis.BaseBackend) -> ir.Table:
    """The place aliases as a temporary table of the reader (queries name it, not a literal)."""
    name = "_archer_places"
    if name not in reader.list_tables():
        schema = {"kind": "string", "key": "string", "province": "string", "city": "string"}
        reader.create_table(name, ibis.memtable(_places_rows(), schema=schema), temp=True)
    return reader.table(name)


def parse_context(
    settings: Settings,
    now: datetime | None = None,
    date_format: str | None = None,
    reader: ibis.BaseBackend | None = None,
) -> ParseContext:
    if now is None:
        raise ValueError("parse_context needs the moment of the import (now)")
    return ParseContext(
        timezone=settings.timezone,
        now=now,
        date_format=date_format or settings.date_format,
        places=places_table(reader) if reader is not None else None,
        sole_cities=sole_cities(),
    )


def import_file(
    ws: Workspace,
    table: str,
    path: Path | str,
    *,
    preset: str | None = None,
    mapping: dict[str, str] | list[str] | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    date_format: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import ``path`` into ``table`` (or the tables its preset fills), all or nothing."""
    spec = get_table(table)
    ws.require()
    settings = ws.settings
    now = now or naive_utc(ws.now())
    explicit = parse_map_options(mapping) if isinstance(mapping, list) else (mapping or {})
    pre = _preset_for(preset, table)
    started = time.perf_counter()
    started_at = naive_utc(ws.now())
    report = progress or (lambda *a: None)

    lent = contextlib.ExitStack()
    wh = lent.enter_context(ws.warehouse())
    reader = wh.con if wh.engine == "duckdb" else ibis.duckdb.connect()
    workdir = Path(tempfile.mkdtemp(prefix="import-", dir=_tmp_dir(settings)))
    _tune_reader(reader, workdir)
    ctx = parse_context(settings, now, date_format, reader)
    src: Source | None = None
    quarantine: Path | None = None
    try:
        wh.ensure_tables()
        opts = pre.read_options() if pre else {}
        with engine_progress(reader, report, "reading"):
            src = open_source(
                reader,
                Path(path),
                delimiter=delimiter or opts.get("delimiter"),
                encoding=encoding or opts.get("encoding"),
                header=opts.get("header", True),
                columns=opts.get("columns"),
                materialise=opts.get("materialise", False),
                workdir=workdir,
                progress=report,
            )
        used: dict[str, str] = {}
        ignored: list[str] = []
        if pre:
            pre.check(src)

            def build(scan: ir.Table) -> dict[str, ir.Table]:
                return pre.build(scan, ctx)

            key_cells = None
            provided = None  # a preset's rows are whole
        else:
            cm = resolve(spec, src.headers, explicit)
            missing = cm.missing(spec)
            if missing:
                raise ImportError_(
                    f"{path}: required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(repr(m) for m in missing)} of {table} not found; "
                    f"headers found: {', '.join(src.headers) or '(none)'}. "
                    f"Name the right one with --map HEADER={missing[0]}"
                )
            used = cm.columns
            ignored = [] if table in CATCH_ALL else cm.extra
            provided = provided_columns(table, cm)

            if "province" in spec.names and {"province", "city"} & set(cm.columns):
                with engine_progress(reader, report, "places"):
                    ctx.place_map = _place_map(reader, src.scan("fast"), cm, ctx)

            def build(scan: ir.Table) -> dict[str, ir.Table]:
                return {table: typed_rows(scan, spec, cm, ctx)}

            def key_cells(scan: ir.Table) -> dict[str, ir.Value]:
                # Keys typed as stored: line_no "01" is 1.
                return {
                    k: parse(spec.column(k), clean(scan[cm.columns[k]].cast("string")), ctx).value
                    for k in spec.key
                }

        names = [n for n in LOAD_ORDER if n in build(src.scan("fast"))]
        results: dict[str, TableResult] = {}
        bad_parts: list[ir.Table] = []
        with wh.transaction():
            for name in names:
                loaded, bad = load_table(name, build, key_cells, provided, src, wh, reader, report)
                results[name] = loaded
                if bad is not None:
                    bad_parts.append(bad)
            if src.parse_rejects is not None:
                bad_parts.append(src.parse_rejects.select("line", "reason"))
            reasons: dict[str, int] = {}
            n_rejected = 0
            if bad_parts:
                quarantine = quarantine_path(settings, table, Path(path))
                with engine_progress(reader, report, "quarantine"):
                    n_rejected, reasons = write_quarantine(src, bad_parts, quarantine)
            totals = sum(
                (UpsertResult(r.inserted, r.updated, r.unchanged) for r in results.values()),
                UpsertResult(0, 0, 0),
            )
            result = ImportResult(
                source=str(path),
                table=table,
                preset=preset,
                rows_read=src.rows,
                inserted=totals.inserted,
                updated=totals.updated,
                unchanged=totals.unchanged,
                rejected=n_rejected,
                quarantine=str(quarantine) if quarantine else None,
                repeats=sum(r.repeats for r in results.values()),
                tables=results,
                reasons=reasons,
                ignored_columns=ignored,
                mapping=used,
                encoding=src.encoding,
                delimiter=src.delimiter,
            )
            if pre is not None and pre.summary is not None:
                t = src.scan("fast")
                row = t.aggregate(**pre.summary(t)).to_pyarrow().to_pylist()[0]
                result.summary = {k: int(v) for k, v in row.items()}
            result.seconds = round(time.perf_counter() - started, 3)
            wh.log_import(_log_record(result, started_at, naive_utc(ws.now())))
        result.counts = wh.counts()
        return result
    except BaseException:
        if quarantine is not None:
            quarantine.unlink(missing_ok=True)
        raise
    finally:
        if src is not None:
            close_source(src)
        shutil.rmtree(workdir, ignore_errors=True)
        if reader is not wh.con:
            reader.disconnect()
        lent.close()


def _place_map(
    reader: ibis.BaseBackend, scan: ir.Table, cm: ColumnMapping, ctx: ParseContext
) -> ir.Table:
    def cell(col: str) -> ir.StringValue:
        h = cm.columns.get(col)
        return clean(scan[h].cast("string")) if h else ibis.null("string")

    names = scan.select(province=cell("province"), city=cell("city"))
    m = place_map(names, ctx)
    return reader.create_table(f"_place_map_{uuid.uuid4().hex[:8]}", m, temp=True)


def provided_columns(table: str, cm: ColumnMapping) -> list[str]:
    """The columns an import really sets: those the file had, and what follows from them."""
    cols = set(cm.columns)
    if table in CATCH_ALL and cm.extra:
        cols.add(CATCH_ALL[table])
    if table == "orders" and cols & {"paid_at", "cancelled_at"}:
        cols.add("status")  # derived from the times when the file has no status
    return sorted(cols)


def _preset_for(name: str | None, table: str) -> Preset | None:
    if not name:
        return None
    pre = get_preset(name)
    if table not in pre.tables:
        raise ImportError_(
            f"preset {name!r} fills {', '.join(pre.tables)}; "
            f"use `archer import {pre.tables[0]} FILE --preset {name}`"
        )
    return pre


def _tune_reader(reader: ibis.BaseBackend, workdir: Path) -> None:
    """Bounded memory (spilling into the workspace) and unordered, parallel inserts."""
    raw = reader.con
    raw.execute("SET preserve_insertion_order = false")
    raw.execute("SET temp_directory = " + _sql_str(str(workdir)))
    raw.execute("SET memory_limit = '4GB'")


def _sql_str(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _tmp_dir(settings: Settings) -> Path:
    d = settings.home / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _log_record(r: ImportResult, started_at: datetime, finished_at: datetime) -> dict:
    r.import_id = r.import_id or uuid.uuid4().hex
    return {
        "import_id": r.import_id,
        "table_name": r.table,
        "source": r.source,
        "preset": r.preset,
        "started_at": started_at,
        "finished_at": finished_at,
        "rows_read": r.rows_read,
        "inserted": r.inserted,
        "updated": r.updated,
        "unchanged": r.unchanged,
        "rejected": r.rejected,
        "quarantine": r.quarantine,
    }
