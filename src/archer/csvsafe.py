"""Cells a spreadsheet would run as formulas (CSV injection), made inert: one rule for every
CSV Archer writes that people open (audience exports, import quarantines).

A text cell that starts with ``= + - @``, a tab or a carriage return gets a leading ``'``.
The rule looks at the text only, so a text ``-5`` is guarded too: a reader cannot tell
``-5`` from ``-2+3`` by its first character, and numbers that are numbers (not text) are
written as they are. The importer removes such a guard again (``unguard``), so a guarded
file imports as it was written.
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"


def escape_cell(v: Any) -> Any:
    """A text a spreadsheet would run as a formula, made inert with a leading ``'``."""
    if isinstance(v, str) and v.startswith(FORMULA_STARTS):
        return GUARD + v
    return v


def escape_column(s: ir.StringValue) -> ir.StringValue:
    """``escape_cell`` for a text column, in the engine."""
    return s.left(1).isin(FORMULA_STARTS).ifelse(GUARD + s, s)


def unguard(s: ir.StringValue) -> ir.StringValue:
    """The text without a guard ``escape_cell`` put there (``'=1`` → ``=1``)."""
    return (s.left(1) == GUARD).ifelse(
        s.substr(1, 1).isin(FORMULA_STARTS).ifelse(s.substr(1), s), s
    )
