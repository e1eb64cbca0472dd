"""Reading a shop's export file into the engine, as text columns whose rows know their line.

Files are read by DuckDB (also when the warehouse is Spark): CSV of any
delimiter, plain or gzip (inflated first, bounded, its trailer checked), UTF-8
with or without BOM, GBK/GB18030 and UTF-16 (transcoded as a stream), Excel
``.xlsx`` (checked, then read in a child process: ``excel``) and Parquet. Values
arrive as text, except a Parquet column already of a type a canonical column stores
(``parse.is_native``); typing and validation happen afterwards, in the engine. A row's
line is known from where it was read (``load`` numbers a CSV file's rows from the order
of its one scan; a Parquet file has row numbers; a staged source carries ``_line``), so a
rejected row can be found again. Messages name the file as ``name`` says (an upload's own
name, not where the workspace keeps it).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import sqlglot as sg

from archer.ingest.excel import (
    ExcelError,
    check_workbook,
    pick_sheet,
    read_sheet,
    sheet_list,
    sheet_names,
    unique_names,
)
from archer.ingest.limits import DEFAULT_LIMITS, Limits
from archer.ingest.parse import is_native

SAMPLE_BYTES = 1 << 20
CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".tab", ".dat"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
PARQUET_SUFFIXES = {".parquet", ".pq"}

Progress = Callable[[str, int, int], None]


class SourceError(ValueError):
    """A file that cannot be read at all; the message says which file and why."""


@dataclass
class Source:
    """A file in the reader engine, as text columns.

    ``scan("check")`` is read once to count rows and collect malformed ones,
    ``scan("fast")`` streams the good rows, ``scan("lines")`` adds ``_line``
    (the line the row came from) for the quarantine. A materialised source
    (Excel, Parquet, or CSV a preset needs to group) answers all three with
    one staged table that already has ``_line``.
    """

    path: Path
    format: str
    con: ibis.BaseBackend
    headers: list[str]
    encoding: str = "utf-8"
    delimiter: str = ","
    rows: int = 0
    table: ir.Table | None = None
    views: dict[str, str] = field(default_factory=dict)
    parse_rejects: ir.Table | None = None  # columns: line, reason, raw
    rejected_cells: ir.Table | None = None  # refused rows' cells with _line, once found
    n_parse_rejects: int = 0
    cleanup: list[str] = field(default_factory=list)
    _rejects: str = ""
    _first_line: int = 2
    _read_fn: str = ""  # the read_csv(...) call that skips malformed rows
    sheets: list[str] = field(default_factory=list)  # a workbook's sheets, in order
    sheet: str = ""  # the sheet read

    def sheet_hint(self) -> str:
        """For a message about a workbook's columns: the sheet read and the others."""
        if len(self.sheets) < 2:
            return ""
        return (
            f" (read from sheet {self.sheet!r}; the workbook's sheets are "
            f"{sheet_list(self.sheets)}: choose one with --sheet NAME or --sheet N)"
        )

    @property
    def materialised(self) -> bool:
        return self.table is not None

    def scan(self, mode: str) -> ir.Table:
        if self.table is not None:
            return self.table
        if mode == "lines" and "lines" not in self.views:
            self._make_lines_view()
        return self.con.table(self.views[mode])

    def checked(self, rows_seen: int) -> None:
        """Record what the check scan found: rows read and malformed rows."""
        if self.table is not None:
            return
        if not self._rejects:  # not CSV: every row was read
            self.rows = rows_seen
            return
        raw = self.con.con
        sql = f'SELECT count(DISTINCT line) FROM "{self._rejects}"'
        self.n_parse_rejects = raw.execute(sql).fetchone()[0]
        self.rows = rows_seen + self.n_parse_rejects
        if self.n_parse_rejects:
            self.parse_rejects = _rejects_table(self.con, self._rejects)

    def _make_lines_view(self) -> None:
        name = f"{self.views['fast']}_lines"
        numbered = f"SELECT * FROM {self._read_fn} WITH ORDINALITY"
        sql = with_lines(numbered, self._rejects, self._first_line)
        self.con.con.execute(f'CREATE TEMP VIEW "{name}" AS {sql}')
        self.views["lines"] = name
        self.cleanup.insert(0, name)


