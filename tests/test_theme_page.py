"""``/themes``, the theme planner page, in process (TestClient) on a small built sample shop
whose even-numbered products are out of stock: 11.11's rising words ticked and marked, the group
as an editable query with its reach, products added and removed, stock risk, send windows, and
the broadcast created with a holdout — refused while a product may oversell unless confirmed,
and the confirmation recorded. In Chinese by default, English on asking."""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from urllib.parse import urlencode

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from archer.campaigns import service as campaigns
from archer.store import users, utcnow
from archer.web import create_app
from support import sample_shop
from test_web_pages import PASSWORD, sign_in

START, END = date(2025, 6, 1), date(2025, 11, 30)  # 11.11 and the months before it


def _short_stock(sample):
    f = sample / "products.parquet"
    p = pd.read_parquet(f)
    p.loc[p.product_id.str[-1].isin(list("02468")), "stock"] = 0
    p.to_parquet(f, index=False)


def theme_shop(root):
    """The sample shop through last 11.11, half its catalogue out of stock, with alice."""
    ws = sample_shop(root, customers=1500, seed=7, start=START, end=END, edit=_short_stock,
                     as_of=END)  # fmt: skip
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
    return ws


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws = theme_shop(tmp_path_factory.mktemp("theme-page"))
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def client(shop):
    with TestClient(create_app(shop, sync_every=None), follow_redirects=False) as c:
        sign_in(c)
        yield c


def _plan(client, **params) -> str:
    r = client.get("/themes?" + urlencode({"lang": "en", **params}, doseq=True))
    assert r.status_code == 200, r.text
    return r.text


def _products(html: str) -> list[str]:
    return re.findall(r'<tr data-product="([^"]+)"', html)


def test_the_page_plans_11_11_in_english_and_chinese(client):
    html = _plan(client)
    assert "Theme planner" in html and 'href="/themes" aria-current="page"' in html
    assert re.search(r'data-word="双十一"><input type="checkbox" name="words" value="双十一" '
                     r"checked>", html) or 'data-word="双11"' in html  # fmt: skip
    assert "↑ rising" in html
    assert re.search(r'id="group-count">[1-9]', html) and "reachable by e-mail" in html
    assert "searched(&#34;" in html  # the query in the editable box, escaped
    assert _products(html) and "Interval (95%)" in html and "Send windows" in html
    assert 'action="/themes/broadcast"' in html and 'name="csrf"' in html
    zh = client.get("/themes?lang=zh").text
    assert "主题活动策划" in zh and "目标人群" in zh and "发送时间" in zh and "库存风险" in zh
    for internal in ("oversell", "at_risk", "low_stock", "budget", "premium"):
        assert f">{internal}<" not in zh


def test_unticked_words_a_removed_and_an_added_product(client):
    first = _plan(client, start="", end="")  # the browser sends the empty date inputs
    ranked = _products(first)
    gone = ranked[0]
    html = _plan(client, picked="1", basis="11.11", festival="11.11", remove_one=gone)
    assert gone not in _products(html) and f'name="remove" value="{gone}"' in html
    found = _plan(client, picked="1", basis="11.11", festival="11.11", find="P0019")
    assert 'name="add_one" value="P00190"' in found
    added = _plan(client, picked="1", basis="11.11", festival="11.11", add_one="P00190",
                  remove=gone)  # fmt: skip
    assert "P00190" in _products(added) and gone not in _products(added)
    assert re.search(r'data-product="P00190".*?>added<', added, re.S)
    none = _plan(client, picked="1", basis="11.11", festival="11.11")  # every word unticked
    assert 'type="checkbox" name="words" value="双十一" checked' not in none
    assert "searched(" not in re.search(r'<textarea name="query".*?</textarea>', none, re.S)[0]
    moved = _plan(client, picked="1", basis="11.11", festival="6.18", remove="P00001")
    assert 'name="remove"' not in moved  # another festival starts afresh


