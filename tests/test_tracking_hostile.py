"""Hostile tracking requests at a real server (issue 11, items 3, 9, 12, 16): a batch's shared
context cannot multiply what one request stores, deep nesting and NULs in ids are 400s naming the
field, a cut gzip body is refused, and a client that goes away mid-body is one line in the log."""

from __future__ import annotations

import gzip
import logging
import socket
import threading

import httpx
import orjson
import pytest

from archer.store import inbox
from archer.tracking.spec import MAX_BATCH_BYTES, MAX_EVENT_BYTES, MAX_STORED_BYTES
from test_tracking_server import ThreadServer, basic, inbox_bodies, new_source

TINY = {"type": "track", "userId": "u1", "event": "e"}


@pytest.fixture
def api(ws):
    key = new_source(ws, "web")
    with ThreadServer(ws) as srv, httpx.Client(base_url=srv.url, headers=basic(key)) as c:
        c.key, c.ws, c.port = key, ws, srv.port
        yield c


def post(c: httpx.Client, path: str, doc, **kw) -> httpx.Response:
    return c.post(path, content=orjson.dumps(doc), **kw)


def refused(r: httpx.Response, field: str | None, *words: str) -> dict:
    assert r.status_code == 400, r.text
    doc = r.json()
    assert doc.get("field") == field, doc
    for w in words:
        assert w in doc["detail"], doc["detail"]
    return doc


def stored_bytes(c) -> int:
    with c.ws.session() as s:
        return sum(len(e.body) for e in inbox.next_events(s.connection(), 1_000_000))


def nested(levels: int) -> bytes:
    """An object ``levels`` deep, as JSON text (orjson itself writes at most 254 levels)."""
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def with_nested(doc: dict, key: str, levels: int) -> bytes:
    """``doc`` as JSON with ``key`` set to an object ``levels`` deep."""
    return orjson.dumps(doc)[:-1] + f',"{key}":'.encode() + nested(levels) + b"}"


# -- 3: the shared context is counted in every event it is copied into ----------------------------
def test_a_big_shared_context_with_many_tiny_events_is_refused(api):
    """The report's request: 150 KB of context and 1,000 tiny events in a 151 KB body, which
    stored 154 MB. Each event is 150 KB once the context is in it: over the 32 KB limit."""
    doc = {"context": {"pad": "x" * 150_000}, "batch": [TINY] * 1000}
    assert len(orjson.dumps(doc)) < MAX_BATCH_BYTES
    refused(post(api, "/v1/batch", doc), "batch[0]", "context", f"{MAX_EVENT_BYTES:,}")
    assert stored_bytes(api) == 0


def test_what_one_request_stores_is_bounded(api):
    """A context under the event limit, copied into 1,000 events, would still store 20 MB."""
    doc = {"context": {"pad": "x" * 20_000}, "batch": [TINY] * 1000}
    refused(post(api, "/v1/batch", doc), "batch", f"{MAX_STORED_BYTES:,}", "smaller context")
    assert stored_bytes(api) == 0


def test_ordinary_batches_are_still_taken_whole(api):
    # a shared context of a usual size, in every one of 1,000 events
    context = {"library": {"name": "analytics.js", "version": "5.2.0"}, "ip": "203.0.113.7"}
    r = post(api, "/v1/batch", {"context": context, "batch": [TINY] * 1000})
    assert r.status_code == 200, r.text
    assert all(b["context"] == context for b in inbox_bodies(api.ws))
    # the most a body can grow: 500 KB of the smallest events, each given an id and times
    smallest = {"type": "page", "anonymousId": "a"}
    n = (MAX_BATCH_BYTES - 100) // (len(orjson.dumps(smallest)) + 1)
    doc = {"sentAt": "2026-11-11T02:00:00Z", "batch": [smallest] * n}
    assert len(orjson.dumps(doc)) <= MAX_BATCH_BYTES
    r = post(api, "/v1/batch", doc)
    assert r.status_code == 200, r.text
    assert len(inbox_bodies(api.ws)) == 1000 + n
    assert stored_bytes(api) < MAX_STORED_BYTES + 1000 * 300


