"""`archer consent …`: read and change a customer's consent; the suppression list."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table as RichTable

from archer.cli.support import ArcherTyper, HomeOpt, JsonOpt, app, emit_json, load_home, out
from archer.messaging import consent

consent_app = ArcherTyper(
    help="Consent per customer, channel and purpose; suppressed addresses.", no_args_is_help=True
)
app.add_typer(consent_app, name="consent")

ChannelOpt = Annotated[str, typer.Option("--channel", help="email, sms, wecom or inbox.")]
PurposeOpt = Annotated[str, typer.Option("--purpose", help="marketing or service.")]


@consent_app.command("show")
def show_cmd(customer: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """A customer's recorded consent and its history."""
    doc = consent.of_customer(load_home(home), customer)
    if as_json:
        emit_json(doc)
        return
    t = RichTable("channel", "purpose", "granted", "source", "at")
    for r in doc["consent"]:
        t.add_row(r["channel"], r["purpose"], "yes" if r["granted"] else "no", r["source"],
                  r["updated_at"][:19])  # fmt: skip
    out.print(t if doc["consent"] else "nothing recorded: the imported opt-in flags apply")


def _set(customer: str, granted: bool, channel: str, purpose: str, evidence, home, as_json):
    doc = consent.set_consent(
        load_home(home), customer, channel, granted, purpose=purpose, source="cli",
        evidence=evidence,
    )  # fmt: skip
    if as_json:
        emit_json(doc)
    else:
        out.print(f"{customer}: {channel} {purpose} {'granted' if granted else 'refused'}")


@consent_app.command("grant")
def grant_cmd(
    customer: str,
    channel: ChannelOpt = "email",
    purpose: PurposeOpt = "marketing",
    evidence: Annotated[
        str | None, typer.Option("--evidence", help="Where the yes came from.")
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that the customer agreed."""
    _set(customer, True, channel, purpose, evidence, home, as_json)


@consent_app.command("revoke")
def revoke_cmd(
    customer: str,
    channel: ChannelOpt = "email",
    purpose: PurposeOpt = "marketing",
    evidence: Annotated[str | None, typer.Option("--evidence")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that the customer refused (a late opt-out wins over messages already planned)."""
    _set(customer, False, channel, purpose, evidence, home, as_json)


@consent_app.command("suppress")
def suppress_cmd(
    address: str,
    channel: ChannelOpt = "email",
    reason: Annotated[str, typer.Option("--reason")] = "manual",
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Never send to this address on this channel."""
    doc = consent.suppress(load_home(home), channel, address, reason=reason, source="cli")
    emit_json(doc) if as_json else out.print(f"suppressed {doc['address']} on {channel}")


@consent_app.command("unsuppress")
def unsuppress_cmd(
    address: str, channel: ChannelOpt = "email", home: HomeOpt = None, as_json: JsonOpt = False
) -> None:
    """Take an address off the suppression list."""
    doc = consent.unsuppress(load_home(home), channel, address)
    emit_json(doc) if as_json else out.print(f"{doc['address']} may be sent to on {channel}")


@consent_app.command("suppressions")
def suppressions_cmd(
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The suppressed addresses."""
    rows = consent.suppressions(load_home(home), channel)
    if as_json:
        emit_json(rows)
        return
    t = RichTable("channel", "address", "reason", "since")
    for r in rows:
        t.add_row(r["channel"], r["address"], r["reason"], r["created_at"][:19])
    out.print(t)