def test_an_edited_group_is_counted_and_a_broken_one_said_at_its_place(client):
    html = _plan(client, picked="1", basis="11.11", festival="11.11", words="双十一",
                 query='lifecycle = "repeat_buyer"', suggested="x")  # fmt: skip
    assert 'id="edited"' in html and "lifecycle = &#34;repeat_buyer&#34;" in html
    bad = _plan(client, picked="1", basis="11.11", festival="11.11", query="n_orders >",
                suggested="x")  # fmt: skip
    assert 'aria-invalid="true"' in bad and "query-error" in bad
    junk = _plan(client, festival="nowhere")
    assert 'id="plan-error"' in junk and "nowhere" in junk


def test_a_date_range(client):
    html = _plan(client, start="2026-12-20", end="2026-12-31")
    assert "Campaign window" in html and "Dec 20, 2026" in html and "Dec 20, 2024" in html
    too_long = _plan(client, start="2026-01-01", end="2026-12-31")
    assert 'id="plan-error"' in too_long and "at most 92 days" in too_long
    bad = client.get("/themes", params={"lang": "en", "start": "2026-13-01", "end": "x"})
    assert bad.status_code == 422 and 'id="plan-error"' in bad.text and "YYYY-MM-DD" in bad.text


def _form(html: str, **extra: str) -> dict[str, list[str]]:
    """The create form's fields as the browser would post them, with ``extra`` filled in."""
    form = re.search(r'<form method="post" action="/themes/broadcast".*?</form>', html, re.S)[0]
    data: dict[str, list[str]] = {}
    for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form):
        data.setdefault(k, []).append(unescape(v))
    return {**data, **{k: [v] for k, v in extra.items()}}


def test_creating_needs_the_token_and_a_confirmation_when_it_may_oversell(client, shop):
    # The planner ranks what is in stock first; an operator adds a product with none left.
    with shop.warehouse() as wh:
        p = wh.table("products")
        none_left = sorted(p.filter(p.stock == 0).product_id.to_pyarrow().to_pylist())[0]
    assert 'id="oversell"' not in _plan(client)
    html = _plan(client, picked="1", basis="11.11", festival="11.11", add_one=none_left)
    assert 'id="oversell"' in html, f"{none_left} has no stock: it should oversell"
    data = _form(html, name="theme-1111", channel="email", holdout="20")
    nocsrf = {k: v for k, v in data.items() if k != "csrf"}
    assert client.post("/themes/broadcast", data=nocsrf).status_code == 403
    refused = client.post("/themes/broadcast?lang=en", data=data)
    assert refused.status_code == 409 and "may oversell" in refused.text
    assert 'id="create-error"' in refused.text and 'value="theme-1111"' in refused.text
    with pytest.raises(LookupError):
        campaigns.get(shop, "theme-1111")
    made = client.post("/themes/broadcast", data={**data, "confirm_oversell": ["1"]})
    assert made.status_code == 303 and made.headers["location"] == "/campaigns/theme-1111"
    c = campaigns.get(shop, "theme-1111")
    d = c["definition"]
    assert c["kind"] == "broadcast" and c["status"] == "draft" and d["holdout"] == 0.2
    assert "oversell confirmed by alice at " in d["description"]
    assert d["trigger"]["audience"] == data["suggested"][0]


def test_an_edited_group_and_sms_go_into_the_broadcast(client, shop):
    q = 'lifecycle = "repeat_buyer"'
    html = _plan(client, picked="1", basis="11.11", festival="11.11", query=q, suggested="x")
    data = _form(html, name="theme-sms", channel="sms", holdout="10", confirm_oversell="1")
    assert data["query"] == [q]
    assert client.post("/themes/broadcast", data=data).status_code == 303
    d = campaigns.get(shop, "theme-sms")["definition"]
    assert d["trigger"]["audience"] == q and d["steps"][0]["channel"] == "sms"
    bad = client.post("/themes/broadcast?lang=en", data={**data, "holdout": ["95"]})
    assert bad.status_code == 422 and "holdout" in bad.text


def test_hostile_input_is_bounded_and_escaped(client):
    r = client.get("/themes", params={"find": "<script>x</script>", "festival": "11.11"})
    assert r.status_code == 200 and "<script>x</script>" not in r.text
    long = client.get("/themes", params={"query": "x" * 20_001})
    assert long.status_code == 422
    many = client.get("/themes?" + urlencode({"add": [f"P{i}" for i in range(60)]}, doseq=True))
    assert many.status_code == 422
    assert TestClient(client.app).get("/themes", follow_redirects=False).status_code in (303, 401)
