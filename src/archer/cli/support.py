"""What every ``archer`` command shares: the Typer app, consoles, options and error handling.

Commands live in the modules of :mod:`archer.cli`, one per domain; each imports
``app`` from here and registers itself with ``@app.command()``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from archer.config import Settings, load_settings

app = typer.Typer(
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


def load_home(home: Path | None) -> Settings:
    try:
        return load_settings(home)
    except Exception as e:  # pydantic ValidationError: a bad setting
        fail(f"settings: {e}")
        raise


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")


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
def store_session(settings: Settings, *errors: type[Exception], write: bool = False):
    """A session of the operational store for a command: the store's own errors and ``errors``
    end the command with their message (exit code 1)."""
    from archer.store.db import StoreError, session

    try:
        with session(settings, write=write) as db:
            yield db
    except (StoreError, *errors) as e:
        fail(str(e))
