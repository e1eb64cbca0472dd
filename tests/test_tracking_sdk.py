"""The official Segment and RudderStack Python SDKs against a real server on loopback: thousands
of events of every kind arrive exactly once — also when the server is killed mid-stream and
restarted while the clients retry."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from archer.store import inbox
from archer.tracking.loader import sync
from conftest import rows
from test_tracking_server import ProcessServer, ThreadServer, free_port, new_source

PER_CLIENT = 1_500
KINDS = 10  # the cycle below


def send_all(client, prefix: str, n: int, pause_every: int = 0) -> dict[str, str]:
    """``n`` calls cycling through every kind; returns messageId → expected event type."""
    want: dict[str, str] = {}
    for i in range(n):
        mid, uid, anon = f"{prefix}-{i}", f"{prefix}-u{i % 97}", f"{prefix}-a{i % 89}"
        k = i % KINDS
        ctx = {"campaign": {"source": "wechat", "medium": "social", "name": "1111"}}
        if k == 0:
            client.page(anonymous_id=anon, name="Home", context=ctx, message_id=mid)
            want[mid] = "visit"
        elif k == 1:
            client.track(uid, "Products Searched", {"query": "跑鞋"}, message_id=mid)
            want[mid] = "search"
        elif k == 2:
            props = {"product_id": f"p{i % 50}", "category": "shoes", "price": 99.5}
            client.track(uid, "Product Viewed", props, message_id=mid)
            want[mid] = "view"
        elif k == 3:
            client.track(None, "Product Added", {"product_id": "p1"}, anonymous_id=anon,
                         message_id=mid)  # fmt: skip
            want[mid] = "cart_add"
        elif k == 4:
            client.track(uid, "Product Added to Wishlist", {"product_id": "p2"}, message_id=mid)
            want[mid] = "favorite"
        elif k == 5:
            props = {
                "order_id": f"{prefix}-o{i}",
                "total": 120.5,
                "products": [{"product_id": "p1", "price": 60.25, "quantity": 2}],
            }
            client.track(uid, "Order Completed", props, message_id=mid)
            want[mid] = "order_completed"
        elif k == 6:
            props = {"order_id": f"{prefix}-o{i - 1}", "total": 20}
            client.track(uid, "Order Refunded", props, message_id=mid)
            want[mid] = "order_refunded"
        elif k == 7:
            traits = {"email": f"{uid}@example.com", "gender": "female", "city": "杭州"}
            client.identify(uid, traits, anonymous_id=anon, message_id=mid)
            want[mid] = "identify"
        elif k == 8:
            client.screen(uid, name="Cart", message_id=mid)
            want[mid] = "visit"
        else:
            if i % 20 == 9:
                client.alias(anon, uid, message_id=mid)
                want[mid] = "alias"
            else:
                client.group(uid, "g1", {"name": "Acme"}, message_id=mid)
                want[mid] = "group"
        if pause_every and i % pause_every == 0:
            time.sleep(0.02)  # spread the stream so a restart lands in its middle
    return want


def clients(url: str, seg_key: str, rud_key: str, errors: list):
    def on_error(e, batch):
        errors.append((repr(e), len(batch)))

    seg = SegmentClient(seg_key, host=url, on_error=on_error, max_queue_size=100_000)
    rud = RudderClient(rud_key, host=url, on_error=on_error, max_queue_size=100_000)
    return seg, rud


def pending(ws) -> int:
    with ws.session() as s:
        return inbox.pending(s.connection())


def check_exactly_once(ws, want: dict[str, dict[str, str]]) -> None:
    ev = rows(ws, "events")
    ids = Counter(e["event_id"] for e in ev)
    expected = {f"{src}:{mid}": t for src, w in want.items() for mid, t in w.items()}
    assert len(ev) == len(expected) and set(ids) == set(expected)
    assert max(ids.values()) == 1
    got = {e["event_id"]: e["type"] for e in ev}
    assert got == expected
    n_orders = sum(t == "order_completed" for t in expected.values())
    n_refunds = sum(t == "order_refunded" for t in expected.values())
    assert len(rows(ws, "orders")) == n_orders
    assert len(rows(ws, "order_items")) == n_orders
    assert len(rows(ws, "refunds")) == n_refunds
    visits = [e for e in ev if e["type"] == "visit" and e["anonymous_id"]]
    assert visits and all(e["source"] == "wechat" for e in visits)
    cust = rows(ws, "customers")
    assert {c["city"] for c in cust if c["email"]} == {"Hangzhou"}


def test_segment_and_rudderstack_sdks_deliver_every_event_once(ws):
    seg_key, rud_key = new_source(ws, "segment"), new_source(ws, "rudder")
    errors: list = []
    with ThreadServer(ws) as srv:
        seg, rud = clients(srv.url, seg_key, rud_key, errors)
        want = {}
        threads = [
            threading.Thread(target=lambda: want.update(segment=send_all(seg, "s", PER_CLIENT))),
            threading.Thread(target=lambda: want.update(rudder=send_all(rud, "r", PER_CLIENT))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seg.flush()
        rud.flush()
        # The SDKs send every message again, e.g. after a lost answer: nothing is doubled.
        again = send_all(seg, "s", 200)
        seg.flush()
        seg.shutdown()
        rud.shutdown()
    assert errors == []
    assert set(again) <= set(want["segment"])
    r = sync(ws)
    assert r.read == 2 * PER_CLIENT and r.pending == 0
    check_exactly_once(ws, want)


@pytest.mark.slow
def test_killed_and_restarted_server_while_the_sdks_retry(ws, caplog):
    caplog.set_level(logging.CRITICAL, logger="segment")
    caplog.set_level(logging.CRITICAL, logger="rudderstack")
    seg_key, rud_key = new_source(ws, "segment"), new_source(ws, "rudder")
    srv = ProcessServer(ws, free_port(), cli=False)
    srv.start()
    errors: list = []
    try:
        seg, rud = clients(srv.url, seg_key, rud_key, errors)
        want = {}
        threads = [
            threading.Thread(target=lambda: want.update(segment=send_all(seg, "s", 1000, 10))),
            threading.Thread(target=lambda: want.update(rudder=send_all(rud, "r", 1000, 10))),
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while pending(ws) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.kill()  # mid-stream, without warning
        acked_before = pending(ws)
        time.sleep(0.5)  # the clients' requests fail and are retried
        srv.start()
        for t in threads:
            t.join()
        seg.flush()
        rud.flush()
        seg.shutdown()
        rud.shutdown()
    finally:
        srv.stop()
    assert errors == []
    assert 0 < acked_before < 2000, acked_before  # the kill landed mid-stream
    sync(ws)
    check_exactly_once(ws, want)
