"""`archer audience …`: count, save, list, show, delete, members, export, explain, history.

Each command calls one function of :mod:`archer.audiences.service` (or the language) and
renders its answer. A query the language refuses is shown with a caret under the place it
points at, like a compiler's error, on stderr with exit code 1.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from archer.audiences import AudienceError, service, snapshots
from archer.audiences import count as count_query
from archer.cli.support import (
    ArcherTyper,
    HomeOpt,
    JsonOpt,
    app,
    emit_json,
    err,
    fail,
    load_home,
    out,
)
from archer.errors import Unavailable
from archer.plain import plain, records
from archer.workspace import Workspace

audience_app = ArcherTyper(
    help="Audiences: who a campaign is for, in one line (see docs/audiences.md).",
    no_args_is_help=True,
)
app.add_typer(audience_app, name="audience")

T = TypeVar("T")
NameArg = Annotated[str, typer.Argument(help="The saved audience's name.")]
QueryArg = Annotated[
    str, typer.Argument(help="The query, e.g. 'net_spent >= 500 and province = \"Jiangsu\"'.")
]
FieldsOpt = Annotated[
    str | None,
    typer.Option(
        "--fields", help="Comma-separated fields to include besides customer_id, e.g. name,email."
    ),
]
SCREEN_ROWS = 20  # members shown on screen unless --limit says otherwise


def default_user() -> str:
    """The operating-system user, which is who saves when --user is not given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER") or "unknown"


def language_error(e: AudienceError, query: str | None) -> NoReturn:
    """The message, then the query's line with a caret under the place (stderr, exit 1)."""
    err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
    if query:
        lines = query.split("\n")
        if 1 <= e.line <= len(lines):
            text = lines[e.line - 1]
            col = max(e.column - 1, 0)
            width = 1
            if e.start is not None and e.end is not None and e.end > e.start:
                width = max(1, min(e.end - e.start, len(text) - col))
            err.print(f"  {text}", markup=False, highlight=False)
            err.print("  " + " " * col + "^" * width, markup=False, highlight=False)
    raise typer.Exit(1)


def run(call: Callable[[], T], query: str | None = None, *, ws=None, name=None) -> T:
    """Call the core; turn what it refuses into a message on stderr and exit code 1."""
    try:
        return call()
    except AudienceError as e:
        if query is None and ws is not None and name is not None:
            query = _stored_query(ws, name)
        language_error(e, query)
    except (LookupError, ValueError, OSError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e))
    raise AssertionError("unreachable")  # pragma: no cover


def _stored_query(ws: Workspace, name: str) -> str | None:
    try:
        return service.get(ws, name)["query"]
    except (LookupError, Unavailable):
        return None


def _fields(fields: str | None) -> list[str] | None:
    if not fields:
        return None
    return [f.strip() for f in fields.split(",") if f.strip()]


def _cell(v: Any) -> str:
    v = plain(v)
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