def open_source(
    con: ibis.BaseBackend,
    path: Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    header: bool = True,
    columns: list[str] | None = None,
    materialise: bool = False,
    workdir: Path,
    progress: Progress | None = None,
    name: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    sheet: str | None = None,
) -> Source:
    """Open ``path`` in the DuckDB connection ``con`` and describe it.

    ``sheet`` chooses a workbook's sheet, by name or number from 1 (default: the first).

    CSV is streamed from the file on each scan unless ``materialise`` asks for
    it to be staged once (a preset that groups rows needs that). ``name`` is
    what messages call the file (default: its path).
    """
    label = name or str(path)
    delimiter = _delimiter(delimiter)
    if encoding:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise SourceError(
                f"--encoding {encoding!r}: unknown encoding (try utf-8, gb18030 or utf-16)"
            ) from None
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{label}: no such file")
    if path.is_dir():
        raise SourceError(f"{label}: is a folder, expected a file")
    if path.stat().st_size == 0:
        raise SourceError(f"{label}: the file is empty")
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    if (columns is not None or not header) and last in PARQUET_SUFFIXES | EXCEL_SUFFIXES:
        raise SourceError(
            f"{label}: --columns and --no-header are for CSV text files; a workbook's or "
            "Parquet file's columns are named in the file"
        )
    if sheet is not None and last not in EXCEL_SUFFIXES:
        raise SourceError(f"{label}: --sheet is for Excel workbooks (.xlsx, .xlsm, .xls)")
    if last in PARQUET_SUFFIXES:
        return _open_parquet(con, path, label, materialise)
    if last in EXCEL_SUFFIXES:
        return _open_excel(con, path, label, workdir, limits, sheet)
    # Anything else is tried as CSV text; binary content is recognised and refused.
    read_path = path
    if last == ".gz":
        read_path = workdir / f"inflated_{uuid.uuid4().hex}.csv"
        _inflate(path, read_path, label, limits, progress)
    return _open_csv(
        con,
        path,
        read_path,
        label,
        delimiter=delimiter,
        encoding=encoding,
        header=header,
        columns=columns,
        materialise=materialise,
        workdir=workdir,
        progress=progress,
    )


_DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "\\x1f": "\x1f", "comma": ",", "semicolon": ";"}


def _delimiter(d: str | None) -> str | None:
    """One character; ``\\t`` and ``tab`` as a shell passes them mean a tab."""
    if d is None:
        return None
    d = _DELIMITER_NAMES.get(d.lower(), d)
    if len(d) != 1:
        raise SourceError(f"--delimiter {d!r}: expected one character (or \\t for a tab)")
    return d


