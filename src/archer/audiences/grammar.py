"""Text → typed tree: the audience language's grammar (Lark, LALR) and the errors a person
can act on.

    net_spent >= 500 and province in ("Jiangsu", "Zhejiang", "Shanghai")
    bought(category = "tea", within = 90d) and not bought(category = "tea", within = 14d)

Keywords (``and or not in between is null within true false``) are case-insensitive; field
names are identifiers; texts are in double or single quotes with backslash escapes; numbers may
have a sign and decimals; durations are a number with ``h`` (hours), ``d`` (days), ``w`` (weeks),
``m`` (months of 30 days) or ``y`` (years of 365 days); dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

import ast
from datetime import date

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive

from archer.audiences import tree as t

MAX_LENGTH = 20_000
MAX_DEPTH = 64  # parentheses inside parentheses, and not/and/or inside one another
DAYS_PER_UNIT = {"h": 1 / 24, "d": 1.0, "w": 7.0, "m": 30.0, "y": 365.0}

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | or_expr _OR and_expr -> or_

?and_expr: not_expr
         | and_expr _AND not_expr -> and_

?not_expr: _NOT not_expr -> not_
         | atom

?atom: "(" or_expr ")"
     | field COMP_OP operand -> compare
     | field _IN list -> in_list
     | field _NOT _IN list -> not_in_list
     | field _BETWEEN operand _AND operand -> between
     | field _IS _NULL -> is_null
     | field _IS _NOT _NULL -> is_not_null
     | field _WITHIN DURATION -> within
     | NAME "(" [arg ("," arg)*] ")" -> call
     | field -> truthy

field: NAME
?operand: literal | field
list: "(" [literal ("," literal)* [","]] ")"
arg: NAME COMP_OP literal -> named_arg
   | literal -> bare_arg

?literal: STRING -> string
        | NUMBER -> number
        | DURATION -> duration
        | DATE -> date
        | _TRUE -> true
        | _FALSE -> false

COMP_OP: "==" | "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">" | "≥" | "≤" | "≠"
_AND: "and"i
_OR: "or"i
_NOT: "not"i
_IN: "in"i
_BETWEEN: "between"i
_IS: "is"i
_NULL: "null"i
_WITHIN: "within"i
_TRUE: "true"i
_FALSE: "false"i
NAME: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/
DATE.3: /\d{4}-\d{2}-\d{2}(?![\w-])/
DURATION.2: /[0-9]+(\.[0-9]+)?[hdwmy](?![A-Za-z0-9_])/i
NUMBER: /[+-]?[0-9]+(\.[0-9]+)?(?![A-Za-z0-9_])/

%import common.WS
%ignore WS
"""

# What each terminal is called in an error message.
WORDS = {
    "NAME": "a field or predicate name",
    "STRING": "a quoted text",
    "NUMBER": "a number",
    "DURATION": "a duration such as 7d",
    "DATE": "a date such as 2026-01-31",
    "COMP_OP": "a comparison (=, !=, <, <=, >, >=)",
    "_AND": "and",
    "_OR": "or",
    "_NOT": "not",
    "_IN": "in",
    "_BETWEEN": "between",
    "_IS": "is",
    "_NULL": "null",
    "_WITHIN": "within",
    "_TRUE": "true",
    "_FALSE": "false",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "$END": "the end of the query",
}

_PARSER = Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


