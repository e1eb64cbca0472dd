"""WeCom customer contact: add_msg_template against a local server (gettoken, the token kept
and renewed, the message's shape, the outcomes), and a campaign on the sample shop addressed to
the customers' external_userid, under the monthly cap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from archer.campaigns import service
from archer.clock import ManualClock
from archer.config import CampaignSettings, Settings, WecomSettings
from archer.messaging.channels import Outgoing, Permanent, Temporary, Unknown
from archer.messaging.channels.wecom import WecomChannel
from archer.store import campaigns as rows
from archer.workspace import Workspace
from providers import CORP_ID, CORP_SECRET, FakeWecom
from support import sample_shop

START = datetime(2026, 9, 15, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def wecom_settings(url: str, **kw) -> WecomSettings:
    return WecomSettings(
        corp_id=CORP_ID, corp_secret=CORP_SECRET, endpoint=url.rstrip("/"), timeout=0.3, **kw
    )


def out(uid: str, user: str, text: str = "您好，新品到了") -> Outgoing:
    return Outgoing(
        uid=uid,
        customer_id="C1",
        campaign="c",
        channel="wecom",
        purpose="marketing",
        address=user,
        subject=None,
        text=text,
        html=None,
    )


def channel(tmp_path, url: str, **kw) -> WecomChannel:
    ws = Workspace(Settings(home=tmp_path, wecom=wecom_settings(url, **kw)), ManualClock(START))
    return WecomChannel(ws)


def test_a_message_is_created_for_the_staff_to_confirm_with_one_token(tmp_path):
    with FakeWecom() as fake:
        ch = channel(tmp_path, fake.url, sender="zhangsan")
        first = ch.send(out("u1", "wmA"))
        second = ch.send(out("u2", "wmB"))
    assert fake.bad == [] and fake.tokens == ["token-1"]  # the token was kept
    assert fake.requests[0] == {
        "chat_type": "single",
        "external_userid": ["wmA"],
        "text": {"content": "您好，新品到了"},
        "sender": "zhangsan",
    }
    assert first.provider_id == "msg1" and second.provider_id == "msg2"
    assert first.cost_fen == 0


def test_the_token_is_renewed_when_it_expires_or_wecom_drops_it(tmp_path):
    with FakeWecom(life=7200) as fake:
        ch = channel(tmp_path, fake.url)
        ch.send(out("u1", "wmA"))
        ch.ws.clock.advance(hours=1)
        ch.send(out("u2", "wmA"))
        assert fake.tokens == ["token-1"]
        ch.ws.clock.advance(minutes=56)  # within 5 minutes of its end: a new one first
        ch.send(out("u3", "wmA"))
        assert fake.tokens == ["token-1", "token-2"]
        fake.expire()  # WeCom ended it early: refused once, a new token, created once
        ch.send(out("u4", "wmA"))
    assert fake.tokens == ["token-1", "token-2", "token-3"]
    assert len(fake.requests) == 4 and fake.bad == []


def test_wecom_answers_become_outcomes_and_a_timeout_is_never_resent(tmp_path):
    with FakeWecom() as fake:
        ch = channel(tmp_path, fake.url)
        fake.plan = {"wmGone": "illegal", "wmBusy": "throttle", "wmSlow": "slow"}
        with pytest.raises(Permanent, match="cannot receive"):
            ch.send(out("a", "wmGone"))
        with pytest.raises(Temporary, match="45009"):
            ch.send(out("b", "wmBusy"))
        with pytest.raises(Unknown):
            ch.send(out("c", "wmSlow"))
        with pytest.raises(Permanent, match="external_userid"):
            ch.send(out("d", ""))
        with pytest.raises(Permanent, match="bytes"):
            ch.send(out("e", "wmA", "字" * 1500))
    assert [r["external_userid"] for r in fake.requests] == [["wmGone"], ["wmBusy"], ["wmSlow"]]


def test_wrong_credentials_are_temporary(tmp_path):
    with FakeWecom() as fake:
        ws = Workspace(
            Settings(
                home=tmp_path,
                wecom=wecom_settings(fake.url).model_copy(update={"corp_id": "someone-else"}),
            ),
            ManualClock(START),
        )
        with pytest.raises(Temporary, match="40001"):
            WecomChannel(ws).send(out("a", "wmA"))
    assert fake.requests == []


def test_the_default_cap_keeps_wecom_under_its_monthly_limit():
    assert CampaignSettings().caps["wecom"] == ["1/24h", "4/30d"]


# -- a campaign on the sample shop -------------------------------------------------------------
def add_wecom_ids(folder) -> None:
    """Every third customer added the shop's staff on WeCom: their id in ``attributes``."""
    path = folder / "customers.parquet"
    c = pd.read_parquet(path)
    attrs = []
    for i, (cid, raw) in enumerate(zip(c.customer_id, c.attributes, strict=True)):
        doc = json.loads(raw) if isinstance(raw, str) else {}
        if i % 3 == 0:
            doc["wecom_external_userid"] = f"wm{cid}"
        attrs.append(json.dumps(doc) if doc else None)
    c["attributes"] = attrs
    c.to_parquet(path, index=False)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("wecom")
    return sample_shop(
        root,
        customers=300,
        seed=5,
        clock=ManualClock(START),
        as_of=START.date(),
        edit=add_wecom_ids,
    )