# -- CSV ----------------------------------------------------------------------------
def _inflate(path: Path, out: Path, label: str, limits: Limits, progress: Progress | None) -> None:
    """Inflate a gzip file into ``out``: at most ``limits.inflated_bytes``, and whole (a file
    cut short, without its end marker and trailer, or with a wrong checksum is refused)."""
    total, done = path.stat().st_size, 0
    too_big = (
        f"{label}: inflates to more than {limits.inflated_bytes:,} bytes, the most an import "
        "reads from a compressed file; split it, or import it uncompressed"
    )
    with path.open("rb") as f:  # the trailer's size (modulo 4 GiB) refuses most at once
        f.seek(max(total - 4, 0))
        if int.from_bytes(f.read(4), "little") > limits.inflated_bytes:
            raise SourceError(too_big)
    try:
        with gzip.open(path, "rb") as src, out.open("wb") as dst:
            while chunk := src.read(4 << 20):
                done += len(chunk)
                if done > limits.inflated_bytes:
                    raise SourceError(too_big)
                dst.write(chunk)
                if progress:
                    progress("inflating", src.fileobj.tell(), total)  # type: ignore[attr-defined]
    except EOFError:
        out.unlink(missing_ok=True)
        raise SourceError(
            f"{label}: the gzip file is cut short (it ends before its end marker and "
            "trailer); copy or download it again"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as e:
        out.unlink(missing_ok=True)
        raise SourceError(f"{label}: not a readable gzip file ({e})") from None
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _read_sample(path: Path, label: str) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(SAMPLE_BYTES)
    except OSError as e:
        raise SourceError(f"{label}: cannot be read ({e.strerror or e})") from None


def detect_encoding(sample: bytes, path: Path | str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (a superset of GBK)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.startswith(b"PK\x03\x04"):
        raise SourceError(
            f"{path}: this is a zip archive (an Excel workbook?), not a text file; "
            "name it .xlsx to import it as Excel"
        )
    if b"\x00" in sample[:65536]:
        raise SourceError(f"{path}: looks like a binary file, not CSV text (it contains NUL bytes)")
    for enc in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(enc)().decode(sample, final=False)
            return enc
        except UnicodeDecodeError:
            continue
    raise SourceError(f"{path}: not readable as UTF-8 or GBK/GB18030 text; save it as UTF-8 CSV")


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV sample: the one that splits its lines most consistently."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",\t;|").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",\t;|"}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _transcode(path: Path, label: str, encoding: str, out: Path, progress: Progress | None) -> None:
    """Stream ``path`` from ``encoding`` to UTF-8 without holding it in memory."""
    total = path.stat().st_size
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line = 1
    with path.open("rb") as src, out.open("w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(4 << 20):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as e:
                bad = chunk[: e.start].count(b"\n") + line
                raise SourceError(
                    f"{label}: line {bad}: bytes that are not valid {encoding} "
                    f"(file read as {encoding}); re-save the file as UTF-8"
                ) from None
            line += chunk.count(b"\n")
            dst.write(text)
            if progress:
                progress("transcoding", src.tell(), total)
        dst.write(decoder.decode(b"", final=True))


def _open_csv(
    con: ibis.BaseBackend,
    path: Path,
    read_path: Path,
    label: str,
    *,
    delimiter: str | None,
    encoding: str | None,
    header: bool,
    columns: list[str] | None,
    materialise: bool,
    workdir: Path,
    progress: Progress | None,
) -> Source:
    sample = _read_sample(read_path, label)
    enc = encoding or detect_encoding(sample, label)
    text = codecs.getincrementaldecoder(enc)(errors="replace").decode(sample, final=False)
    if not text.strip():
        raise SourceError(f"{label}: the file holds no rows (only blank space)")
    delim = delimiter or sniff_delimiter(text)
    if enc not in ("utf-8", "utf-8-sig"):
        utf8 = workdir / f"transcoded_{uuid.uuid4().hex}.csv"
        _transcode(read_path, label, enc, utf8, progress)
        read_path = utf8
    if columns is not None:
        _check_column_count(text, delim, columns, header, label)
    if columns is None and header:
        first = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delim), [])
        if not any(h.strip() for h in first):
            raise SourceError(f"{label}: the first line is empty; expected a header row")
        # The header is read here, so DuckDB need not guess the layout: its guess
        # fails on a file with one unterminated quote, where reading row by row
        # quarantines just that row (and what it swallowed) with its line number.
        columns = unique_names([h.strip() or f"column{i}" for i, h in enumerate(first)])

    tag = uuid.uuid4().hex[:10]
    rej_t, rej_s = f"_rej_{tag}", f"_rejscan_{tag}"
    first_line = 2 if header else 1
    common = [
        f"delim={_lit(delim)}",
        "quote='\"'",
        "escape='\"'",
        f"header={str(header).lower()}",
        "all_varchar=true",
        "null_padding=false",
        "strict_mode=true",
        "max_line_size=16777216",
        "auto_detect=false",
    ]
    if columns is not None:
        common.append("columns={" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in columns) + "}")

    def read_fn(*extra: str) -> str:
        return f"read_csv({_lit(str(read_path))}, {', '.join(common + list(extra))})"

    check = read_fn("store_rejects=true", f"rejects_table='{rej_t}'", f"rejects_scan='{rej_s}'")
    fast = read_fn("ignore_errors=true")
    raw = con.con
    views = {"check": f"_src_{tag}_check", "fast": f"_src_{tag}_fast"}
    try:
        # The rejects tables must exist before a view may name them.
        raw.execute(f"SELECT * FROM {check} LIMIT 0")
        raw.execute(f'CREATE TEMP VIEW "{views["check"]}" AS SELECT * FROM {check}')
        raw.execute(f'CREATE TEMP VIEW "{views["fast"]}" AS SELECT * FROM {fast}')
        headers = [
            d[0] for d in raw.execute(f'SELECT * FROM "{views["fast"]}" LIMIT 0').description
        ]
    except Exception as e:  # DuckDB raises many kinds here; all mean "cannot parse"
        said = _first_line(e).replace(str(read_path), label).replace(str(path), label)
        raise SourceError(f"{label}: cannot be read as CSV ({said})") from None
    src = Source(
        path,
        "csv",
        con,
        headers,
        enc,
        delim,
        views=views,
        cleanup=[views["check"], views["fast"], rej_t, rej_s],
    )
    src._rejects, src._first_line, src._read_fn = rej_t, first_line, fast
    if materialise:
        _materialise_csv(src, check)
    return src


