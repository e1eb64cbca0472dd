"""The shape of the code: no import loop between packages, one place that opens the warehouse,
one place that reads the wall clock (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import archer

SRC = Path(archer.__file__).parent


def modules() -> dict[str, ast.Module]:
    out = {}
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join(["archer", *parts])] = ast.parse(f.read_text(encoding="utf-8"), str(f))
    return out


def unit(module: str) -> str:
    """The package a module belongs to (``archer.audiences.compile`` → ``audiences``), or the
    top-level module itself (``archer.workspace`` → ``workspace``)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "archer"
    if (SRC / parts[1]).is_dir():
        return parts[1]
    return parts[1]


def top_level_imports(tree: ast.Module, module: str) -> set[str]:
    """Modules imported when ``module`` is imported: module-level statements only, not those
    inside functions or under ``if TYPE_CHECKING``."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative
                    base = module.split(".")[: -node.level]
                    name = ".".join([*base, node.module] if node.module else base)
                else:
                    name = node.module or ""
                found.add(name)
                found.update(f"{name}.{a.name}" for a in node.names)
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)

    visit(tree.body)
    return {m for m in found if m.startswith("archer.") or m == "archer"}


def package_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, tree in mods.items():
        src = unit(name)
        for imp in top_level_imports(tree, name):
            target = next((m for m in (imp, imp.rsplit(".", 1)[0]) if m in mods), None)
            if target is None:
                continue
            dst = unit(target)
            if dst != src and dst != "archer":
                graph.setdefault(src, set()).add(dst)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (c := dfs(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := dfs(n)):
            return c
    return None


def test_no_import_loop_among_packages():
    graph = package_graph()
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])
    # the build's steps are listed by the pipeline; the profile never reaches into audiences
    assert "audiences" not in graph.get("customers", set())


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def _lines(pattern: str, allowed: set[str]) -> list[str]:
    hits = []
    for f in sorted(SRC.rglob("*.py")):
        rel = str(f.relative_to(SRC))
        if rel in allowed:
            continue
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(pattern, line) and not line.lstrip().startswith("#"):
                hits.append(f"{rel}:{i}: {line.strip()}")
    return hits


def test_only_the_workspace_and_the_warehouse_open_the_warehouse():
    assert (
        _lines(r"Warehouse\.connect\(|warehouse\.connect\(", {"workspace.py", "warehouse.py"}) == []
    )


def test_only_the_clock_reads_the_wall_clock():
    wall = r"datetime\.now\(|date\.today\(|time\.time\(\)|datetime\.utcnow\(|time\.localtime\("
    assert _lines(wall, {"clock.py"}) == []
