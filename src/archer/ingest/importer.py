"""``archer import``: one file into the warehouse, all or nothing, bad rows quarantined.

The flow: stage the file as text (``sources``), match headers to columns
(``columns``) or let a preset shape it (``presets``), type and check every row
in the engine (``validate``), upsert the good rows by key and write the others
to a quarantine CSV with their line, reason and original cells.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import ibis
import ibis.expr.types as ir

from archer.clock import naive_utc
from archer.config import Settings
from archer.ingest import history as product_history
from archer.ingest.columns import (
    CATCH_ALL,
    ColumnMapping,
    near_misses,
    parse_column_list,
    parse_map_options,
    parse_map_values,
    resolve,
)
from archer.ingest.limits import DEFAULT_LIMITS, Limits
from archer.ingest.load import TableResult, load_table, stage_in_order
from archer.ingest.parse import ParseContext, check_date_format, clean, content_id, parse
from archer.ingest.presets import Preset, get_preset
from archer.ingest.quarantine import quarantine_path, write_quarantine
from archer.ingest.scratch import scratch_dir
from archer.ingest.sources import Progress, Source, SourceError, close_source, open_source
from archer.ingest.validate import place_map, places, typed_rows
from archer.places import sole_cities
from archer.progress import engine_progress
from archer.schema import LOAD_ORDER, Table, get_table
from archer.warehouse import UpsertResult, Warehouse

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
    suggestions: dict[str, list[str]] = field(default_factory=dict)  # ignored → columns meant
    mapping: dict[str, str] = field(default_factory=dict)
    encoding: str = "utf-8"
    delimiter: str = ","
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    summary: dict[str, int] = field(default_factory=dict)
    import_id: str = ""  # its row in the import log
    notes: list[str] = field(default_factory=list)  # what the preset says of the file

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def all_rejected(self) -> bool:
        """Rows were read and not one was taken: the import failed, though it wrote nothing."""
        return self.rejected > 0 and self.inserted + self.updated + self.unchanged == 0


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
    fmt = date_format or settings.date_format
    if fmt and reader is not None:
        option = "--date-format" if date_format else "the date_format setting"
        fmt = check_date_format(fmt, reader, option)
    return ParseContext(
        timezone=settings.timezone,
        now=now,
        date_format=fmt,
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
    ignore_unknown_columns: bool = False,
    map_values: dict[str, dict[str, str]] | list[str] | None = None,
    header: bool = True,
    columns: list[str] | str | None = None,
    sheet: str | None = None,
    name: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import ``path`` into ``table`` (or the tables its preset fills), all or nothing.

    ``name`` is what messages call the file; by default its path, or only its name when it
    lies inside the workspace (an upload: the workspace's folders are nobody's business).
    A leftover header that looks like a misspelt column stops the import unless
    ``ignore_unknown_columns``. ``map_values`` (``--map-values``) turns the values a file
    writes into those stored; ``columns`` names a CSV file's columns (``header=False``: the
    file has no header line; with a header line, these names replace it). ``sheet`` chooses
    a workbook's sheet by name or number from 1.
    """
    spec = get_table(table)
    ws.require()
    settings = ws.settings
    now = now or naive_utc(ws.now())
    explicit = parse_map_options(mapping) if isinstance(mapping, list) else (mapping or {})
    values = parse_map_values(map_values) if isinstance(map_values, list) else map_values or {}
    names = parse_column_list(columns) if isinstance(columns, str) else columns
    if not header and not names:
        raise ImportError_("--no-header needs --columns: the names of the file's columns")
    pre = _preset_for(preset, table)
    if pre is not None and (values or names or not header):
        raise ImportError_(
            f"preset {preset!r} knows its file's columns and values: --map-values, --columns "
            "and --no-header are for files without a preset"
        )
    path = Path(path)
    label = name or shown_name(settings, path)
    started = time.perf_counter()
    started_at = naive_utc(ws.now())
    report = progress or (lambda *a: None)

    with scratch_dir(settings.home / "tmp") as workdir, ws.warehouse() as wh:
        reader = wh.con if wh.engine == "duckdb" else ibis.duckdb.connect()
        src: Source | None = None
        quarantine: Path | None = None
        try:
            wh.ensure_tables()
            _tune_reader(reader, workdir, limits)
            ctx = parse_context(settings, now, date_format, reader)
            opts = pre.read_options() if pre else {}
            with engine_progress(reader, report, "reading"):
                src = open_source(
                    reader,
                    path,
                    delimiter=delimiter or opts.get("delimiter"),
                    encoding=encoding or opts.get("encoding"),
                    header=opts.get("header", header),
                    columns=opts.get("columns", names),
                    materialise=opts.get("materialise", False),
                    workdir=workdir,
                    progress=report,
                    name=label,
                    limits=limits,
                    sheet=sheet,
                )
            try:
                plan = _plan(spec, pre, src, explicit, values, ctx, label, ignore_unknown_columns)
            except ValueError as e:
                # A workbook whose sheet has not the columns (a notes sheet first): its sheets.
                if src.sheet_hint() and "headers found" in str(e):
                    raise type(e)(f"{e}{src.sheet_hint()}") from None
                raise
            # A CSV file is read once (``load``): its places are looked up afterwards.
            read_once = plan.key_cells is not None and not src.materialised and src.format == "csv"
            if plan.place_columns and not read_once:
                with engine_progress(reader, report, "places"):
                    names = _written_places(src.scan("fast"), plan.place_columns)
                    ctx.place_map = _place_map(reader, names, ctx)
            elif read_once:
                if plan.place_columns:
                    plan.finish = partial(_finish_places, reader, ctx, spec)
                plan.build = partial(plan.build, ctx=replace(ctx, places=None))
            # A CSV file's one scan is staged before the transaction (see stage_in_order).
            staged = (
                stage_in_order(spec.name, plan.build, src, reader, report) if read_once else None
            )
            with wh.transaction():
                result, quarantine = _load(
                    settings, spec.name, path, plan, src, wh, reader, report, started_at, staged
                )
                result.preset = preset
                if "products" in result.tables:  # what changed in price or stock, kept
                    result.import_id = uuid.uuid4().hex
                    product_history.record(wh, naive_utc(now), result.import_id)
                if pre is not None and pre.summary is not None:
                    t = src.scan("fast")
                    row = t.aggregate(**pre.summary(t)).to_pyarrow().to_pylist()[0]
                    result.summary = {k: int(v) for k, v in row.items()}
                if pre is not None and pre.notes is not None:
                    result.notes = pre.notes(list(src.headers))
                result.notes += plan.notes
                if pre is not None:
                    where = _settings_place(settings, hide_paths=name is not None)
                    result.notes += pre.locale_notes(settings.currency, settings.timezone, where)
                result.seconds = round(time.perf_counter() - started, 3)
                wh.log_import(_log_record(result, started_at, naive_utc(ws.now())))
            result.counts = wh.counts()
            return result
        except BaseException as e:
            if quarantine is not None:
                quarantine.unlink(missing_ok=True)
            if isinstance(e, duckdb.OutOfMemoryException):
                raise SourceError(
                    f"{label}: the import needs more than the {limits.engine_memory} of memory "
                    "it may use (and what it can spill to the workspace's tmp/ folder); split "
                    "the file"
                ) from None
            raise
        finally:
            if src is not None:
                close_source(src)
            if reader is not wh.con:
                reader.disconnect()


