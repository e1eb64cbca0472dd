"""Typed tree → Ibis: one ``compile_<node>`` per node, checking types and names on the way,
so a query that names an unknown field, compares text with a number or refers to itself is
refused before anything runs.

Every leaf compiles to a boolean with NULL taken as false: ``not net_spent >= 500`` keeps the
customers whose spend is unknown. Behaviour predicates aggregate their rows per customer and
keep the customers whose measures pass (``count >= 1`` unless said otherwise); a predicate that
zero passes (``viewed(count < 3)``) keeps every customer who is not among those that fail, so
customers without any such rows are in. Values go into the expression as bound literals, never
into SQL text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from archer.audiences import catalog as cat
from archer.audiences import tree as t
from archer.audiences.grammar import AudienceError, parse
from archer.customers.profile import PROFILE_COLUMNS
from archer.errors import suggest
from archer.facts import Snapshot
from archer.places import lookup_city, normalise_key, province_aliases

Resolve = Callable[[str], str]
OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
PY_OPS = OPS  # the same lambdas work on Python numbers
MAX_REFERENCE_DEPTH = 50  # in_audience links followed from one query, one inside another


class ChainTooDeep(AudienceError):
    """``in_audience`` references nested deeper than :data:`MAX_REFERENCE_DEPTH`: said once,
    at the outermost reference, not wrapped again by every link on the way out."""


class NeedsContacts(Exception):
    """A query names a contact field of ``customers``: evaluate it over the joined base."""


@dataclass
class Behaviour:
    """A compiled behaviour predicate: per-customer measures and the condition on them."""

    measures: ir.Table  # customer_id + count (+ amount)
    condition: ir.BooleanValue  # over ``measures``
    zero_passes: bool


MAX_VALUES = 5000  # distinct values of a text field read to check a query's values


@dataclass
class Compiler:
    """Compiles queries against one snapshot and its base table ``base``."""

    snap: Snapshot
    base: ir.Table
    resolve: Resolve | None = None
    # Computes a table once (a scratch table) when a query is evaluated several ways at once;
    # behaviour predicates put their member sets through it. None: plain expressions.
    stage: Callable[[ir.Table], ir.Table] | None = None
    _types: dict[str, str] = field(default_factory=dict)
    _values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _stack: tuple[str, ...] = ()
    behaviours: dict[t.Pos, Behaviour] = field(default_factory=dict)
    _member_sets: dict[t.Call, tuple[ir.Table, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        schema = self.base.schema()
        self._types = {n: cat.language_type(n, schema[n]) for n in schema.names}
        self._types.pop("as_of", None)
        # Contact fields of `customers` are known even when the base does not carry them:
        # naming one asks for the base with them (NeedsContacts).
        for name, kind in cat.CUSTOMER_FIELD_TYPES.items():
            self._types.setdefault(name, kind)

    # -- entry points ------------------------------------------------------------------------
    def compile(self, node: t.Node) -> ir.BooleanValue:
        method = getattr(self, f"compile_{type(node).__name__.lower()}", None)
        if method is None:  # a node the compiler does not know is a bug, not a user error
            raise TypeError(f"no compile rule for {type(node).__name__}")
        return method(node)

    def compile_text(self, text: str) -> tuple[t.Node, ir.BooleanValue]:
        node = parse(text)
        return node, self.compile(node)

    # -- fields and values -------------------------------------------------------------------
    @property
    def field_names(self) -> list[str]:
        return sorted([*self._types, *cat.ALIASES])

    def field(self, f: t.Field) -> tuple[ir.Value, str]:
        name = cat.ALIASES.get(f.name, f.name)
        if name not in self._types:
            raise AudienceError.at(
                f.pos, f"unknown field '{f.name}'", suggest(f.name, self.field_names)
            )
        if name not in self.base.columns:
            raise NeedsContacts(name)
        return self.base[name], self._types[name]

    def known_values(self, name: str) -> tuple[str, ...] | None:
        name = cat.ALIASES.get(name, name)
        if name in cat.FIXED_VALUES:
            return cat.FIXED_VALUES[name]
        custom = (
            self._types.get(name) == "text"
            and name in self.base.columns
            and (name not in PROFILE_COLUMNS and name not in cat.CUSTOMER_FIELD_TYPES)
        )  # one of the shop's own fields ([fields] in archer.toml): checked when few values
        if name in cat.DATA_VALUES or custom:
            if name not in self._values:
                col = self.base[name]
                got = self.base.filter(col.notnull()).select(v=col).distinct().limit(MAX_VALUES)
                self._values[name] = tuple(sorted(str(v) for v in got.execute().v))
            if custom and len(self._values[name]) >= MAX_VALUES:
                return None  # too many to tell a typo from a value no one has yet
            return self._values[name]
        return None

    def text_value(self, field_name: str, lit: t.Literal) -> str:
        """The literal as the stored value: places in canonical form, checked against the
        values the field has."""
        value = str(lit.value)
        known = self.known_values(field_name)
        if known is None or value in known:
            return value
        if field_name in ("province", "city"):
            canon = self._place(field_name, value)
            if canon in known:
                return canon
        by_case = {k.lower(): k for k in known}
        if value.lower() in by_case:
            return by_case[value.lower()]
        raise AudienceError.at(
            lit.pos,
            f"no customer has {field_name} '{value}'",
            suggest(value, known),
        )

    @staticmethod
    def _place(kind: str, value: str) -> str:
        """江苏省, 江苏 or jiangsu → Jiangsu; 南京 → Nanjing."""
        if kind == "city":
            hit = lookup_city(value)
            return hit[1] if hit else value
        return province_aliases().get(normalise_key(value), value)

    def operand(self, field_name: str, ftype: str, op: str, v: t.Operand) -> ir.Value:
        """The right-hand side of a comparison with a ``ftype`` field, type-checked."""
        if isinstance(v, t.Field):
            expr, vtype = self.field(v)
            if _comparable(ftype, vtype):
                return expr
            raise AudienceError.at(
                v.pos, f"{field_name} is {_a(ftype)} and {v.name} is {_a(vtype)}: not comparable"
            )
        kind = v.kind
        if ftype in ("number", "days") and kind == "number":
            return ibis.literal(v.value, "float64")
        if ftype == "days" and kind == "duration":
            return ibis.literal(v.value, "float64")
        if ftype == "text" and kind == "string":
            if op not in ("=", "!="):
                raise AudienceError.at(v.pos, f"{field_name} is text: compare it with = or !=")
            return ibis.literal(self.text_value(field_name, v), "string")
        if ftype == "bool" and kind == "bool":
            if op not in ("=", "!="):
                raise AudienceError.at(v.pos, f"{field_name} is true or false: use = or !=")
            return ibis.literal(v.value, "boolean")
        if ftype in ("date", "timestamp") and kind == "date":
            value = v.value if ftype == "date" else datetime.combine(v.value, datetime.min.time())
            return ibis.literal(value, ftype)
        raise AudienceError.at(
            v.pos, f"{field_name} is {_a(ftype)}, but {_show(v)} is {_a(_lit_type(v))}"
        )

    # -- leaves ------------------------------------------------------------------------------
    def compile_compare(self, n: t.Compare) -> ir.BooleanValue:
        expr, ftype = self.field(n.field)
        rhs = self.operand(n.field.name, ftype, n.op, n.value)
        if ftype == "timestamp" and isinstance(n.value, t.Literal):
            expr = self.snap.local(expr).date()  # a timestamp compared with a day: local day
            rhs = ibis.literal(n.value.value, "date")
        return OPS[n.op](expr, rhs).fill_null(False)

    def compile_inlist(self, n: t.InList) -> ir.BooleanValue:
        expr, ftype = self.field(n.field)
        if not n.values:
            raise AudienceError.at(n.pos, "an empty list: name at least one value")
        values = [self.operand(n.field.name, ftype, "=", v) for v in n.values]
        cond = expr.isin(values)
        return (~cond if n.negated else cond).fill_null(False)

    def compile_between(self, n: t.Between) -> ir.BooleanValue:
        expr, ftype = self.field(n.field)
        if ftype in ("text", "bool"):
            raise AudienceError.at(n.pos, f"{n.field.name} is {_a(ftype)}: between needs numbers")
        low = self.operand(n.field.name, ftype, ">=", n.low)
        high = self.operand(n.field.name, ftype, "<=", n.high)
        return expr.between(low, high).fill_null(False)

    def compile_isnull(self, n: t.IsNull) -> ir.BooleanValue:
        expr, _ = self.field(n.field)
        return expr.notnull() if n.negated else expr.isnull()

    def compile_within(self, n: t.Within) -> ir.BooleanValue:
        expr, ftype = self.field(n.field)
        days = float(n.duration.value)
        name = cat.ALIASES.get(n.field.name, n.field.name)
        if name == "birthday":  # anniversaries: the next birthday falls within
            return self.base.days_to_birthday.between(0, days).fill_null(False)
        if ftype == "timestamp":
            since = self.snap.cutoff - timedelta(days=days)
            return ((expr >= since) & (expr < self.snap.cutoff)).fill_null(False)
        if ftype == "date":
            first = self.snap.as_of - timedelta(days=max(int(days) - 1, 0))
            return expr.between(first, self.snap.as_of).fill_null(False)
        raise AudienceError.at(
            n.pos, f"{n.field.name} is {_a(ftype)}: within needs a date or a time"
        )

    def compile_truthy(self, n: t.Truthy) -> ir.BooleanValue:
        expr, ftype = self.field(n.field)
        if ftype != "bool":
            raise AudienceError.at(
                n.pos,
                f"{n.field.name} is {_a(ftype)}, not true or false: compare it with a value",
            )
        return expr.fill_null(False)

    def compile_call(self, n: t.Call) -> ir.BooleanValue:
        if n.name == cat.REFERENCE:
            return self._reference(n)
        spec = cat.PREDICATES.get(n.name)
        if spec is None:
            known = [*cat.PREDICATES, cat.REFERENCE]
            raise AudienceError.at(
                n.name_pos, f"unknown predicate '{n.name}'", suggest(n.name, known)
            )
        if n not in self._member_sets:
            from archer.audiences.behaviour import compile_behaviour

            b = compile_behaviour(self, spec, n)
            self.behaviours[n.pos] = b
            ids = b.measures
            passing = b.condition.fill_null(False)
            # Customers without any rows pass when zero passes: keep the (fewer) that fail.
            chosen = ids.filter(~passing if b.zero_passes else passing).select("customer_id")
            if self.stage is not None:
                chosen = self.stage(chosen)
            self._member_sets[n] = (chosen, b.zero_passes)
        chosen, zero_passes = self._member_sets[n]
        inside = self.base.customer_id.isin(chosen.customer_id)
        return ~inside if zero_passes else inside

    def _reference(self, n: t.Call) -> ir.BooleanValue:
        if len(n.args) != 1 or n.args[0].name or n.args[0].value.kind != "string":
            raise AudienceError.at(n.pos, 'in_audience takes one audience name: in_audience("vip")')
        name = str(n.args[0].value.value)
        if self.resolve is None:
            raise AudienceError.at(n.pos, "audience references need saved audiences")
        if name in self._stack:
            chain = " → ".join([*self._stack, name])
            raise AudienceError.at(n.args[0].pos, f"audience '{name}' refers to itself ({chain})")
        if len(self._stack) >= MAX_REFERENCE_DEPTH:
            shown = [*self._stack[:2], "…", *self._stack[-2:], name]
            raise ChainTooDeep.at(
                n.args[0].pos,
                f"audience references nest more than {MAX_REFERENCE_DEPTH} deep "
                f"({' → '.join(shown)}): an audience may build on others at most "
                f"{MAX_REFERENCE_DEPTH} links down",
            )
        try:
            text = self.resolve(name)
        except KeyError as e:
            known = e.args[1] if len(e.args) > 1 else ()
            raise AudienceError.at(
                n.args[0].pos, f"no saved audience '{name}'", suggest(name, known)
            ) from None
        inner = Compiler(
            self.snap, self.base, self.resolve, self.stage, _stack=(*self._stack, name)
        )
        try:
            return inner.compile(parse(text))
        except ChainTooDeep as e:
            raise ChainTooDeep.at(n.args[0].pos, e.message) from None
        except AudienceError as e:
            # The place is the reference in this query; the inner message says what is wrong
            # (and, for a chain of references, already names the inner audiences).
            if e.message.startswith("audience '") and "refers to itself" in e.message:
                raise AudienceError.at(n.args[0].pos, e.message, e.suggestions) from None
            where = f" (at {e.line}:{e.column} of its query)"
            raise AudienceError.at(
                n.args[0].pos, f"in audience '{name}': {e.message}{where}", e.suggestions
            ) from None

    # -- combinations ------------------------------------------------------------------------
    def compile_not(self, n: t.Not) -> ir.BooleanValue:
        return ~self.compile(n.operand)

    def compile_and(self, n: t.And) -> ir.BooleanValue:
        return _balanced([self.compile(op) for op in n.operands], operator.and_)

    def compile_or(self, n: t.Or) -> ir.BooleanValue:
        return _balanced([self.compile(op) for op in n.operands], operator.or_)


def _balanced(values: list[ir.BooleanValue], combine) -> ir.BooleanValue:
    """``a & b & c & d`` as ``(a & b) & (c & d)``: a chain of 1,000 operands nests 10 deep, not
    1,000 deep (Ibis and sqlglot walk expressions recursively)."""
    while len(values) > 1:
        pairs = [combine(a, b) for a, b in zip(values[::2], values[1::2], strict=False)]
        values = pairs + values[len(pairs) * 2 :]
    return values[0]


def _comparable(a: str, b: str) -> bool:
    numeric = {"number", "days"}
    return a == b or (a in numeric and b in numeric) or {a, b} == {"date", "timestamp"}


def _lit_type(v: t.Literal) -> str:
    return {"string": "text", "bool": "true or false"}.get(v.kind, v.kind)


def _a(kind: str) -> str:
    words = {
        "number": "a number",
        "days": "a number of days",
        "text": "text",
        "bool": "true or false",
        "date": "a date",
        "timestamp": "a time",
        "duration": "a duration",
        "true or false": "true or false",
    }
    return words.get(kind, kind)


def _show(v: t.Literal) -> str:
    if v.kind == "string":
        return f'"{v.value}"'
    if v.kind == "duration":
        return f"a duration ({v.value:g} days)"
    return str(v.value).lower() if v.kind == "bool" else str(v.value)
