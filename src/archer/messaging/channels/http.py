"""One HTTP request to a provider's API, told apart by when it failed.

A request that never left (the name does not resolve, the connection is refused or times out,
the request cannot be written) is :class:`Temporary`: nothing reached the provider, so trying
again later is safe. A request that left and got no whole answer (a timeout while waiting, a
dropped connection, an answer cut short) is :class:`Unknown`: the provider may have acted on
it, so it must not be sent again before its receipt is checked. Answers are read up to
``MAX_ANSWER`` bytes. The standard library's ``http.client`` is all this needs.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from archer.messaging.channels import Temporary, Unknown

MAX_ANSWER = 1_000_000  # bytes of an answer read at most


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        """The answer as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
    what: str,
) -> Answer:
    """Send one request to ``url``; ``what`` names the provider in errors."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Temporary(f"{what}: {url!r} is not an http(s) address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as e:
            raise Temporary(f"{what}: cannot reach {parts.hostname}: {e}") from None
        try:
            conn.request(method, path, body=body, headers=headers or {})
        except (OSError, http.client.HTTPException) as e:
            raise Temporary(f"{what}: the request could not be written: {e}") from None
        try:
            resp = conn.getresponse()
            data = resp.read(MAX_ANSWER + 1)
        except TimeoutError:
            raise Unknown(
                f"{what}: no answer within {timeout:g}s; the message may have gone"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            raise Unknown(f"{what}: the answer was lost ({e}); the message may have gone") from None
        if len(data) > MAX_ANSWER:
            raise Unknown(f"{what}: an answer of more than {MAX_ANSWER:,} bytes")
        return Answer(resp.status, data)
    finally:
        conn.close()