@dataclass
class _Plan:
    """How the file's rows become canonical rows: what ``load_table`` needs, and what the
    result reports about the file's columns."""

    build: Callable[[ir.Table], dict[str, ir.Table]]
    tables: list[str] = field(default_factory=list)  # what ``build`` makes, when known
    key_cells: Callable[[ir.Table], dict[str, ir.Value]] | None = None
    provided: list[str] | None = None  # None: whole rows (a preset)
    # A preset's tables whose rows it fills only in part (the rest keep what is stored)
    provided_by_table: dict[str, list[str]] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    suggestions: dict[str, list[str]] = field(default_factory=dict)
    place_columns: ColumnMapping | None = None  # the places to look up first, if any
    # What completes the typed rows of a file read once (its places, looked up afterwards)
    finish: Callable[[ir.Table], ir.Table] | None = None
    notes: list[str] = field(default_factory=list)  # what the result says of the mapping


def _plan(
    spec: Table,
    pre: Preset | None,
    src: Source,
    explicit: dict[str, str],
    values: dict[str, dict[str, str]],
    ctx: ParseContext,
    label: str,
    ignore_unknown_columns: bool,
) -> _Plan:
    table = spec.name
    if pre:
        pre.check(src)
        provides = {t: list(cols) for t, cols in pre.provides.items()}
        return _Plan(lambda scan: pre.build(scan, ctx), provided_by_table=provides)
    cm = resolve(spec, src.headers, explicit, values)
    made = _made_ids(spec, cm)
    missing = cm.missing(spec)
    if missing:
        raise ImportError_(
            f"{label}: required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} of {table} not found; "
            f"headers found: {', '.join(src.headers) or '(none)'}. "
            f"Name the right one with --map HEADER={missing[0]}"
        )
    slips = near_misses(spec, cm)
    if slips and not ignore_unknown_columns:
        raise ImportError_(_slips_message(label, table, slips))

    def key_cells(scan: ir.Table) -> dict[str, ir.Value]:
        # Keys typed as stored: line_no "01" is 1.
        own = made(scan)
        return {
            k: parse(
                spec.column(k), clean((own[h] if h in own else scan[h]).cast("string")), ctx
            ).value
            for k in spec.key
            for h in [cm.columns[k]]
        }

    places = "province" in spec.names and {"province", "city"} & set(cm.columns)
    return _Plan(
        build=lambda scan, ctx=ctx: {table: typed_rows(scan.mutate(**made(scan)), spec, cm, ctx)},
        tables=[table],
        key_cells=key_cells,
        provided=provided_columns(table, cm),
        mapping=cm.columns,
        ignored=[] if table in CATCH_ALL else cm.extra,
        suggestions=slips,
        place_columns=cm if places else None,
        notes=[MADE_ID_NOTE] if made(None) else [],
    )


