"""The shop's own member fields (issue 12, item 6): ``[fields.NAME]`` in archer.toml names a
column of the member export kept in ``customers.attributes``, with a type; the build adds it to
the profile and the audience language, exports and did-you-mean know it."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from archer.audiences.grammar import AudienceError
from archer.cli import app
from archer.pipeline import build
from archer.workspace import open_workspace
from conftest import run_import, write
from support import workspace

MEMBERS = """customer_id,name,会员等级,积分,老客,生日卡
c1,张三,VIP2,"1,200",是,2026-05-01
c2,李四,VIP3,abc,否,
c3,王五,VIP1,30,yes,not a date
c4,赵六,,5000,,2026-01-31
"""
FIELDS = """
[fields.member_level]
source = "会员等级"
doc = "VIP level"
[fields.shop_points]
source = "积分"
type = "number"
[fields.returning]
source = "老客"
type = "bool"
[fields.card_day]
source = "生日卡"
type = "date"
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("fields")
    ws = workspace(root / "shop")
    with (ws.home / "archer.toml").open("a", encoding="utf-8") as f:
        f.write(FIELDS)
    ws = open_workspace(ws.home)
    assert run_import(ws, "customers", write(root / "members.csv", MEMBERS)).rejected == 0
    orders = (
        "order_id,customer_id,created_at,paid_at,status,goods_amount\n"
        "o1,c1,2026-02-01 10:00,2026-02-01 10:05,paid,99\n"
    )
    assert run_import(ws, "orders", write(root / "orders.csv", orders)).rejected == 0
    build(ws, date(2026, 2, 28))
    return ws


def test_declared_fields_are_profile_columns_of_their_type(shop):
    p = shop.view("customer_profile").set_index("customer_id")
    assert p.member_level.to_dict() == {"c1": "VIP2", "c2": "VIP3", "c3": "VIP1", "c4": None}
    points = p.shop_points.to_dict()
    assert points["c1"] == 1200 and points["c3"] == 30 and points["c4"] == 5000
    assert points["c2"] != points["c2"]  # "abc" is not a number: null, the build went on
    assert p.returning.to_dict() == {"c1": True, "c2": False, "c3": True, "c4": None}
    assert str(p.card_day["c1"])[:10] == "2026-05-01" and p.card_day.isna()["c3"]


def test_the_audience_language_knows_them(shop):
    count = lambda q: shop.audiences.count(q)["count"]  # noqa: E731
    assert count('member_level in ("VIP2", "VIP3")') == 2
    assert count("shop_points > 1000") == 2 and count("shop_points is null") == 1
    assert count("returning") == 2 and count("card_day within 60d") == 1  # c4, 2026-01-31
    assert count('member_level = "vip2"') == 1  # the stored spelling is found
    with pytest.raises(AudienceError, match="did you mean 'member_level'"):
        count('member_levl = "VIP2"')
    with pytest.raises(AudienceError, match="no customer has member_level 'VIP9'"):
        count('member_level = "VIP9"')


def test_exports_carry_them(shop, tmp_path):
    shop.audiences.save("vips", 'member_level in ("VIP2", "VIP3")', user="analyst")
    got = shop.audiences.export(
        "vips", tmp_path / "vips.csv", fields=["member_level", "shop_points"]
    )
    assert got["rows"] == 2 and got["fields"] == ["customer_id", "member_level", "shop_points"]
    text = (tmp_path / "vips.csv").read_text(encoding="utf-8-sig")
    assert "c1,VIP2,1200" in text


@pytest.mark.parametrize(
    "toml, says",
    [
        ('[fields.NetSpent]\nsource = "x"\n', "lower-case letters"),
        ('[fields.net_spent]\nsource = "x"\n', "one of Archer's own fields"),
        ('[fields.level]\nsource = "x"\ntype = "money"\n', "fields.level.type"),
        ('[fields.level]\nsource = ""\n', "fields.level.source"),
    ],
)
def test_a_bad_declaration_is_refused_with_what_was_expected(tmp_path, toml, says):
    ws = workspace(tmp_path / "shop")
    with (ws.home / "archer.toml").open("a", encoding="utf-8") as f:
        f.write("\n" + toml)
    r = CliRunner().invoke(app, ["audience", "count", "net_spent > 1", "--home", str(ws.home)])
    assert r.exit_code == 1 and says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
