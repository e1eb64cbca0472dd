"""WeCom (企业微信) customer contact: a message for one external contact, confirmed by staff.

``add_msg_template`` (``POST /cgi-bin/externalcontact/add_msg_template?access_token=…``) with
``chat_type = "single"``, the customer's ``external_userid`` (from their ``attributes``, the
key ``[wecom] id_attribute``) and the text. WeCom does not deliver it yet: it becomes a task in
the client of the staff member the customer added, who confirms it. So "sent" here means
*handed to WeCom, awaiting the staff's confirmation*; the ``msgid`` is the provider's id.
WeCom also lets a customer receive only a few such messages a month, which the frequency cap
of the ``wecom`` channel keeps under (``[campaigns] caps``, by default 1 a day, 4 in 30 days).

The access token (``gettoken`` with corpid and secret) is kept until shortly before it expires,
and fetched again when WeCom says it is no longer valid. No answer in time is
:class:`Unknown`: WeCom has no idempotency key, so the message is not created twice.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from archer.messaging.channels import Outgoing, Permanent, Sent, Temporary, Unknown
from archer.messaging.channels.http import request

if TYPE_CHECKING:
    from archer.workspace import Workspace

MAX_TEXT = 4000  # bytes of a text WeCom takes
TOKEN_INVALID = (40014, 42001, 41001)  # invalid, expired, missing access_token
BUSY = (-1, 45009, 45033, 45035)  # system busy, frequency limits


class WecomChannel:
    name = "wecom"

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.s = ws.settings.wecom
        self._token: str | None = None
        self._expires: datetime | None = None

    def token(self, *, fresh: bool = False) -> str:
        now = self.ws.now()
        if not fresh and self._token and self._expires and now < self._expires:
            return self._token
        url = (
            f"{self.s.endpoint}/cgi-bin/gettoken?corpid={quote(self.s.corp_id)}"
            f"&corpsecret={quote(self.s.corp_secret.get_secret_value())}"
        )
        try:
            answer = request("GET", url, timeout=self.s.timeout, what="wecom gettoken")
        except Unknown as e:  # asking for a token sends nothing: safe to ask again
            raise Temporary(str(e)) from None
        doc = answer.json()
        if not isinstance(doc, dict) or doc.get("errcode", 0) != 0 or not doc.get("access_token"):
            why = doc.get("errmsg") if isinstance(doc, dict) else f"HTTP {answer.status}"
            code = doc.get("errcode") if isinstance(doc, dict) else None
            raise Temporary(f"wecom gettoken: {code} {why}")
        life = doc.get("expires_in")
        life = life if isinstance(life, int) and 0 < life <= 86_400 else 7200
        self._token = str(doc["access_token"])
        self._expires = now + timedelta(seconds=max(life - 300, life // 2))
        return self._token

    def body(self, msg: Outgoing) -> bytes:
        if not msg.address:
            raise Permanent("the customer has no WeCom external_userid")
        text = msg.text or ""
        if not text.strip():
            raise Permanent("a WeCom message needs text")
        if len(text.encode()) > MAX_TEXT:
            raise Permanent(f"the text is {len(text.encode()):,} bytes (WeCom takes {MAX_TEXT})")
        doc: dict = {"chat_type": "single", "external_userid": [msg.address],
                     "text": {"content": text}}  # fmt: skip
        if self.s.sender:
            doc["sender"] = self.s.sender
        return json.dumps(doc, ensure_ascii=False).encode()

    def send(self, msg: Outgoing) -> Sent:
        body = self.body(msg)
        for attempt in range(2):
            url = (
                f"{self.s.endpoint}/cgi-bin/externalcontact/add_msg_template"
                f"?access_token={quote(self.token(fresh=attempt > 0))}"
            )
            answer = request(
                "POST", url, body=body, headers={"Content-Type": "application/json"},
                timeout=self.s.timeout, what="wecom",
            )  # fmt: skip
            doc = answer.json()
            if not isinstance(doc, dict) or not isinstance(doc.get("errcode", 0), int):
                if answer.status >= 500:
                    raise Unknown(f"wecom: HTTP {answer.status}; the message may have been created")
                raise Permanent(f"wecom: HTTP {answer.status}: {answer.body[:200]!r}")
            code = doc.get("errcode", 0)
            if code in TOKEN_INVALID and attempt == 0:
                continue  # nothing was created: a fresh token, once
            if code == 0:
                failed = doc.get("fail_list")
                if isinstance(failed, list) and msg.address in failed:
                    raise Permanent(
                        f"wecom: {msg.address} cannot receive it (not a contact of the staff, "
                        "or no longer reachable)"
                    )
                return Sent(provider_id=str(doc.get("msgid") or "")[:200] or None)
            text = f"wecom: {code} {doc.get('errmsg', '')}"
            if code in BUSY or code in TOKEN_INVALID:
                raise Temporary(text)
            raise Permanent(text)
        raise Temporary("wecom: the access token was refused twice")

    def close(self) -> None:
        pass