def _check_column_count(
    text: str, delim: str, columns: list[str], header: bool, label: str
) -> None:
    """A file whose first line does not split into the named columns is refused at once (a
    line further on that does not is quarantined, as any malformed row)."""
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delim)
    try:
        for n, row in enumerate(rows, start=1):
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(columns):
                what = "its header" if header and n == 1 else f"line {n}"
                raise SourceError(
                    f"{label}: {what} has {len(row)} field{'s' if len(row) != 1 else ''} "
                    f"(split at {delim!r}) but {len(columns)} columns are named: "
                    f"{', '.join(columns)}"
                )
            return
    except csv.Error:
        return  # a line the sample cuts or cannot split: the reader judges it


def with_lines(numbered: str, rejects: str, first_line: int) -> str:
    """SQL adding ``_line`` to ``numbered`` (a scan WITH ORDINALITY of the good rows).

    DuckDB numbers rejected records by line (header = 1); the k-th good row
    comes after every rejected line that precedes it.
    """
    fl = first_line
    return f"""
        WITH s AS (SELECT CAST(ordinality AS BIGINT) AS _ord, * EXCLUDE (ordinality)
                   FROM ({numbered})),
             r AS (SELECT line, row_number() OVER (ORDER BY line) AS i
                   FROM (SELECT DISTINCT line FROM "{rejects}")),
             k AS (SELECT line - i - {fl - 2} AS k0, max(i) AS n FROM r GROUP BY ALL)
        SELECT s.* EXCLUDE (_ord), s._ord + {fl - 1} + coalesce(k.n, 0) AS _line
        FROM s ASOF LEFT JOIN k ON s._ord >= k.k0"""


def _materialise_csv(src: Source, check_fn: str) -> None:
    """Stage the whole file with its line numbers, in one read (for presets that group rows)."""
    raw = src.con.con
    name = f"{src.views['fast']}_staged"
    raw.execute(f'CREATE TEMP TABLE "{name}_n" AS SELECT * FROM {check_fn} WITH ORDINALITY')
    src.cleanup.insert(0, f"{name}_n")
    rows = raw.execute(f'SELECT count(*) FROM "{name}_n"').fetchone()[0]
    src.checked(rows)
    numbered = f'SELECT * FROM "{name}_n"'
    raw.execute(
        f'CREATE TEMP TABLE "{name}" AS ' + with_lines(numbered, src._rejects, src._first_line)
    )
    raw.execute(f'DROP TABLE "{name}_n"')
    src.cleanup.insert(0, name)
    src.table = src.con.table(name)


