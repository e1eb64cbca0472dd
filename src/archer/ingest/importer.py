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
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from archer.config import CONFIG_FILE, Settings
from archer.ingest.columns import parse_map_options, resolve
from archer.ingest.parse import ParseContext
from archer.ingest.sources import Progress, Source, close_source, open_source
from archer.ingest.validate import typed_rows
from archer.schema import LOAD_ORDER, get_table
from archer.warehouse import UpsertResult, Warehouse


class ImportError_(ValueError):
    """The import cannot start (missing column, unknown preset …); nothing was written."""


@dataclass
class TableResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


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
    tables: dict[str, TableResult] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    encoding: str = "utf-8"
    delimiter: str = ","
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    summary: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def _places_rows() -> list[dict]:
    from archer.places import alias_table

    return alias_table().to_dict("records")


def places_table() -> ir.Table | None:
    try:
        rows = _places_rows()
    except (ImportError, FileNotFoundError):  # places data not installed
        return None
    return ibis.memtable(rows, schema={"kind": "string", "key": "string", "province": "string", "city": "string"})


def parse_context(settings: Settings, now: datetime | None = None, date_format: str | None = None) -> ParseContext:
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return ParseContext(
        timezone=settings.timezone,
        now=now,
        date_format=date_format or settings.date_format,
        places=places_table(),
    )


