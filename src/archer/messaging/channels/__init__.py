"""Channels: one module per way of reaching a customer, behind one small interface.

A channel is opened once per worker (``open(ws)``, which may keep connections) and sends
rendered messages one at a time. ``send`` returns the provider's id and the cost in fen, or
raises :class:`Temporary` (try again later: the server is down, busy, slow) or
:class:`Permanent` (this message will never go: the address is refused). :class:`Unknown` (a
kind of Permanent) says the request left and no answer came back in time: the provider may
have sent it, so it is never sent again blindly. The message's uid goes to the provider as its
idempotency key where the provider has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from archer.workspace import Workspace


@dataclass(frozen=True)
class Outgoing:
    """A message ready to go: rendered, addressed, with its identity."""

    uid: str
    customer_id: str
    campaign: str
    channel: str
    purpose: str
    address: str | None
    subject: str | None
    text: str | None
    html: str | None
    unsubscribe_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    template: str | None = None  # SMS: the provider's template code
    params: dict[str, str] = field(default_factory=dict)  # its parameters, rendered


@dataclass(frozen=True)
class Sent:
    provider_id: str | None = None
    cost_fen: int = 0


class Temporary(Exception):
    """The message could not go now; it may later (``down``: nor could any other on this
    channel — the server is unreachable or does not answer)."""

    def __init__(self, message: str, *, down: bool = False) -> None:
        super().__init__(message)
        self.down = down


class Permanent(Exception):
    """The message will never go (``suppress``: the address should be suppressed)."""

    def __init__(self, message: str, *, suppress: str | None = None) -> None:
        super().__init__(message)
        self.suppress = suppress


class Unknown(Permanent):
    """The request went out and no usable answer came back (a timeout, a dropped connection,
    an answer too late): the message may have been sent. Not retried; its receipt decides."""


class Channel(Protocol):
    name: str

    def send(self, msg: Outgoing) -> Sent: ...

    def close(self) -> None: ...


def open_channel(ws: Workspace, name: str) -> Channel | None:
    """The channel ``name`` set up for this workspace, or None when it is not set up."""
    if name == "inbox":
        from archer.messaging.channels.inbox import InboxChannel

        return InboxChannel(ws)
    if name == "email":
        if not ws.settings.smtp.host:
            return None
        from archer.messaging.channels.smtp import SmtpChannel

        return SmtpChannel(ws.settings.smtp)
    if name == "sms":
        if not ws.settings.sms.configured:
            return None
        from archer.messaging.channels.sms import open_sms

        return open_sms(ws)
    if name == "wecom":
        if not ws.settings.wecom.configured:
            return None
        from archer.messaging.channels.wecom import WecomChannel

        return WecomChannel(ws)
    return None