def _rejects_table(con: ibis.BaseBackend, rej_t: str) -> ir.Table:
    return con.sql(
        f"""SELECT CAST(line AS BIGINT) AS line,
                   'malformed CSV row: ' || lower(replace(error_type, '_', ' ')) || ' ('
                       || error_message || ')' AS reason,
                   csv_line AS raw
            FROM "{rej_t}" QUALIFY row_number() OVER (PARTITION BY line) = 1"""
    )


def _lit(v: str) -> str:
    """A SQL string literal, escaped by the SQL library rather than by hand."""
    return sg.exp.Literal.string(v).sql("duckdb")


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# -- Parquet and Excel ----------------------------------------------------------------
def _open_parquet(con: ibis.BaseBackend, path: Path, label: str, materialise: bool) -> Source:
    """A Parquet file with ``_line`` (its row number from 1).

    Read where it lies on every scan, in parallel (the row numbers come from the file,
    not from the order of reading), unless ``materialise`` asks for one staged copy of
    it as text.
    """
    try:
        t = con.read_parquet(str(path), file_row_number=True)
    except Exception as e:
        said = _first_line(e).replace(str(path), label)
        raise SourceError(f"{label}: cannot be read as Parquet ({said})") from None
    cols = [c for c in t.columns if c != "file_row_number"]
    stage = f"_src_{uuid.uuid4().hex[:10]}"
    if materialise:
        t = t.select(_line=t.file_row_number + 1, **{c: t[c].cast("string") for c in cols})
        table = con.create_table(stage, t, temp=True)
        n = int(table.count().execute())
        return Source(path, "parquet", con, cols, rows=n, table=table, cleanup=[stage])
    # Read where it lies, columns of the types a canonical column stores kept typed (no
    # text round trip: see ``parse_native``), the others as text.
    kept = {c: t[c] if is_native(t[c].type()) else t[c].cast("string") for c in cols}
    t = t.select(_line=t.file_row_number + 1, **kept)
    con.con.execute(f'CREATE TEMP VIEW "{stage}" AS {con.compile(t)}')
    views = dict.fromkeys(("check", "fast", "lines"), stage)
    return Source(path, "parquet", con, cols, views=views, cleanup=[stage])


def _open_excel(
    con: ibis.BaseBackend,
    path: Path,
    label: str,
    workdir: Path,
    limits: Limits,
    sheet: str | None = None,
) -> Source:
    out = workdir / f"sheet_{uuid.uuid4().hex}.arrow"
    try:
        size = check_workbook(path, limits, sheet)
        names = read_sheet(path, out, limits, sheet) or sheet_names(path)
    except ExcelError as e:
        raise SourceError(f"{label}: {str(e).replace(str(path), label)}") from None
    # An .xls is not looked into before the child: its names come from the child.
    index = size.index if size is not None else pick_sheet(names, sheet)
    try:
        with pa.memory_map(str(out)) as f:
            arrow = pa.ipc.open_file(f).read_all()
        stage = f"_src_{uuid.uuid4().hex[:10]}"
        table = con.create_table(stage, arrow, temp=True)
    finally:
        out.unlink(missing_ok=True)
    headers = [c for c in arrow.column_names if c != "_line"]
    return Source(
        path,
        "excel",
        con,
        headers,
        rows=arrow.num_rows,
        table=table,
        cleanup=[stage],
        sheets=names,
        sheet=names[index] if index < len(names) else "",
    )


def close_source(src: Source) -> None:
    """Drop what the source staged (views first, then the tables they read)."""
    raw = src.con.con
    views = {r[0] for r in raw.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    for name in src.cleanup:
        kind = "VIEW" if name in views else "TABLE"
        raw.execute(f'DROP {kind} IF EXISTS "{name}"')
