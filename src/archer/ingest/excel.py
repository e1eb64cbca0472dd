"""Excel workbooks, read without trusting them.

A workbook is a zip of XML parts, and its cells say where they are: two cells, ``A1`` and
``XFD1048576``, make a sheet of 17 billion cells, which the native reader (python-calamine)
allocates in full. So, before it runs:

1. the zip is checked: how many parts, and how large they say they inflate to;
2. the sheet's XML (the first sheet, or the one ``--sheet`` names) is streamed (bounded) for
   its declared ``<dimension>`` and the place of every cell; a sheet larger than
   ``Limits.sheet_cells`` (rows × columns) is refused with its size;
3. the native reader then runs in a child process with a memory limit, so whatever it
   does with a file these checks let through ends as an error here, not as the end of
   the server. The child hands the sheet back as text columns in an Arrow file.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import resource
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from archer.ingest.limits import Limits

MAX_ROWS, MAX_COLS = 1_048_576, 16_384  # what Excel itself can hold
_XML_PART = 16 << 20  # workbook.xml and its relationships are small; more is not a workbook
_CHUNK = 1 << 20
_TAG = re.compile(rb"<(?:[\w.-]+:)?(row|c|dimension)(\s[^>]*)?/?>")
_REF = re.compile(rb"""\b(r|ref)\s*=\s*["']([^"']*)["']""")
_CELL = re.compile(r"^\$?([A-Za-z]{0,3})\$?(\d*)$")


class ExcelError(ValueError):
    """A workbook that cannot or may not be read; the message says why, without a path."""


@dataclass
class SheetSize:
    name: str
    rows: int = 0  # the last row with a cell (1-based)
    cols: int = 0  # the last column with a cell (1-based)
    cells: int = 0  # cells written in the sheet's XML
    index: int = 0  # its place among the workbook's sheets (0 = first)

    @property
    def area(self) -> int:
        return self.rows * self.cols

    def describe(self) -> str:
        return (
            f"{self.rows:,} rows × {self.cols:,} columns (to {col_letters(self.cols)}{self.rows}), "
            f"{self.area:,} cells"
        )


def col_letters(n: int) -> str:
    s = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s or "A"


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


MAX_SHEET_NAME = 200  # a --sheet longer than this names no sheet (Excel's limit is 31)


def pick_sheet(names: list[str], spec: str | None) -> int:
    """The index (0-based) of the sheet ``spec`` names: its name (exactly, else without
    letter case and surrounding blanks), or its number counted from 1; the first sheet when
    ``spec`` is None. An ``ExcelError`` listing the sheets otherwise."""
    if spec is None or not names:
        return 0
    if spec in names:
        return names.index(spec)
    folded = [n.strip().casefold() for n in names]
    if spec.strip().casefold() in folded:
        return folded.index(spec.strip().casefold())
    if spec.strip().isdigit() and 1 <= int(spec) <= len(names):
        return int(spec) - 1
    raise ExcelError(
        f"--sheet {spec[:MAX_SHEET_NAME]!r}: no such sheet; the workbook's sheets are "
        f"{sheet_list(names)}"
    )


def sheet_list(names: list[str]) -> str:
    """The sheets as a message lists them: ``1 说明, 2 订单``."""
    return ", ".join(f"{i} {n}" for i, n in enumerate(names, start=1))


def sheet_names(path: Path) -> list[str]:
    """The names of a workbook's sheets in order, from its ``xl/workbook.xml`` (an empty
    list for a workbook that is not a zip or has no readable list)."""
    if not zipfile.is_zipfile(path):
        return []
    try:
        with zipfile.ZipFile(path) as z:
            return [title for _, title in _sheets(z)]
    except (zipfile.BadZipFile, ExcelError):
        return []


def check_workbook(path: Path, limits: Limits, sheet: str | None = None) -> SheetSize | None:
    """Refuse a workbook whose zip or chosen sheet (``sheet``: see ``pick_sheet``) is beyond
    ``limits``; that sheet's size and place.

    An ``.xls`` (not a zip) cannot be looked into; None then, and only the child's memory
    limit guards its reading (the child finds the sheet itself).
    """
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as z:
            parts = z.infolist()
            if len(parts) > limits.zip_parts:
                raise ExcelError(
                    f"the workbook has {len(parts):,} parts, more than the "
                    f"{limits.zip_parts:,} an import opens"
                )
            inflated = sum(p.file_size for p in parts)
            if inflated > limits.inflated_bytes:
                raise ExcelError(
                    f"the workbook inflates to {inflated:,} bytes, more than the "
                    f"{limits.inflated_bytes:,} an import reads; save the sheet as CSV"
                )
            sheets = _sheets(z)
            index = pick_sheet([title for _, title in sheets], sheet)
            member, name = sheets[index]
            size = _scan_sheet(z, member, name, limits)
            size.index = index
    except zipfile.BadZipFile as e:
        raise ExcelError(f"not a readable Excel workbook ({e})") from None
    if size.rows > MAX_ROWS or size.cols > MAX_COLS or size.area > limits.sheet_cells:
        raise ExcelError(
            f"sheet {size.name!r} spans {size.describe()}; an import reads at most "
            f"{limits.sheet_cells:,} cells (Excel's own limit is {MAX_ROWS:,} rows × "
            f"{MAX_COLS:,} columns). Delete what lies beyond the data, or save the sheet as CSV"
        )
    return size


def _read_small(z: zipfile.ZipFile, member: str) -> str:
    with z.open(member) as f:
        data = f.read(_XML_PART + 1)
    if len(data) > _XML_PART:
        raise ExcelError(f"the workbook's {member} is larger than {_XML_PART:,} bytes")
    return data.decode("utf-8", errors="replace")


def _attr(tag: str, name: str) -> str | None:
    m = re.search(rf"""(?:^|\s)(?:[\w.-]+:)?{name}\s*=\s*["']([^"']*)["']""", tag)
    return m.group(1) if m else None


def _sheets(z: zipfile.ZipFile) -> list[tuple[str, str]]:
    """The zip member and the name of each of the workbook's sheets, in the workbook's order
    (the order Excel shows their tabs in, and the native reader numbers them in)."""
    names = set(z.namelist())
    try:
        book = _read_small(z, "xl/workbook.xml")
        rels = _read_small(z, "xl/_rels/workbook.xml.rels")
    except KeyError:
        book, rels = "", ""
    targets = {}
    for rel in re.finditer(r"<(?:[\w.-]+:)?Relationship\s([^>]*)>", rels):
        target = _attr(rel.group(1), "Target") or ""
        targets[_attr(rel.group(1), "Id")] = (
            target.lstrip("/")
            if target.startswith("/")
            else posixpath.normpath(posixpath.join("xl", target))
        )
    out = []
    for i, sheet in enumerate(re.finditer(r"<(?:[\w.-]+:)?sheet\s([^>]*)>", book), start=1):
        member = targets.get(_attr(sheet.group(1), "id"))
        if member in names:
            out.append((member, _xml_text(_attr(sheet.group(1), "name") or f"Sheet{i}")))
    if out:
        return out
    sheets = sorted(n for n in names if re.fullmatch(r"xl/worksheets/[^/]+\.xml", n))
    if not sheets:
        raise ExcelError("the workbook has no sheet")
    return [(m, Path(m).stem) for m in sheets]


def _xml_text(s: str) -> str:
    """An attribute's text with XML's five entities and character references resolved."""
    import html

    return html.unescape(s)


def _scan_sheet(z: zipfile.ZipFile, member: str, name: str, limits: Limits) -> SheetSize:
    """The sheet's extent from its declared dimension and every cell's place, streamed."""
    size = SheetSize(name)
    row = col = 0
    tail = b""
    with z.open(member) as f:
        while True:
            chunk = f.read(_CHUNK)
            buf = tail + chunk
            cut = len(buf)
            if chunk:  # a tag cut by the chunk's end waits for the next chunk
                lt = buf.rfind(b"<")
                if lt >= 0 and buf.find(b">", lt) < 0:
                    cut = lt
            for m in _TAG.finditer(buf, 0, cut):
                kind, attrs = m.group(1), m.group(2) or b""
                ref = _REF.search(attrs)
                text = ref.group(2).decode("ascii", "replace") if ref else ""
                if kind == b"dimension":
                    letters, digits = _split_ref(text.split(":")[-1])
                    size.rows = max(size.rows, int(digits or 0))
                    size.cols = max(size.cols, _col_number(letters))
                    continue
                letters, digits = _split_ref(text)
                if kind == b"row":
                    row, col = (int(digits) if digits else row + 1), 0
                    size.rows = max(size.rows, row)
                    continue
                size.cells += 1
                if size.cells > limits.sheet_cells:
                    raise ExcelError(
                        f"sheet {name!r} has more than {limits.sheet_cells:,} cells, "
                        "the most an import reads; save the sheet as CSV"
                    )
                col = _col_number(letters) if letters else col + 1
                row = int(digits) if digits else max(row, 1)
                size.rows, size.cols = max(size.rows, row), max(size.cols, col)
            if size.rows > MAX_ROWS or size.cols > MAX_COLS or size.area > limits.sheet_cells:
                return size  # refused by the caller; no need to read further
            tail = buf[cut:]
            if len(tail) > _CHUNK:
                raise ExcelError(f"sheet {name!r}: an XML tag longer than {_CHUNK:,} bytes")
            if not chunk:
                return size


def _split_ref(ref: str) -> tuple[str, str]:
    m = _CELL.match(ref.strip())
    return (m.group(1), m.group(2)) if m else ("", "")


# -- the native read, in a child process ------------------------------------------------------
def read_sheet(path: Path, out: Path, limits: Limits, sheet: str | None = None) -> list[str]:
    """Read a sheet of ``path`` (``sheet``: see ``pick_sheet``; the first by default) into the
    Arrow file ``out`` (``_line`` and one text column per header) in a child process whose
    memory is limited; the workbook's sheet names. Errors as ExcelError."""
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}  # no large reservations
    cmd = [sys.executable, "-m", "archer.ingest.excel", str(path), str(out)]
    cmd.append(str(limits.excel_memory_bytes))
    cmd.append("" if sheet is None else "=" + sheet)
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, timeout=limits.excel_seconds, check=False
        )
    except subprocess.TimeoutExpired:
        raise ExcelError(
            f"reading the sheet took more than {limits.excel_seconds} s; save it as CSV"
        ) from None
    said = done.stderr.decode("utf-8", "replace").strip().splitlines()
    try:
        names = json.loads(done.stdout.decode("utf-8", "replace") or "[]")
    except ValueError:
        names = []
    if done.returncode == 0:
        return names
    if done.returncode in (_EXIT_UNREADABLE, _EXIT_NO_SHEET) and said:
        if done.returncode == _EXIT_NO_SHEET:
            raise ExcelError(said[-1])
        raise ExcelError(f"cannot be read as an Excel workbook ({said[-1]})")
    if done.returncode == _EXIT_EMPTY:
        which = "the first sheet" if sheet is None else f"sheet {sheet!r}"
        others = f"; the workbook's sheets are {sheet_list(names)}" if len(names) > 1 else ""
        raise ExcelError(f"{which} is empty{others}")
    if done.returncode < 0:
        how = signal.Signals(-done.returncode).name
    else:
        how = "out of memory" if done.returncode == _EXIT_MEMORY else f"exit {done.returncode}"
    # The native reader's own word, e.g. "memory allocation of 549755813888 bytes failed".
    if said and len(said[0]) < 200 and not said[0].startswith("Traceback"):
        how += f": {said[0]}"
    raise ExcelError(
        f"the Excel reader stopped ({how}), most likely for want of memory: reading this "
        f"sheet needs more than the {limits.excel_memory_bytes:,} bytes an import may use; "
        "save the sheet as CSV"
    )


