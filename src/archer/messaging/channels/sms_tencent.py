"""SMS through Tencent Cloud (腾讯云短信): ``SendSms`` of API 3.0, signed TC3-HMAC-SHA256.

A request is a POST of JSON (``PhoneNumberSet`` in E.164, ``SmsSdkAppId``, ``SignName``,
``TemplateId``, ``TemplateParamSet`` in the template's order, ``SessionContext`` = the
message uid) with the headers ``X-TC-Action``, ``X-TC-Timestamp``, ``X-TC-Version``,
``X-TC-Region`` and ``Authorization``. The signature follows Tencent's TC3 scheme: a canonical
request (method, ``/``, empty query, the signed headers ``content-type;host;x-tc-action``, the
body's SHA-256), a string to sign with the credential scope ``date/sms/tc3_request``, and a key
derived ``TC3`` + secret → date → ``sms`` → ``tc3_request``.

The number's ``Code`` decides: ``Ok`` is sent (``SerialNo`` is the provider's id; the cost
is ``Fee`` segments times ``[sms] cost_fen``); limits are temporary; an incorrect number fails
and is suppressed, a number on the provider's opt-out list fails and is suppressed as an
unsubscribe; anything else fails. No answer in time is :class:`Unknown`, never resent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from archer.messaging.channels import Outgoing, Permanent, Sent, Temporary, Unknown
from archer.messaging.channels.http import request
from archer.messaging.channels.sms import checked, e164

if TYPE_CHECKING:
    from archer.workspace import Workspace

ENDPOINT = "https://sms.tencentcloudapi.com/"
REGION = "ap-guangzhou"
VERSION = "2021-01-11"
SERVICE = "sms"
SIGNED = "content-type;host;x-tc-action"
CONTENT_TYPE = "application/json; charset=utf-8"

TEMPORARY = (
    "RequestLimitExceeded",
    "LimitExceeded.",
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "InternalError.RequestTimeException",  # the clock is off: fixed, it goes
    "AuthFailure.",  # the shop's keys: fixed by the shop, then the message can go
    "UnauthorizedOperation.",
)
UNKNOWN = ("InternalError.",)  # the provider broke mid-way: it may have sent
INCORRECT_NUMBER = ("InvalidParameterValue.IncorrectPhoneNumber",)
OPTED_OUT = ("FailedOperation.PhoneNumberInBlacklist",)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def authorization(
    secret_id: str, secret_key: str, host: str, action: str, body: bytes, timestamp: int
) -> str:
    """The ``Authorization`` header of a TC3-HMAC-SHA256 POST."""
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{CONTENT_TYPE}\nhost:{host}\nx-tc-action:{action.lower()}\n",
            SIGNED,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{SERVICE}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), SERVICE), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={SIGNED}, "
        f"Signature={signature}"
    )


def _verdict(code: str, text: str) -> Exception:
    if code.startswith(TEMPORARY):
        return Temporary(f"tencent sms: {text}")
    if code.startswith(UNKNOWN):
        return Unknown(f"tencent sms: {text}; the message may have gone")
    if code in INCORRECT_NUMBER:
        return Permanent(f"tencent sms: {text}", suppress="bounce")
    if code in OPTED_OUT:
        return Permanent(f"tencent sms: {text}", suppress="unsubscribe")
    return Permanent(f"tencent sms: {text}")


class TencentSms:
    name = "sms"

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.s = ws.settings.sms
        self.url = self.s.endpoint or ENDPOINT
        self.host = urlsplit(self.url).netloc

    def body(self, msg: Outgoing) -> dict:
        number, code, params = checked(msg, self.s)
        return {
            "PhoneNumberSet": [e164(number)],
            "SmsSdkAppId": self.s.app_id,
            "SignName": self.s.sign_name,
            "TemplateId": code,
            "TemplateParamSet": [v for _, v in params],
            "SessionContext": msg.uid,
        }

    def send(self, msg: Outgoing) -> Sent:
        body = json.dumps(self.body(msg), ensure_ascii=False, separators=(",", ":")).encode()
        ts = int(self.ws.now().timestamp())
        headers = {
            "Authorization": authorization(
                self.s.access_key_id, self.s.access_key_secret.get_secret_value(), self.host,
                "SendSms", body, ts,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(ts),
            "X-TC-Version": VERSION,
            "X-TC-Region": self.s.region or REGION,
        }  # fmt: skip
        answer = request(
            "POST", self.url, body=body, headers=headers, timeout=self.s.timeout,
            what="tencent sms",
        )  # fmt: skip
        doc = answer.json()
        resp = doc.get("Response") if isinstance(doc, dict) else None
        if not isinstance(resp, dict):
            if answer.status >= 500:
                raise Unknown(f"tencent sms: HTTP {answer.status} with no answer; it may have gone")
            raise Permanent(f"tencent sms: HTTP {answer.status}: {answer.body[:200]!r}")
        err = resp.get("Error")
        if isinstance(err, dict):
            code = str(err.get("Code", ""))
            raise _verdict(code, f"{code}: {err.get('Message', '')}")
        statuses = resp.get("SendStatusSet")
        if not isinstance(statuses, list) or len(statuses) != 1 or not isinstance(
            statuses[0], dict
        ):  # fmt: skip
            raise Unknown(f"tencent sms: an answer with no status for the number: {doc!r:.300}")
        st = statuses[0]
        code = str(st.get("Code", ""))
        if code == "Ok":
            fee = st.get("Fee")
            segments = fee if isinstance(fee, int) and 0 <= fee <= 100 else 1
            return Sent(provider_id=str(st.get("SerialNo") or "")[:200] or None,
                        cost_fen=segments * self.s.cost_fen)  # fmt: skip
        raise _verdict(code, f"{code}: {st.get('Message', '')}")

    def close(self) -> None:
        pass
