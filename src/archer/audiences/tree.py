"""The typed tree of an audience query: one frozen dataclass per node, each with its place in
the text (``pos``: line, column, start and end offsets), so that every error and every
explanation can point at the words the operator wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Pos:
    line: int
    column: int
    start: int
    end: int

    def text(self, source: str) -> str:
        return source[self.start : self.end]


@dataclass(frozen=True)
class Literal:
    """A value written in the query; ``kind`` is string, number, duration, date, bool."""

    value: str | float | date | bool
    kind: str
    pos: Pos
    unit: str = ""  # for durations: the unit written (d, w, m, y, h); value is in days


@dataclass(frozen=True)
class Field:
    name: str
    pos: Pos


Operand = Literal | Field


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # = != < <= > >=
    value: Operand
    pos: Pos


@dataclass(frozen=True)
class InList:
    field: Field
    values: tuple[Literal, ...]
    negated: bool
    pos: Pos


@dataclass(frozen=True)
class Between:
    field: Field
    low: Operand
    high: Operand
    pos: Pos


@dataclass(frozen=True)
class IsNull:
    field: Field
    negated: bool
    pos: Pos


@dataclass(frozen=True)
class Within:
    """``birthday within 7d``: a date field within a duration of the as-of day."""

    field: Field
    duration: Literal
    pos: Pos


@dataclass(frozen=True)
class Truthy:
    """A bare boolean field: ``email_reachable``."""

    field: Field
    pos: Pos


@dataclass(frozen=True)
class Arg:
    """A call argument: ``category = "tea"``, ``count >= 3`` or a bare value (``name`` empty)."""

    name: str
    op: str
    value: Literal
    pos: Pos


@dataclass(frozen=True)
class Call:
    """A behaviour predicate (``bought(…)``) or an audience reference (``in_audience("vip")``)."""

    name: str
    args: tuple[Arg, ...]
    pos: Pos
    name_pos: Pos = field(compare=False, default=None)  # type: ignore[assignment]


@dataclass(frozen=True)
class Not:
    operand: Node
    pos: Pos


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]
    pos: Pos


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]
    pos: Pos


Node = Compare | InList | Between | IsNull | Within | Truthy | Call | Not | And | Or
LEAVES = (Compare, InList, Between, IsNull, Within, Truthy, Call)


def clauses(node: Node) -> list[Node]:
    """The top-level clauses: the operands of a top-level ``and`` / ``or``, else the node."""
    if isinstance(node, And | Or):
        return list(node.operands)
    return [node]


def leaves(node: Node) -> list[Node]:
    """Every comparison and predicate in the tree, in text order."""
    if isinstance(node, And | Or):
        return [leaf for op in node.operands for leaf in leaves(op)]
    if isinstance(node, Not):
        return leaves(node.operand)
    return [node]
