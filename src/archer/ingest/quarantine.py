"""The quarantine: every rejected row, with its line, its reasons and its cells.

One CSV per import under ``<workspace>/quarantine/``. Columns: ``line`` (in
the source file; for Parquet the row number, for Excel the sheet row),
``reason`` (every problem, "; "-separated), ``raw`` (the text of a line that
could not even be split into fields) and then the file's own columns as
they were read, so a fixed file can be imported again. Text cells a spreadsheet would
run as a formula get a leading ``'`` (``archer.csvsafe``); the importer removes it again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from archer.config import Settings
from archer.csvsafe import escape_column
from archer.ingest.sources import Source

OWN_COLUMNS = ("line", "reason", "raw")


def quarantine_path(settings: Settings, table: str, source: Path, now: datetime) -> Path:
    """A new quarantine file's path, stamped with the import's moment ``now`` (UTC)."""
    settings.quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    stem = source.name.split(".")[0] or "file"
    return settings.quarantine_dir / f"{stamp}-{table}-{stem}-{uuid.uuid4().hex[:6]}.csv"


def write_quarantine(src: Source, parts: list[ir.Table], out: Path) -> tuple[int, dict[str, int]]:
    """Write one row per rejected source line; return how many and the commonest reasons.

    ``parts`` are tables of (line, reason), one per canonical table (a preset's
    line may fail in several) plus the malformed lines.
    """
    bad = ibis.union(*parts) if len(parts) > 1 else parts[0]
    per_line = bad.group_by("line").aggregate(
        reason=bad.reason.group_concat("; ", order_by=bad.reason)
    )
    if src.parse_rejects is not None:
        pr = src.parse_rejects
        raws = pr.select(_l=pr.line, raw=pr.raw)
        per_line = per_line.left_join(raws, per_line.line == raws._l).drop("_l")
    else:
        per_line = per_line.mutate(raw=ibis.null(dt.string))
    per_line = per_line.cache()  # one small table, read three times below
    cells = src.rejected_cells if src.rejected_cells is not None else src.scan("lines")
    cells = cells.drop("_hash") if "_hash" in cells.columns else cells
    # Only the rejected lines' cells, found in one pass over the file.
    cells = cells.semi_join(per_line, cells._line == per_line.line)
    # A header of the file that clashes with ours gets a prefix.
    cells = cells.rename({f"source_{c}": c for c in cells.columns if c in OWN_COLUMNS})
    joined = per_line.left_join(cells, per_line.line == cells._line).drop("_line")
    # Operators open this file in a spreadsheet: no cell may run as a formula there.
    joined = joined.mutate(
        **{c: escape_column(joined[c]) for c, t in joined.schema().items() if t.is_string()}
    )
    joined.order_by("line").to_csv(out)
    n = int(per_line.count().execute())
    top = (
        bad.mutate(kind=reason_kind(bad.reason))
        .kind.value_counts(name="n")
        .order_by(ibis.desc("n"), "kind")
        .limit(20)
        .to_pyarrow()
        .to_pylist()
    )
    return n, {r["kind"]: int(r["n"]) for r in top}


def reason_kind(reason: ir.StringValue) -> ir.StringValue:
    """A reason without its cell values, to count alike problems together."""
    first = reason.split("; ")[0]
    return (
        first.re_replace(r"^([a-z_]+: [a-z_]+): .*? (is (?:not|outside|negative).*)$", r"\1 \2")
        .re_replace(r"\s*\(.*\)$", "")
        .re_replace(r"\.$", "")
    )
