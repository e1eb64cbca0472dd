"""Stand-ins for the SMS and WeCom APIs: real HTTP servers on loopback (the standard library's
``http.server`` in a thread) that take the documented requests, check their signatures
from the shared secret — computed here independently of Archer's code — and answer in the
documented shapes.

Each server records every request it received (``requests``) and every request whose
signature or shape was wrong (``bad``). What it answers for a number (or an external user id)
is set in ``plan``: ``ok`` (the default), ``throttle``, ``illegal``, ``error``, ``slow`` (the
answer comes only after ``release`` is set: later than the client waits) or ``drop`` (the
connection is closed with no answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ALIYUN_KEY, ALIYUN_SECRET = "LTAI-test-key", "aliyun-secret/+*~ 秘密"
TENCENT_ID, TENCENT_KEY = "AKID-test", "tencent-secret-key"
CORP_ID, CORP_SECRET = "ww-test-corp", "corp-secret"


def aliyun_pct(text: str) -> str:
    """Aliyun's POP percent-encoding, byte by byte as its documentation states it."""
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        if b < 128 and (c.isalnum() or c in "-_.~"):
            out.append(c)
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def aliyun_signature(params: dict[str, str], secret: str) -> str:
    query = "&".join(f"{aliyun_pct(k)}={aliyun_pct(params[k])}" for k in sorted(params))
    text = "GET&" + aliyun_pct("/") + "&" + aliyun_pct(query)
    mac = hmac.new((secret + "&").encode(), text.encode(), "sha1").digest()
    return base64.b64encode(mac).decode()


def tc3_authorization(secret: str, headers, body: bytes) -> str:
    """The Authorization a Tencent Cloud API 3.0 POST with these headers and body must carry."""
    ts = headers.get("X-TC-Timestamp", "")
    day = datetime.fromtimestamp(int(ts), UTC).date().isoformat()
    signed = "content-type;host;x-tc-action"
    canonical_headers = (
        f"content-type:{headers.get('Content-Type', '')}\n"
        f"host:{headers.get('Host', '')}\n"
        f"x-tc-action:{headers.get('X-TC-Action', '').lower()}\n"
    )
    creq = f"POST\n/\n\n{canonical_headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
    scope = f"{day}/sms/tc3_request"
    sts = f"TC3-HMAC-SHA256\n{ts}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    k = hmac.new(("TC3" + secret).encode(), day.encode(), "sha256").digest()
    k = hmac.new(k, b"sms", "sha256").digest()
    k = hmac.new(k, b"tc3_request", "sha256").digest()
    sig = hmac.new(k, sts.encode(), "sha256").hexdigest()
    cred = f"Credential={TENCENT_ID}/{scope}"
    return f"TC3-HMAC-SHA256 {cred}, SignedHeaders={signed}, Signature={sig}"


