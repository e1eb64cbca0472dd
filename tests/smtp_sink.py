"""A real SMTP server for the tests: aiosmtpd on a free loopback port, in a thread of the test
process, recording every message it accepts.

    with SmtpSink() as sink:                      # or the ``smtp_sink`` fixture (conftest.py)
        ws = ws.replace(smtp=sink.settings())     # [smtp] pointing at it (ARCHER_SMTP: .env())
        ...
        sink.wait_for(3)                          # until 3 messages arrived (or a timeout)
        assert sink.uids() == Counter({...})      # Message-IDs as Archer writes them

What it received is read with :meth:`messages` (copies, safe while it runs); each has the
envelope (``mail_from``, ``rcpt_tos``), the parsed message (headers, bodies) and its
``Message-ID``. With ``dedup=True`` a message whose ``Message-ID`` was accepted before is
acknowledged (250) and dropped, as a deduplicating mail server does; :attr:`accepted` still
counts every delivery, so ``accepted - len(messages())`` is what it dropped.

Faults, settable at any time (and cleared with :meth:`heal`):

* :meth:`refuse` — answer a recipient (or every one) with a code: 5xx is a permanent refusal,
  4xx a temporary one;
* ``hang_up = True`` — close the connection at ``MAIL FROM`` without a reply;
* ``delay = seconds`` — keep the message, then wait this long before answering ``DATA`` (a
  slow server that a client gave up on may still deliver);
* :meth:`stop` and :meth:`start` — the server down, then back on the same port.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from archer.config import SmtpSettings

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Received:
    """One message as the sink accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    peer: str

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", "")).strip()

    @property
    def uid(self) -> str:
        """Archer's message uid: the local part of ``<uid@domain>``."""
        return self.message_id.strip("<>").split("@", 1)[0]

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    def header(self, name: str) -> str | None:
        v = self.message.get(name)
        return None if v is None else str(v)

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else None


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.sink.hang_up:
            server.transport.abort()  # no reply at all: the client sees the connection drop
            raise asyncio.CancelledError  # ends aiosmtpd's task for this connection quietly
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.sink._refusal(address)
        if code is not None:
            kind = "permanently" if code >= 500 else "temporarily"
            return f"{code} {address} refused {kind} (test sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)  # fmt: skip
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        got = Received(envelope.mail_from, tuple(envelope.rcpt_tos), msg, peer)  # type: ignore[arg-type]
        self.sink._record(got)  # kept, then (maybe) answered late
        if self.sink.delay > 0:
            await asyncio.sleep(self.sink.delay)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on ``127.0.0.1:port`` that keeps what it receives (see the module)."""

    def __init__(self, *, dedup: bool = False, port: int | None = None) -> None:
        self.dedup = dedup
        self.host = HOST
        self.port = port or free_port()
        self.hang_up = False
        self.delay = 0.0
        self.accepted = 0  # deliveries acknowledged with 250, duplicates included
        self._refused: dict[str, int] = {}  # lower-cased address, or "*": the code
        self._messages: list[Received] = []
        self._seen: set[str] = set()
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    # -- running -------------------------------------------------------------------------------
    def start(self) -> SmtpSink:
        if self._controller is None:
            c = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=10)
            c.start()
            self._controller = c
        return self

    def stop(self) -> None:
        """Stop listening (connections are then refused) until :meth:`start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def settings(self, **kw: Any) -> SmtpSettings:
        """Archer's ``[smtp]`` for this sink (plain, no login); ``kw`` overrides."""
        return SmtpSettings(host=self.host, port=self.port, security="none",
                            sender="Shop <shop@shop.test>", **kw)  # fmt: skip

    def env(self, **kw: Any) -> str:
        """The same as ``ARCHER_SMTP`` (JSON), for a process of its own."""
        return json.dumps(self.settings(**kw).model_dump(mode="json") | {"password": ""})

    # -- faults ----------------------------------------------------------------------------------
    def refuse(self, address: str | None = None, code: int = 550) -> None:
        """Answer ``RCPT TO`` for ``address`` (None: every recipient) with ``code``."""
        if not 400 <= code < 600:
            raise ValueError(f"a refusal is a 4xx or 5xx code, not {code}")
        with self._cond:
            self._refused["*" if address is None else address.lower()] = code

    def heal(self) -> None:
        """Clear every fault: no refusals, no hang-ups, no delay."""
        with self._cond:
            self._refused.clear()
            self.hang_up = False
            self.delay = 0.0

    def _refusal(self, address: str) -> int | None:
        with self._cond:
            return self._refused.get(address.lower(), self._refused.get("*"))

    # -- what it received ----------------------------------------------------------------------
    def _record(self, got: Received) -> None:
        with self._cond:
            self.accepted += 1
            if self.dedup and got.message_id:
                if got.message_id in self._seen:
                    return
                self._seen.add(got.message_id)
            self._messages.append(got)
            self._cond.notify_all()

    def messages(self) -> list[Received]:
        with self._cond:
            return list(self._messages)

    def __len__(self) -> int:
        with self._cond:
            return len(self._messages)

    def uids(self) -> Counter[str]:
        """How many times each Archer message uid was kept (>1: a duplicate)."""
        return Counter(m.uid for m in self.messages())

    def to(self, address: str) -> list[Received]:
        """The messages kept for ``address``."""
        a = address.lower()
        return [m for m in self.messages() if a in (r.lower() for r in m.rcpt_tos)]

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()
            self._seen.clear()
            self.accepted = 0

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        """The messages once at least ``n`` were kept; AssertionError after ``timeout``."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"the SMTP sink got {len(self._messages)} messages, expected {n}"
                    )
                self._cond.wait(left)
            return list(self._messages)
