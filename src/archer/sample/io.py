"""Arrow column builders and chunked table writers for the synthetic shop.

Columns are built straight from NumPy buffers (ids as fixed-width digit strings, money as
decimal128 from integer cents) because formatting tens of millions of values one by one is
what would make the generator slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

_LUT4 = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], np.uint8)
MONEY = pa.decimal128(18, 2)


def id_width(minimum: int, largest: int) -> int:
    """Digits needed for ids up to ``largest``, at least ``minimum``."""
    return max(minimum, len(str(max(int(largest), 0))))


def _validity(valid: np.ndarray | None) -> pa.Buffer | None:
    if valid is None or bool(valid.all()):
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def fixed_ids(
    prefix: str, nums: np.ndarray, width: int, valid: np.ndarray | None = None, suffix: str = ""
) -> pa.Array:
    """Strings ``prefix`` + ``nums`` zero-padded to ``width`` digits; null where not valid."""
    n, head, tail = len(nums), prefix.encode(), suffix.encode()
    w = len(head) + width + len(tail)
    buf = np.empty((n, w), np.uint8)
    if head:
        buf[:, : len(head)] = np.frombuffer(head, np.uint8)
    if tail:
        buf[:, w - len(tail) :] = np.frombuffer(tail, np.uint8)
    x = np.asarray(nums, np.int64)
    if valid is not None:
        x = np.where(valid, x, 0)
    pos = w - len(tail)
    while pos > len(head):
        k = min(4, pos - len(head))
        buf[:, pos - k : pos] = _LUT4[x % 10_000][:, 4 - k :]
        x = x // 10_000
        pos -= k
    if n * w >= 2**31:
        raise ValueError("id column too large for one chunk")
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [_validity(valid), pa.py_buffer(offsets), pa.py_buffer(buf)]
    )


def money(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Decimal(18, 2) amounts from integer cents."""
    c = np.asarray(cents, np.int64)
    words = np.empty((len(c), 2), np.int64)
    words[:, 0] = c
    words[:, 1] = np.where(c < 0, -1, 0)
    return pa.Array.from_buffers(MONEY, len(c), [_validity(valid), pa.py_buffer(words)])


def timestamps(base: int, t_days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Naive shop-local timestamps (seconds) from days since the period start."""
    t = np.where(valid, t_days, 0.0) if valid is not None else t_days
    sec = base + np.floor(np.asarray(t) * 86_400).astype(np.int64)
    return pa.Array.from_buffers(pa.timestamp("s"), len(sec), [_validity(valid), pa.py_buffer(sec)])


def timestamps_s(base: int, sec: np.ndarray) -> pa.Array:
    """Naive shop-local timestamps from whole seconds since the period start."""
    return pa.array(base + np.asarray(sec, np.int64), pa.timestamp("s"))


def dates(epoch_days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    d = np.asarray(epoch_days, np.int32)
    return pa.Array.from_buffers(pa.date32(), len(d), [_validity(valid), pa.py_buffer(d)])


def coded(codes: np.ndarray, values: list[str] | tuple[str, ...]) -> pa.Array:
    """Dictionary-encoded strings; a negative code is null.

    Repeated values are merged first: Parquet writes a dictionary with duplicates
    differently from run to run.
    """
    c = np.asarray(codes)
    vals = list(values)
    if len(set(vals)) != len(vals):
        first: dict[str, int] = {}
        remap = np.array([first.setdefault(v, len(first)) for v in vals])
        c = np.where(c >= 0, remap[np.maximum(c, 0)], -1)
        vals = list(first)
    itype = np.int16 if len(vals) < 2**15 else np.int32
    idx = pa.array(c.astype(itype), mask=c < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(vals, pa.string()))


def bools(flags: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(flags, bool))


def ints(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    v = np.asarray(values, np.int64)
    return pa.array(v, mask=None if valid is None else ~valid)


class TableWriter:
    """Writes one table as CSV (plain header, nulls empty) or Parquet, chunk by chunk."""

    def __init__(self, path: Path, names: list[str], fmt: str) -> None:
        self.path, self.names, self.fmt = path, names, fmt
        self.rows = 0
        self._sink: pa.NativeFile | None = None
        self._writer: pacsv.CSVWriter | pq.ParquetWriter | None = None

    def write(self, columns: dict[str, pa.Array]) -> None:
        table = pa.table([columns[n] for n in self.names], names=self.names)
        if self._writer is None:
            if self.fmt == "csv":
                self._sink = pa.OSFile(str(self.path), "wb")
                self._sink.write((",".join(self.names) + "\n").encode())
                opts = pacsv.WriteOptions(include_header=False, quoting_style="needed")
                self._writer = pacsv.CSVWriter(self._sink, table.schema, write_options=opts)
            else:
                self._writer = pq.ParquetWriter(str(self.path), table.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> int:
        if self._writer is not None:
            self._writer.close()
        if self._sink is not None:
            self._sink.close()
        return self.rows


def write_table(path: Path, names: list[str], fmt: str, columns: dict[str, pa.Array]) -> int:
    """Write one table in one go; returns the rows written."""
    w = TableWriter(path, names, fmt)
    w.write(columns)
    return w.close()