class Fake:
    """A provider on 127.0.0.1; use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.bad: list[str] = []
        self.plan: dict[str, str] = {}
        self.release = threading.Event()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, b"")

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                fake.handle(self, self.rfile.read(n))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None  # a late answer to a client that left
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def answer(self, h: BaseHTTPRequestHandler, doc: Any, status: int = 200) -> None:
        body = json.dumps(doc, ensure_ascii=False).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def behave(self, h: BaseHTTPRequestHandler, what: str) -> bool:
        """Slow or drop: True when the answer is left to the caller to send (late)."""
        if what == "drop":
            h.close_connection = True
            h.connection.close()
            return False
        if what == "slow":
            self.release.wait(30)  # answers only once the test lets it, after the client gave up
        return True

    def record(self, doc: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(doc)

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        raise NotImplementedError


class FakeAliyun(Fake):
    CODES = {
        "throttle": ("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
        "illegal": ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
        "error": ("isv.TEMPLATE_MISSING_PARAMETERS", "模版缺少变量"),
    }

    def handle(self, h, body):
        parts = urlsplit(h.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        params = dict(pairs)
        if len(params) != len(pairs) or parts.path != "/":
            self.bad.append(f"shape: {h.path}")
            return self.answer(h, {"Code": "InvalidParameter", "Message": "shape"}, 400)
        sig = params.pop("Signature", "")
        want = {
            "AccessKeyId": ALIYUN_KEY, "Action": "SendSms", "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "Version": "2017-05-25",
        }  # fmt: skip
        missing = [k for k, v in want.items() if params.get(k) != v] + [
            k for k in ("RegionId", "SignatureNonce", "Timestamp", "PhoneNumbers", "SignName",
                        "TemplateCode", "TemplateParam", "OutId") if not params.get(k)
        ]  # fmt: skip
        if missing:
            self.bad.append(f"parameters: {missing}")
            return self.answer(h, {"Code": "MissingParameter", "Message": str(missing)}, 400)
        if not hmac.compare_digest(sig, aliyun_signature(params, ALIYUN_SECRET)):
            self.bad.append(f"signature of {params['OutId']}")
            return self.answer(h, {"Code": "SignatureDoesNotMatch", "Message": "bad"}, 400)
        try:
            datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
            tp = json.loads(params["TemplateParam"])
        except ValueError:
            self.bad.append("Timestamp or TemplateParam")
            return self.answer(h, {"Code": "InvalidParameter", "Message": "format"}, 400)
        self.record({**params, "TemplateParam": tp})
        what = self.plan.get(params["PhoneNumbers"], "ok")
        if not self.behave(h, what):
            return None
        if what in self.CODES:
            code, msg = self.CODES[what]
            return self.answer(h, {"Code": code, "Message": msg, "RequestId": "r"})
        biz = hashlib.sha1(params["OutId"].encode()).hexdigest()[:20]
        return self.answer(h, {"Code": "OK", "Message": "OK", "BizId": biz, "RequestId": "r"})


class FakeTencent(Fake):
    CODES = {
        "throttle": "LimitExceeded.PhoneNumberThirtySecondLimit",
        "illegal": "InvalidParameterValue.IncorrectPhoneNumber",
        "error": "FailedOperation.TemplateIncorrectOrUnapproved",
        "blacklist": "FailedOperation.PhoneNumberInBlacklist",
    }

    def handle(self, h, body):
        expected = tc3_authorization(TENCENT_KEY, h.headers, body)
        ok_headers = (
            h.headers.get("X-TC-Action") == "SendSms"
            and h.headers.get("X-TC-Version") == "2021-01-11"
            and h.headers.get("X-TC-Region")
            and h.headers.get("Content-Type") == "application/json; charset=utf-8"
        )
        if not ok_headers:
            self.bad.append(f"headers: {dict(h.headers)}")
            return self.answer(h, {"Response": {"Error": {"Code": "MissingParameter",
                                                           "Message": "headers"}}})  # fmt: skip
        if not hmac.compare_digest(h.headers.get("Authorization", ""), expected):
            self.bad.append("signature")
            return self.answer(h, {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
                                                           "Message": "bad"}}})  # fmt: skip
        doc = json.loads(body)
        keys = {"PhoneNumberSet", "SmsSdkAppId", "SignName", "TemplateId", "TemplateParamSet",
                "SessionContext"}  # fmt: skip
        if set(doc) != keys or len(doc["PhoneNumberSet"]) != 1:
            self.bad.append(f"body: {sorted(doc)}")
            return self.answer(h, {"Response": {"Error": {"Code": "InvalidParameter",
                                                           "Message": "body"}}})  # fmt: skip
        self.record(doc)
        number = doc["PhoneNumberSet"][0]
        what = self.plan.get(number, "ok")
        if not self.behave(h, what):
            return None
        code = self.CODES.get(what, "Ok")
        status = {"SerialNo": f"2019:{doc['SessionContext'][:8]}", "PhoneNumber": number,
                  "Fee": 2 if what == "ok" else 0, "SessionContext": doc["SessionContext"],
                  "Code": code, "Message": "send success" if code == "Ok" else code,
                  "IsoCode": "CN"}  # fmt: skip
        return self.answer(h, {"Response": {"SendStatusSet": [status], "RequestId": "r"}})


class FakeWecom(Fake):
    """gettoken and add_msg_template; tokens live ``life`` seconds of the test's own count:
    ``expire()`` makes the current one stale, as WeCom may do early."""

    def __init__(self, life: int = 7200) -> None:
        super().__init__()
        self.life = life
        self.tokens: list[str] = []
        self.valid: set[str] = set()

    def expire(self) -> None:
        self.valid.clear()

    def handle(self, h, body):
        parts = urlsplit(h.path)
        q = dict(parse_qsl(parts.query))
        if parts.path == "/cgi-bin/gettoken":
            if q.get("corpid") != CORP_ID or q.get("corpsecret") != CORP_SECRET:
                self.bad.append("gettoken credentials")
                return self.answer(h, {"errcode": 40001, "errmsg": "invalid credential"})
            tok = f"token-{len(self.tokens) + 1}"
            self.tokens.append(tok)
            self.valid.add(tok)
            return self.answer(h, {"errcode": 0, "errmsg": "ok", "access_token": tok,
                                   "expires_in": self.life})  # fmt: skip
        if parts.path != "/cgi-bin/externalcontact/add_msg_template" or h.command != "POST":
            self.bad.append(f"path {h.command} {parts.path}")
            return self.answer(h, {"errcode": 404, "errmsg": "no such api"}, 404)
        if q.get("access_token") not in self.valid:
            return self.answer(h, {"errcode": 42001, "errmsg": "access_token expired"})
        doc = json.loads(body)
        if (
            doc.get("chat_type") != "single"
            or not isinstance(doc.get("external_userid"), list)
            or not isinstance(doc.get("text", {}).get("content"), str)
        ):
            self.bad.append(f"body {doc}")
            return self.answer(h, {"errcode": 40058, "errmsg": "invalid body"})
        self.record(doc)
        user = doc["external_userid"][0]
        what = self.plan.get(user, "ok")
        if not self.behave(h, what):
            return None
        if what == "throttle":
            return self.answer(h, {"errcode": 45009, "errmsg": "api freq out of limit"})
        fail = [user] if what == "illegal" else []
        return self.answer(h, {"errcode": 0, "errmsg": "ok", "fail_list": fail,
                               "msgid": f"msg{len(self.requests)}"})  # fmt: skip
