"""SMS through Aliyun (阿里云短信): the ``SendSms`` action of its RPC API, signed HMAC-SHA1.

A request is a GET whose query holds the common parameters (``AccessKeyId``, ``Action``,
``Format``, ``RegionId``, ``SignatureMethod``, ``SignatureNonce``, ``SignatureVersion``,
``Timestamp``, ``Version``) and the action's (``PhoneNumbers``, ``SignName``,
``TemplateCode``, ``TemplateParam`` as JSON, ``OutId`` = the message uid). The signature is
``base64(HMAC-SHA1(secret + "&", "GET&%2F&" + enc(sorted canonical query)))``, where ``enc``
is Aliyun's percent-encoding: every byte but ``A-Z a-z 0-9 - _ . ~`` escaped, so a space is
``%20`` and ``*`` is ``%2A``.

The answer's ``Code`` decides: ``OK`` is sent (``BizId`` is the provider's id); throttling
and limits are temporary; an illegal number fails and is suppressed; anything else fails.
No answer in time is :class:`Unknown` — Aliyun has no idempotency key, so the message is
never sent again before its receipt (``QuerySendDetails`` by ``OutId``) is looked at.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import TYPE_CHECKING
from urllib.parse import quote

from archer.messaging.channels import Outgoing, Permanent, Sent, Temporary, Unknown
from archer.messaging.channels.http import request
from archer.messaging.channels.sms import checked

if TYPE_CHECKING:
    from archer.workspace import Workspace

ENDPOINT = "https://dysmsapi.aliyuncs.com/"
REGION = "cn-hangzhou"
VERSION = "2017-05-25"

# Codes that may pass: the same request later can succeed.
TEMPORARY = (
    "Throttling",
    "ServiceUnavailable",
    "isv.BUSINESS_LIMIT_CONTROL",
    "isv.DAY_LIMIT_CONTROL",
    "isv.OUT_OF_SERVICE",
    "isv.AMOUNT_NOT_ENOUGH",
    "isp.SYSTEM_ERROR",
    # the shop's own set-up (keys, permissions): fixed by the shop, then the message can go
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "isp.RAM_PERMISSION_DENY",
    "Forbidden.RAM",
)
ILLEGAL_NUMBER = ("isv.MOBILE_NUMBER_ILLEGAL",)


def enc(text: str) -> str:
    """Aliyun's percent-encoding (RFC 3986 unreserved characters kept, UTF-8 bytes)."""
    return quote(text, safe="-_.~")


def signed_query(params: dict[str, str], secret: str) -> str:
    """The query of a GET request, ``Signature`` first."""
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    to_sign = "GET&%2F&" + enc(canonical)
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return f"Signature={enc(base64.b64encode(mac).decode())}&{canonical}"


class AliyunSms:
    name = "sms"

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.s = ws.settings.sms

    def params(self, msg: Outgoing) -> dict[str, str]:
        number, code, params = checked(msg, self.s)
        return {
            "AccessKeyId": self.s.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.s.region or REGION,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": self.ws.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
            "PhoneNumbers": number,
            "SignName": self.s.sign_name,
            "TemplateCode": code,
            "TemplateParam": json.dumps(dict(params), ensure_ascii=False, separators=(",", ":")),
            "OutId": msg.uid,
        }

    def send(self, msg: Outgoing) -> Sent:
        query = signed_query(self.params(msg), self.s.access_key_secret.get_secret_value())
        base = self.s.endpoint or ENDPOINT
        sep = "&" if "?" in base else "?"
        answer = request("GET", f"{base}{sep}{query}", timeout=self.s.timeout, what="aliyun sms")
        doc = answer.json()
        code = str(doc.get("Code", "")) if isinstance(doc, dict) else ""
        text = f"{code}: {doc.get('Message', '')}" if code else f"HTTP {answer.status}"
        if code == "OK":
            biz = str(doc.get("BizId") or "")[:200]
            return Sent(provider_id=biz or None, cost_fen=self.s.cost_fen)
        if not code:  # no verdict from the provider
            if answer.status >= 500:
                raise Unknown(f"aliyun sms: {text} with no error code; the message may have gone")
            raise Permanent(f"aliyun sms: {text}: {answer.body[:200]!r}")
        if code.startswith(TEMPORARY):
            raise Temporary(f"aliyun sms: {text}")
        if code in ILLEGAL_NUMBER:
            raise Permanent(f"aliyun sms: {text}", suppress="bounce")
        raise Permanent(f"aliyun sms: {text}")

    def close(self) -> None:
        pass
