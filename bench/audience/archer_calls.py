"""Every part of archer the audience benchmark's archer side uses (the child that counts and the
diagnostics that compile the query themselves), in one place. Imported only by the processes
that run archer, never by the pandas contender."""

from archer.audiences import catalog, count, evaluate, tree
from archer.audiences.behaviour import compile_behaviour
from archer.audiences.compile import Compiler
from archer.audiences.grammar import parse
from archer.facts import Snapshot
from archer.schema import PROFILE
from archer.warehouse import Warehouse

__all__ = [
    "PROFILE",
    "Compiler",
    "Snapshot",
    "Warehouse",
    "catalog",
    "compile_behaviour",
    "count",
    "evaluate",
    "parse",
    "tree",
]