# -- commands ---------------------------------------------------------------------------------
@audience_app.command("count")
def count_(query: QueryArg, home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """How many customers a query selects, and each top-level clause alone."""
    s = load_home(home)
    doc = run(lambda: count_query(s, query, resolve=service.resolver(s)), query)
    if json_out:
        emit_json(doc)
        return
    out.print(
        f"[bold]{doc['count']:,}[/] of {doc['customers']:,} customers (as of {doc['as_of']})",
        highlight=False,
    )
    if len(doc["clauses"]) > 1:
        t = RichTable(show_edge=False, title="each clause alone", title_justify="left")
        t.add_column("clause")
        t.add_column("customers", justify="right")
        for c in doc["clauses"]:
            t.add_row(escape(c["clause"]), f"{c['count']:,}")
        out.print(t)


@audience_app.command()
def save(
    name: NameArg,
    query: QueryArg,
    description: Annotated[str | None, typer.Option(help="What the audience is for.")] = None,
    user: Annotated[
        str | None, typer.Option(help="Who is saving it (default: the operating-system user).")
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Save a query under a name (or update it); a query that does not compile is not saved."""
    s = load_home(home)
    who = user or default_user()
    doc = run(lambda: service.save(s, name, query, user=who, description=description), query)
    if json_out:
        emit_json(doc)
        return
    verb = "Saved" if doc["created"] else "Updated"
    out.print(
        f"{verb} audience [bold]{escape(name)}[/]: {doc['count']:,} customers as of {doc['as_of']}",
        highlight=False,
    )


@audience_app.command("list")
def list_(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """The saved audiences with who changed them last and when."""
    s = load_home(home)
    docs = run(lambda: service.list_audiences(s))
    if json_out:
        emit_json(docs)
        return
    if not docs:
        out.print('No saved audiences yet: try `archer audience save vip "net_spent >= 500"`.')
        return
    t = RichTable(show_edge=False)
    for col in ("name", "query", "updated by", "updated at (UTC)"):
        t.add_column(col)
    for d in docs:
        t.add_row(
            escape(d["name"]), escape(d["query"]), escape(d["updated_by"]), d["updated_at"][:16]
        )
    out.print(t)


@audience_app.command()
def show(name: NameArg, home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """One audience: its query, who saved it and when, and its size now."""
    s = load_home(home)
    doc = run(lambda: service.get(s, name))
    size = run(lambda: service.count_of(s, name), ws=s, name=name)
    doc = {**doc, "count": size["count"], "as_of": size["as_of"], "clauses": size["clauses"]}
    if json_out:
        emit_json(doc)
        return
    rows = [
        ("name", doc["name"]),
        ("query", doc["query"]),
        ("description", doc["description"] or ""),
        ("created", f"{doc['created_at'][:19]} UTC by {doc['created_by']}"),
        ("updated", f"{doc['updated_at'][:19]} UTC by {doc['updated_by']}"),
        ("customers", f"{doc['count']:,} as of {doc['as_of']}"),
    ]
    for label, value in rows:
        out.print(f"[bold]{label:<12}[/]{escape(value)}", highlight=False)


@audience_app.command()
def delete(name: NameArg, home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Delete a saved audience (refused while another audience refers to it)."""
    s = load_home(home)
    doc = run(lambda: service.delete(s, name))
    if json_out:
        emit_json({"deleted": doc})
        return
    out.print(f"Deleted audience [bold]{escape(name)}[/].", highlight=False)


@audience_app.command()
def members(
    name: NameArg,
    limit: Annotated[
        int | None,
        typer.Option(
            min=0, help=f"At most this many (default: all with --json, else {SCREEN_ROWS})."
        ),
    ] = None,
    fields: FieldsOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The customers in a saved audience, by customer id."""
    s = load_home(home)
    cols = _fields(fields)
    shown = limit if limit is not None or json_out else SCREEN_ROWS + 1
    df = run(lambda: service.members_of(s, name, fields=cols, limit=shown), ws=s, name=name)
    if json_out:
        emit_json(records(df))
        return
    more = limit is None and len(df) > SCREEN_ROWS
    df = df.head(SCREEN_ROWS) if more else df
    t = RichTable(show_edge=False)
    for c in df.columns:
        t.add_column(str(c))
    for row in df.itertuples(index=False):
        t.add_row(*(escape(_cell(v)) for v in row))
    out.print(t)
    if more:
        out.print(f"… and more: use --limit N, or `archer audience export {name} FILE`.")


@audience_app.command()
def export(
    name: NameArg,
    file: Annotated[Path, typer.Argument(help="Where to write: a .csv or .parquet file.")],
    fields: FieldsOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a saved audience's members to CSV (formula-safe) or Parquet."""
    s = load_home(home)
    doc = run(lambda: service.export(s, name, file, _fields(fields)), ws=s, name=name)
    if json_out:
        emit_json(doc)
        return
    out.print(
        f"Wrote {doc['rows']:,} customers of [bold]{escape(name)}[/] to {escape(doc['path'])} "
        f"({', '.join(doc['fields'])})",
        highlight=False,
    )


@audience_app.command()
def explain(
    name: NameArg,
    customer_id: Annotated[str, typer.Argument(help="The customer's id, as in `customers`.")],
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Why a customer is in a saved audience or not: each clause with their values."""
    s = load_home(home)
    doc = run(lambda: service.explain_member(s, name, customer_id), ws=s, name=name)
    if json_out:
        emit_json(doc)
        return
    verdict = "is in" if doc["member"] else "is not in"
    out.print(f"[bold]{escape(customer_id)}[/] {verdict} [bold]{escape(name)}[/]", highlight=False)
    for c in doc["clauses"]:
        mark = "[green]✓[/]" if c["result"] else "[red]✗[/]"
        out.print(f"  {mark} {escape(c['words'])}", highlight=False)


@audience_app.command()
def history(name: NameArg, home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """The audience's size on each build day, with how many entered and left."""
    s = load_home(home)
    rows = run(lambda: snapshots.history(s, name))
    if json_out:
        emit_json({"audience": name, "history": rows})
        return
    if not rows:
        out.print(f"No snapshots of {escape(name)} yet: they are taken by `archer build`.")
        return
    t = RichTable(show_edge=False)
    for col in ("as of", "customers", "entered", "left"):
        t.add_column(col, justify="left" if col == "as of" else "right")
    for r in rows:
        t.add_row(r["as_of"], f"{r['size']:,}", f"+{r['entered']:,}", f"−{r['left']:,}")
    out.print(t)


@audience_app.command()
def changes(
    name: NameArg,
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="A snapshot day (default: the latest)."),
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Who entered and who left the audience on a snapshot day, since the snapshot before."""
    s = load_home(home)
    doc = run(lambda: snapshots.changes(s, name, as_of.date() if as_of else None))
    if json_out:
        emit_json(doc)
        return
    since = f"since {doc['previous']}" if doc["previous"] else "(first snapshot)"
    out.print(f"[bold]{escape(name)}[/] on {doc['as_of']} {since}:", highlight=False)
    for key, sign in (("entered", "+"), ("left", "−")):
        ids = doc[key]
        head = ", ".join(ids[:SCREEN_ROWS]) + (" …" if len(ids) > SCREEN_ROWS else "")
        out.print(f"  {sign}{len(ids):,} {key}: {head}", highlight=False)
