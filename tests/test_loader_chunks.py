"""The loader's chunks: new keys are appended and known ones upserted, in the same chunk; a chunk
partly loaded before is completed without doubles; a message sent again after the dedup window
replaces its event. The inbox is filled as the API fills it, without HTTP."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from archer.store import inbox, sources
from archer.tracking.loader import sync
from archer.tracking.spec import normalise
from archer.warehouse import UpsertResult
from conftest import rows


@pytest.fixture
def put(ws):
    with ws.session(write=True) as s:
        source_id = sources.create(s, "web", now=ws.now())[0].id

    def append(*events: dict) -> int:
        received = ws.now()
        stored = normalise("batch", {"batch": list(events)}, received)
        batch = inbox.Batch(source_id, received, [(e.message_id, e.body) for e in stored])
        with ws.session(write=True) as s:
            (answer,) = inbox.append(s.connection(), [batch])
        return answer.stored

    return append


def view(mid: str, product: str = "p1", user: str = "u1") -> dict:
    return {"type": "track", "messageId": mid, "userId": user, "event": "Product Viewed",
            "properties": {"product_id": product}}  # fmt: skip


def test_a_chunk_partly_loaded_before_is_completed_without_doubles(ws, put, monkeypatch):
    assert put(*[view(f"m{i}") for i in range(30)]) == 30
    loaded = []

    def crash(conn, last_seq):
        loaded.append(last_seq)
        raise RuntimeError("killed between the warehouse commit and the inbox delete")

    monkeypatch.setattr(inbox, "remove_through", crash)
    with pytest.raises(RuntimeError, match="killed"):
        sync(ws, chunk=10)  # the first ten are in the warehouse, and still in the inbox
    monkeypatch.undo()
    assert len(rows(ws, "events")) == 10
    r = sync(ws, chunk=25)  # a chunk of ten known events and fifteen new, then five new
    assert r.read == 30 and r.pending == 0
    assert r.tables["events"] == UpsertResult(20, 0, 10)
    ids = sorted(e["event_id"] for e in rows(ws, "events"))
    assert ids == sorted(f"web:m{i}" for i in range(30))


def test_a_message_sent_again_after_the_window_replaces_its_event(ws, put):
    put(view("m1", "p1"))
    sync(ws)
    with ws.session(write=True) as s:  # eight days on: the message id is forgotten
        inbox.prune_ids(s.connection(), ws.now() + timedelta(days=inbox.DEDUP_DAYS + 1))
    assert put(view("m1", "p2"), view("m2", "p3")) == 2
    r = sync(ws)
    assert r.tables["events"] == UpsertResult(1, 1, 0)
    got = {e["event_id"]: e["product_id"] for e in rows(ws, "events")}
    assert got == {"web:m1": "p2", "web:m2": "p3"}


def test_known_and_new_customers_in_one_chunk(ws, put):
    put({"type": "identify", "messageId": "i1", "userId": "c1",
         "traits": {"email": "a@x.cn", "vip": 1}})  # fmt: skip
    sync(ws)
    put(
        {"type": "identify", "messageId": "i2", "userId": "c1", "traits": {"phone": "1"}},
        {"type": "identify", "messageId": "i3", "userId": "c2", "traits": {"name": "Ann"}},
        {"type": "identify", "messageId": "i4", "userId": "c1", "traits": {"email": "a@x.cn"}},
    )  # fmt: skip
    r = sync(ws)
    assert r.tables["customers"] == UpsertResult(1, 1, 0)
    c = {x["customer_id"]: x for x in rows(ws, "customers")}
    assert (c["c1"]["email"], c["c1"]["phone"]) == ("a@x.cn", "1")
    assert orjson.loads(c["c1"]["attributes"]) == {"vip": 1}
    assert (c["c2"]["name"], c["c2"]["email"]) == ("Ann", None)
    assert r.tables["events"] == UpsertResult(3, 0, 0)
