"""What every ``archer`` command shares: the Typer app, consoles, options and error handling.

Commands live in the modules of :mod:`archer.cli`, one per domain; each imports
``app`` from here and registers itself with ``@app.command()``.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable
from rich.text import Text

from archer.clock import ManualClock
from archer.config import load_settings
from archer.errors import ArcherError
from archer.workspace import Workspace


class ArcherTyper(typer.Typer):
    """A Typer app whose commands turn the core's errors into one line on stderr and the
    error's exit code (:mod:`archer.errors`): the one mapping of errors to exit codes."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable], Callable]:
        register = super().command(*args, **kwargs)

        def decorate(f: Callable) -> Callable:
            register(handled(f))
            return f

        return decorate


def handled(f: Callable) -> Callable:
    @functools.wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ArcherError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None

    return run


app = ArcherTyper(
    help="Archer — precision marketing for online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Long paths stay on one line, so a path printed is a path a person can copy.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Workspace folder (default: $ARCHER_HOME or ./archer-data)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def load_home(home: Path | None, *, now: datetime | None = None) -> Workspace:
    """The workspace at ``--home`` (it must exist: only ``archer init`` makes one); with
    ``now``, its clock stands still at that moment (commands that act take ``--now``)."""
    try:
        settings = load_settings(home)
    except ValueError as e:  # a bad setting
        fail(f"settings: {e}")
        raise
    clock = ManualClock(now) if now is not None else None
    return Workspace(settings, clock).require()


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def day_option(text: str | None, option: str) -> date | None:
    """A day given to an option as YYYY-MM-DD; a clear error naming the option otherwise."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: expected a date as YYYY-MM-DD")


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")


def answer(doc: Any, json_out: bool, *lines: str | Text) -> None:
    """``doc`` as JSON with ``--json``; otherwise ``lines`` in words (a :class:`Text`, such as
    a key shown once, is printed exactly as it is)."""
    if json_out:
        emit_json(doc)
        return
    for line in lines:
        out.print(line, highlight=False)


Cell = Callable[[dict[str, Any]], str]


def answer_list(
    docs: list[dict[str, Any]], json_out: bool, *, empty: str, columns: dict[str, Cell]
) -> None:
    """``docs`` as one JSON list with ``--json``; otherwise a table with ``columns`` (heading →
    a doc's cell), or the words ``empty`` when there are none."""
    if json_out:
        emit_json(docs)
        return
    if not docs:
        out.print(empty)
        return
    t = RichTable()
    for heading in columns:
        t.add_column(heading)
    for d in docs:
        t.add_row(*(cell(d) for cell in columns.values()))
    out.print(t)


def when(stamp: str | None, missing: str = "") -> str:
    """A stored moment (ISO text) to the second, or ``missing``."""
    return (stamp or missing)[:19]


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A Rich progress bar on stderr, one line per stage; silent when disabled."""
    if not enabled or not err.is_terminal:
        yield lambda *a: None
        return
    bars: dict[str, int] = {}
    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as p:

        def report(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = p.add_task(stage, total=max(total, 1))
            p.update(bars[stage], completed=done, total=max(total, 1))

        yield report


@contextmanager
def store_session(ws: Workspace, *errors: type[Exception], write: bool = False):
    """A session of the operational store for a command: the store's own errors and ``errors``
    end the command with their message."""
    try:
        with ws.session(write=write) as db:
            yield db
    except errors as e:
        fail(str(e))