def test_a_wecom_flow_reaches_the_contacts_and_stops_at_the_monthly_cap(shop, tmp_path):
    steps = []
    for n in range(5):  # five notes two days apart: the fifth passes 4 in 30 days
        if n:
            steps.append({"id": f"wait{n}", "type": "delay", "for": "2d"})
        steps.append(
            {
                "id": f"note{n}",
                "type": "message",
                "channel": "wecom",
                "text": "{{ customer.name }}，您好：本周新品 " + str(n),
            }
        )
    raw = {
        "name": "wecom-news",
        "holdout": 0,
        "steps": steps,
        "trigger": {
            "on": "audience",
            "key": "customer",
            "audience": 'lifecycle in ("registered_no_cart", "cart_no_order")',
        },
    }
    with FakeWecom(life=86_400) as fake:
        settings = shop.settings.model_copy(
            update={"database": f"sqlite:///{tmp_path}/store.db", "wecom": wecom_settings(fake.url)}
        )
        ws = Workspace(settings, ManualClock(START))
        assert "wecom" in ws.settings.channels()
        service.create(ws, raw, user="t", start=True)
        for _ in range(10):
            service.run_round(ws)
            ws.clock.advance(timedelta(days=1))
        with ws.session() as s:
            msgs = list(s.scalars(select(rows.Message)))
    assert fake.bad == []
    with ws.warehouse() as wh:
        c = wh.table("customers").execute().set_index("customer_id")
    reached = {m.customer_id for m in msgs if m.state == "sent"}
    with_id = {cid for cid in c.index if "wecom_external_userid" in (c.attributes[cid] or "")}
    assert reached and reached <= with_id
    assert all(m.reason == "no_address" for m in msgs if m.customer_id not in with_id)
    for m in msgs:
        if m.state == "sent":
            assert m.address == f"wm{m.customer_id}" and m.provider_id.startswith("msg")
    by_step = {}
    for m in msgs:
        if m.customer_id in reached:
            by_step.setdefault(m.step, set()).add((m.state, m.reason))
    assert by_step["note3"] == {("sent", None)}
    assert by_step["note4"] == {("skipped", "frequency_cap")}  # 4 in 30 days already
    sent_to = [r["external_userid"][0] for r in fake.requests]
    assert len(sent_to) == 4 * len(reached)  # each note once; the fifth never asked for
    first = next(r for r in fake.requests if r["external_userid"] == [sent_to[0]])
    cid = sent_to[0].removeprefix("wm")
    assert first["text"]["content"] == f"{c.name[cid]}，您好：本周新品 0"


def test_campaigns_md_lists_every_wecom_setting():
    from test_docs import read, sections, table_rows

    rows = table_rows(sections(read("campaigns.md"), level=3)["The `[wecom]` table"])
    assert set(rows) == set(WecomSettings.model_fields)
