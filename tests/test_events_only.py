"""Shops that imported only part of what a funnel needs (issue 12, items 4 and 5): a shop with
events alone has its identified users as customers, and a funnel step the imported data
cannot tell is shown as unknown with a note, never as a made-up 100% step."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest
from typer.testing import CliRunner

from archer.analytics.funnel import NOTES, funnel_steps
from archer.analytics.reports import affinities_report, funnel_report
from archer.cli import app
from archer.pipeline import build
from conftest import run_import, write
from support import workspace

DAY0 = datetime(2026, 3, 1, 2)  # 10:00 in Shanghai


def _events(n_users: int, seed: int) -> tuple[str, dict[str, set[str]]]:
    """A log of views, favourites and cart adds by ``n_users`` identified users and some
    anonymous ones, and who did what (the plain count the funnel must agree with)."""
    rnd = random.Random(seed)
    did: dict[str, set[str]] = {"view": set(), "cart_add": set(), "favorite": set()}
    lines, k = [], 0
    for u in range(n_users):
        for _ in range(rnd.randint(1, 6)):
            kind = rnd.choices(("view", "cart_add", "favorite"), (8, 2, 1))[0]
            k += 1
            at = DAY0 + timedelta(days=rnd.randint(0, 20), minutes=rnd.randint(0, 600))
            lines.append(f"e{k},u{u},,{kind},{at:%Y-%m-%d %H:%M},p{rnd.randint(1, 30)},c1")
            did[kind].add(f"u{u}")
    for a in range(10):  # anonymous browsing: no one's customer
        k += 1
        lines.append(f"e{k},,anon{a},view,{DAY0:%Y-%m-%d %H:%M},p1,c1")
    head = "event_id,customer_id,anonymous_id,type,occurred_at,product_id,category\n"
    return head + "\n".join(lines) + "\n", did


@pytest.fixture(scope="module")
def events_shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("events-only")
    ws = workspace(root / "shop")
    text, did = _events(120, seed=3)
    assert run_import(ws, "events", write(root / "events.csv", text)).rejected == 0
    build(ws, date(2026, 3, 31))
    return ws, did


def test_a_shop_with_only_events_has_its_users_as_customers(events_shop):
    """120 identified users, no members file: 120 customers, each registered at their first
    event, with behaviour in the profile; the anonymous browsers are not customers."""
    ws, did = events_shop
    users = did["view"] | did["cart_add"] | did["favorite"]
    p = ws.view("customer_profile")
    assert len(p) == len(users) == 120 and set(p.customer_id) == users
    states = p.lifecycle.value_counts().to_dict()
    assert states == {"registered_no_cart": 120 - len(did["cart_add"]),
                      "cart_no_order": len(did["cart_add"])}  # fmt: skip
    assert ws.audiences.count("lifecycle = 'cart_no_order'")["count"] == len(did["cart_add"])
    e = ws.view("events")
    first = e[e.customer_id.notna()].groupby("customer_id").occurred_at.min()
    assert (
        p.set_index("customer_id")
        .registered_at.sort_index()
        .equals(first.sort_index().rename("registered_at"))
    )  # registered at their first event


def test_the_funnel_of_an_events_only_shop_counts_what_the_file_says(events_shop):
    """Viewed and carted people equal a plain count over the file; visits and orders were
    never imported, so those steps are unknown (null) and the report says why."""
    ws, did = events_shop
    doc = funnel_report(ws)
    row = doc["rows"][0]
    assert row["registered"] == 120
    assert row["did_view"] == len(did["view"]) and row["did_cart"] == len(did["cart_add"])
    assert row["viewed"] == len(did["view"] | did["cart_add"])  # reached: viewed or carted
    assert row["carted"] == len(did["cart_add"])
    for step in ("visitors", "ordered", "paid", "repeated", "did_visit"):
        assert row[step] is None, step
    assert doc["notes"] == [NOTES["visitors"], NOTES["ordered"]]
    steps = {s["step"]: s for s in funnel_steps(row)}
    assert steps["registered"]["overall_conversion"] == 1.0  # the first known step
    assert steps["viewed"]["step_conversion"] == pytest.approx(row["viewed"] / 120)
    assert steps["visitors"]["count"] is None and steps["paid"]["step_conversion"] is None
    r = CliRunner().invoke(app, ["funnel", "--home", str(ws.home)])
    assert r.exit_code == 0, r.output
    assert "no visit events were imported" in r.stdout and "no orders were imported" in r.stdout


def test_an_orders_only_shop_shows_no_made_up_visit_view_or_cart_steps(tmp_path):
    """Members and orders, no events: visitors, viewed and carted are unknown; ordered is
    counted over registered (the nearest known step), not over a made-up cart step."""
    ws = workspace(tmp_path / "shop")
    people = "customer_id,name,registered_at\n" + "".join(
        f"c{i},客户{i},2026-01-0{1 + i % 9} 10:00\n" for i in range(40)
    )
    orders = "order_id,customer_id,created_at,paid_at,status,goods_amount\n" + "".join(
        f"o{i},c{i % 10},2026-02-0{1 + i % 9} 10:00,2026-02-0{1 + i % 9} 10:05,paid,50\n"
        for i in range(25)
    )
    for table, text in (("customers", people), ("orders", orders)):
        assert run_import(ws, table, write(tmp_path / f"{table}.csv", text)).rejected == 0
    build(ws, date(2026, 2, 28))
    doc = funnel_report(ws)
    row = doc["rows"][0]
    assert (row["registered"], row["ordered"], row["paid"]) == (40, 10, 10)
    assert row["visitors"] is row["viewed"] is row["carted"] is None
    assert row["ordered_rate"] == pytest.approx(10 / 40) and row["paid_rate"] == 1.0
    assert doc["notes"] == [NOTES["visitors"], NOTES["viewed"], NOTES["carted"]]
    from archer.analytics.overview import overview

    o = overview(ws)
    assert [s["people"] for s in o["funnel"]] == [None, 40, None, None, 10, 10, row["repeated"]]
    assert o["funnel_notes"] == doc["notes"]


def test_affinities_without_categories_fall_back_to_named_products(tmp_path):
    """A catalogue with no categories (as Online Retail's): the category pairs would be empty,
    so the report gives product pairs, says so, and names the products."""
    ws = workspace(tmp_path / "shop")
    files = {
        "customers": "customer_id,name\n" + "".join(f"c{i},客户{i}\n" for i in range(6)),
        "products": "product_id,name\nP1,WHITE HANGING HEART T-LIGHT HOLDER\nP2,REGENCY CAKESTAND"
        "\nP3,JUMBO BAG RED RETROSPOT\n",
        "orders": "order_id,customer_id,created_at,paid_at,status,goods_amount\n"
        + "".join(
            f"o{i},c{i},2026-02-0{1 + i} 10:00,2026-02-0{1 + i} 10:05,paid,30\n" for i in range(6)
        ),  # fmt: skip
        "order_items": "order_id,line_no,product_id,quantity,unit_price\n"
        + "".join(f"o{i},1,P1,1,10\no{i},2,P2,1,10\n" for i in range(4))
        + "o4,1,P3,1,10\no5,1,P3,1,10\no5,2,P1,1,10\n",
    }
    for table, text in files.items():
        assert run_import(ws, table, write(tmp_path / f"{table}.csv", text)).rejected == 0
    build(ws, date(2026, 2, 28))
    doc = affinities_report(ws)
    assert doc["level"] == "product" and doc["notes"]
    top = doc["rows"][0]
    assert {top["antecedent"], top["consequent"]} == {"P1", "P2"} and top["pair_count"] == 4
    assert top["antecedent_name"] in ("WHITE HANGING HEART T-LIGHT HOLDER", "REGENCY CAKESTAND")
    r = CliRunner().invoke(app, ["affinities", "--home", str(ws.home)])
    assert r.exit_code == 0, r.output
    assert "REGENCY CAKESTAND (P2)" in r.stdout and "the pairs are of products" in r.stdout
