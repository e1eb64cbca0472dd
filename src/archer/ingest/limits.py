"""How much one import may read and use: every size a file controls is bounded before the
work, and a file beyond a bound is refused with the bound in the message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    # Bytes a compressed file (.csv.gz, or an Excel workbook's zip) may inflate to.
    inflated_bytes: int = 2_000_000_000
    # Rows × columns of an Excel sheet (its extent from A1), and the cells it may hold.
    sheet_cells: int = 20_000_000
    # Parts of an Excel workbook's zip.
    zip_parts: int = 10_000
    # Memory of the child process that reads an Excel sheet, and the time it may take.
    excel_memory_bytes: int = 6 << 30
    excel_seconds: int = 600
    # The import's DuckDB memory; past it the engine spills to <workspace>/tmp, and what
    # cannot spill ends the import with a clear error.
    engine_memory: str = "4GB"


DEFAULT_LIMITS = Limits()
