"""SMS: Aliyun and Tencent against local servers that check the signatures, the outcomes a
dispatcher makes of their answers, a campaign on the sample shop that sends in the morning and
not at night, and replies that opt a number out (the core function and the route)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from archer.campaigns import service
from archer.campaigns.definition import CampaignError
from archer.clock import ManualClock
from archer.config import Settings, SmsSettings
from archer.messaging.channels import Outgoing, Permanent, Temporary, Unknown
from archer.messaging.channels.sms import e164, national
from archer.messaging.channels.sms_aliyun import AliyunSms
from archer.messaging.channels.sms_tencent import TencentSms
from archer.messaging.consent import normalise
from archer.messaging.replies import is_opt_out, phone_key, sms_reply
from archer.store import campaigns as rows
from archer.store.consent import Consent, Suppression
from archer.workspace import Workspace
from providers import (
    ALIYUN_KEY,
    ALIYUN_SECRET,
    TENCENT_ID,
    TENCENT_KEY,
    FakeAliyun,
    FakeTencent,
)
from support import sample_shop
from test_tracking_server import ThreadServer

START = datetime(2026, 9, 15, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai: quiet hours for SMS
TEMPLATES = {"SMS_100": ["name", "shop"]}
TIMEOUT = 0.3  # seconds the channel waits for the provider's answer in these tests


def sms_settings(url: str, provider: str = "aliyun", **kw) -> SmsSettings:
    key, secret = (ALIYUN_KEY, ALIYUN_SECRET) if provider == "aliyun" else (TENCENT_ID, TENCENT_KEY)
    return SmsSettings(
        provider=provider, endpoint=url, access_key_id=key, access_key_secret=secret,
        sign_name="某某 商城*~", app_id="1400000001", timeout=TIMEOUT, cost_fen=4,
        templates=TEMPLATES, **kw,
    )  # fmt: skip


def bare(tmp_path, sms: SmsSettings) -> Workspace:
    return Workspace(Settings(home=tmp_path, sms=sms), ManualClock(START))


def out(uid: str, phone: str, **params: str) -> Outgoing:
    return Outgoing(
        uid=uid, customer_id="C1", campaign="c", channel="sms", purpose="marketing",
        address=phone, subject=None, text=None, html=None, template="SMS_100",
        params=params or {"name": "王 小明*~&=", "shop": "某某商城"},
    )  # fmt: skip


# -- numbers and replies -----------------------------------------------------------------------
def test_numbers_take_each_providers_form():
    assert national("+86 138-0013-8000") == national("8613800138000") == "13800138000"
    assert national("0086 13800138000") == "13800138000"
    assert national("+852 9123 4567") == "85291234567"
    assert e164("13800138000") == "+8613800138000" and e164("+85291234567") == "+85291234567"
    assert phone_key("+86 138 0013 8000") == phone_key("13800138000") == "13800138000"


@pytest.mark.parametrize(
    "reply", ["R", "t", " TD ", "td", "退订", "T退订", "退订TD", "ＴＤ", "TD。", "r 退订", "n"]
)
def test_replies_that_opt_out(reply):
    assert is_opt_out(reply)


@pytest.mark.parametrize("reply", ["", "好的", "TDD", "thanks", "请问退订后还能收到吗", "R1"])
def test_replies_that_do_not(reply):
    assert not is_opt_out(reply)


# -- Aliyun ------------------------------------------------------------------------------------
def test_aliyun_signs_the_request_and_gets_the_biz_id(tmp_path):
    with FakeAliyun() as fake:
        ch = AliyunSms(bare(tmp_path, sms_settings(fake.url)))
        got = ch.send(out("u1", "+86 138 0013 8000"))
    assert fake.bad == []  # the server recomputed the signature from the secret: it matched
    (req,) = fake.requests
    assert req["PhoneNumbers"] == "13800138000" and req["OutId"] == "u1"
    assert req["SignName"] == "某某 商城*~" and req["TemplateCode"] == "SMS_100"
    assert req["TemplateParam"] == {"name": "王 小明*~&=", "shop": "某某商城"}
    assert req["Timestamp"] == "2026-09-15T15:00:00Z"  # the workspace's clock
    assert got.provider_id and got.cost_fen == 4


def test_aliyun_answers_become_outcomes_and_a_timeout_is_never_resent(tmp_path):
    with FakeAliyun() as fake:
        ch = AliyunSms(bare(tmp_path, sms_settings(fake.url)))
        fake.plan = {"13800000001": "throttle", "13800000002": "illegal",
                     "13800000003": "error", "13800000004": "slow",
                     "13800000005": "drop"}  # fmt: skip
        with pytest.raises(Temporary, match="BUSINESS_LIMIT_CONTROL"):
            ch.send(out("a", "13800000001"))
        with pytest.raises(Permanent, match="MOBILE_NUMBER_ILLEGAL") as e:
            ch.send(out("b", "13800000002"))
        assert e.value.suppress == "bounce" and not isinstance(e.value, Unknown)
        with pytest.raises(Permanent, match="TEMPLATE_MISSING") as e:
            ch.send(out("c", "13800000003"))
        assert e.value.suppress is None
        with pytest.raises(Unknown, match="no answer within"):
            ch.send(out("d", "13800000004"))
        with pytest.raises(Unknown, match="answer was lost"):
            ch.send(out("e", "13800000005"))
    assert fake.bad == [] and [r["OutId"] for r in fake.requests] == list("abcde")


def test_nothing_reaches_a_server_that_is_not_there(tmp_path):
    with FakeAliyun() as fake:
        url = fake.url
    ch = AliyunSms(bare(tmp_path, sms_settings(url)))
    with pytest.raises(Temporary, match="cannot reach"):  # the request never left: retry
        ch.send(out("u", "13800138000"))


def test_a_message_that_cannot_be_an_sms_is_refused_before_it_goes(tmp_path):
    with FakeAliyun() as fake:
        ch = AliyunSms(bare(tmp_path, sms_settings(fake.url)))
        with pytest.raises(Permanent, match="takes name, shop"):
            ch.send(out("u", "13800138000", name="x"))
        with pytest.raises(Permanent, match="not a phone number"):
            ch.send(out("u", "12"))
        with pytest.raises(Permanent, match="needs an approved template"):
            ch.send(Outgoing(uid="u", customer_id="C", campaign="c", channel="sms",
                             purpose="marketing", address="13800138000", subject=None,
                             text="free text", html=None))  # fmt: skip
    assert fake.requests == []


# -- Tencent -----------------------------------------------------------------------------------
def test_tencent_signs_tc3_and_counts_the_segments(tmp_path):
    with FakeTencent() as fake:
        ch = TencentSms(bare(tmp_path, sms_settings(fake.url, "tencent")))
        got = ch.send(out("u1", "13800138000"))
        fake.plan = {"+8613800000001": "throttle", "+8613800000002": "illegal",
                     "+8613800000003": "blacklist", "+8613800000004": "error",
                     "+8613800000005": "slow"}  # fmt: skip
        with pytest.raises(Temporary, match="LimitExceeded"):
            ch.send(out("a", "13800000001"))
        with pytest.raises(Permanent, match="IncorrectPhoneNumber") as e:
            ch.send(out("b", "13800000002"))
        assert e.value.suppress == "bounce"
        with pytest.raises(Permanent, match="Blacklist") as e:
            ch.send(out("c", "13800000003"))
        assert e.value.suppress == "unsubscribe"
        with pytest.raises(Permanent) as e:
            ch.send(out("d", "13800000004"))
        assert e.value.suppress is None and not isinstance(e.value, Unknown)
        with pytest.raises(Unknown):
            ch.send(out("e", "13800000005"))
    assert fake.bad == []
    req = fake.requests[0]
    assert req["PhoneNumberSet"] == ["+8613800138000"] and req["SessionContext"] == "u1"
    assert req["TemplateId"] == "SMS_100" and req["SmsSdkAppId"] == "1400000001"
    assert req["TemplateParamSet"] == ["王 小明*~&=", "某某商城"]  # in the template's order
    assert got.cost_fen == 2 * 4 and got.provider_id  # Fee 2 segments × cost_fen


def test_a_wrong_secret_is_refused_by_the_stand_in(tmp_path):
    """The servers do check: the same request signed with another secret fails."""
    with FakeAliyun() as a, FakeTencent() as t:
        s = sms_settings(a.url).model_copy(update={"access_key_secret": SecretStr("wrong")})
        with pytest.raises(Temporary, match="SignatureDoesNotMatch"):
            AliyunSms(bare(tmp_path, s)).send(out("u", "13800138000"))
        wrong = {"access_key_secret": SecretStr("wrong")}
        s = sms_settings(t.url, "tencent").model_copy(update=wrong)
        with pytest.raises(Temporary, match="SignatureFailure"):
            TencentSms(bare(tmp_path, s)).send(out("u", "13800138000"))
    assert a.requests == [] and t.requests == [] and len(a.bad) == len(t.bad) == 1


# -- a campaign on the sample shop -------------------------------------------------------------
@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("sms")
    return sample_shop(root, customers=300, seed=5, clock=ManualClock(START), as_of=START.date())


def sms_campaign(name: str = "sms-welcome") -> dict:
    return {
        "name": name, "holdout": 0,
        "trigger": {"on": "audience", "key": "customer",
                    "audience": 'lifecycle in ("registered_no_cart", "cart_no_order")'},
        "steps": [
            {"id": "note", "type": "message", "channel": "inbox", "subject": "欢迎",
             "text": "欢迎 {{ customer.name }}"},
            {"id": "sms", "type": "message", "channel": "sms", "template": "SMS_100",
             "expires": "3d",
             "params": {"name": "{{ customer.name or '会员' }}", "shop": "{{ shop.name }}"}},
        ],
    }  # fmt: skip


def shop_on(shop, tmp_path, url: str, **sms_kw) -> Workspace:
    settings = shop.settings.model_copy(update={
        "database": f"sqlite:///{tmp_path}/store.db", "shop_name": "某某商城",
        "sms": sms_settings(url, **sms_kw),
    })  # fmt: skip
    return Workspace(settings, ManualClock(START))


def sms_rows(ws: Workspace) -> dict[str, rows.Message]:
    with ws.session() as s:
        q = select(rows.Message).where(rows.Message.channel == "sms")
        return {m.uid: m for m in s.scalars(q)}


def test_an_sms_campaign_waits_for_the_morning_and_sends_each_message_once(shop, tmp_path):
    with FakeAliyun() as fake:
        ws = shop_on(shop, tmp_path, fake.url)
        service.create(ws, sms_campaign(), user="t", start=True)
        night = service.run_round(ws)  # 23:00 in Shanghai
        planned = sms_rows(ws)
        willing = [m for m in planned.values() if m.opt_in]
        assert len(willing) > 20 and night["sent"] > 20  # the inbox messages went at once
        assert fake.requests == []  # no SMS at night
        assert night["deferred"] == len(willing)
        throttled, illegal, slow = (national(m.address) for m in willing[:3])
        fake.plan = {throttled: "throttle", illegal: "illegal", slow: "slow"}

        ws.clock.set(datetime(2026, 9, 16, 0, 0, tzinfo=UTC))  # 08:00 in Shanghai
        morning = service.run_round(ws)
        assert morning["retried"] == 1 and morning["unknown"] == 1
        assert morning["failed"] == 2 and morning["sent"] == len(willing) - 3
        fake.plan[throttled] = "ok"
        for _ in range(3):  # later rounds: the throttled one goes, nothing goes twice
            ws.clock.advance(minutes=10)
            service.run_round(ws)
        after = sms_rows(ws)
    assert fake.bad == []
    by_uid: dict[str, int] = {}
    for r in fake.requests:
        by_uid[r["OutId"]] = by_uid.get(r["OutId"], 0) + 1
        local = datetime.strptime(r["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert 8 <= local.astimezone(ws.tz).hour < 22  # never in quiet hours
    uid = {national(m.address): u for u, m in after.items()}
    assert by_uid[uid[slow]] == 1  # timed out: never sent a second time
    assert by_uid[uid[throttled]] == 2  # refused for throttling, then sent
    assert max(v for k, v in by_uid.items() if k != uid[throttled]) == 1
    sent = {u for u, m in after.items() if m.state == "sent"}
    answered_ok = set(by_uid) - {uid[illegal], uid[slow]}
    assert sent == answered_ok
    assert after[uid[slow]].state == "failed" and after[uid[slow]].reason == "unknown"
    assert "no answer within" in after[uid[slow]].error
    assert after[uid[illegal]].state == "failed" and after[uid[illegal]].reason == "refused"
    assert all(after[u].cost_fen == 4 and after[u].provider_id for u in sent)
    with ws.session() as s:
        sup = {x.address for x in s.scalars(select(Suppression))}
    assert normalise("sms", after[uid[illegal]].address) in sup  # suppressed as a bounce
    with ws.warehouse() as wh:
        names = wh.table("customers").execute().set_index("customer_id")["name"]
    for r in fake.requests:  # the parameters were rendered with each customer's context
        cust = after[r["OutId"]].customer_id
        assert r["TemplateParam"] == {"name": names[cust] or "会员", "shop": "某某商城"}
    skipped = {m.reason for m in after.values() if m.state == "skipped"}
    assert skipped <= {"no_consent"}  # those without an SMS opt-in


def test_sms_steps_are_checked_against_the_approved_templates(shop, tmp_path):
    ws = shop_on(shop, tmp_path, "http://127.0.0.1:9/")
    raw = sms_campaign()
    raw["steps"][1]["template"] = "SMS_10O"
    with pytest.raises(CampaignError) as e:
        service.check(ws, raw)
    assert e.value.problems[0]["at"] == 'steps[1] "sms".template'
    assert "did you mean 'SMS_100'" in e.value.problems[0]["message"]
    raw = sms_campaign()
    raw["steps"][1]["params"] = {"name": "x", "amount": "{{ customer.nett_spent }}"}
    with pytest.raises(CampaignError) as e:
        service.check(ws, raw)
    where = {p["at"] for p in e.value.problems}
    assert 'steps[1] "sms".params.amount' in where  # the template refused: a misspelt field
    raw["steps"][1]["params"] = {"name": "x", "amount": "1"}
    with pytest.raises(CampaignError) as e:
        service.check(ws, raw)
    msgs = {p["at"]: p["message"] for p in e.value.problems}
    assert "needs `shop`" in msgs['steps[1] "sms".params']
    assert "no parameter 'amount'" in msgs['steps[1] "sms".params.amount']
    raw = sms_campaign()
    raw["steps"][1] = {"id": "sms", "type": "message", "channel": "sms", "text": "hi"}
    with pytest.raises(CampaignError, match="approved templates only"):
        service.check(ws, raw)
    raw["steps"][1] = {"id": "sms", "type": "message", "channel": "sms", "template": "SMS_100"}
    with pytest.raises(CampaignError, match="needs `params`"):
        service.check(ws, raw)
    service.check(ws, sms_campaign())  # the right one passes
    service.create(ws, sms_campaign(), user="t")
    cid, _ = a_customer_with_sms(ws)
    with ws.warehouse() as wh:
        name = wh.table("customers").execute().set_index("customer_id").name[cid]
    shown = service.preview(ws, "sms-welcome", cid, "sms")
    assert shown["template"] == "SMS_100"
    assert shown["params"] == {"name": name, "shop": "某某商城"}


# -- replies -----------------------------------------------------------------------------------
def a_customer_with_sms(ws: Workspace) -> tuple[str, str]:
    with ws.warehouse() as wh:
        c = wh.table("customers").execute()
    row = c[(c.sms_opt_in == True) & c.phone.notna()].iloc[0]  # noqa: E712
    return str(row.customer_id), str(row.phone)


def test_a_reply_td_opts_the_number_out_and_no_sms_follows(shop, tmp_path):
    with FakeAliyun() as fake:
        ws = shop_on(shop, tmp_path, fake.url)
        ws.clock.set(datetime(2026, 9, 16, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
        cid, phone = a_customer_with_sms(ws)
        assert sms_reply(ws, phone, "好的")["opt_out"] is False
        done = sms_reply(ws, "+86 " + phone, " td ")
        assert done["opt_out"] and done["customers"] == [cid]
        again = sms_reply(ws, phone, "退订")  # a second reply changes nothing more
        assert again["customers"] == [cid]
        with ws.session() as s:
            c = s.get(Consent, (cid, "sms", "marketing"))
            sup = {x.address for x in s.scalars(select(Suppression))}
        assert c.granted is False and c.source == "reply" and "td" in c.evidence
        assert phone in sup
        raw = sms_campaign("everyone")
        raw["trigger"]["audience"] = f'customer_id = "{cid}"'
        service.create(ws, raw, user="t", start=True)
        service.run_round(ws)
        (m,) = sms_rows(ws).values()
    assert m.state == "skipped" and m.reason == "suppressed" and fake.requests == []


def test_the_reply_route_takes_each_providers_push_with_the_secret(shop, tmp_path):
    ws = shop_on(shop, tmp_path, "http://127.0.0.1:9/", reply_secret="s3cret")
    cid, phone = a_customer_with_sms(ws)
    with ThreadServer(ws) as srv, httpx.Client(base_url=srv.url) as c:
        url = "/v1/sms/replies"
        tencent = {"mobile": phone, "nationcode": "86", "text": "T退订", "time": 1789000000,
                   "sign": "某某商城", "extend": ""}  # fmt: skip
        assert c.post(url, json=tencent).status_code == 401
        assert c.post(url + "?secret=nope", json=tencent).status_code == 401
        r = c.post(url + "?secret=s3cret", json=tencent)
        assert r.status_code == 200, r.text
        assert r.json()["result"] == 0 and r.json()["replies"][0]["customers"] == [cid]
        aliyun = [
            {
                "phone_number": "13900000000",
                "content": "TD",
                "send_time": "2026-09-16 10:00:00",
                "sign_name": "x",
                "dest_code": "1",
                "sequence_id": 1,
            }
        ]
        r = c.post(url, json=aliyun, headers={"X-Archer-Secret": "s3cret"})
        assert r.json()["code"] == 0 and r.json()["replies"][0]["customers"] == []
        r = c.post(url + "?secret=s3cret", json=[{"phone": phone, "content": "hi"}] * 101)
        assert r.status_code == 400 and "at most 100" in r.json()["detail"]
        r = c.post(url + "?secret=s3cret", content=b"x" * 70_000)
        assert r.status_code == 413
        r = c.post(url + "?secret=s3cret", json={"phone": 5, "content": "TD"})
        assert r.status_code == 400 and "phone" in r.json()["detail"]
        r = c.post(url + "?secret=s3cret", json={"phone": "abc", "content": "TD"})
        assert r.status_code == 422 and "not a phone number" in r.json()["detail"]
    with ws.session() as s:
        log = s.get(Consent, (cid, "sms", "marketing"))
        sup = {x.address for x in s.scalars(select(Suppression))}
    assert log.granted is False and "13900000000" in sup
    assert "2026-09-10T00:26:40+00:00" in log.evidence  # the time Tencent gave


def test_the_reply_route_is_off_without_a_secret(shop, tmp_path):
    ws = shop_on(shop, tmp_path, "http://127.0.0.1:9/")
    with ThreadServer(ws) as srv:
        r = httpx.post(srv.url + "/v1/sms/replies", json={"phone": "1", "content": "TD"})
    assert r.status_code == 404 and "reply_secret" in r.json()["detail"]


def test_quiet_hours_time_is_the_shops(tmp_path):
    """22:00–08:00 in the shop's zone: 21:59 goes, 22:00 waits until 08:00."""
    from archer.config import CampaignSettings
    from archer.messaging.guards import Windows

    w = Windows({}, CampaignSettings().quiet_hours["sms"], Settings(home=tmp_path).tz)
    assert w.open_at(datetime(2026, 9, 15, 13, 59, tzinfo=UTC))
    assert not w.open_at(datetime(2026, 9, 15, 14, 0, tzinfo=UTC))
    assert w.next_open(datetime(2026, 9, 15, 14, 0, tzinfo=UTC)) == START + timedelta(hours=9)


def test_campaigns_md_lists_every_sms_setting():
    from test_docs import read, sections, table_rows

    rows = table_rows(sections(read("campaigns.md"), level=3)["The `[sms]` table"])
    assert set(rows) == set(SmsSettings.model_fields)
