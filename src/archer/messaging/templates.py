"""Message templates: Jinja2 in its immutable sandbox, checked when a campaign is saved.

A template sees only plain data: ``customer`` (profile and contact fields), ``order`` (for a
flow keyed by order), ``shop``, ``campaign``, ``unsubscribe_url`` and, with the offers,
``coupon`` and ``points``. Checking at save time refuses a template that does not compile,
one that names an unknown variable or customer field (with a suggestion), and one that
reaches for Python internals (any name starting with ``_``); the sandbox refuses the rest at
render time. HTML bodies are autoescaped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from archer.errors import Invalid, suggest

VARIABLES = ("customer", "order", "shop", "campaign", "unsubscribe_url", "coupon", "points",
             "product")  # fmt: skip
# ``lines``: the order's lines, each with product_id, name, quantity and stock
ORDER_FIELDS = ("order_id", "created_at", "amount", "goods_amount", "items", "lines")
SHOP_FIELDS = ("name", "currency", "url")
CAMPAIGN_FIELDS = ("name", "step")
COUPON_FIELDS = ("code", "label", "value", "threshold", "expires")
POINTS_FIELDS = ("awarded", "balance")
# a favourites note's product
PRODUCT_FIELDS = ("product_id", "name", "category", "brand", "reason", "price", "old_price",
                  "drop_pct", "stock", "favourited_at")  # fmt: skip
MAX_OUTPUT = 200_000  # characters a rendered part may have


class TemplateProblem(Invalid):
    """A template that cannot be used: where (line) and why."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


def _env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=autoescape, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["money"] = _money
    return env


def _money(v: Any) -> str:
    try:
        return f"{float(v):,.2f}"
    except (TypeError, ValueError):
        return str(v)


TEXT = _env(False)
HTML = _env(True)


def check(source: str, *, html: bool, customer_fields: Iterable[str]) -> set[str]:
    """Compile ``source``; return the customer fields it uses. Raise :class:`TemplateProblem`."""
    env = HTML if html else TEXT
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as e:
        raise TemplateProblem(e.message or "syntax error", e.lineno) from None
    known_fields = set(customer_fields)
    used: set[str] = set()
    declared = _assigned(tree)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Name):
            if node.name.startswith("_"):
                raise TemplateProblem(f"{node.name!r} is not available in a template", node.lineno)
            if node.ctx == "load" and node.name not in VARIABLES and node.name not in declared:
                if node.name in ("loop", "range", "namespace", "lipsum", "dict", "cycler"):
                    continue
                hint = suggest(node.name, VARIABLES)
                msg = f"unknown variable {node.name!r} (known: {', '.join(VARIABLES)})"
                if hint:
                    msg = f"unknown variable {node.name!r} — did you mean {hint[0]!r}?"
                raise TemplateProblem(msg, node.lineno)
            continue
        attr = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        if isinstance(attr, str) and attr.startswith("_"):
            raise TemplateProblem(
                f"templates may not reach Python internals ({attr!r})", node.lineno
            )
        if isinstance(node.node, nodes.Name) and isinstance(attr, str):
            known = {
                "customer": known_fields,
                "order": set(ORDER_FIELDS),
                "shop": set(SHOP_FIELDS),
                "campaign": set(CAMPAIGN_FIELDS),
                "coupon": set(COUPON_FIELDS),
                "points": set(POINTS_FIELDS),
                "product": set(PRODUCT_FIELDS),
            }.get(node.node.name)
            if known is not None and node.node.name not in declared:
                if attr not in known:
                    hint = suggest(attr, known)
                    msg = f"{node.node.name}.{attr} is not a known field"
                    if hint:
                        msg += f" — did you mean {node.node.name}.{hint[0]}?"
                    raise TemplateProblem(msg, node.lineno)
                if node.node.name == "customer":
                    used.add(attr)
    return used


def _const(n: nodes.Node) -> Any:
    return n.value if isinstance(n, nodes.Const) else None


def _assigned(tree: nodes.Template) -> set[str]:
    names: set[str] = set()
    for n in tree.find_all((nodes.Assign, nodes.For, nodes.Macro, nodes.With)):
        targets = []
        if isinstance(n, nodes.Assign | nodes.For):
            targets = [n.target]
        elif isinstance(n, nodes.With):
            targets = list(n.targets)
        elif isinstance(n, nodes.Macro):
            names.add(n.name)
            names.update(a.name for a in n.args)
        for t in targets:
            for name in t.find_all(nodes.Name) if not isinstance(t, nodes.Name) else [t]:
                names.add(name.name)
    return names


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool):
    return (HTML if html else TEXT).from_string(source)


def render(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """Render ``source`` with ``context``; any problem is a :class:`TemplateProblem`."""
    try:
        out = _compiled(source, html).render(**context)
    except SecurityError as e:
        raise TemplateProblem(f"refused by the sandbox: {e}") from None
    except UndefinedError as e:
        raise TemplateProblem(f"missing value: {e}") from None
    except TemplateError as e:
        raise TemplateProblem(str(e)) from None
    except (TypeError, ValueError, ArithmeticError) as e:
        raise TemplateProblem(f"cannot render: {e}") from None
    if len(out) > MAX_OUTPUT:
        raise TemplateProblem(f"the rendered text is too long ({len(out):,} characters)")
    return out
