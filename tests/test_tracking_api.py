"""The tracking API over real HTTP: the spec's calls, write keys, limits, errors, de-duplication,
clock-skew correction and the batch's shared context."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from archer.store import inbox, sources, utcnow
from test_tracking_server import ThreadServer, basic, inbox_bodies, new_source


@pytest.fixture
def api(ws):
    key = new_source(ws, "web")
    with ThreadServer(ws) as srv, httpx.Client(base_url=srv.url, headers=basic(key)) as c:
        c.key = key
        c.ws = ws
        yield c


def post(c: httpx.Client, path: str, doc, **kw) -> httpx.Response:
    return c.post(path, content=orjson.dumps(doc), **kw)


CALLS = {
    "track": {"userId": "u1", "event": "Product Viewed", "properties": {"product_id": "p1"}},
    "identify": {"userId": "u1", "traits": {"email": "a@example.com"}},
    "page": {"anonymousId": "a1", "name": "Home"},
    "screen": {"userId": "u1", "name": "Cart"},
    "alias": {"userId": "u1", "previousId": "a1"},
    "group": {"userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
}


def test_every_call_is_acknowledged_like_segment_and_stored(api):
    for kind, doc in CALLS.items():
        r = post(api, f"/v1/{kind}", {**doc, "messageId": f"m-{kind}"})
        assert r.status_code == 200, r.text
        assert r.json() == {"success": True}
    r = post(api, "/v1/batch", {"batch": [{**d, "type": k} for k, d in CALLS.items()]})
    assert r.json() == {"success": True}
    stored = inbox_bodies(api.ws)
    assert [b["type"] for b in stored] == list(CALLS) * 2
    assert stored[0]["event"] == "Product Viewed" and stored[0]["properties"] == {
        "product_id": "p1"
    }
    assert all(b["messageId"] for b in stored)  # made by the server when the client sent none


def test_write_key_in_the_body_and_gzip(api):
    body = gzip.compress(
        orjson.dumps({"writeKey": api.key, "batch": [{**CALLS["page"], "type": "page"}]})
    )
    r = httpx.post(
        str(api.base_url) + "/v1/batch",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json() == {"success": True}
    assert len(inbox_bodies(api.ws)) == 1


def test_without_a_valid_key_nothing_is_taken(api):
    url = str(api.base_url)
    r = httpx.post(url + "/v1/track", json=CALLS["track"])
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Basic")
    assert "no write key" in r.json()["detail"]
    r = httpx.post(url + "/v1/track", json=CALLS["track"], headers=basic("wk_guessed"))
    assert r.status_code == 401 and "unknown or revoked" in r.json()["detail"]
    r = httpx.post(url + "/v1/track", json={**CALLS["track"], "writeKey": "wk_guessed"})
    assert r.status_code == 401
    r = httpx.post(url + "/v1/track", json=CALLS["track"], headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    other = new_source(api.ws, "app")
    assert (
        httpx.post(url + "/v1/track", json=CALLS["track"], headers=basic(other)).status_code == 200
    )
    with api.ws.session(write=True) as s:
        sources.revoke(s, "app", now=utcnow())
    r = httpx.post(url + "/v1/track", json=CALLS["track"], headers=basic(other))
    assert r.status_code == 401
    assert len(inbox_bodies(api.ws)) == 1


def test_32_kb_per_event_and_500_kb_per_batch(api):
    big = {**CALLS["track"], "properties": {"blob": "x" * 33_000}}
    r = post(api, "/v1/track", big)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert "32 KB" in r.json()["detail"] and "per event" in r.json()["detail"]
    ok = {**CALLS["track"], "properties": {"blob": "x" * 30_000}}
    assert post(api, "/v1/track", ok).status_code == 200
    r = post(api, "/v1/batch", {"batch": [{**ok, "type": "track"}, {**big, "type": "track"}]})
    assert r.status_code == 400 and r.json()["field"] == "batch[1]"
    assert "32 KB" in r.json()["detail"]
    many = {"batch": [{**ok, "type": "track"}] * 18}  # each event fits, the batch does not
    r = post(api, "/v1/batch", many)
    assert r.status_code == 400 and "500 KB" in r.json()["detail"]
    bomb = gzip.compress(
        orjson.dumps({"batch": [{**CALLS["page"], "type": "page", "p": "y" * 600_000}]})
    )
    r = api.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "unzipped" in r.json()["detail"]
    assert len(inbox_bodies(api.ws)) == 1  # only the event that fitted


@pytest.mark.parametrize(
    ("path", "doc", "field", "words"),
    [
        ("/v1/track", {"userId": {"id": 1}, "event": "x"}, "userId", "expected a string"),
        ("/v1/track", {"userId": "u1"}, "event", "needs the event's name"),
        ("/v1/track", {"event": "x"}, "userId", "userId or anonymousId"),
        ("/v1/track", {"userId": "u", "event": "x", "properties": "a"}, "properties", "object"),
        ("/v1/track", {"userId": "u", "event": "x", "timestamp": "yesterday"}, "timestamp", "ISO"),
        ("/v1/track", {"userId": "u", "event": "x", "messageId": [1]}, "messageId", "string"),
        ("/v1/alias", {"userId": "u1"}, "previousId", "previousId"),
        ("/v1/group", {"userId": "u1"}, "groupId", "groupId"),
        ("/v1/batch", {"batch": {"type": "track"}}, "batch", "array"),
        ("/v1/batch", {"batch": [{"type": "buy", "userId": "u"}]}, "batch[0].type", "one of"),
        (
            "/v1/batch",
            {
                "batch": [
                    {"type": "page", "userId": "u"},
                    {"type": "track", "userId": 3, "event": 5},
                ]
            },
            "batch[1].event",
            "expected a string",
        ),
        ("/v1/batch", {"batch": [], "sentAt": 12}, "sentAt", "ISO 8601"),
    ],
)
def test_wrong_types_are_refused_naming_the_field(api, path, doc, field, words):
    r = post(api, path, doc)
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["field"] == field and words in problem["detail"]
    assert problem["detail"].startswith(field)
    assert problem["status"] == 400 and problem["title"] == "Bad Request"
    assert inbox_bodies(api.ws) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", "\u00e9".encode("latin-1")])
def test_bodies_that_are_not_a_json_object(api, body):
    r = api.post("/v1/track", content=body)
    assert r.status_code == 400 and "JSON" in r.json()["detail"]


def test_a_message_id_is_taken_once_per_source(api):
    doc = {**CALLS["track"], "messageId": "dup-1"}
    for _ in range(3):
        assert post(api, "/v1/track", doc).json() == {"success": True}
    r = post(api, "/v1/batch", {"batch": [{**doc, "type": "track"}, {**doc, "type": "track"}]})
    assert r.status_code == 200
    other = new_source(api.ws, "app")  # the same id from another source is another message
    post(api, "/v1/track", doc, headers=basic(other))
    assert len(inbox_bodies(api.ws)) == 2
    with api.ws.session() as s:
        seen = {(r.source_id, r.message_id) for r in s.query(inbox.SeenMessage)}
    assert len(seen) == 2


def test_message_ids_are_remembered_for_seven_days_then_pruned(api):
    post(api, "/v1/track", {**CALLS["track"], "messageId": "old"})
    with api.ws.session(write=True) as s:
        c = s.connection()
        assert inbox.prune_ids(c, utcnow() + timedelta(days=6, hours=23)) == 0
        assert inbox.prune_ids(c, utcnow() + timedelta(days=7, minutes=1)) == 1
        inbox.remove_through(c, 10**9)
    post(api, "/v1/track", {**CALLS["track"], "messageId": "old"})
    assert len(inbox_bodies(api.ws)) == 1  # after the window a copy is new again


def test_timestamps_are_corrected_for_the_clients_clock(api):
    skew = timedelta(hours=3, minutes=7)  # the device's clock runs ahead
    client_now = datetime.now(UTC) + skew
    happened = client_now - timedelta(seconds=42)
    before = datetime.now(UTC)
    post(
        api,
        "/v1/batch",
        {
            "sentAt": client_now.isoformat(),
            "batch": [{**CALLS["track"], "type": "track", "timestamp": happened.isoformat()}],
        },
    )
    after = datetime.now(UTC)
    (b,) = inbox_bodies(api.ws)
    ts, received = datetime.fromisoformat(b["timestamp"]), datetime.fromisoformat(b["receivedAt"])
    assert before - timedelta(milliseconds=1) <= received <= after
    assert abs((received - ts) - timedelta(seconds=42)) < timedelta(milliseconds=2)
    assert datetime.fromisoformat(b["originalTimestamp"]) - happened < timedelta(milliseconds=1)
    # Without sentAt the client's timestamp is taken as it is (a historical import).
    post(api, "/v1/track", {**CALLS["track"], "timestamp": "2025-01-02T03:04:05+08:00"})
    assert inbox_bodies(api.ws)[1]["timestamp"] == "2025-01-01T19:04:05.000Z"


def test_the_batch_context_and_integrations_reach_every_event(api):
    post(
        api,
        "/v1/batch",
        {
            "context": {"ip": "10.0.0.1", "library": {"name": "lib", "version": "1"}},
            "integrations": {"All": True},
            "batch": [
                {**CALLS["page"], "type": "page"},
                {
                    **CALLS["track"],
                    "type": "track",
                    "context": {"library": {"version": "2"}, "locale": "zh-CN"},
                    "integrations": {"Mixpanel": False},
                },
            ],
        },
    )
    a, b = inbox_bodies(api.ws)
    assert a["context"] == {"ip": "10.0.0.1", "library": {"name": "lib", "version": "1"}}
    assert b["context"] == {
        "ip": "10.0.0.1",
        "library": {"name": "lib", "version": "2"},
        "locale": "zh-CN",
    }
    assert a["integrations"] == {"All": True}
    assert b["integrations"] == {"All": True, "Mixpanel": False}
