"""Coupons and points on the web, on a small built sample shop with a manual clock, through
httpx's ASGI transport: the REST API (define with refusals naming their field, read with
counts, issue, a pool of the shop's own codes, a customer's coupons, points, award, exchange)
and the operator's pages (/offers in Chinese by default, the define form, the customer page's
coupons and points)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from archer.clock import ManualClock
from archer.offers import coupons, points
from archer.store import apikeys, users, utcnow
from archer.web import create_app
from support import sample_shop

pytestmark = pytest.mark.xdist_group("offers_web")  # one worker builds the shop once
PASSWORD = "s3cret-password"
START = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
PROBLEM = "application/problem+json"
HOSTILE = "<img src=x onerror=alert(1)> 新客"  # no '/': names are part of addresses
ESCAPED = "&lt;img src=x onerror=alert(1)&gt; 新客"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    clock = ManualClock(START)
    ws = sample_shop(
        tmp_path_factory.mktemp("offersweb"),
        customers=300,
        seed=9,
        as_of=date(2026, 9, 30),
        clock=clock,
    )
    with ws.session(write=True) as s:
        users.create(s, "olga", PASSWORD, now=utcnow())
        _, key = apikeys.create(s, "tests", created_by="test", now=utcnow())
    app = create_app(ws, sync_every=None, round_every=None)
    return SimpleNamespace(ws=ws, clock=clock, app=app, key=key)


def run(shop, scenario: Callable[[httpx.AsyncClient], Awaitable[Any]], *, key: bool = True):
    """``scenario(client)`` against the app in process; the client carries the API key unless
    ``key`` is False (a browser that signs in)."""

    async def go():
        headers = {"Authorization": f"Bearer {shop.key}"} if key else {}
        transport = httpx.ASGITransport(app=shop.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as c:
            return await scenario(c)

    return asyncio.run(go())


async def sign_in(c: httpx.AsyncClient) -> str:
    """Sign in as the operator; the CSRF token of the session."""
    form = (await c.get("/login")).text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = await c.post("/login", data={"username": "olga", "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text
    page = (await c.get("/offers")).text
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    doc = r.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(doc)
    return doc


def customers_with_orders(shop, n: int) -> list[str]:
    """Customers the build gave points (paid orders), most points first."""
    return [r["customer_id"] for r in points.top_balances(shop.ws, n)]


CASH5 = {"name": "points-cash", "kind": "cash", "amount": 5, "valid_days": 30,
         "per_customer": None}  # fmt: skip


@pytest.fixture(scope="module")
def defined(shop):
    """The exchange template of [points] and a 满减 one, defined through the API."""

    async def scenario(c):
        out = []
        for body in (CASH5, {"name": "满99减10", "kind": "threshold", "threshold": 99,
                             "amount": 10, "valid_days": 14}):  # fmt: skip
            r = await c.post("/api/coupon-templates", json=body)
            assert r.status_code == 201, r.text
            out.append(r)
        return out

    return run(shop, scenario)


# -- the REST API ---------------------------------------------------------------------------------
def test_a_template_defined_through_the_api_reads_back_with_its_counts(shop, defined):
    r = defined[1]
    assert r.headers["location"] == "/api/coupon-templates/%E6%BB%A199%E5%87%8F10"
    assert r.json()["label"] == "满99减10" and r.json()["kind"] == "threshold"

    async def scenario(c):
        one = await c.get(r.headers["location"])
        listed = await c.get("/api/coupon-templates", params={"limit": 1})
        rest = await c.get(listed.json()["next"])
        again = await c.post("/api/coupon-templates", json=CASH5)
        return one, listed, rest, again

    one, listed, rest, again = run(shop, scenario)
    assert one.status_code == 200
    assert one.json() == json.loads(json.dumps(coupons.get(shop.ws, "满99减10")))
    assert {k: one.json()[k] for k in ("issued", "redeemed", "expired", "pool")} == dict.fromkeys(
        ("issued", "redeemed", "expired", "pool"), 0
    )
    names = [d["name"] for d in listed.json()["items"] + rest.json()["items"]]
    assert set(names) >= {"points-cash", "满99减10"}
    assert "exists" in problem(again, 409)["detail"]


BAD = [
    ({"kind": "threshold", "threshold": 100, "amount": 120, "valid_days": 7}, "amount"),
    ({"kind": "threshold", "threshold": 0, "amount": 5, "valid_days": 7}, "threshold"),
    ({"kind": "rate", "rate": 1.5, "max_saving": 10, "valid_days": 7}, "rate"),
    ({"kind": "rate", "rate": -0.1, "max_saving": 10, "valid_days": 7}, "rate"),
    ({"kind": "rate", "rate": 0.9, "valid_days": 7}, "max_saving"),
    ({"kind": "cash", "amount": 10}, "valid_days"),
    ({"kind": "cash", "amount": "12.345", "valid_days": 7}, "amount"),
    ({"kind": "cash", "amount": "ten", "valid_days": 7}, "amount"),
    ({"kind": "cash", "amount": 5, "valid_days": 7, "per_customer": 0}, "per_customer"),
    ({"kind": "cash", "amount": 5, "valid_days": 7, "total_limit": 2**40}, "total_limit"),
    ({"kind": "cash", "amount": 5, "valid_days": 9999}, "valid_days"),
    ({"kind": "gift", "amount": 5, "valid_days": 7}, "kind"),
    ({"kind": "cash", "amount": 5, "valid_days": 7, "codes": "mine"}, "codes"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_a_template_that_cannot_work_is_a_422_naming_its_field(shop, body, field):
    r = run(shop, lambda c: c.post("/api/coupon-templates", json={"name": "bad", **body}))
    doc = problem(r, 422)
    assert doc["field"] == field and doc["detail"].startswith(f"{field}: "), doc
    assert "bad" not in [d["name"] for d in coupons.summary(shop.ws)]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"name": "n", "kind": "cash", "amount": 5, "valid_dayz": 7}', "valid_dayz"),
        ('{"name": "n", "kind": "cash", "amount": NaN, "valid_days": 7}', "amount"),
        ('{"name": "n", "kind": "cash", "amount": 5, "valid_days": 7, "rate": Infinity}', "rate"),
        ('{"kind": "cash", "amount": 5, "valid_days": 7}', "name"),
        ('{"name": "' + "x" * 101 + '", "kind": "cash", "amount": 5, "valid_days": 7}', "name"),
    ],
)
def test_a_body_of_the_wrong_form_is_a_422_naming_its_field(shop, raw, field):
    headers = {"content-type": "application/json"}
    r = run(shop, lambda c: c.post("/api/coupon-templates", content=raw, headers=headers))
    doc = problem(r, 422)
    assert field in [e["field"].split(".")[0] for e in doc["errors"]], doc


def test_issue_to_a_customer_then_their_coupons_list_it_and_the_limit_refuses_more(shop, defined):
    cid = customers_with_orders(shop, 30)[-1]

    async def scenario(c):
        first = await c.post("/api/coupon-templates/满99减10/issue", json={"customer": cid})
        second = await c.post("/api/coupon-templates/满99减10/issue", json={"customer": cid})
        mine = await c.get(f"/api/customers/{cid}/coupons")
        typo = await c.post("/api/coupon-templates/满99减1O/issue", json={"customer": cid})
        empty = await c.post("/api/coupon-templates/满99减10/issue", json={"customer": ""})
        one = await c.get("/api/coupon-templates/满99减10")
        return first, second, mine, typo, empty, one

    first, second, mine, typo, empty, one = run(shop, scenario)
    assert first.status_code == 201, first.text
    code = first.json()["code"]
    assert coupons.valid_code(code) and first.json()["customer_id"] == cid
    assert first.json()["state"] == "issued" and first.json()["template"] == "满99减10"
    assert problem(second, 409)["reason"] == "per_customer_limit"
    items = mine.json()["items"]
    assert [i["code"] for i in items] == [code] and items[0]["label"] == "满99减10"
    assert items[0]["expires_on"] == "2026-10-15"  # 14 days from 09:00 on 1 October, Shanghai
    assert "did you mean '满99减10'" in problem(typo, 404)["detail"]
    assert "customer" in [e["field"] for e in problem(empty, 422)["errors"]]
    assert one.json()["issued"] == one.json()["outstanding"] >= 1


def test_a_pool_takes_the_shops_codes_once_each_and_is_bounded(shop):
    async def scenario(c):
        made = await c.post("/api/coupon-templates", json={
            "name": "platform", "kind": "cash", "amount": 3, "valid_days": 7, "codes": "pool",
            "per_customer": None})  # fmt: skip
        assert made.status_code == 201, made.text
        added = await c.post("/api/coupon-templates/platform/pool",
                             json={"codes": ["TB-1", "TB-2", "TB-2", "TB-3"]})  # fmt: skip
        again = await c.post("/api/coupon-templates/platform/pool", json={"codes": ["TB-3"]})
        got = await c.post("/api/coupon-templates/platform/issue", json={"customer": "C0000002"})
        too_many = await c.post(
            "/api/coupon-templates/platform/pool", json={"codes": [f"X{i}" for i in range(20_001)]}
        )
        too_long = await c.post("/api/coupon-templates/platform/pool", json={"codes": ["X" * 41]})
        control = await c.post("/api/coupon-templates/platform/pool", json={"codes": ["A\x07B"]})
        generated = await c.post("/api/coupon-templates/points-cash/pool", json={"codes": ["Z"]})
        one = await c.get("/api/coupon-templates/platform")
        return added, again, got, too_many, too_long, control, generated, one

    added, again, got, too_many, too_long, control, generated, one = run(shop, scenario)
    assert added.json() == {"codes": 3, "added": 3, "duplicates": 0}
    assert again.json() == {"codes": 1, "added": 0, "duplicates": 1}
    assert got.status_code == 201 and got.json()["code"] == "TB-1"
    assert "codes" in [e["field"] for e in problem(too_many, 422)["errors"]]
    assert problem(too_long, 422)["errors"][0]["field"].startswith("codes")
    assert problem(control, 422)["field"] == "codes"
    assert "generates its codes" in problem(generated, 422)["detail"]
    assert (one.json()["pool"], one.json()["issued"]) == (2, 1)


def test_points_award_once_per_key_and_exchange_moves_points_to_a_coupon(shop, defined):
    cid = customers_with_orders(shop, 40)[-1]
    before = points.balance(shop.ws, cid)["balance"]
    cost = shop.ws.settings.points.exchange_rate

    async def scenario(c):
        got = await c.post(
            f"/api/points/{cid}/award",
            json={"points": cost, "days": 30, "note": "补偿", "key": "t-1"},
        )
        again = await c.post(
            f"/api/points/{cid}/award",
            json={"points": cost, "days": 30, "note": "补偿", "key": "t-1"},
        )
        account = await c.get(f"/api/points/{cid}")
        swap = await c.post(f"/api/points/{cid}/exchange", json={"key": "x-1"})
        replay = await c.post(f"/api/points/{cid}/exchange", json={"key": "x-1"})
        after = await c.get(f"/api/points/{cid}")
        mine = await c.get(f"/api/customers/{cid}/coupons")
        return got, again, account, swap, replay, after, mine

    got, again, account, swap, replay, after, mine = run(shop, scenario)
    assert got.status_code == 201 and got.json()["awarded"] == cost
    assert again.status_code == 200 and again.json()["awarded"] == 0
    assert account.json()["balance"] == before + cost
    assert account.json()["entries"][0]["note"] == "补偿"
    assert swap.status_code == 201, swap.text
    coupon = swap.json()["coupon"]
    assert coupon["value"] == 5.0 and coupon["source"] == "exchange"
    assert swap.json()["balance"] == before == after.json()["balance"]
    assert "made before" in problem(replay, 409)["detail"]
    assert coupon["code"] in [i["code"] for i in mine.json()["items"]]
    kinds = [e["kind"] for e in after.json()["entries"][:2]]
    assert kinds == ["redeem", "adjust"]


def test_an_exchange_without_enough_points_spends_nothing(shop, defined):
    poor = "C-no-points"

    async def scenario(c):
        await c.post(f"/api/points/{poor}/award", json={"points": 10})
        short = await c.post(f"/api/points/{poor}/exchange")
        bad = await c.post(f"/api/points/{poor}/award", json={"points": 0})
        big = await c.post(f"/api/points/{poor}/award", json={"points": 5, "days": 4000})
        nul = await c.get("/api/points/C%00")
        return short, bad, big, nul

    short, bad, big, nul = run(shop, scenario)
    assert "10 points to spend, not 500" in problem(short, 409)["detail"]
    assert points.balance(shop.ws, poor)["balance"] == 10
    assert coupons.of_customer(shop.ws, poor) == []
    assert "points" in [e["field"] for e in problem(bad, 422)["errors"]]
    assert "days" in [e["field"] for e in problem(big, 422)["errors"]]
    assert problem(nul, 400)["type"].endswith("invalid-value")


# -- the pages ------------------------------------------------------------------------------------
def test_the_offers_page_shows_templates_with_counts_and_points_in_chinese(shop, defined):
    async def scenario(c):
        await sign_in(c)
        zh = await c.get("/offers")
        en = await c.get("/offers", params={"lang": "en"})
        back = await c.get("/offers", params={"lang": "zh"})
        return zh, en, back

    zh, en, back = run(shop, scenario, key=False)
    assert zh.status_code == 200, zh.text
    html = zh.text
    labels = ["优惠券与积分", "优惠券模板", "已发放", "已核销", "已过期", "券池待发"]
    labels += ["促销成本", "新建优惠券模板", "积分余额最高", "30天内过期的积分"]
    for label in [*labels, "满减", "折扣", "无门槛"]:
        assert label in html, label
    assert 'href="/offers" aria-current="page"' in html
    for t in coupons.summary(shop.ws):
        row = re.search(rf'<tr data-template="{re.escape(t["name"])}">(.*?)</tr>', html, re.S)
        assert row, t["name"]
        for k in ("issued", "redeemed", "expired", "outstanding", "pool"):
            assert f'data-count="{k}">{t[k]:,}<' in row.group(1), (t["name"], k)
        assert f'data-count="promotion_cost">{t["promotion_cost"]:,.2f}<' in row.group(1)
    top = points.top_balances(shop.ws, 20)
    assert top and all(f'data-balance="{r["customer_id"]}">{r["balance"]:,}<' in html for r in top)
    soon = points.expiring_soon(shop.ws, days=30)
    assert f'id="expiring-points">{soon["points"]:,}<' in html
    assert f'id="expiring-customers">{soon["customers"]:,}<' in html
    assert "Coupon templates" in en.text and "优惠券模板" not in en.text
    assert "优惠券模板" in back.text


def test_the_define_form_keeps_what_was_typed_and_marks_the_refused_field(shop):
    async def scenario(c):
        token = await sign_in(c)
        form = {"name": HOSTILE, "kind": "threshold", "threshold": "100", "amount": "120",
                "valid_days": "7", "per_customer": "1"}  # fmt: skip
        no_token = await c.post("/offers/templates", data=form)
        refused = await c.post("/offers/templates", data={**form, "csrf": token})
        bad_rate = await c.post("/offers/templates", data={
            "csrf": token, "name": "r", "kind": "rate", "rate": "九折", "max_saving": "20",
            "valid_days": "7"})  # fmt: skip
        saved = await c.post("/offers/templates", data={**form, "amount": "20", "csrf": token,
                                                        "valid_until": "2026-12-31"})  # fmt: skip
        shown = await c.get(saved.headers["location"])
        return no_token, refused, bad_rate, saved, shown

    no_token, refused, bad_rate, saved, shown = run(shop, scenario, key=False)
    assert no_token.status_code == 403
    assert refused.status_code == 422
    html = refused.text
    assert (
        "优惠券模板未保存" in html
        and "<strong>减（优惠金额）</strong> (<code>amount</code>)" in html
    )
    assert re.search(r'<input id="f-amount"[^>]*value="120"[^>]*aria-invalid="true"', html)
    assert 'id="f-threshold" name="threshold" type="text" value="100"' in html
    assert HOSTILE not in html and ESCAPED in html
    assert bad_rate.status_code == 422
    assert re.search(r'<input id="f-rate"[^>]*aria-invalid="true"', bad_rate.text)
    assert saved.status_code == 303 and saved.headers["location"].startswith("/offers?defined=")
    assert "已保存优惠券模板" in shown.text and ESCAPED in shown.text
    t = coupons.get(shop.ws, HOSTILE)
    assert t["label"] == "满100减20" and t["valid_days"] == 7
    assert t["valid_until"] == "2026-12-31T16:00:00+00:00"  # the end of that day in Shanghai


def test_the_customer_page_shows_their_coupons_and_points(shop, defined):
    cid = customers_with_orders(shop, 50)[-1]
    got = coupons.issue_to(shop.ws, "满99减10", cid)

    async def scenario(c):
        await sign_in(c)
        return await c.get(f"/customers/{cid}")

    r = run(shop, scenario, key=False)
    assert r.status_code == 200, r.text
    bal = points.balance(shop.ws, cid)
    assert "优惠券与积分" in r.text and "积分余额" in r.text
    assert f'id="points-balance">{bal["balance"]:,}<' in r.text
    assert f"<code>{got['code']}</code>" in r.text and "满99减10" in r.text and "未使用" in r.text


def test_coupons_past_their_end_count_as_expired(shop, defined):
    """Last: it moves the shared clock."""
    cid = customers_with_orders(shop, 60)[-1]
    coupons.issue_to(shop.ws, "满99减10", cid)
    before = coupons.get(shop.ws, "满99减10")
    shop.clock.advance(timedelta(days=15))
    assert coupons.expire(shop.ws) >= 1  # as every campaign round does

    async def scenario(c):
        return (await c.get("/api/coupon-templates/满99减10")).json()

    after = run(shop, scenario)
    assert after["expired"] == before["outstanding"] and after["outstanding"] == 0
    assert after["issued"] == before["issued"]
    assert [c["state"] for c in coupons.of_customer(shop.ws, cid)] == ["expired"]
