"""Spend in words (issue 12, item 9): the audience language names the spend before refunds
``gross_spent`` (``total_spent``, the profile's column, still works) and after refunds
``net_spent``, and its field reference says which is which. A customer who paid 600 and got 400
back spent 500 or more before refunds, not after. Real workspace in tmp_path, a real build."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from archer.audiences import AudienceError, count, members
from archer.audiences import catalog as cat
from archer.audiences.evaluate import reference
from archer.config import CustomField, check_custom_fields
from archer.pipeline import build
from archer.store import users, utcnow
from archer.web import create_app
from archer.web.ui import audiences as audience_pages
from archer.web.ui import i18n
from conftest import run_import, write
from support import workspace

CUSTOMERS = (
    "customer_id,name,province\nr600,退货多,Jiangsu\nk700,没退货,Jiangsu\ns100,小客户,Zhejiang\n"
)
ORDERS = """order_id,customer_id,created_at,paid_at,status,goods_amount,paid_amount
o1,r600,2026-03-01 10:00,2026-03-01 10:05,paid,600,600
o2,k700,2026-03-02 10:00,2026-03-02 10:05,paid,700,700
o3,s100,2026-03-03 10:00,2026-03-03 10:05,paid,100,100
"""
REFUNDS = "refund_id,order_id,refunded_at,amount\nf1,o1,2026-03-10 09:00,400\n"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("spend")
    ws = workspace(root / "shop")
    for table, text in (("customers", CUSTOMERS), ("orders", ORDERS), ("refunds", REFUNDS)):
        r = run_import(ws, table, write(root / f"{table}.csv", text))
        assert r.rejected == 0, r.reasons
    build(ws, date(2026, 3, 31))
    return ws


def who(ws, query: str) -> set[str]:
    return set(members(ws, query).customer_id)


def test_a_customer_refunded_400_of_600_spent_500_before_refunds_not_after(shop):
    assert who(shop, "gross_spent >= 500") == {"r600", "k700"}
    assert who(shop, "total_spent >= 500") == {"r600", "k700"}  # the former name still works
    assert who(shop, "net_spent >= 500") == {"k700"}
    assert who(shop, 'net_spent >= 500 and province in ("Jiangsu", "Zhejiang")') == {"k700"}
    assert count(shop, "gross_spent >= 500 and net_spent < 500")["count"] == 1
    got = members(shop, 'name = "退货多"', fields=["gross_spent", "total_spent", "net_spent",
                                                   "total_refunded"]).iloc[0]  # fmt: skip
    assert (got.gross_spent, got.total_spent, got.net_spent, got.total_refunded) == (
        600,
        600,
        200,
        400,
    )


def test_did_you_mean_knows_both_names(shop):
    for typo, meant in (("gros_spent", "gross_spent"), ("net_spnt", "net_spent")):
        with pytest.raises(AudienceError) as e:
            count(shop, f"{typo} >= 500")
        assert meant in e.value.suggestions, (typo, e.value.suggestions)


def test_the_catalog_says_before_and_after_refunds():
    assert cat.ALIASES["gross_spent"] == "total_spent"
    assert "before refunds" in cat.FIELD_DOCS["gross_spent"]
    assert "after refunds" in cat.FIELD_DOCS["net_spent"]
    assert "before refunds" in cat.FIELD_DOCS["total_spent"]
    assert "gross_spent" in cat.FIELD_DOCS["total_spent"]


def test_the_reference_shows_both_names_with_their_meaning(shop):
    fields = {f["name"]: f for f in reference(shop)["fields"]}
    assert fields["gross_spent"]["type"] == fields["net_spent"]["type"] == "number"
    assert "before refunds" in fields["gross_spent"]["doc"]
    assert "before refunds" in fields["total_spent"]["doc"]
    assert "after refunds" in fields["net_spent"]["doc"]
    assert fields["province"]["doc"] == ""  # a name that says it all gets no words


def test_the_pages_words_are_the_catalogs_and_have_their_chinese():
    marked = audience_pages.FIELD_DOCS
    assert marked == cat.FIELD_DOCS  # the same texts, marked for the catalogue
    zh = i18n.translations("zh").gettext
    for name, text in marked.items():
        assert zh(text) != text, name
    assert "退款后" in zh(marked["net_spent"]) and "退款前" in zh(marked["gross_spent"])


def test_a_custom_field_may_not_take_the_alias():
    with pytest.raises(ValueError, match="one of Archer's own fields"):
        check_custom_fields({"gross_spent": CustomField(source="累计消费")})


@pytest.mark.parametrize(
    ("lang", "gross", "net"),
    [("en", "spent before refunds", "spent after refunds"), ("zh", "退款前的消费", "退款后的消费")],
)
def test_the_audience_page_shows_the_meaning_beside_the_names(shop, tmp_path, lang, gross, net):
    ws = shop.replace(**{"database": f"sqlite:///{tmp_path / 'archer.db'}"})
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
    with TestClient(create_app(ws, sync_every=None), follow_redirects=False) as c:
        c.cookies.set("archer_lang", lang)
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        login = {"username": "alice", "password": PASSWORD, "csrf": token}
        assert c.post("/login", data=login).status_code == 303
        html = c.get("/audiences").text
    table = re.search(r'<table class="list small" id="reference-fields">(.*?)</table>', html, re.S)
    assert table is not None
    rows = {
        m[1]: m[2]
        for m in re.finditer(r"<tr><td><code>(\w+)</code>(.*?)</td>", table[1], flags=re.S)
    }
    assert gross in rows["gross_spent"] and gross in rows["total_spent"]
    assert net in rows["net_spent"] and "field-doc" not in rows["province"]
    assert 'placeholder=\'net_spent >= 500 and province in ("Jiangsu"' in html
