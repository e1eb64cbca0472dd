"""The operator's pages in Chinese and English on a small built shop: Chinese by default for a
CNY shop, English by the ``language`` setting, ``?lang=`` switches and is remembered; no page
shows an internal state name (``registered_no_cart``) where the operator reads; numbers, days
and money in the page's locale."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from archer.audiences import service as audiences
from archer.campaigns import service as campaigns
from archer.customers.lifecycle import LIFECYCLE_STATES, STAGES
from archer.web import create_app
from archer.web.ui.words import WORDS
from test_web_pages import EVIL_ID, make_shop, sign_in

HIDDEN = {"script", "style", "textarea", "code", "pre", "template"}
INTERNAL = sorted({n for kind in WORDS.values() for n in kind if "_" in n})


class VisibleText(HTMLParser):
    """The text a reader sees: no scripts, no attributes, no code or the query being edited
    (those hold the audience language, whose values are the internal names on purpose)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.cells: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in HIDDEN:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in HIDDEN and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth and data.strip():
            self.cells.append(data.strip())


def visible(html: str) -> list[str]:
    p = VisibleText()
    p.feed(html)
    return p.cells


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws = make_shop(tmp_path_factory.mktemp("i18n"), customers=300)
    audiences.save(ws, "win-back", 'lifecycle = "lapsing" or stage = "potential"', user="alice")
    raw = {**campaigns.template("unpaid-reminders"), "name": "unpaid"}
    campaigns.create(ws, raw, user="alice", template_name="unpaid-reminders")
    return ws


@pytest.fixture(scope="module")
def client(shop):
    with TestClient(create_app(shop, sync_every=None), follow_redirects=False) as c:
        sign_in(c)
        yield c


PAGES = ["/", "/customers", f"/customers/{EVIL_ID}", "/audiences", "/audiences/win-back",
         "/customers?q=n_orders%20%3E%3D%200", "/campaigns", "/campaigns/unpaid",
         "/offers", "/o2o", "/data", "/themes"]  # fmt: skip


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("path", PAGES)
def test_no_page_shows_an_internal_state_name(client, path, lang):
    sep = "&" if "?" in path else "?"
    r = client.get(f"{path}{sep}lang={lang}")
    assert r.status_code == 200, r.text
    assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in r.text
    cells = visible(r.text)
    text = "\n".join(cells)
    shown = [name for name in INTERNAL if re.search(rf"\b{name}\b", text)]
    assert not shown, f"{path} ({lang}) shows {shown}"
    if lang == "zh":  # the one-word states neither, as the whole of a cell or tag
        bare = set(LIFECYCLE_STATES) | set(STAGES) | set(WORDS["tier"]) | set(WORDS["message"])
        assert not bare & set(cells), f"{path} shows {bare & set(cells)}"


def test_states_are_words_in_chinese(client):
    html = client.get("/?lang=zh").text
    for word in ("注册未加购", "加购未下单", "首购客户", "复购客户", "潜在客户"):
        assert word in html
    assert "概览" in html and "营销活动" in html and "退出登录" in html
    member = client.get("/audiences/win-back?lang=zh").text
    assert "流失预警" in member or "潜在客户" in member


def test_chinese_by_default_and_the_switch_is_remembered(shop):
    with TestClient(create_app(shop, sync_every=None), follow_redirects=False) as c:
        sign_in(c)
        first = c.get("/")
        assert '<html lang="zh-CN">' in first.text and ">English</a>" in first.text
        assert 'href="/?lang=en"' in first.text  # the switch in the header
        en = c.get("/audiences?lang=en")
        assert en.cookies.get("archer_lang") == "en" and "Saved audiences" in en.text
        again = c.get("/data")
        assert '<html lang="en">' in again.text and "Build the profiles" in again.text


def test_the_language_setting_picks_english(shop):
    english = shop.settings.model_copy(update={"language": "en"})
    with TestClient(create_app(english, sync_every=None), follow_redirects=False) as c:
        sign_in(c)
        html = c.get("/").text
        assert '<html lang="en">' in html and "Lifecycle states" in html
        assert '<html lang="zh-CN">' in c.get("/?lang=zh").text


def test_numbers_days_and_money_in_the_page_locale(client):
    zh = client.get("/?lang=zh").text
    en = client.get("/?lang=en").text
    assert "截至 2026年9月30日" in zh
    assert "as of Sep 30, 2026" in en


def _csrf(client) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/audiences").text).group(1)


def test_the_editor_counts_a_full_width_query_and_says_it_normalised_it(client):
    token = _csrf(client)
    typed = "lifecycle in （「lapsing」，“lost”） and n_orders ＞＝ 1"
    plain = 'lifecycle in ("lapsing","lost") and n_orders >= 1'
    got = client.post("/ui/audiences/count", json={"query": typed}, headers={"X-CSRF-Token": token})
    want = client.post(
        "/ui/audiences/count", json={"query": plain}, headers={"X-CSRF-Token": token}
    )
    assert got.status_code == 200 and got.json()["count"] == want.json()["count"] > 0
    assert got.json()["normalised"] == ["（ → (", "「 → \"", "」 → \"", "， → ,", "“ → \"",
                                        "” → \"", "） → )", "＞ → >", "＝ → ="]  # fmt: skip
    assert got.json()["normalised_query"] == plain and want.json()["normalised"] == []
    r = client.post("/audiences", data={"csrf": token, "name": "全角", "query": typed})
    assert r.status_code == 303
    assert audiences.get(client.app.state.ws, "全角")["query"] == plain  # saved as it was read


def test_the_editor_has_a_reference_and_autocomplete_values(client):
    html = client.get("/audiences?lang=zh").text
    assert 'id="reference"' in html and "<code>lifecycle</code>" in html
    assert "<code>bought(…)</code>" in html and "注册未加购" in html
    assert 'data-reference="/ui/audiences/reference"' in html and 'id="suggest"' in html
    ref = client.get("/ui/audiences/reference").json()
    fields = {f["name"]: f for f in ref["fields"]}
    assert fields["lifecycle"]["values"] == list(LIFECYCLE_STATES)
    assert fields["province"]["values"] and fields["total_spent"]["type"] == "number"
    assert {p["name"] for p in ref["predicates"]} >= {"bought", "searched", "carted"}
