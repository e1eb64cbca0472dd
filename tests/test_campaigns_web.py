"""Campaigns on the web, on a small built sample shop with a manual clock: the REST API
(create from a template or a definition, problems with their places, start / pause / resume,
the ledger page by page, preview, a round as a job), consent and suppressions, one-click
unsubscribe (RFC 8058) with no cookie and from another origin, the shop's inbox API with a
source's write key, the operator's pages, and the scheduler of `archer serve`.

Campaigns here send to the shop's inbox channel: no SMTP server is needed."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archer.campaigns import service as svc
from archer.clock import ManualClock
from archer.messaging import consent
from archer.signing import unsubscribe_token
from archer.store import apikeys, sources, users, utcnow
from archer.store.campaigns import Message
from archer.store.consent import InboxMessage
from archer.web import campaign_round, create_app, rounds_forever
from archer.web.api.campaigns import ROUND
from archer.web.unsubscribe import RateLimit
from support import sample_shop, workspace

pytestmark = pytest.mark.xdist_group("campaigns_web")  # one worker builds the shop once
PASSWORD = "s3cret-password"
START = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
BUYERS = 'lifecycle in ("one_time_buyer", "repeat_buyer")'


def definition(name: str, *, holdout: float = 0.2, audience: str = BUYERS) -> dict:
    """A flow on the inbox channel: a greeting now, another a day later."""
    return {
        "name": name,
        "description": "测试：站内信问候",
        "trigger": {"on": "audience", "audience": audience, "key": "customer"},
        "holdout": holdout,
        "steps": [
            {"id": "hello", "type": "message", "channel": "inbox",
             "subject": "你好，{{ customer.name or '会员' }}",
             "text": "欢迎回到 {{ shop.name }}。"},
            {"id": "wait", "type": "delay", "for": "1d"},
            {"id": "later", "type": "message", "channel": "inbox", "expires": "2d",
             "subject": "第二封", "text": "{{ customer.name or '会员' }}，再见。"},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    clock = ManualClock(START)
    ws = sample_shop(
        tmp_path_factory.mktemp("campweb"),
        customers=300,
        seed=5,
        as_of=date(2026, 9, 30),
        clock=clock,
    )
    with ws.session(write=True) as s:
        users.create(s, "olga", PASSWORD, now=utcnow())
        _, key = apikeys.create(s, "tests", created_by="test", now=utcnow())
        _, write_key = sources.create(s, "site", now=utcnow())
    app = create_app(ws, sync_every=None, round_every=None)
    api = TestClient(app, follow_redirects=False, headers={"Authorization": f"Bearer {key}"})
    return SimpleNamespace(ws=ws, clock=clock, app=app, api=api, write_key=write_key)


@pytest.fixture(scope="module")
def welcome(shop):
    """A running flow after its first round: who got the greeting."""
    svc.create(shop.ws, definition("welcome"), user="test", start=True)
    done = svc.run_round(shop.ws)
    assert done["sent"] > 0 and done["held_back"] > 0, done
    with shop.ws.session() as s:
        greeted = sorted(
            s.scalars(
                select(Message.customer_id).where(Message.step == "hello", Message.state == "sent")
            )
        )
    return greeted


@pytest.fixture(scope="module")
def operator(shop):
    c = TestClient(shop.app, follow_redirects=False)
    form = c.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = c.post("/login", data={"username": "olga", "password": PASSWORD, "csrf": token})
    assert r.status_code == 303
    c.csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/campaigns").text).group(1)
    return c


def problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    return r.json()


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


# -- the core functions the web calls -------------------------------------------------------------
def test_the_inbox_core_reads_newest_first_and_marks_read(tmp_path):
    from archer.errors import Invalid, NotFound
    from archer.messaging import inbox
    from archer.messaging.channels import Outgoing
    from archer.messaging.channels.inbox import InboxChannel

    clock = ManualClock(START)
    ws = workspace(tmp_path / "shop", clock)
    ch = InboxChannel(ws)
    for i, who in enumerate(["A", "A", "B", "A"]):
        ch.send(Outgoing(uid=f"u{i}", customer_id=who, campaign="c", channel="inbox",
                         purpose="marketing", address=None, subject=f"t{i}", text=f"b{i}",
                         html=None))  # fmt: skip
        clock.advance(minutes=1)
    ch.send(Outgoing(uid="u0", customer_id="A", campaign="c", channel="inbox", purpose="marketing",
                     address=None, subject="again", text="again", html=None))  # fmt: skip
    first = inbox.read(ws, "A", limit=2)
    assert [m["id"] for m in first["items"]] == ["u3", "u1"] and first["more"]
    assert (first["total"], first["unread"]) == (3, 3)
    rest = inbox.read(ws, "A", limit=2, offset=2)
    assert [m["id"] for m in rest["items"]] == ["u0"] and not rest["more"]
    assert rest["items"][0]["title"] == "t0"  # the same uid sent twice is one message

    clock.advance(hours=1)
    read = inbox.mark_read(ws, "A", "u1")
    assert read["read_at"] == clock.now().isoformat()
    clock.advance(hours=1)
    assert inbox.mark_read(ws, "A", "u1")["read_at"] == read["read_at"]
    assert inbox.read(ws, "A")["unread"] == 2
    with pytest.raises(NotFound):
        inbox.mark_read(ws, "A", "u2")  # B's
    with pytest.raises(NotFound):
        inbox.mark_read(ws, "A", "x" * 100)
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        with pytest.raises(Invalid):
            inbox.read(ws, "A", **bad)
    with pytest.raises(Invalid):
        inbox.read(ws, "")
    assert inbox.read(ws, "nobody") == {
        "customer_id": "nobody", "items": [], "total": 0, "unread": 0, "more": False,
    }  # fmt: skip


def test_a_pasted_definition_is_read_as_json_or_toml_with_the_place_of_a_mistake():
    from archer.errors import Invalid

    assert svc.parse_text('{"name": "x"}') == {"name": "x"}
    assert svc.parse_text('name = "x"\n[trigger]\non = "cart"\n') == {
        "name": "x", "trigger": {"on": "cart"},
    }  # fmt: skip
    for text, said in [
        ('{"name": }', "JSON, line 1 column 10"),
        ('name = "x"\n= broken\nz = 1', "line 2"),
        ("   ", "empty"),
        ("[1, 2]", "TOML"),
        ("x = " + "[" * 200 + "]" * 200, "nests deeper"),
        ("{" * 100_000, "nests deeper"),
        ("x" * (svc.MAX_TEXT + 1), "at most"),
    ]:
        with pytest.raises(Invalid, match=said):
            svc.parse_text(text)


# -- the REST API ----------------------------------------------------------------------------------
def test_templates_and_a_campaign_from_a_template(shop):
    got = shop.api.get("/api/campaign-templates").json()["items"]
    names = {t["name"] for t in got}
    assert {"unpaid-reminders", "newsletter"} <= names
    r = shop.api.post(
        "/api/campaigns",
        json={"template": "unpaid-reminders", "name": "未付款提醒", "set": ["holdout=0.25"]},
    )
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["status"] == "draft" and doc["template"] == "unpaid-reminders"
    assert doc["definition"]["holdout"] == 0.25
    assert r.headers["location"] == "/api/campaigns/%E6%9C%AA%E4%BB%98%E6%AC%BE%E6%8F%90%E9%86%92"
    assert shop.api.get(r.headers["location"]).json()["name"] == "未付款提醒"
    # the name is taken; the template's e-mail is not set up, so it cannot start
    again = {"template": "unpaid-reminders", "name": "未付款提醒"}
    problem(shop.api.post("/api/campaigns", json=again), 409)
    refused = problem(shop.api.post(r.headers["location"] + "/start"), 422)
    assert "email" in refused["detail"] and "smtp" in refused["detail"]
    bad = problem(
        shop.api.post("/api/campaigns", json={"template": "unpaid-remindrs", "name": "x"}), 404
    )
    assert "unpaid-reminders" in bad["detail"]
    bad = problem(
        shop.api.post("/api/campaigns", json={"template": "newsletter", "name": "n", "set": ["x"]}),
        422,
    )
    assert "KEY=VALUE" in bad["detail"]


def test_a_definition_with_mistakes_is_a_422_listing_each_with_its_place(shop):
    d = definition("broken")
    d["holdot"] = 0.1
    d["steps"][1] = {"id": "wait", "type": "delay", "for": "-3d"}
    d["steps"][0]["next"] = "nowhere"
    doc = problem(shop.api.post("/api/campaigns", json=d), 422)
    assert doc["type"].endswith("campaign-definition")
    places = {p["at"] for p in doc["problems"]}
    assert "holdot" in places
    assert any(p["at"].startswith('steps[1] "wait"') for p in doc["problems"]), doc["problems"]
    unknown = next(p for p in doc["problems"] if p["at"] == "holdot")
    assert unknown["suggestions"] == ["holdout"]

    d = definition("sneaky")
    d["steps"][0]["text"] = "{{ customer.__class__.__mro__ }}"
    doc = problem(shop.api.post("/api/campaigns", json=d), 422)
    assert doc["problems"][0]["at"].startswith('steps[0] "hello".text')
    d["steps"][0]["text"] = "{% if %}"
    doc = problem(shop.api.post("/api/campaigns", json=d), 422)
    assert doc["problems"][0]["at"].startswith('steps[0] "hello".text')
    assert shop.api.get("/api/campaigns/sneaky").status_code == 404

    problem(shop.api.post("/api/campaigns", content=b"[" * 100_000), 422)
    problem(shop.api.post("/api/campaigns", content=b"{not json"), 400)
    problem(shop.api.post("/api/campaigns", json=[1, 2]), 422)


def test_start_run_pause_resume_and_read_the_ledger_page_by_page(shop, welcome):
    r = shop.api.post("/api/campaigns?start=true", json=definition("api-flow", holdout=0.3))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"

    r = shop.api.post("/api/campaigns/run")
    assert r.status_code == 202, r.text
    job = shop.app.state.jobs.wait(r.json()["id"], timeout=120)
    assert job["state"] == "done", job
    res = shop.api.get(r.headers["location"]).json()["result"]
    assert res["enrolled_by_campaign"] == {"api-flow": res["sent"] + res["held_back"]}, res

    doc = shop.api.get("/api/campaigns/api-flow").json()
    led = doc["ledger"]
    assert doc["enrolled"] == led["enrolled"] == sum(sum(v.values()) for v in led["runs"].values())
    hello = {arm: led["messages"][arm]["hello"] for arm in ("treatment", "holdout")}
    assert hello["treatment"] == {"sent": led["runs"]["treatment"]["active"]}
    assert hello["holdout"] == {"skipped": led["runs"]["holdout"]["active"]}
    assert led["skipped"] == {"holdout": doc["holdout"]} and doc["held_back"] == doc["holdout"]

    runs, url = [], "/api/campaigns/api-flow/ledger?limit=17"
    while url:
        page = shop.api.get(url).json()
        assert len(page["items"]) <= 17
        runs += page["items"]
        url = page["next"]
    assert len(runs) == doc["enrolled"] == len({r["customer_id"] for r in runs})
    assert all(r["trigger_key"] == "customer" and r["messages"][0]["step"] == "hello" for r in runs)
    one = runs[0]["customer_id"]
    only = shop.api.get(f"/api/campaigns/api-flow/ledger?customer={one}").json()["items"]
    assert [r["customer_id"] for r in only] == [one]
    problem(shop.api.get("/api/campaigns/api-flow/ledger?limit=501"), 422)
    problem(shop.api.get("/api/campaigns/api-flow/ledger?cursor=nonsense"), 400)

    assert shop.api.post("/api/campaigns/api-flow/pause").json()["status"] == "paused"
    assert shop.api.post("/api/campaigns/api-flow/resume").json()["status"] == "active"
    problem(shop.api.post("/api/campaigns/api-fow/pause"), 404)

    changed = definition("api-flow", holdout=0.3)
    changed["steps"][2]["subject"] = "第二封（新）"
    r = shop.api.put("/api/campaigns/api-flow", json=changed)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["versions"] == [1, 2]
    changed["kind"] = "broadcast"
    problem(shop.api.put("/api/campaigns/api-flow", json=changed), 422)
    listed = {c["name"]: c for c in shop.api.get("/api/campaigns").json()["items"]}
    assert listed["api-flow"]["version"] == 2 and listed["api-flow"]["status"] == "active"


def test_preview_renders_for_a_real_customer(shop, welcome):
    who = welcome[0]
    with shop.ws.warehouse() as wh:
        c = wh.table("customers")
        name = c.filter(c.customer_id == who).select("name").execute()["name"][0] or "会员"
    doc = shop.api.get(f"/api/campaigns/welcome/preview?customer={who}&step=later").json()
    assert doc["step"] == "later" and doc["subject"] == "第二封"
    assert doc["text"] == f"{name}，再见。"
    problem(shop.api.get("/api/campaigns/welcome/preview?customer=C9999999"), 404)
    problem(shop.api.get(f"/api/campaigns/welcome/preview?customer={who}&step=wait"), 404)
    problem(shop.api.get("/api/campaigns/welcome/preview"), 422)


def test_a_round_while_another_runs_is_a_409(shop):
    release = threading.Event()
    jobs = shop.app.state.jobs
    held = jobs.start(ROUND, lambda report: release.wait(60) and {}, who="elsewhere")
    try:
        doc = problem(shop.api.post("/api/campaigns/run"), 409)
        assert doc["round"] == held["id"] and held["id"] in doc["detail"]
    finally:
        release.set()
        jobs.wait(held["id"], timeout=30)


def test_consent_and_suppressions(shop):
    r = shop.api.put(
        "/api/consent/C0000007",
        json={"channel": "email", "granted": True, "evidence": "signed up at the till"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "api" and r.json()["granted"] is True
    shop.api.put("/api/consent/C0000007", json={"channel": "email", "granted": False})
    doc = shop.api.get("/api/consent/C0000007").json()
    assert [c["granted"] for c in doc["consent"]] == [False]
    assert [h["granted"] for h in doc["history"]] == [True, False]
    problem(shop.api.put("/api/consent/C0000007", json={"channel": "fax", "granted": True}), 422)
    problem(
        shop.api.put("/api/consent/C0000007", json={"channel": "sms", "granted": True,
                                                    "purpose": "spam"}), 422,
    )  # fmt: skip

    for i in range(5):
        address = f" Bounce{i}@Example.com "
        r = shop.api.post("/api/suppressions", json={"channel": "email", "address": address})
        assert r.status_code == 201, r.text
    assert r.json()["address"] == "bounce4@example.com"
    seen, url = [], "/api/suppressions?limit=2&channel=email"
    while url:
        page = shop.api.get(url).json()
        seen += [s["address"] for s in page["items"]]
        url = page["next"]
    assert sorted(seen) == [f"bounce{i}@example.com" for i in range(5)]
    r = shop.api.delete("/api/suppressions/email/BOUNCE0@example.com")
    assert r.status_code == 200 and r.json()["removed"] is True
    problem(shop.api.delete("/api/suppressions/email/bounce0@example.com"), 404)
    problem(shop.api.post("/api/suppressions", json={"channel": "email", "address": ""}), 422)


# -- one-click unsubscribe -------------------------------------------------------------------------
def test_one_click_unsubscribe_needs_no_cookie_and_a_later_message_is_skipped(shop, welcome):
    who, other = welcome[0], welcome[1]
    token = unsubscribe_token(shop.ws.settings, who, "inbox")
    anon = TestClient(shop.app, follow_redirects=False)

    page = anon.get(f"/u/{token}")
    assert page.status_code == 200
    assert "确认退订" in page.text and f'action="/u/{token}"' in page.text
    assert "站内信" in page.text and "set-cookie" not in page.headers
    assert "Unsubscribe" in anon.get(f"/u/{token}?lang=en").text

    r = anon.post(
        f"/u/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "https://mail.example.net",  # a mail provider's page: another origin
            "User-Agent": "MailProvider/1.0",
        },
    )
    assert r.status_code == 200, r.text
    assert "set-cookie" not in r.headers and "您已退订" in r.text
    decided = consent.of_customer(shop.ws, who)["consent"]
    assert [(c["channel"], c["purpose"], c["granted"], c["source"]) for c in decided] == [
        ("inbox", "marketing", False, "unsubscribe")
    ]
    assert "MailProvider/1.0" in decided[0]["evidence"]
    assert anon.post(f"/u/{token}").status_code == 200  # again: still unsubscribed

    shop.clock.advance(days=1, minutes=5)
    svc.run_round(shop.ws)
    with shop.ws.session() as s:
        later = dict(
            s.execute(
                select(Message.customer_id, Message.reason).where(
                    Message.campaign_id == _campaign_id(s, "welcome"), Message.step == "later"
                )
            ).all()
        )
    assert later[who] == "no_consent"
    assert later[other] is None  # sent
    box = shop.api.get("/api/campaigns/welcome").json()
    assert box["skipped_by_reason"] == {"no_consent": 1}


def _campaign_id(s, name: str) -> int:
    from archer.store.campaigns import Campaign

    return s.scalar(select(Campaign.id).where(Campaign.name == name))


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("nonsense", 400),
        ("x" * 3000, 400),
        ("WyJDMDAwMDAwMSIsImluYm94Il0.forged-signature", 400),
        ("WyJDMDAwMDAwMSIsImZheCJd.x", 400),
        ("%00", 400),
        ("%E4%BD%A0", 400),
        ("..%2f..%2f", 404),  # not one path segment: no such page
    ],
)
def test_a_tampered_or_forged_token_is_a_400_page(shop, token, status):
    anon = TestClient(shop.app, follow_redirects=False, raise_server_exceptions=True)
    for method in ("GET", "POST"):
        r = anon.request(method, f"/u/{token}")
        assert r.status_code == status, (method, r.status_code, r.text)
        if status == 400:
            assert "text/html" in r.headers["content-type"]
            assert "无效" in r.text


def test_a_token_with_one_character_changed_is_refused(shop):
    token = unsubscribe_token(shop.ws.settings, "C0000001", "email")
    payload, signature = token.rsplit(".", 1)
    other = unsubscribe_token(shop.ws.settings, "C0000002", "email").rsplit(".", 1)[0]
    i = len(signature) // 2  # a middle character: all six of its bits are the signature's
    flipped = signature[:i] + ("A" if signature[i] != "A" else "z") + signature[i + 1 :]
    anon = TestClient(shop.app, follow_redirects=False)
    for bad in (f"{payload}.{flipped}", f"{other}.{signature}", f"{payload}x.{signature}"):
        assert anon.post(f"/u/{bad}").status_code == 400, bad
    for c in ("C0000001", "C0000002"):
        assert consent.of_customer(shop.ws, c)["consent"] == []


def test_unsubscribe_is_rate_limited_per_address(shop):
    now = [0.0]
    shop.app.state.unsubscribe_limit = RateLimit(per_window=3, window=60, clock=lambda: now[0])
    try:
        anon = TestClient(shop.app, follow_redirects=False)
        for _ in range(3):
            assert anon.get("/u/nonsense").status_code == 400
        r = anon.post("/u/nonsense")
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        now[0] = 61.0
        assert anon.get("/u/nonsense").status_code == 400
    finally:
        del shop.app.state.unsubscribe_limit


# -- the shop's inbox ------------------------------------------------------------------------------
def test_the_inbox_api_with_a_source_key(shop, welcome):
    who = welcome[-1]
    url = f"/v1/inbox/{who}"
    anon = TestClient(shop.app, follow_redirects=False)
    assert anon.get(url).status_code == 401
    assert anon.get(url, headers=basic("wk_forged")).status_code == 401
    assert anon.get(url, headers={"Authorization": f"Bearer {shop.write_key}"}).status_code == 401
    # the REST API's key is not a source's write key
    assert shop.api.get(url).status_code == 401

    key = basic(shop.write_key)
    doc = anon.get(url, headers=key).json()
    with shop.ws.session() as s:
        mine = s.scalars(
            select(InboxMessage)
            .where(InboxMessage.customer_id == who)
            .order_by(InboxMessage.created_at.desc(), InboxMessage.id.desc())
        ).all()
    assert doc["total"] == len(mine) >= 1 and doc["unread"] == doc["total"]
    assert [m["id"] for m in doc["items"]] == [m.uid for m in mine]
    assert doc["items"][-1]["title"].startswith("你好")

    if doc["total"] > 1:  # one a page, newest first
        first = anon.get(url + "?limit=1", headers=key).json()
        assert [m["id"] for m in first["items"]] == [mine[0].uid] and first["next"]
        second = anon.get(first["next"], headers=key).json()
        assert [m["id"] for m in second["items"]] == [mine[1].uid]
    assert anon.get(url + "?limit=101", headers=key).status_code == 422
    assert anon.get(url + "?cursor=zzz", headers=key).status_code == 400

    msg = doc["items"][0]["id"]
    r = anon.post(f"{url}/{msg}/read", headers=key)
    assert r.status_code == 200, r.text
    read_at = r.json()["read_at"]
    assert read_at is not None
    assert anon.post(f"{url}/{msg}/read", headers=key).json()["read_at"] == read_at
    assert anon.get(url, headers=key).json()["unread"] == doc["total"] - 1
    assert anon.post(f"{url}/{msg}/read").status_code == 401
    assert anon.post(f"/v1/inbox/{welcome[0]}/{msg}/read", headers=key).status_code == 404
    assert anon.post(f"{url}/nothing/read", headers=key).status_code == 404
    assert anon.get("/v1/inbox/nobody", headers=key).json() == {
        "customer_id": "nobody", "items": [], "total": 0, "unread": 0, "limit": 20, "next": None,
    }  # fmt: skip
    assert anon.get("/v1/inbox/" + "x" * 300, headers=key).status_code == 422


# -- the operator's pages --------------------------------------------------------------------------
def test_the_list_page_shows_status_and_counts(operator, shop, welcome):
    html = operator.get("/campaigns").text
    doc = svc.get(shop.ws, "welcome")
    assert "营销活动" in html and 'href="/campaigns" aria-current="page"' in html
    row = re.search(r'<a href="/campaigns/welcome">welcome</a>.*?</tr>', html, re.S).group(0)
    nums = [int(n.replace(",", "")) for n in re.findall(r'<td class="num">([\d,]+)', row)]
    assert nums[:5] == [doc["enrolled"], doc["holdout"], doc["sent"], doc["held_back"],
                        doc["skipped"]]  # fmt: skip
    assert "进行中" in row
    en = operator.get("/campaigns?lang=en")
    assert "Enrolled" in en.text and en.cookies.get("archer_lang") == "en"
    assert "Enrolled" in operator.get("/campaigns").text  # remembered
    assert "已进入" in operator.get("/campaigns?lang=zh").text


def test_the_campaign_page_shows_counts_ledger_and_a_preview(operator, shop, welcome):
    who = welcome[0]
    r = operator.get("/campaigns/welcome")
    assert r.status_code == 200
    html = r.text
    doc = svc.get(shop.ws, "welcome")
    assert "<h1>welcome" in html and "测试：站内信问候" in html
    assert f'<strong class="big">{doc["enrolled"]:,}</strong>' in html
    assert 'id="per-step"' in html and "<code>hello</code>" in html
    assert doc["enrolled"] > 50  # two pages of the ledger
    assert html.count('href="/customers/') == 50 and 'rel="next"' in html
    second = operator.get("/campaigns/welcome?page=2").text
    assert second.count('href="/customers/') == doc["enrolled"] - 50 and 'rel="prev"' in second
    assert 'action="/campaigns/welcome/pause"' in html and 'name="csrf"' in html
    r = operator.get(f"/campaigns/welcome?customer={who}&step=hello")
    assert 'id="preview-result"' in r.text and "你好，" in r.text
    r = operator.get("/campaigns/welcome?customer=C9999999")
    assert r.status_code == 200 and "C9999999" in r.text and 'role="alert"' in r.text
    assert operator.get("/campaigns/nothing-here").status_code == 404


def test_create_from_pasted_toml_shows_problems_then_saves(operator, shop):
    bad = """