# -- 12: nesting ----------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [300, 1000])
def test_an_event_nested_hundreds_deep_is_a_400(api, levels):
    body = with_nested(TINY, "properties", levels)
    refused(api.post("/v1/track", content=body), None, "nested more than 254")
    body = b'{"batch":[' + orjson.dumps(TINY) + b"," + body + b"]}"
    refused(api.post("/v1/batch", content=body), "batch[1]", "nested more than 254")
    body = with_nested({"batch": [TINY]}, "context", levels)
    refused(api.post("/v1/batch", content=body), "context", "nested more than 254")
    assert stored_bytes(api) == 0


def test_a_body_nested_past_the_json_reader_is_a_400(api):
    r = api.post("/v1/track", content=b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}")
    refused(r, None, "not valid JSON")


# -- 9: ids are printable -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, doc, field, shown",
    [
        ("/v1/track", {**TINY, "userId": "C0000001\x00"}, "userId", "'\\x00' (at character 9)"),
        ("/v1/identify", {"userId": "\x00", "traits": {"name": "x"}}, "userId", "'\\x00'"),
        ("/v1/page", {"anonymousId": "a\nb"}, "anonymousId", "'\\n'"),
        ("/v1/alias", {"userId": "u1", "previousId": "a\x00"}, "previousId", "'\\x00'"),
        ("/v1/track", {**TINY, "messageId": "m\x001"}, "messageId", "'\\x00'"),
        ("/v1/track", {**TINY, "event": "Order\x00Completed"}, "event", "NUL"),
        ("/v1/batch", {"batch": [TINY, {**TINY, "userId": "\x00"}]}, "batch[1].userId", "'\\x00'"),
    ],
)
def test_a_control_character_in_an_id_is_refused_naming_the_field(api, path, doc, field, shown):
    refused(post(api, path, doc), field, shown)
    assert stored_bytes(api) == 0


# -- 16: gzip bodies must be whole; a client gone mid-body is one log line ------------------------
def test_a_gzip_body_without_its_trailer_is_refused(api):
    whole = gzip.compress(orjson.dumps({"batch": [TINY]}))
    gz = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    refused(api.post("/v1/batch", content=whole[:-8], headers=gz), None, "cut short")
    refused(api.post("/v1/batch", content=whole[:-3], headers=gz), None, "cut short")
    bad_crc = whole[:-8] + bytes(8)
    refused(api.post("/v1/batch", content=bad_crc, headers=gz), None, "cannot be read")
    assert stored_bytes(api) == 0
    assert api.post("/v1/batch", content=whole, headers=gz).status_code == 200


class Records(logging.Handler):
    """Every record logged, from any thread; ``wait`` returns once ``n`` have come."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def wait(self, n: int, timeout: float) -> list[logging.LogRecord]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.records) >= n, timeout)
            return list(self.records)


def test_a_client_gone_mid_body_is_one_line_without_a_traceback(api):
    handler = Records()
    # The root sees archer's records; uvicorn's (where a traceback went) do not propagate.
    listened = [logging.getLogger(), logging.getLogger("uvicorn")]
    for lg in listened:
        lg.addHandler(handler)
    archer = logging.getLogger("archer")
    level = archer.level
    archer.setLevel(logging.INFO)
    auth = basic(api.key)["Authorization"]
    head = (
        "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {auth}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    try:
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", api.port)) as s:
                s.sendall(head + b'{"userId": "u1", "event": "Product Vi')
        records = handler.wait(2, timeout=10)
    finally:
        for lg in listened:
            lg.removeHandler(handler)
        archer.setLevel(level)
    assert len(records) == 2, [r.getMessage() for r in records]
    for r in records:
        assert r.exc_info is None and r.name == "archer.web.tracking", r.getMessage()
        assert "disconnected" in r.getMessage() and "\n" not in r.getMessage()
    assert api.get("/health").status_code == 200 and stored_bytes(api) == 0
