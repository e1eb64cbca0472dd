"""E-mail through the shop's own SMTP server (``[smtp]`` in ``archer.toml``).

Each message carries its uid as ``Message-ID`` (a sink or a mail server that deduplicates on
it delivers a re-sent message once) and, when it is marketing, ``List-Unsubscribe`` with the
https link and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), so a mail
client's unsubscribe button works in one request. Connections are kept open between messages
(a small pool per worker) and opened again when the server drops them.

A 5xx refusal of the recipient is permanent (the address is suppressed as a bounce); a
refused connection, a timeout or a 4xx is temporary (the dispatcher retries with backoff). A
timed-out send is never repeated at once (the server may have taken the message); only a kept
connection the server closed while idle is opened again on the spot.
"""

from __future__ import annotations

import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr

from archer.config import SmtpSettings
from archer.messaging.channels import Outgoing, Permanent, Sent, Temporary


def _domain(sender: str) -> str:
    addr = parseaddr(sender)[1]
    return addr.rsplit("@", 1)[1] if "@" in addr else "archer.invalid"


class SmtpChannel:
    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self.s = settings
        self.domain = _domain(settings.sender)
        self._idle: list[smtplib.SMTP] = []

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        s = self.s
        try:
            if s.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if s.username:
                conn.login(s.username, s.password.get_secret_value())
        except smtplib.SMTPAuthenticationError as e:
            raise Temporary(
                f"the mail server refused the login: {e.smtp_code}", down=True
            ) from None
        except (OSError, smtplib.SMTPException) as e:
            raise Temporary(
                f"cannot reach the mail server {s.host}:{s.port}: {e}", down=True
            ) from None
        return conn

    def _take(self) -> smtplib.SMTP:
        return self._idle.pop() if self._idle else self._connect()

    def _give(self, conn: smtplib.SMTP) -> None:
        if len(self._idle) < self.s.connections:
            self._idle.append(conn)
        else:
            _quit(conn)

    def close(self) -> None:
        while self._idle:
            _quit(self._idle.pop())

    # -- a message -----------------------------------------------------------------------------
    def build(self, msg: Outgoing) -> EmailMessage:
        e = EmailMessage()
        e["From"] = self.s.sender or f"shop@{self.domain}"
        name, addr = parseaddr(msg.address or "")
        if not addr or "@" not in addr:
            raise Permanent(f"{msg.address!r} is not an e-mail address")
        try:
            local, domain = addr.rsplit("@", 1)
            e["To"] = Address(display_name=name, username=local, domain=domain)
        except (ValueError, IndexError) as ex:
            raise Permanent(f"{msg.address!r} is not an e-mail address: {ex}") from None
        if self.s.reply_to:
            e["Reply-To"] = self.s.reply_to
        e["Subject"] = (msg.subject or "").replace("\r", " ").replace("\n", " ")
        e["Date"] = formatdate(localtime=False)
        e["Message-ID"] = f"<{msg.uid}@{self.domain}>"
        if msg.purpose == "marketing" and msg.unsubscribe_url:
            e["List-Unsubscribe"] = f"<{msg.unsubscribe_url}>"
            e["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        e.set_content(msg.text or "")
        if msg.html:
            e.add_alternative(msg.html, subtype="html")
        return e

    def send(self, msg: Outgoing) -> Sent:
        email = self.build(msg)
        rcpt = [a for _, a in getaddresses([str(email["To"])])]
        for attempt in range(2):  # a pooled connection the server closed: once more, fresh
            pooled = bool(self._idle)
            conn = self._take()
            try:
                refused = conn.send_message(email, to_addrs=rcpt)
            except smtplib.SMTPRecipientsRefused as e:
                self._give(conn)
                code, text = next(iter(e.recipients.values()))
                if 500 <= code < 600:
                    raise Permanent(f"{code} {_s(text)}", suppress="bounce") from None
                raise Temporary(f"{code} {_s(text)}") from None
            except smtplib.SMTPResponseException as e:
                _quit(conn)
                if 500 <= e.smtp_code < 600 and e.smtp_code not in (552, 554):
                    raise Permanent(f"{e.smtp_code} {_s(e.smtp_error)}") from None
                text = f"{e.smtp_code} {_s(e.smtp_error)}"
                raise Temporary(text, down=e.smtp_code == 421) from None
            except TimeoutError as e:  # it may have the message: sending again now would copy it
                _drop(conn)
                raise Temporary(f"the mail server did not answer: {e}", down=True) from None
            except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as e:
                _drop(conn)
                if pooled and attempt == 0:  # closed while idle: the usual fate of a kept one
                    while self._idle:  # its siblings went the same way
                        _drop(self._idle.pop())
                    continue
                raise Temporary(f"the mail server dropped the connection: {e}", down=True) from None
            except smtplib.SMTPException as e:
                _quit(conn)
                raise Temporary(str(e)) from None
            self._give(conn)
            if refused:
                raise Permanent(f"refused: {refused}", suppress="bounce")
            return Sent(provider_id=str(email["Message-ID"]))
        raise Temporary("the mail server dropped the connection")


def _s(v: bytes | str) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _drop(conn: smtplib.SMTP) -> None:
    """Close a broken connection without a QUIT (which would wait out another timeout)."""
    try:
        conn.close()
    except OSError:
        pass


def _quit(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        try:
            conn.close()
        except OSError:
            pass