name = "粘贴的"
[trigger]
on = "audience"
audience = 'lifecycle = "lapsing"'
[[steps]]
id = "one"
type = "mesage"
"""
    r = operator.post(
        "/campaigns",
        data={"csrf": operator.csrf, "source": "definition", "definition": bad},
    )
    assert r.status_code == 422
    assert 'id="campaign-error"' in r.text and "steps[0]" in r.text and "mesage" in r.text
    assert "粘贴的" in r.text  # what was typed is kept
    good = bad.replace('"mesage"', '"message"') + 'channel = "inbox"\nsubject = "s"\ntext = "t"\n'
    r = operator.post(
        "/campaigns",
        data={"csrf": operator.csrf, "source": "definition", "definition": good},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/campaigns/%E7%B2%98%E8%B4%B4%E7%9A%84"
    assert svc.get(shop.ws, "粘贴的")["status"] == "draft"

    r = operator.post("/campaigns", data={"source": "definition", "definition": good})
    assert r.status_code == 403  # no CSRF token


def test_create_from_a_template_start_pause_resume_on_the_page(operator, shop):
    # the template sends e-mail, which is not set up here: it may be created, not started
    form = {"csrf": operator.csrf, "source": "template", "template": "win-back", "name": "邮件召回"}
    r = operator.post("/campaigns", data=form)
    assert r.status_code == 303, r.text
    r = operator.post(r.headers["location"] + "/start", data={"csrf": operator.csrf})
    assert r.status_code == 422 and "smtp" in r.text and 'id="campaign-error"' in r.text
    assert svc.get(shop.ws, "邮件召回")["status"] == "draft"

    form = {
        "csrf": operator.csrf,
        "source": "template",
        "template": "win-back",
        "name": "召回",
        "holdout": "15",
        "sets": "# comment\nreentry=false\nsteps.new-arrivals.channel=inbox\n"
        "steps.points-note.channel=inbox\nsteps.coupon-note.channel=inbox\n",
    }
    r = operator.post("/campaigns", data=form)
    assert r.status_code == 303, r.text
    doc = svc.get(shop.ws, "召回")
    assert doc["definition"]["holdout"] == 0.15 and doc["definition"]["reentry"] is False
    assert doc["template"] == "win-back"
    base = r.headers["location"]
    for action, status in (("start", "active"), ("pause", "paused"), ("resume", "active")):
        r = operator.post(f"{base}/{action}", data={"csrf": operator.csrf})
        assert r.status_code == 303, (action, r.text)
        assert svc.get(shop.ws, "召回")["status"] == status
    assert operator.post(f"{base}/pause", data={}).status_code == 403
    r = operator.post(f"{base}/start", data={"csrf": operator.csrf})  # active already: kept
    assert r.status_code == 303 and svc.get(shop.ws, "召回")["status"] == "active"
    r = operator.post(f"{base}/launch", data={"csrf": operator.csrf})
    assert r.status_code == 404

    r = operator.post("/campaigns", data={**form, "holdout": "95"})
    assert r.status_code == 422 and "0 to 90" in r.text
    r = operator.post("/campaigns", data={**form, "name": "另一个", "template": "nope"})
    assert r.status_code == 404 and "nope" in r.text


def test_a_new_version_from_the_page(operator, shop, welcome):
    base = "/campaigns/welcome"
    text = operator.get(base).text
    r = operator.post(f"{base}/versions", data={"csrf": operator.csrf, "definition": "{]"})
    assert r.status_code == 422 and "JSON" in r.text and "{]" in r.text
    d = definition("welcome")
    d["steps"][2]["subject"] = "第二封（改）"
    import json

    r = operator.post(f"{base}/versions", data={"csrf": operator.csrf,
                                                "definition": json.dumps(d)})  # fmt: skip
    assert r.status_code == 303, r.text
    assert svc.get(shop.ws, "welcome")["versions"][-1] >= 2
    assert "第二封（改）" in operator.get(base).text and "第二封（改）" not in text


# -- the scheduler of `archer serve` ---------------------------------------------------------------
def test_the_scheduler_runs_rounds_as_jobs_only_while_a_campaign_is_active(shop, ws, welcome):
    from archer.jobs import Jobs

    idle = Jobs(ws)  # an empty workspace: no campaign, so no round and no job row
    assert campaign_round(ws, idle) is None
    assert idle.recent(ROUND) == []

    jobs = shop.app.state.jobs
    before = len(jobs.recent(ROUND, 1000))
    ticks = []

    async def sleep(seconds: float) -> None:
        ticks.append(seconds)
        if len(ticks) > 2:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(rounds_forever(shop.ws, jobs, 60.0, sleep=sleep))
    after = jobs.recent(ROUND, 1000)
    assert ticks == [60.0, 60.0, 60.0]
    assert len(after) == before + 2
    assert [j["started_by"] for j in after[:2]] == ["scheduler", "scheduler"]
    assert all(j["state"] == "done" for j in after[:2])

    # a round running elsewhere: the tick passes without an error, and the loop goes on
    release = threading.Event()
    held = jobs.start(ROUND, lambda report: release.wait(60) and {}, who="elsewhere")
    ticks.clear()
    try:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(rounds_forever(shop.ws, jobs, 1.0, sleep=sleep))
    finally:
        release.set()
        jobs.wait(held["id"], timeout=30)
    assert len(ticks) == 3
    assert len(jobs.recent(ROUND, 1000)) == before + 3  # only the held one was added


def test_serve_starts_the_scheduler_and_round_every_none_does_not(shop):
    app = create_app(shop.ws, sync_every=None, round_every=None)
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        assert not any("rounds_forever" in t for t in c.portal.call(_tasks))
    app = create_app(shop.ws, sync_every=None)
    with TestClient(app) as c:
        tasks = c.portal.call(_tasks)
        assert any("rounds_forever" in t for t in tasks)


async def _tasks() -> list[str]:
    return [repr(t.get_coro()) for t in asyncio.all_tasks()]


def test_the_unsubscribe_page_in_a_real_browser(shop, welcome, browser):
    """Chromium, with no session, opens the link and presses the button: the app's CSP and
    the form work together, and nothing is left in the browser's cookie jar."""
    from test_web_ui import Server, expect

    who = welcome[2]
    token = unsubscribe_token(shop.ws.settings, who, "inbox")
    with Server(create_app(shop.ws, sync_every=None, round_every=None)) as server:
        page = browser.new_page(locale="zh-CN")
        try:
            page.goto(f"{server.url}/u/{token}")
            expect(page.get_by_role("heading")).to_have_text("退订")
            page.get_by_role("button", name="确认退订").click()
            expect(page.get_by_role("status")).to_contain_text("您已退订")
            assert page.context.cookies() == []
        finally:
            page.context.close()
    decided = consent.of_customer(shop.ws, who)["consent"]
    assert [(c["channel"], c["granted"], c["source"]) for c in decided] == [
        ("inbox", False, "unsubscribe")
    ]
    assert "Chrome" in decided[0]["evidence"]


def test_has_active_follows_the_campaigns_status(tmp_path):
    ws = workspace(tmp_path / "shop", ManualClock(START))
    assert svc.has_active(ws) is False
    svc.create(ws, definition("flow"), user="t")  # no build: conditions checked for syntax only
    assert svc.has_active(ws) is False
    svc.set_status(ws, "flow", "active")
    assert svc.has_active(ws) is True
    svc.set_status(ws, "flow", "paused")
    assert svc.has_active(ws) is False


def test_unsubscribe_core_refuses_a_token_signed_elsewhere(tmp_path):
    from archer.errors import Invalid

    here = workspace(tmp_path / "here", ManualClock(START))
    there = workspace(tmp_path / "there", ManualClock(START))
    token = unsubscribe_token(there.settings, "C1", "email")
    with pytest.raises(Invalid):
        consent.unsubscribe(here, token)
    doc = consent.unsubscribe(there, token, evidence="x" * 5000)
    assert (doc["granted"], doc["source"], len(doc["evidence"])) == (False, "unsubscribe", 2000)
