"""The loader: each Segment e-commerce event lands in its canonical table, row by row; loading is
idempotent, and a crash between the warehouse and the inbox neither loses nor doubles."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from archer.cli import app as cli_app
from archer.store import inbox
from archer.tracking import loader as tracking
from archer.tracking.loader import event_type, sync
from conftest import rows
from test_tracking_server import ThreadServer, basic, new_source

T = "2026-11-11T02:00:00.000Z"
AT = datetime(2026, 11, 11, 2, 0)


@pytest.fixture
def send(ws):
    key = new_source(ws, "web")
    with ThreadServer(ws) as srv, httpx.Client(base_url=srv.url, headers=basic(key)) as c:

        def post(*events: dict, context: dict | None = None) -> None:
            batch = [{"timestamp": T, **e} for e in events]
            doc = {"batch": batch, **({"context": context} if context else {})}
            r = c.post("/v1/batch", content=orjson.dumps(doc))
            assert r.status_code == 200, r.text

        yield post


def by(table: list[dict], key: str) -> dict:
    return {r[key]: r for r in table}


def test_behaviour_events_map_to_canonical_types(ws, send):
    p = {"product_id": "p1", "category": "shoes", "price": 99}
    send(
        {"type": "track", "messageId": "1", "userId": "u1", "event": "Products Searched",
         "properties": {"query": "双十一 跑鞋"}},
        {"type": "track", "messageId": "2", "userId": "u1", "event": "Product Viewed",
         "properties": p},
        {"type": "track", "messageId": "3", "anonymousId": "a1", "event": "Product Added",
         "properties": p},
        {"type": "track", "messageId": "4", "userId": "u1", "event": "Product Removed",
         "properties": p},
        {"type": "track", "messageId": "5", "userId": "u1", "event": "Product Added to Wishlist",
         "properties": {"sku": "p2"}},
        {"type": "track", "messageId": "6", "userId": "u1", "event": "Checkout Started",
         "properties": {"order_id": "o9"}},
        {"type": "track", "messageId": "7", "userId": "u2", "anonymousId": "a2",
         "event": "Signed Up"},
        {"type": "track", "messageId": "8", "userId": "u1", "event": "Coupon Code Shared",
         "properties": {"code": "X"}},
        {"type": "page", "messageId": "9", "anonymousId": "a1", "name": "Home",
         "properties": {"url": "https://shop.example/?utm_source=wx"},
         "context": {"campaign": {"source": "wechat", "medium": "social", "name": "1111"}}},
        {"type": "screen", "messageId": "10", "userId": "u1", "name": "Cart"},
        {"type": "alias", "messageId": "11", "userId": "u3", "previousId": "a3"},
        {"type": "group", "messageId": "12", "userId": "u1", "groupId": "g1", "traits": {"n": 1}},
    )  # fmt: skip
    r = sync(ws)
    assert r.read == 12 and r.pending == 0
    ev = by(rows(ws, "events"), "event_id")
    assert {k: v["type"] for k, v in ev.items()} == {
        "web:1": "search", "web:2": "view", "web:3": "cart_add", "web:4": "cart_remove",
        "web:5": "favorite", "web:6": "checkout", "web:7": "register",
        "web:8": "coupon_code_shared",
        "web:9": "visit", "web:10": "visit", "web:11": "alias", "web:12": "group",
    }  # fmt: skip
    assert ev["web:1"]["query"] == "双十一 跑鞋"
    assert (ev["web:2"]["product_id"], ev["web:2"]["category"]) == ("p1", "shoes")
    assert (ev["web:3"]["customer_id"], ev["web:3"]["anonymous_id"]) == (None, "a1")
    assert ev["web:5"]["product_id"] == "p2"
    assert json.loads(ev["web:8"]["properties"]) == {"code": "X", "event": "Coupon Code Shared"}
    v = ev["web:9"]
    assert (v["source"], v["medium"], v["campaign"]) == ("wechat", "social", "1111")
    assert json.loads(v["properties"])["name"] == "Home"
    assert (ev["web:11"]["customer_id"], ev["web:11"]["anonymous_id"]) == ("u3", "a3")
    assert all(e["occurred_at"] == AT for e in ev.values())
    cust = by(rows(ws, "customers"), "customer_id")
    assert cust == {"u2": {**cust["u2"], "registered_at": AT}}  # Signed Up makes the member


def test_order_completed_fills_orders_items_and_the_customer(ws, send):
    send(
        {
            "type": "track", "messageId": "o", "userId": "u9", "event": "Order Completed",
            "properties": {
                "order_id": "50314b8e", "affiliation": "tmall", "subtotal": 100.0, "total": 92.5,
                "shipping": 5, "tax": 0, "discount": 12.5, "coupon": "hasbros",
                "products": [
                    {"product_id": "507f1f77", "sku": "45790-32", "price": 19.99, "quantity": 2},
                    {"sku": "46493-32", "price": "60.02"},
                    {"name": "no id"},
                ],
            },
        },
        {"type": "track", "messageId": "g", "anonymousId": "a9", "event": "Order Completed",
         "properties": {"order_id": "guest-1", "products": [{"product_id": "p", "price": 5}]}},
        {"type": "track", "messageId": "x", "userId": "u9", "event": "Order Completed"},
    )  # fmt: skip
    r = sync(ws)
    assert r.notes == {
        "order product without product_id or sku: line left out": 1,
        "Order Completed without order_id: kept as an event only": 1,
    }
    o = by(rows(ws, "orders"), "order_id")
    assert o["50314b8e"] == {
        "order_id": "50314b8e", "customer_id": "u9", "created_at": AT, "paid_at": AT,
        "cancelled_at": None, "status": "paid", "goods_amount": Decimal("100.00"),
        "discount_amount": Decimal("12.50"), "shipping_fee": Decimal("5.00"),
        "paid_amount": Decimal("92.50"), "coupon_code": "hasbros", "channel": "tmall",
        "province": None, "city": None,
    }  # fmt: skip
    g = o["guest-1"]
    assert (g["customer_id"], g["goods_amount"], g["paid_amount"], g["channel"]) == (
        None, Decimal("5.00"), Decimal("5.00"), "web",
    )  # fmt: skip
    items = rows(ws, "order_items", order_by="line_no")
    assert [(i["order_id"], i["line_no"], i["product_id"], i["quantity"], i["unit_price"])
            for i in items if i["order_id"] == "50314b8e"] == [
        ("50314b8e", 1, "507f1f77", 2, Decimal("19.99")),
        ("50314b8e", 2, "46493-32", 1, Decimal("60.02")),
    ]  # fmt: skip
    assert [c["customer_id"] for c in rows(ws, "customers")] == ["u9"]
    assert {e["type"] for e in rows(ws, "events")} == {"order_completed"}
    assert len(rows(ws, "events")) == 3  # the order without an id is still kept as an event


def test_order_refunded_fills_refunds(ws, send):
    send(
        {"type": "track", "messageId": "r1", "userId": "u1", "event": "Order Refunded",
         "properties": {"order_id": "o1", "total": 30, "reason": "size"}},
        {"type": "track", "messageId": "r2", "userId": "u1", "event": "Order Refunded",
         "properties": {"order_id": "o2", "refund_id": "R-2",
                        "products": [{"product_id": "p", "price": 10, "quantity": 2}]}},
        {"type": "track", "messageId": "r3", "userId": "u1", "event": "Order Refunded",
         "properties": {"order_id": "o3"}},
    )  # fmt: skip
    r = sync(ws)
    assert r.notes == {"Order Refunded without order_id or amount: kept as an event only": 1}
    assert rows(ws, "refunds", order_by="order_id") == [
        {"refund_id": "web:r1", "order_id": "o1", "refunded_at": AT, "amount": Decimal("30.00"),
         "reason": "size"},
        {"refund_id": "R-2", "order_id": "o2", "refunded_at": AT, "amount": Decimal("20.00"),
         "reason": None},
    ]  # fmt: skip


def test_identify_traits_become_customer_fields(ws, send):
    send(
        {"type": "identify", "messageId": "i1", "userId": "c1", "anonymousId": "a1", "traits": {
            "email": "li@example.com", "phone": "13800000000", "firstName": "磊", "lastName": "李",
            "gender": "男", "birthday": "1990-05-04", "createdAt": "2026-01-02T03:04:05Z",
            "address": {"state": "江苏省", "city": "苏州"}, "email_opt_in": True,
            "smsOptIn": "否", "vip_level": 3, "title": "engineer"}},
        {"type": "identify", "messageId": "i2", "userId": "c2", "traits": {
            "name": "Ann Lee", "gender": "female", "province": "上海", "birthday": "05/04"}},
    )  # fmt: skip
    r = sync(ws)
    assert r.notes == {"birthday '05/04' is not a date: left empty": 1}
    c = by(rows(ws, "customers"), "customer_id")
    assert c["c1"] == {
        "customer_id": "c1", "registered_at": datetime(2026, 1, 2, 3, 4, 5), "name": "李磊",
        "email": "li@example.com", "phone": "13800000000", "gender": "m",
        "birthday": date(1990, 5, 4), "province": "Jiangsu", "city": "Suzhou",
        "occupation": "engineer", "acquisition_channel": None, "email_opt_in": True,
        "sms_opt_in": False, "attributes": '{"vip_level":3}',
    }  # fmt: skip
    assert (c["c2"]["name"], c["c2"]["gender"], c["c2"]["province"], c["c2"]["city"]) == (
        "Ann Lee", "f", "Shanghai", "Shanghai",
    )  # fmt: skip
    # A later identify changes only what it says, and adds to the attributes.
    send(
        {
            "type": "identify",
            "messageId": "i3",
            "userId": "c1",
            "traits": {"phone": "1", "tier": "b"},
        }
    )
    sync(ws)
    c1 = by(rows(ws, "customers"), "customer_id")["c1"]
    assert (c1["phone"], c1["email"], c1["city"]) == ("1", "li@example.com", "Suzhou")
    assert json.loads(c1["attributes"]) == {"vip_level": 3, "tier": "b"}
    ev = by(rows(ws, "events"), "event_id")["web:i1"]
    assert (ev["type"], ev["customer_id"], ev["anonymous_id"]) == ("identify", "c1", "a1")


def test_loading_twice_or_after_a_crash_changes_nothing(ws, send, monkeypatch):
    send(*[{"type": "track", "messageId": f"m{i}", "userId": f"u{i % 7}", "event": "Product Viewed",
            "properties": {"product_id": f"p{i}"}} for i in range(50)],
         {"type": "track", "messageId": "oc", "userId": "u1", "event": "Order Completed",
          "properties": {"order_id": "o1", "total": 10}})  # fmt: skip

    def crash(*a, **k):
        raise RuntimeError("killed between the warehouse commit and the inbox delete")

    monkeypatch.setattr(inbox, "remove_through", crash)
    with pytest.raises(RuntimeError, match="killed"):
        sync(ws)
    assert len(rows(ws, "events")) == 51  # written, but still in the inbox
    monkeypatch.undo()
    r = sync(ws)
    assert r.read == 51 and r.tables["events"].unchanged == 51 and r.tables["events"].inserted == 0
    assert r.tables["orders"].unchanged == 1
    assert len(rows(ws, "events")) == 51 and len(rows(ws, "orders")) == 1
    assert sync(ws).read == 0  # nothing left


def test_a_crash_inside_the_warehouse_write_keeps_the_events_in_the_inbox(ws, send, monkeypatch):
    send({"type": "page", "messageId": "p1", "anonymousId": "a"})
    real = tracking.write

    def half(wh, r):
        real(wh, r)
        raise RuntimeError("disk full")

    monkeypatch.setattr(tracking, "write", half)
    with pytest.raises(RuntimeError):
        sync(ws)
    assert rows(ws, "events") == []  # rolled back
    monkeypatch.undo()
    assert sync(ws).read == 1 and len(rows(ws, "events")) == 1


def test_archer_sync_reports_what_it_loaded(ws, send):
    send({"type": "page", "messageId": "p1", "anonymousId": "a"})
    r = CliRunner().invoke(cli_app, ["sync", "--home", str(ws.home), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["read"] == 1 and doc["tables"]["events"]["inserted"] == 1 and doc["pending"] == 0
    r = CliRunner().invoke(cli_app, ["sync", "--home", str(ws.home)])
    assert "0 tracked events loaded" in r.stdout


def test_the_server_loads_the_inbox_on_its_own(ws):
    key = new_source(ws, "web")
    with ThreadServer(ws, sync_every=0.2) as srv:
        doc = {"userId": "u", "event": "Product Viewed", "messageId": "auto"}
        httpx.post(srv.url + "/v1/track", json=doc, headers=basic(key))
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with ws.session() as s:
                if inbox.pending(s.connection()) == 0:
                    break
            time.sleep(0.1)
    assert [e["event_id"] for e in rows(ws, "events")] == ["web:auto"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Products Searched", "search"),
        ("product  added to WISHLIST", "favorite"),
        ("Coupon Applied", "coupon_claim"),
        ("Login", "login"),
        ("videoPlaybackStarted", "video_playback_started"),
        ("分享 商品", "分享_商品"),
        ("!!!", "track"),
    ],
)
def test_event_names_and_their_types(name, kind):
    assert event_type(name) == kind


def test_docs_tracking_md_lists_every_mapping():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "tracking.md").read_text()
    table = doc.lower()
    for name, kind in tracking.SPEC_TYPES.items():
        assert name in table, name
        assert f"`{kind}`" in doc, kind
    for kind in set(tracking.CALL_TYPES.values()):
        assert f"`{kind}`" in doc, kind
