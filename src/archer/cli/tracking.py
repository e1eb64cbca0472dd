"""``archer serve``, ``archer sync`` and ``archer source …``: the tracking API from the CLI."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from archer.cli.support import (
    ArcherTyper,
    HomeOpt,
    JsonOpt,
    answer,
    answer_list,
    app,
    emit_json,
    fail,
    load_home,
    out,
    store_session,
    when,
)

source_app = ArcherTyper(
    help="Tracking sources: one write key per site or app.", no_args_is_help=True
)
app.add_typer(source_app, name="source")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    sync_every: Annotated[
        float, typer.Option(help="Seconds between loads of the inbox into the warehouse; 0: never.")
    ] = 5.0,
    home: HomeOpt = None,
) -> None:
    """Serve the web app, its REST API and the tracking API until stopped with Ctrl-C."""
    from archer.store import StoreError
    from archer.store.db import engine
    from archer.web import serve as serve_app

    s = load_home(home)
    try:
        engine(s.settings)  # migrated before the first request, and a bad store is told now
    except StoreError as e:
        fail(str(e))
    shown = f"[{host}]" if ":" in host else host
    out.print(
        f"Archer serving [bold]{s.home.resolve()}[/] at [bold]http://{shown}:{port}[/] "
        f"(the app: /, REST API: /api, tracking API: POST /v1/batch …). Ctrl-C stops it.",
        highlight=False,
    )
    serve_app(s.settings, host, port, sync_every)


@app.command()
def sync(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Load the tracking inbox into the warehouse now (the server also does it every few s)."""
    from archer.jobs import Jobs
    from archer.tracking.loader import sync as run_sync

    ws = load_home(home)
    done = []

    def work(report) -> dict:
        done.append(run_sync(ws))
        return done[0].to_dict()

    Jobs(ws).run("sync", work, who="cli")  # one sync at a time, with the server's loader
    r = done[0]
    if json_out:
        emit_json(r.to_dict())
        return
    out.print(f"{r.read:,} tracked events loaded ({r.seconds:.1f} s); {r.pending:,} waiting.")
    for name, t in r.tables.items():
        out.print(
            f"  {name:<12} {t.inserted:>9,} inserted {t.updated:>7,} updated "
            f"{t.unchanged:>7,} unchanged"
        )
    for note, n in r.notes.most_common(8):
        out.print(f"  {n:>8,} × {note}", highlight=False)


@source_app.command("create")
def source_create(
    name: Annotated[str, typer.Argument(help="A name for the site or app, e.g. web or ios.")],
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Make a source and print its write key (shown this once; only its hash is kept)."""
    from archer.store import sources

    s = load_home(home)
    with store_session(s, sources.SourceError, write=True) as db:
        src, key = sources.create(db, name, now=s.now())
        doc = {**src.to_dict(), "write_key": key}
    answer(
        doc,
        json_out,
        f"Source [bold]{name}[/] created. Its write key, shown only now:",
        Text(key),
    )


@source_app.command("list")
def source_list(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """The sources, with the start of their keys and whether they are revoked."""
    from archer.store import sources

    s = load_home(home)
    with store_session(s) as db:
        docs = [x.to_dict() for x in sources.all_sources(db)]
    answer_list(
        docs,
        json_out,
        empty="No sources yet: `archer source create web` makes one.",
        columns={
            "name": lambda d: d["name"],
            "key": lambda d: d["key_hint"],
            "created": lambda d: when(d["created_at"]),
            "revoked": lambda d: when(d["revoked_at"]),
        },
    )


@source_app.command("revoke")
def source_revoke(
    name: Annotated[str, typer.Argument(help="The source whose key to refuse from now on.")],
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Refuse a source's write key from now on (its events already received are kept)."""
    from archer.store import sources

    s = load_home(home)
    with store_session(s, sources.SourceError, write=True) as db:
        doc = sources.revoke(db, name, now=s.now()).to_dict()
    answer(doc, json_out, f"Source [bold]{name}[/] revoked: its key is refused from now on.")