# The stand-in header of an event id made from the row (``_made_ids``).
MADE_EVENT_ID = "(made from the row)"
MADE_ID_NOTE = (
    "the file has no event_id: each event's id is made from its row's content, so importing "
    "the file again changes nothing (and a row given twice is one event)"
)


def _made_ids(spec: Table, cm: ColumnMapping) -> Callable[[ir.Table | None], dict]:
    """For an events file without ``event_id``: the id made from each row's cells (see
    ``content_id``), as the stand-in column ``MADE_EVENT_ID`` that ``cm`` now maps.

    The returned function gives, for a scan, ``{MADE_EVENT_ID: expression}`` (empty when the
    file has its own ids); called with None it only tells whether ids are made.
    """
    if spec.name != "events" or "event_id" in cm.columns:
        return lambda scan: {}
    named = dict(cm.columns) | {"+" + h: h for h in cm.extra}
    cm.columns["event_id"] = MADE_EVENT_ID

    def cells(scan: ir.Table | None) -> dict:
        if scan is None:
            return {MADE_EVENT_ID: None}
        own = {k: scan[h] for k, h in named.items()}
        return {MADE_EVENT_ID: content_id("ev-", own)}

    return cells


def _load(
    settings: Settings,
    table: str,
    path: Path,
    plan: _Plan,
    src: Source,
    wh: Warehouse,
    reader: ibis.BaseBackend,
    report: Progress,
    started_at: datetime,
    staged: ir.Table | None = None,
) -> tuple[ImportResult, Path | None]:
    """Load every table the plan fills and write the quarantine, in the caller's transaction
    (``staged``: the file's rows, already typed in one scan, when it is read once)."""
    results: dict[str, TableResult] = {}
    bad_parts: list[ir.Table] = []
    made = plan.tables or plan.build(src.scan("fast"))  # a preset's tables: what it builds
    names = [n for n in LOAD_ORDER if n in made]
    for name in names:
        provided = plan.provided_by_table.get(name, plan.provided)
        loaded, bad = load_table(
            name,
            plan.build,
            plan.key_cells,
            provided,
            src,
            wh,
            reader,
            report,
            plan.finish,
            staged,
        )
        results[name] = loaded
        if bad is not None:
            bad_parts.append(bad)
    if src.parse_rejects is not None:
        bad_parts.append(src.parse_rejects.select("line", "reason"))
    reasons: dict[str, int] = {}
    n_rejected = 0
    quarantine = None
    if bad_parts:
        quarantine = quarantine_path(settings, table, path, started_at)
        with engine_progress(reader, report, "quarantine"):
            n_rejected, reasons = write_quarantine(src, bad_parts, quarantine)
    totals = sum(
        (UpsertResult(r.inserted, r.updated, r.unchanged) for r in results.values()),
        UpsertResult(0, 0, 0),
    )
    result = ImportResult(
        source=str(path),
        table=table,
        preset=None,
        rows_read=src.rows,
        inserted=totals.inserted,
        updated=totals.updated,
        unchanged=totals.unchanged,
        rejected=n_rejected,
        quarantine=str(quarantine) if quarantine else None,
        repeats=sum(r.repeats for r in results.values()),
        tables=results,
        reasons=reasons,
        ignored_columns=plan.ignored,
        suggestions=plan.suggestions,
        mapping=plan.mapping,
        encoding=src.encoding,
        delimiter=src.delimiter,
    )
    return result, quarantine


