"""The workspace's secret and what it signs: session cookies (web) and unsubscribe links.

The key is made once, on first use, in ``<home>/secret.key``, readable by its owner only.
Workers on other machines that send mail for the same shop need the same file: a link they
sign is checked by the web app.
"""

from __future__ import annotations

import os
import secrets
import time

from itsdangerous import BadSignature, URLSafeSerializer

from archer.config import Settings
from archer.errors import Invalid

SECRET_FILE = "secret.key"


def secret_key(settings: Settings) -> bytes:
    """The workspace's signing key."""
    path = settings.home / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        time.sleep(0.05)
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_urlsafe(48).encode("ascii"))
    return path.read_bytes().strip()


def _unsubscribe(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key(settings), salt="archer-unsubscribe")


def unsubscribe_token(settings: Settings, customer_id: str, channel: str) -> str:
    """A token that lets its holder opt ``customer_id`` out of marketing on ``channel``, with
    no sign-in: it goes into the ``List-Unsubscribe`` link of every marketing e-mail."""
    return _unsubscribe(settings).dumps([customer_id, channel])


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[str, str]:
    """The (customer, channel) of a token; :class:`Invalid` when it was not signed here."""
    if not isinstance(token, str) or len(token) > 1000:
        raise Invalid("this unsubscribe link is not valid")
    try:
        got = _unsubscribe(settings).loads(token)
    except BadSignature:
        raise Invalid("this unsubscribe link is not valid") from None
    if not (isinstance(got, list) and len(got) == 2 and all(isinstance(x, str) for x in got)):
        raise Invalid("this unsubscribe link is not valid")
    return got[0], got[1]
