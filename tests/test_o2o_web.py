"""The O2O funnel on the web, through httpx's ASGI transport: the REST API (an event, sign-ups
and payments as rows, the check-in desk's scans with an API key — a double scan answered 200,
a reused scan id 409, two identical scans at once stored once — and the report, which must give
the hand-counted figures of test_o2o) and the /o2o page in Chinese and English."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from archer.measurement import o2o
from archer.store import apikeys, users, utcnow
from archer.store.o2o import O2OCheckin, O2OSignup
from archer.web import create_app
from test_o2o import EVENT, EXPECTED, PAYMENTS, SCANS, SIGNUPS, count, make_shop, table

PASSWORD = "s3cret-password"
PROBLEM = "application/problem+json"
AT = "2026-05-01T10:00:00+08:00"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws, clock = make_shop(tmp_path_factory.mktemp("o2oweb"))
    with ws.session(write=True) as s:
        users.create(s, "olga", PASSWORD, now=utcnow())
        _, key = apikeys.create(s, "desk", created_by="test", now=utcnow())
    app = create_app(ws, sync_every=None, round_every=None)
    return SimpleNamespace(ws=ws, clock=clock, app=app, key=key)


def run(shop, scenario: Callable[[httpx.AsyncClient], Awaitable[Any]], *, key: bool = True):
    async def go():
        headers = {"Authorization": f"Bearer {shop.key}"} if key else {}
        transport = httpx.ASGITransport(app=shop.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as c:
            return await scenario(c)

    return asyncio.run(go())


def problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    return r.json()


def csv_rows(text: str, names: dict[str, str]) -> list[dict[str, str]]:
    return [{names[k]: v for k, v in row.items() if v} for row in csv.DictReader(io.StringIO(text))]


SIGNUP_FIELDS = {"姓名": "name", "手机": "phone", "会员号": "customer_id", "渠道": "channel",
                 "报名时间": "signed_up_at"}  # fmt: skip
PAYMENT_FIELDS = {"支付流水号": "payment_id", "订单号": "order_id", "支付金额": "amount",
                  "支付时间": "paid_at", "类型": "kind"}  # fmt: skip
URL = f"/api/o2o/events/{EVENT}"


@pytest.fixture(scope="module")
def filled(shop):
    """Sign-ups, payments and every scan of the fixture, sent through the API."""

    async def scenario(c):
        bad = await c.post(f"{URL}/signups", json={"rows": [
            {"channel": "forum", "phone": "13900000001"},
            {"channel": "douyin", "phone": "12345"}]})  # fmt: skip
        signed = await c.post(f"{URL}/signups", json={"rows": csv_rows(SIGNUPS, SIGNUP_FIELDS)})
        paid = await c.post("/api/o2o/payments",
                            json={"payments": csv_rows(PAYMENTS, PAYMENT_FIELDS)})  # fmt: skip
        scans = []
        for sid, phone, customer in SCANS:
            body = {"scan_id": sid, "phone": phone, "customer_id": customer, "checked_in_at": AT}
            scans.append(await c.post(f"{URL}/checkins", json=body))
        return bad, signed, paid, scans

    return run(shop, scenario)


def test_rows_that_do_not_fit_are_a_422_naming_each_and_nothing_is_stored(filled):
    doc = problem(filled[0], 422)
    assert "rows: 1 of 2 rows refused; nothing was stored" in doc["detail"]
    assert "row 2: channel: 'douyin' is not a channel of event" in doc["detail"]


def test_the_report_through_the_api_gives_the_hand_count(shop, filled):
    _, signed, paid, scans = filled
    assert signed.status_code == 200, signed.text
    assert (signed.json()["added"], signed.json()["repeated"]) == (10, 1)
    assert paid.json()["added"] == 4
    assert [r.status_code for r in scans] == [201, 200] + [201] * 9
    assert scans[1].json()["duplicate"] and scans[0].json()["channel"] == "forum"

    async def scenario(c):
        return await c.get(f"{URL}/report", params={"at": "2026-06-05T12:00:00"})

    r = run(shop, scenario)
    assert r.status_code == 200, r.text
    assert table(r.json()) == EXPECTED
    assert count(shop.ws, O2OSignup) == 10


def test_a_reused_scan_id_is_a_409_and_changes_nothing(shop, filled):
    async def scenario(c):
        body = {"scan_id": "S01", "phone": "13800138009", "checked_in_at": AT}
        return await c.post(f"{URL}/checkins", json=body)

    before = count(shop.ws, O2OCheckin)
    doc = problem(run(shop, scenario), 409)
    assert "scan 'S01' was recorded at 10:00:00 for another person" in doc["detail"]
    assert count(shop.ws, O2OCheckin) == before


def test_two_identical_scans_at_once_are_stored_once(shop, filled):
    async def scenario(c):
        body = {"scan_id": "TWIN", "phone": "13800138010", "checked_in_at": AT}
        return await asyncio.gather(*(c.post(f"{URL}/checkins", json=body) for _ in range(2)))

    answers = run(shop, scenario)
    assert sorted(r.status_code for r in answers) == [200, 201]
    assert sorted(r.json()["duplicate"] for r in answers) == [False, True]
    with shop.ws.session() as s:
        assert s.query(O2OCheckin).filter_by(scan_id="TWIN").count() == 1
    # Count it back out, for the figures of the other tests.
    with shop.ws.session(write=True) as s:
        s.query(O2OCheckin).filter_by(scan_id="TWIN").delete()


def test_the_desk_needs_a_key_and_an_unknown_event_is_a_404(shop):
    async def scenario(c):
        body = {"scan_id": "X", "phone": "13800138001"}
        anonymous = await c.post(f"{URL}/checkins", json=body)
        return anonymous

    assert run(shop, scenario, key=False).status_code == 401

    async def scenario2(c):
        return (
            await c.post(
                "/api/o2o/events/五一家居/checkins", json={"scan_id": "X", "phone": "13800138001"}
            ),
            await c.post(f"{URL}/checkins", json={"scan_id": "X" * 101, "phone": "13800138001"}),
        )

    unknown, long_id = run(shop, scenario2)
    assert "did you mean '五一家居团购日'" in problem(unknown, 404)["detail"]
    assert problem(long_id, 422)


def test_an_event_created_through_the_api_reads_back(shop):
    async def scenario(c):
        body = {"name": "双11 团购", "starts_at": "2026-11-11 09:00", "ends_at": "2026-11-11 21:00",
                "channels": {"微信": 500, "site": "0"}, "coupon": "d11"}  # fmt: skip
        made = await c.post("/api/o2o/events", json=body)
        again = await c.post("/api/o2o/events", json=body)
        bad = await c.post("/api/o2o/events", json={**body, "name": "x", "ends_at": "never"})
        listed = await c.get("/api/o2o/events")
        return made, again, bad, listed

    made, again, bad, listed = run(shop, scenario)
    assert made.status_code == 201, made.text
    assert made.headers["location"].startswith("/api/o2o/events/")
    assert made.json()["channels"] == {"wechat": 500.0, "site": 0.0}
    assert (
        made.json()["coupon"] == "D11" and made.json()["starts_at"] == "2026-11-11T09:00:00+08:00"
    )
    problem(again, 409)
    assert "end: 'never' is not a time" in problem(bad, 422)["detail"]
    assert [e["name"] for e in listed.json()["items"]] == ["双11 团购", EVENT]


# -- the page ---------------------------------------------------------------------------------
async def sign_in(c: httpx.AsyncClient) -> None:
    form = (await c.get("/login")).text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = await c.post("/login", data={"username": "olga", "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text


def cells(html: str, channel: str) -> dict[str, str]:
    row = re.search(rf'<tr data-channel="{re.escape(channel)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, channel
    return dict(re.findall(r'data-count="(\w+)">([^<]*)<', row.group(1)))


def test_the_page_shows_the_funnel_in_chinese_and_in_english(shop, filled):
    shop.clock.set("2026-06-05T04:00:00+00:00")

    async def scenario(c):
        await sign_in(c)
        zh = await c.get("/o2o", params={"event": EVENT})
        en = await c.get("/o2o", params={"event": EVENT, "lang": "en"})
        missing = await c.get("/o2o", params={"event": "nope"})
        return zh, en, missing

    zh, en, missing = run(shop, scenario, key=False)
    assert zh.status_code == 200, zh.text
    assert "团购活动" in zh.text and "现场客" in zh.text and "客单价" in zh.text
    assert cells(zh.text, "forum") == {
        "signups": "2", "checkins": "2", "buyers": "2", "orders": "3", "sales": "9,000.00",
        "unit_price": "4,500.00", "cost": "1,000.00", "cost_per_signup": "500.00",
        "cost_per_attendee": "500.00", "cost_per_order": "333.33",
    }  # fmt: skip
    assert cells(zh.text, "total")["sales"] == "35,000.00"
    assert cells(zh.text, "coupon")["cost_per_signup"] == "–"
    assert "Group-buy events" in en.text and "Walk-ins checked in" in en.text
    assert 'id="funnel-chart-spec"' in en.text
    assert missing.status_code == 404
    assert o2o.report(shop.ws, EVENT)["total"]["checkins"] == 8
