"""``archer user …`` and ``archer apikey …``: operator accounts and REST API keys."""

from __future__ import annotations

import sys
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
    fail,
    load_home,
    out,
    store_session,
    when,
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
    answer(doc, json_out, f"User [bold]{username}[/] created: sign in at /login.")


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
    answer_list(
        docs,
        json_out,
        empty="No users yet: `archer user create NAME` makes one.",
        columns={
            "user": lambda d: d["username"],
            "created": lambda d: when(d["created_at"]),
            "last sign-in": lambda d: when(d["last_login_at"], "never"),
        },
    )


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
    answer(
        doc,
        json_out,
        f"API key [bold]{name}[/] created. The key, shown only now:",
        Text(key),
        "Send it as the header 'Authorization: Bearer <key>'.",
    )


@key_app.command("list")
def apikey_list(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """The API keys: name, start of the key, who made it, last use, revoked or not."""
    from archer.store import apikeys

    s = load_home(home)
    with store_session(s) as db:
        docs = [k.to_dict() for k in apikeys.all_keys(db)]
    answer_list(
        docs,
        json_out,
        empty="No API keys yet: `archer apikey create NAME` makes one.",
        columns={
            "name": lambda d: d["name"],
            "key": lambda d: d["prefix"],
            "created by": lambda d: d["created_by"],
            "created": lambda d: when(d["created_at"]),
            "last used": lambda d: when(d["last_used_at"], "never"),
            "revoked": lambda d: when(d["revoked_at"]),
        },
    )


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
    answer(doc, json_out, f"API key [bold]{name}[/] revoked: it is refused from now on.")