_EXIT_UNREADABLE, _EXIT_EMPTY, _EXIT_MEMORY, _EXIT_NO_SHEET = 2, 3, 4, 5


def excel_text(v: object) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ") if hasattr(v, "hour") else v.isoformat()
    return str(v)


def unique_names(names: list[str]) -> list[str]:
    """Headers made unique: a name given again gets ``_1``, ``_2`` …"""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}_{k}")
        seen[n] = k + 1
    return out


def _child(path: str, out: str, memory: int, spec: str = "") -> int:
    import pyarrow as pa
    from python_calamine import CalamineWorkbook

    # The limit covers the reading, not the loading of the libraries.
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        wb = CalamineWorkbook.from_path(path)
        names = list(wb.sheet_names)
        print(json.dumps(names[:1000]))  # for the messages of the parent
        try:
            index = pick_sheet(names, spec[1:] if spec else None)
        except ExcelError as e:
            print(e, file=sys.stderr)
            return _EXIT_NO_SHEET
        sheet = wb.get_sheet_by_index(index).to_python(skip_empty_area=False)
        if not sheet:
            return _EXIT_EMPTY
        rows = iter(sheet)
        first = next(rows)
        # Headers lose surrounding blanks, as DuckDB's CSV reader trims them too.
        headers = unique_names(
            [(excel_text(h) or "").strip() or f"column{i}" for i, h in enumerate(first)]
        )
        data: list[list[str | None]] = [[] for _ in headers]
        lines: list[int] = []
        for n, row in enumerate(rows, start=2):
            if all(v in (None, "") for v in row):
                continue
            lines.append(n)
            for i, col in enumerate(data):
                col.append(excel_text(row[i]) if i < len(row) else None)
        table = pa.table(
            {
                "_line": pa.array(lines, pa.int64()),
                **{h: pa.array(v, pa.string()) for h, v in zip(headers, data, strict=True)},
            }
        )
        with pa.OSFile(out, "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
    except MemoryError:
        return _EXIT_MEMORY
    except Exception as e:  # calamine raises several kinds; all mean "not readable"
        text = str(e).strip().splitlines()
        print(text[0] if text else type(e).__name__, file=sys.stderr)
        return _EXIT_UNREADABLE
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5]))
