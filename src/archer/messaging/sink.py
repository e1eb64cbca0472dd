"""A local mail server that keeps what it receives in a Maildir: for the demo, and for trying a
campaign before it reaches a real server (``aiosmtpd``, installed with the test extras)."""

from __future__ import annotations

import mailbox
import socket
import threading
from email import message_from_bytes
from email.policy import default
from pathlib import Path


class MailSink:
    """An SMTP server on loopback; every message lands in ``folder`` (a Maildir)."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        from aiosmtpd.controller import Controller

        self.folder = Path(folder)
        for sub in ("tmp", "new", "cur"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(self.folder, create=True)
        self._lock = threading.Lock()
        self.host = host
        self.port = port or _free_port(host)
        self.received = 0
        self._controller = Controller(self, hostname=host, port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=default)
        with self._lock:
            self.box.add(msg)
            self.received += 1
        return "250 OK"

    def __enter__(self) -> MailSink:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