def import_file(
    settings: Settings,
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
    """Import ``path`` into ``table`` (or the tables its preset fills)."""
    spec = get_table(table)
    if not (settings.home / CONFIG_FILE).exists():
        raise ImportError_(f"no workspace at {settings.home}: run `archer init` first")
    explicit = parse_map_options(mapping) if isinstance(mapping, list) else (mapping or {})
    ctx = parse_context(settings, now, date_format)
    started = time.perf_counter()
    started_at = datetime.now(UTC).replace(tzinfo=None)
    report = progress or (lambda *a: None)

    wh = Warehouse.connect(settings.warehouse_url)
    reader = wh.con if wh.engine == "duckdb" else ibis.duckdb.connect()
    workdir = Path(tempfile.mkdtemp(prefix="import-", dir=_tmp_dir(settings)))
    src: Source | None = None
    quarantine: Path | None = None
    try:
        wh.ensure_tables()
        pre = None
        if preset:
            from archer.ingest.presets import get_preset

            pre = get_preset(preset)
            if table not in pre.tables:
                raise ImportError_(
                    f"preset {preset!r} fills {', '.join(pre.tables)}; "
                    f"use `archer import {pre.tables[0]} FILE --preset {preset}`"
                )
        with _engine_progress(reader, report, "reading"):
            opts = pre.read_options() if pre else {}
            src = open_source(
                reader, Path(path), delimiter=delimiter or opts.get("delimiter"),
                encoding=encoding or opts.get("encoding"), header=opts.get("header", True),
                columns=opts.get("columns"), workdir=workdir, progress=report,
            )
        if pre:
            outputs = pre.build(src, ctx)
            used: dict[str, str] = {}
            ignored: list[str] = []
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
            outputs = {table: typed_rows(src.table, spec, cm, ctx)}
            used, ignored = cm.columns, ([] if table in ("customers", "events") else cm.extra)

        results: dict[str, TableResult] = {}
        bad_parts: list[ir.Table] = []
        with wh.transaction():
            for name in (n for n in LOAD_ORDER if n in outputs):
                with _engine_progress(reader, report, f"validating {name}"):
                    rows = reader.create_table(
                        f"_typed_{name}_{uuid.uuid4().hex[:8]}", outputs[name], temp=True
                    )
                good = rows.filter(rows._reason.isnull()).drop("_line", "_reason")
                with _engine_progress(reader, report, f"writing {name}"):
                    up: UpsertResult = wh.upsert(name, wh.adopt(good, reader))
                bad = rows.filter(rows._reason.notnull())
                n_bad = int(bad.count().execute())
                results[name] = TableResult(up.inserted, up.updated, up.unchanged, n_bad)
                if n_bad:
                    bad_parts.append(
                        bad.select(line=bad._line, reason=ibis.literal(f"{name}: ") + bad._reason)
                    )
            if src.parse_rejects is not None:
                bad_parts.append(src.parse_rejects.select("line", "reason"))
            reasons: dict[str, int] = {}
            n_rejected = 0
            if bad_parts:
                quarantine = _quarantine_path(settings, table, Path(path))
                n_rejected, reasons = _write_quarantine(src, bad_parts, quarantine)
            totals = sum((UpsertResult(r.inserted, r.updated, r.unchanged) for r in results.values()),
                         UpsertResult(0, 0, 0))
            result = ImportResult(
                source=str(path), table=table, preset=preset, rows_read=src.rows,
                inserted=totals.inserted, updated=totals.updated, unchanged=totals.unchanged,
                rejected=n_rejected, quarantine=str(quarantine) if quarantine else None,
                tables=results, reasons=reasons, ignored_columns=ignored, mapping=used,
                encoding=src.encoding, delimiter=src.delimiter,
            )
            if pre is not None and pre.summary is not None:
                figures = pre.summary(src.table)
                row = src.table.aggregate(**figures).to_pyarrow().to_pylist()[0]
                result.summary = {k: int(v) for k, v in row.items()}
            result.seconds = round(time.perf_counter() - started, 3)
            wh.log_import(_log_record(result, started_at))
        result.counts = wh.counts()
        return result
    except BaseException:
        if quarantine is not None:
            quarantine.unlink(missing_ok=True)
        raise
    finally:
        if src is not None:
            close_source(reader, src)
        shutil.rmtree(workdir, ignore_errors=True)
        if reader is not wh.con:
            reader.disconnect()
        wh.close()


def _tmp_dir(settings: Settings) -> Path:
    d = settings.home / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _quarantine_path(settings: Settings, table: str, path: Path) -> Path:
    settings.quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    stem = path.name.split(".")[0] or "file"
    return settings.quarantine_dir / f"{stamp}-{table}-{stem}-{uuid.uuid4().hex[:6]}.csv"


def _write_quarantine(src: Source, parts: list[ir.Table], out: Path) -> tuple[int, dict[str, int]]:
    """One row per rejected source line: line, reason(s), raw line or original cells."""
    bad = ibis.union(*parts) if len(parts) > 1 else parts[0]
    per_line = bad.group_by("line").aggregate(reason=bad.reason.group_concat("; "))
    if src.parse_rejects is not None:
        pr = src.parse_rejects
        raws = pr.select(_l=pr.line, raw=pr.raw)
        per_line = per_line.left_join(raws, per_line.line == raws._l).drop("_l")
    else:
        per_line = per_line.mutate(raw=ibis.null(dt.string))
    # The file's own cells follow; a header that clashes with ours gets a prefix.
    cells = src.table.rename(
        {f"source_{c}": c for c in src.table.columns if c in ("line", "reason", "raw")}
    )
    joined = per_line.left_join(cells, per_line.line == cells._line).drop("_line")
    joined.order_by("line").to_csv(out)
    n = int(per_line.count().execute())
    top = (
        bad.mutate(kind=_reason_kind(bad.reason))
        .kind.value_counts(name="n")
        .order_by(ibis.desc("n"))
        .limit(20)
        .to_pyarrow()
        .to_pylist()
    )
    return n, {r["kind"]: int(r["n"]) for r in top}


def _reason_kind(reason: ir.StringValue) -> ir.StringValue:
    """A reason without its cell values, to count alike problems together."""
    first = reason.split("; ")[0]
    return (
        first.re_replace(r"^([a-z_]+: [a-z_]+): .*? (is (?:not|outside|negative).*)$", r"\1 \2")
        .re_replace(r"\s*\(.*\)$", "")
        .re_replace(r"\.$", "")
    )


def _log_record(r: ImportResult, started_at: datetime) -> dict:
    return {
        "import_id": uuid.uuid4().hex,
        "table_name": r.table,
        "source": r.source,
        "preset": r.preset,
        "started_at": started_at,
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
        "rows_read": r.rows_read,
        "inserted": r.inserted,
        "updated": r.updated,
        "unchanged": r.unchanged,
        "rejected": r.rejected,
        "quarantine": r.quarantine,
    }


@contextlib.contextmanager
def _engine_progress(con: ibis.BaseBackend, report: Callable, stage: str) -> Iterator[None]:
    """Report DuckDB's own query progress for ``stage`` while the block runs."""
    raw = getattr(con, "con", None)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.2):
            try:
                pct = raw.query_progress()
            except Exception:
                return
            if pct is not None and pct >= 0:
                report(stage, int(pct), 100)

    thread = None
    if raw is not None and hasattr(raw, "query_progress"):
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
    report(stage, 0, 100)
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        report(stage, 100, 100)