class AudienceError(ValueError):
    """A query that cannot be used, with where and why: ``str(e)`` is the whole message."""

    def __init__(
        self,
        message: str,
        line: int = 1,
        column: int = 1,
        suggestions: tuple[str, ...] = (),
        *,
        start: int | None = None,
        end: int | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.suggestions = tuple(suggestions)
        self.start = start
        self.end = end
        text = f"{message} at {line}:{column}"
        if suggestions:
            quoted = " or ".join(f"'{s}'" for s in suggestions)
            text += f" — did you mean {quoted}?"
        super().__init__(text)

    @classmethod
    def at(cls, pos: t.Pos, message: str, suggestions: tuple[str, ...] = ()) -> AudienceError:
        return cls(message, pos.line, pos.column, suggestions, start=pos.start, end=pos.end)

    def to_dict(self) -> dict:
        return {
            "error": str(self),
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "start": self.start,
            "end": self.end,
            "suggestions": list(self.suggestions),
        }


def _pos(meta_or_token) -> t.Pos:
    if isinstance(meta_or_token, Token):
        tok = meta_or_token
        return t.Pos(tok.line, tok.column, tok.start_pos, tok.end_pos)
    m = meta_or_token
    return t.Pos(m.line, m.column, m.start_pos, m.end_pos)


@v_args(meta=True)
class _Build(Transformer_NonRecursive):
    """Lark's parse tree → the dataclasses of :mod:`archer.audiences.tree`.

    Without recursion: a chain of 600 ``and`` is a parse tree 600 deep (the grammar is left
    recursive), which becomes one flat :class:`~archer.audiences.tree.And` here.
    """

    def or_(self, meta, items):
        ops = [*(_flat(items[0], t.Or)), items[1]]
        return t.Or(tuple(ops), _pos(meta))

    def and_(self, meta, items):
        ops = [*(_flat(items[0], t.And)), items[1]]
        return t.And(tuple(ops), _pos(meta))

    def not_(self, meta, items):
        return t.Not(items[0], _pos(meta))

    def field(self, meta, items):
        return t.Field(str(items[0]), _pos(items[0]))

    def compare(self, meta, items):
        op = {"==": "=", "<>": "!=", "≥": ">=", "≤": "<=", "≠": "!="}.get(
            str(items[1]), str(items[1])
        )
        return t.Compare(items[0], op, items[2], _pos(meta))

    def list(self, meta, items):
        return tuple(i for i in items if i is not None)

    def in_list(self, meta, items):
        return t.InList(items[0], items[1], False, _pos(meta))

    def not_in_list(self, meta, items):
        return t.InList(items[0], items[1], True, _pos(meta))

    def between(self, meta, items):
        return t.Between(items[0], items[1], items[2], _pos(meta))

    def is_null(self, meta, items):
        return t.IsNull(items[0], False, _pos(meta))

    def is_not_null(self, meta, items):
        return t.IsNull(items[0], True, _pos(meta))

    def within(self, meta, items):
        return t.Within(items[0], _duration(items[1]), _pos(meta))

    def truthy(self, meta, items):
        return t.Truthy(items[0], _pos(meta))

    def call(self, meta, items):
        name, *args = items
        args = tuple(a for a in args if a is not None)
        return t.Call(str(name), args, _pos(meta), _pos(name))

    def named_arg(self, meta, items):
        name, op, value = items
        op = {"==": "=", "<>": "!="}.get(str(op), str(op))
        return t.Arg(str(name), op, value, _pos(meta))

    def bare_arg(self, meta, items):
        return t.Arg("", "=", items[0], _pos(meta))

    def string(self, meta, items):
        tok = items[0]
        raw = str(tok)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise AudienceError.at(_pos(tok), "a text with a broken escape") from None
        if "\x00" in value:
            raise AudienceError.at(_pos(tok), "a text cannot contain a NUL character (\\0)")
        return t.Literal(value, "string", _pos(tok))

    def number(self, meta, items):
        return t.Literal(float(items[0]), "number", _pos(items[0]))

    def duration(self, meta, items):
        return _duration(items[0])

    def date(self, meta, items):
        tok = items[0]
        try:
            return t.Literal(date.fromisoformat(str(tok)), "date", _pos(tok))
        except ValueError:
            raise AudienceError.at(_pos(tok), f"{tok} is not a calendar date") from None

    def true(self, meta, items):
        return t.Literal(True, "bool", _pos(meta))

    def false(self, meta, items):
        return t.Literal(False, "bool", _pos(meta))


def _flat(node, kind):
    return node.operands if isinstance(node, kind) else (node,)


def _duration(tok: Token) -> t.Literal:
    text = str(tok)
    unit = text[-1].lower()
    return t.Literal(float(text[:-1]) * DAYS_PER_UNIT[unit], "duration", _pos(tok), unit=unit)


def _depth_check(text: str) -> None:
    depth = 0
    line, col = 1, 0
    quote = ""
    escaped = False
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise AudienceError(
                    f"parentheses nested more than {MAX_DEPTH} deep", line, max(col, 1)
                )
        elif ch == ")":
            depth -= 1


def _nesting_check(node: t.Node) -> None:
    """Refuse a tree whose not/and/or nest more than :data:`MAX_DEPTH` deep, at the place of
    the first combination too deep (walked without recursion: the tree is not checked yet)."""
    todo: list[tuple[t.Node, int]] = [(node, 0)]
    while todo:
        n, depth = todo.pop()
        if isinstance(n, t.Not):
            kids: tuple[t.Node, ...] = (n.operand,)
        elif isinstance(n, t.And | t.Or):
            kids = n.operands
        else:
            continue
        depth += 1
        if depth > MAX_DEPTH:
            end = n.pos.start + len("not") if isinstance(n, t.Not) else n.pos.end
            raise AudienceError(
                f"not, and, or nested more than {MAX_DEPTH} deep: write the query more simply"
                " (two nots in a row cancel out)",
                n.pos.line,
                n.pos.column,
                start=n.pos.start,
                end=end,
            )
        todo.extend((k, depth) for k in reversed(kids))  # text order: the first too deep


def _expected(e: UnexpectedInput) -> str:
    names = sorted(getattr(e, "expected", None) or getattr(e, "allowed", None) or [])
    words = []
    for n in names:
        w = WORDS.get(n, n.strip('"').lower())
        if len(w) == 1:  # punctuation: quoted, so that "expected ',' or ')'" reads well
            w = f"'{w}'"
        if w not in words:
            words.append(w)
    if not words:
        return ""
    if len(words) > 6:
        words = words[:6] + ["…"]
    return "expected " + ", ".join(words)


# What a Chinese keyboard types for the language's punctuation, one character for one (so the
# places of errors stay where they were): quotes, brackets, commas, comparison signs, spaces,
# digits. Outside quoted texts only; a text opened with a full-width quote keeps what it holds.
FULL_WIDTH = {"（": "(", "）": ")", "，": ",", "、": ",", "＝": "=", "＞": ">", "＜": "<",
              "！": "!", "\u3000": " ", "．": ".", "－": "-", "＿": "_",
              **{chr(0xFF10 + i): str(i) for i in range(10)}}  # fmt: skip
OPEN_QUOTES = {"“": ("\"", "“”"), "”": ("\"", "“”"), "「": ("\"", "」"), "『": ("\"", "』"),
               "‘": ("'", "‘’"), "’": ("'", "‘’")}  # fmt: skip


def normalise(text: str) -> tuple[str, list[str]]:
    """The query with the full-width quotes (“”‘’「」『』), brackets （）, commas ，、 and
    comparison signs ＝＞＜！ a Chinese keyboard types made ASCII, outside quoted texts, and
    what was changed (``“ → "``), in order of first use."""
    out: list[str] = []
    changed: dict[str, str] = {}
    quote, closers = "", ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:  # inside a text: only its end (or an escape in an ASCII-quoted one) matters
            if quote in "\"'" and not closers and ch == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            if (closers and ch in closers) or (not closers and ch == quote):
                if closers:
                    changed.setdefault(ch, quote)
                out.append(quote)
                quote, closers = "", ""
            else:
                out.append(ch)
        elif ch in "\"'":
            quote, closers = ch, ""
            out.append(ch)
        elif ch in OPEN_QUOTES:
            quote, closers = OPEN_QUOTES[ch]
            changed.setdefault(ch, quote)
            out.append(quote)
        elif ch in FULL_WIDTH:
            changed.setdefault(ch, FULL_WIDTH[ch])
            out.append(FULL_WIDTH[ch])
        else:
            out.append(ch)
        i += 1
    notes = [f"{a} → {b}" for a, b in changed.items() if a != "\u3000"]
    if "\u3000" in changed:
        notes.append("full-width space → space")
    return "".join(out), notes


def parse(text: str) -> t.Node:
    """Parse a query into its typed tree, or raise :class:`AudienceError` with the place.
    Full-width punctuation is read as its ASCII (:func:`normalise`)."""
    if not isinstance(text, str):
        raise AudienceError("the query must be text")
    if len(text) <= MAX_LENGTH:
        text = normalise(text)[0]
    if len(text) > MAX_LENGTH:
        raise AudienceError(
            f"the query is too long ({len(text):,} characters; at most {MAX_LENGTH:,})"
        )
    if not text.strip():
        raise AudienceError("the query is empty: write who, e.g. net_spent >= 500")
    if "\x00" in text:
        at = text.index("\x00")
        line = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        raise AudienceError("a NUL character (\\0) cannot be in a query", line, column, start=at)
    _depth_check(text)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as e:
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        hint = _expected(e)
        if ch in "\"'":
            msg = f"a text opened with {ch} is never closed"
        else:
            msg = f"unexpected character {ch!r}" + (f" ({hint})" if hint else "")
        raise AudienceError(msg, e.line, e.column, start=e.pos_in_stream) from None
    except UnexpectedEOF as e:
        line = text.count("\n") + 1
        column = len(text) - (text.rfind("\n") + 1) + 1
        hint = _expected(e)
        raise AudienceError(
            "the query ends too early" + (f" ({hint})" if hint else ""), line, column
        ) from None
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            line = text.count("\n") + 1
            column = len(text) - (text.rfind("\n") + 1) + 1
            hint = _expected(e)
            raise AudienceError(
                "the query ends too early" + (f" ({hint})" if hint else ""), line, column
            ) from None
        hint = _expected(e)
        raise AudienceError(
            f"unexpected {str(tok)!r}" + (f" ({hint})" if hint else ""),
            tok.line,
            tok.column,
            start=tok.start_pos,
            end=tok.end_pos,
        ) from None
    except UnexpectedInput as e:  # pragma: no cover - the three above are all Lark raises
        raise AudienceError("cannot read the query", e.line, e.column) from None
    try:
        node = _Build().transform(tree)
    except Exception as e:  # Lark wraps errors raised inside the transformer
        inner = getattr(e, "orig_exc", e)
        if isinstance(inner, AudienceError):
            raise inner from None
        raise
    _nesting_check(node)
    return node
