"""``archer user …`` and ``archer apikey …``: operator accounts and REST API keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table as RichTable

from archer.cli.support import (
    ArcherTyper,
    HomeOpt,
    JsonOpt,
    app,
    emit_json,
    fail,
    load_home,
    out,
    store_session,
)

user_app = ArcherTyper(help="Operator accounts for the web app.", no_args_is_help=True)
key_app = ArcherTyper(help="API keys for the REST API.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="apikey")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Password again", hide_input=True)
    if first != second:
        fail("the two passwords differ: nothing was changed")
    return first


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="The name to sign in with.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Make an operator account (the password is asked twice, or read with --password-stdin)."""
    from archer.store import users

    s = load_home(home)
    password = _read_password(password_stdin)
    with store_session(s, users.UserError, write=True) as db:
        doc = users.create(db, username, password, now=s.now()).to_dict()
    if json_out:
        emit_json(doc)
        return
    out.print(f"User [bold]{username}[/] created: sign in at /login.", highlight=False)


@user_app.command("password")
def user_password(
    username: Annotated[str, typer.Argument(help="Whose password to change.")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin."),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Set a new password; the user's sessions signed in before it end."""
    from archer.store import users

    s = load_home(home)
    password = _read_password(password_stdin)
    with store_session(s, users.UserError, write=True) as db:
        users.set_password(db, username, password)
    out.print(f"Password of [bold]{username}[/] changed.", highlight=False)


@user_app.command("list")
def user_list(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """The operator accounts and when each last signed in."""
    from archer.store import users

    s = load_home(home)
    with store_session(s) as db:
        docs = [u.to_dict() for u in users.all_users(db)]
    if json_out:
        emit_json(docs)
        return
    if not docs:
        out.print("No users yet: `archer user create NAME` makes one.")
        return
    t = RichTable()
    for c in ("user", "created", "last sign-in"):
        t.add_column(c)
    for d in docs:
        t.add_row(d["username"], d["created_at"][:19], (d["last_login_at"] or "never")[:19])
    out.print(t)


@key_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. etl or crm-sync.")],
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Make an API key and print it (shown this once; only its hash is kept)."""
    import getpass

    from archer.store import apikeys

    s = load_home(home)
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        who = "cli"
    with store_session(s, apikeys.ApiKeyError, write=True) as db:
        k, key = apikeys.create(db, name, created_by=f"cli:{who}", now=s.now())
        doc = {**k.to_dict(), "key": key}
    if json_out:
        emit_json(doc)
        return
    out.print(f"API key [bold]{name}[/] created. The key, shown only now:", highlight=False)
    out.print(key, highlight=False, markup=False)
    out.print("Send it as the header 'Authorization: Bearer <key>'.", highlight=False)


@key_app.command("list")
def apikey_list(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """The API keys: name, start of the key, who made it, last use, revoked or not."""
    from archer.store import apikeys

    s = load_home(home)
    with store_session(s) as db:
        docs = [k.to_dict() for k in apikeys.all_keys(db)]
    if json_out:
        emit_json(docs)
        return
    if not docs:
        out.print("No API keys yet: `archer apikey create NAME` makes one.")
        return
    t = RichTable()
    for c in ("name", "key", "created by", "created", "last used", "revoked"):
        t.add_column(c)
    for d in docs:
        t.add_row(
            d["name"],
            d["prefix"],
            d["created_by"],
            d["created_at"][:19],
            (d["last_used_at"] or "never")[:19],
            (d["revoked_at"] or "")[:19],
        )
    out.print(t)


@key_app.command("revoke")
def apikey_revoke(
    name: Annotated[str, typer.Argument(help="The key to refuse from now on.")],
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Refuse an API key from now on."""
    from archer.store import apikeys

    s = load_home(home)
    with store_session(s, apikeys.ApiKeyError, write=True) as db:
        doc = apikeys.revoke(db, name, now=s.now()).to_dict()
    if json_out:
        emit_json(doc)
        return
    out.print(f"API key [bold]{name}[/] revoked: it is refused from now on.", highlight=False)