def _slips_message(label: str, table: str, slips: dict[str, list[str]]) -> str:
    said = ", ".join(
        f"{h!r} (did you mean {' or '.join(repr(c) for c in cols)}?)" for h, cols in slips.items()
    )
    h, cols = next(iter(slips.items()))
    return (
        f"{label}: {'header' if len(slips) == 1 else 'headers'} {said} "
        f"{'is not a column' if len(slips) == 1 else 'are not columns'} of {table}; nothing "
        f"was imported. Map it (--map {h}={cols[0]}) or, if it is not meant for {table}, "
        "pass --ignore-unknown-columns to import without it"
    )


def _settings_place(settings: Settings, *, hide_paths: bool) -> str:
    """Where the workspace's currency and time zone are set: its archer.toml (by path unless
    the caller hides paths: an upload), and the ``ARCHER_*`` variables that win over it."""
    from archer.config import CONFIG_FILE

    place = f"the workspace's {CONFIG_FILE}" if hide_paths else str(settings.home / CONFIG_FILE)
    env = [v for v in ("ARCHER_CURRENCY", "ARCHER_TIMEZONE") if os.environ.get(v)]
    if len(env) == 1:
        place += f" and in the variable {env[0]}, which is set and wins over the file"
    elif env:
        place += f" and in the variables {' and '.join(env)}, which are set and win over the file"
    return place


def shown_name(settings: Settings, path: Path) -> str:
    """What messages call a file: its path as given, or only its name when it lies inside the
    workspace (an upload), so that no message tells where the workspace keeps its files."""
    try:
        inside = path.resolve().is_relative_to(settings.home.resolve())
    except OSError:
        inside = False
    return path.name if inside else str(path)


def _place_map(reader: ibis.BaseBackend, names: ir.Table, ctx: ParseContext) -> ir.Table:
    """The canonical place of each distinct (province, city) pair of ``names``, staged."""
    m = place_map(names.select("province", "city"), ctx)
    return reader.create_table(f"_place_map_{uuid.uuid4().hex[:8]}", m, temp=True)


def _written_places(scan: ir.Table, cm: ColumnMapping) -> ir.Table:
    """A file's province and city cells as the typing cleans them (NULL where it has none)."""

    def cell(col: str) -> ir.StringValue:
        h = cm.columns.get(col)
        return clean(scan[h].cast("string")) if h else ibis.null("string")

    return scan.select(province=cell("province"), city=cell("city"))


def _finish_places(
    reader: ibis.BaseBackend, ctx: ParseContext, spec: Table, rows: ir.Table
) -> ir.Table:
    """Canonical provinces and cities for typed rows: each written pair looked up once."""
    ctx.place_map = _place_map(reader, rows, ctx)
    return places(rows, spec, ctx)


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


def _tune_reader(reader: ibis.BaseBackend, workdir: Path, limits: Limits) -> None:
    """Bounded memory (spilling into the workspace) and unordered, parallel inserts."""
    raw = reader.con
    raw.execute("SET preserve_insertion_order = false")
    raw.execute("SET temp_directory = " + _sql_str(str(workdir)))
    raw.execute("SET memory_limit = " + _sql_str(limits.engine_memory))


def _sql_str(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


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
