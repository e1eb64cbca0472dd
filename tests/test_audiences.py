"""The audience language (issue 5): the operators' queries select exactly the customers an
independent SQL query selects; errors say where and what; hostile text changes nothing."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archer.audiences import AudienceError, count, explain, members, parse
from archer.audiences import catalog as cat
from archer.pipeline import build
from test_profile import load_sample

pytestmark = pytest.mark.xdist_group("audiences")

AS_OF = date(2026, 10, 31)
CUT = "timestamp '2026-10-31 16:00:00'"  # end of the as-of day in Asia/Shanghai, in UTC
SAVED = {
    "vip": 'value_tier = "top"',
    "complained": "refunded(within = 180d)",
    "loop_a": 'in_audience("loop_b")',
    "loop_b": 'in_audience("loop_a")',
}


def resolve(name: str) -> str:
    if name not in SAVED:
        raise KeyError(name, tuple(SAVED))
    return SAVED[name]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws, truth = load_sample(tmp_path_factory, "audiences", customers=2_500, seed=21)
    build(ws, AS_OF)
    return ws


def sql(ws, query: str) -> set[str]:
    con = duckdb.connect(str(ws.home / "warehouse.duckdb"), read_only=True)
    try:
        return {r[0] for r in con.sql(query).fetchall()}
    finally:
        con.close()


def ids(ws, query: str) -> set[str]:
    return set(members(ws, query, resolve=resolve).customer_id)


# Member events: an event's person is its customer_id, else the member its device is linked to.
EVENTS = f"""
  with links as (select anonymous_id, min(customer_id) person from events
                 where anonymous_id is not null and customer_id is not null
                   and occurred_at < {CUT} group by 1)
  select coalesce(e.customer_id, l.person) as person, e.*, p.category as pcat
  from events e left join links l using (anonymous_id)
  left join products p using (product_id)
  where e.occurred_at < {CUT} and coalesce(e.customer_id, l.person) is not null"""

CASES = {
    'total_spent >= 500 and province in ("Jiangsu", "Zhejiang", "Shanghai")': """
        select customer_id from customer_profile
        where total_spent >= 500 and province in ('Jiangsu', 'Zhejiang', 'Shanghai')""",
    'lifecycle = "ordered_unpaid" and unpaid_order_age >= 1d': """
        select customer_id from customer_profile
        where lifecycle = 'ordered_unpaid' and unpaid_order_age_days >= 1""",
    'rfm_segment in ("At risk", "Can\'t lose") and email_reachable': """
        select customer_id from customer_profile
        where rfm_segment in ('At risk', 'Can''t lose') and email_reachable""",
    'bought(category = "chocolate", within = 90d) '
    'and not bought(category = "chocolate", within = 14d)': f"""
        with lines as (
          select o.customer_id, o.paid_at from orders o join order_items i using (order_id)
          join products p using (product_id)
          where p.category = 'chocolate' and o.paid_at < {CUT} and o.customer_id is not null)
        select customer_id from customer_profile
        where customer_id in (select customer_id from lines
                              where paid_at >= {CUT} - interval 90 day)
          and customer_id not in (select customer_id from lines
                                  where paid_at >= {CUT} - interval 14 day)""",
    'searched("gift", within = 30d) or viewed(category = "skincare", within = 7d, count >= 3)': f"""
        with e as ({EVENTS})
        select customer_id from customer_profile where customer_id in (
          select person from e where type = 'search' and lower(query) like '%gift%'
            and occurred_at >= {CUT} - interval 30 day)
        or customer_id in (
          select person from e where type = 'view' and coalesce(category, pcat) = 'skincare'
            and occurred_at >= {CUT} - interval 7 day group by person having count(*) >= 3)""",
    "days_since_last_order > lapse_threshold and p_alive >= 0.3": """
        select customer_id from customer_profile
        where days_since_last_order > lapse_threshold_days and p_alive >= 0.3""",
    'birthday within 7d and stage = "loyal"': """
        select customer_id from customer_profile
        where days_to_birthday between 0 and 7 and stage = 'loyal'""",
    "favorited(within = 30d) and not ordered(within = 30d)": f"""
        with e as ({EVENTS})
        select customer_id from customer_profile
        where customer_id in (select person from e where type = 'favorite'
                              and occurred_at >= {CUT} - interval 30 day)
          and customer_id not in (select customer_id from orders where customer_id is not null
                                  and created_at >= {CUT} - interval 30 day
                                  and created_at < {CUT})""",
    'gender = "f" and age between 25 and 35 and top_category = "apparel"': """
        select customer_id from customer_profile
        where gender = 'f' and age between 25 and 35 and top_category = 'apparel'""",
    'in_audience("vip") and not in_audience("complained")': f"""
        select customer_id from customer_profile where value_tier = 'top'
          and customer_id not in (
            select o.customer_id from refunds r join orders o using (order_id)
            where r.refunded_at < {CUT} and r.refunded_at >= {CUT} - interval 180 day
              and o.customer_id is not null)""",
    "viewed(count < 3)": f"""
        with e as ({EVENTS})
        select customer_id from customer_profile where customer_id not in (
          select person from e where type = 'view' group by person having count(*) >= 3)""",
    "not total_spent >= 500": """
        select customer_id from customer_profile where not coalesce(total_spent >= 500, false)""",
    'ordered(paid = false, within = 60d) and province = "江苏"': f"""
        select customer_id from customer_profile where province = 'Jiangsu'
          and customer_id in (select customer_id from orders where created_at < {CUT}
            and created_at >= {CUT} - interval 60 day and (paid_at is null or paid_at >= {CUT}))
        """,
}


@pytest.mark.parametrize("query", list(CASES))
def test_queries_select_what_plain_sql_selects(shop, query):
    got = ids(shop, query)
    want = sql(shop, CASES[query])
    assert got == want
    assert count(shop, query, resolve=resolve)["count"] == len(want)


def test_the_examples_are_not_trivially_empty(shop):
    sizes = {q: len(ids(shop, q)) for q in CASES}
    non_trivial = [q for q, n in sizes.items() if 0 < n < 2_500]
    assert len(non_trivial) >= len(CASES) - 2, sizes


def test_each_top_level_clause_is_counted_alone(shop):
    q = 'total_spent >= 500 and province in ("Jiangsu", "Zhejiang") and email_reachable'
    r = count(shop, q)
    assert [c["clause"] for c in r["clauses"]] == [
        "total_spent >= 500",
        'province in ("Jiangsu", "Zhejiang")',
        "email_reachable",
    ]
    for c in r["clauses"]:
        assert c["count"] == len(ids(shop, c["clause"]))
    assert r["count"] == len(ids(shop, q)) <= min(c["count"] for c in r["clauses"])
    assert r["customers"] == 2_500 and r["as_of"] == AS_OF.isoformat()


def test_explain_shows_the_values_behind_each_clause(shop):
    q = 'total_spent >= 500 and bought(category = "snacks") and not email_reachable'
    someone = sorted(ids(shop, q))[0]
    r = explain(shop, q, someone, resolve=resolve)
    assert r["member"] is True and all(c["result"] for c in r["clauses"][:2])
    spent, bought, reach = r["clauses"]
    assert spent["values"]["total_spent"] >= 500 and "total_spent is" in spent["words"]
    assert bought["values"]["count"] >= 1 and bought["clause"] == 'bought(category = "snacks")'
    assert reach["values"] == {"email_reachable": False} and reach["result"] is False
    outsider = sorted(set(ids(shop, "total_spent < 100")))[0]
    r = explain(shop, q, outsider)
    assert r["member"] is False and r["clauses"][0]["result"] is False
    with pytest.raises(AudienceError, match="no customer 'nobody'"):
        explain(shop, q, "nobody")


ERRORS = [
    ('provnce = "Jiangsu"', "unknown field 'provnce' at 1:1", "province"),
    ('total_spent >= "abc"', "total_spent is a number", None),
    ('province = "Jiangsuu"', "no customer has province 'Jiangsuu' at 1:12", "Jiangsu"),
    ('lifecycle = "lapsed"', "no customer has lifecycle 'lapsed'", "lapsing"),
    ("bougth(within = 3d)", "unknown predicate 'bougth' at 1:1", "bought"),
    ('bought(categroy = "tea")', "bought has no argument 'categroy'", "category"),
    ('bought(category = "choclate")', "no category 'choclate'", "chocolate"),
    ("bought(within = 30)", "within takes a duration such as 30d, not a number", None),
    ("total_spent >= 500 and", "the query ends too early", None),
    ("total_spent >= 500 500", "unexpected '500' (expected", None),
    ("(total_spent >= 500", "the query ends too early (expected ')'", None),
    ('province = "Jiangsu', 'a text opened with " is never closed at 1:12', None),
    ("province", "province is text, not true or false", None),
    ("age between 30", "the query ends too early", None),
    (
        'in_audience("loop_a")',
        "audience 'loop_a' refers to itself (loop_a → loop_b → loop_a)",
        None,
    ),
    ('in_audience("vipp")', "no saved audience 'vipp'", "vip"),
    ("registered_at within 7", "unexpected '7'", None),
    ("", "the query is empty", None),
    ("email_reachable = 1", "email_reachable is true or false, but 1.0 is a number", None),
    ("total_spent >= 5\n  and provnce = 'x'", "unknown field 'provnce' at 2:7", None),
]


@pytest.mark.parametrize(("query", "message", "suggestion"), ERRORS)
def test_errors_say_where_and_what(shop, query, message, suggestion):
    with pytest.raises(AudienceError) as e:
        count(shop, query, resolve=resolve)
    assert message in str(e.value)
    if suggestion is not None:
        assert suggestion in e.value.suggestions
    assert e.value.line >= 1 and e.value.column >= 1


HOSTILE = [
    '"; drop table customers; --',
    'name = "\'); drop table customers; --"',
    'name = "\\"; delete from orders; --"',
    "name = '\u0000'",
    'name = "张伟" or name = "😀"',
    "total_spent >= 1e309",
    "(" * 5000 + "x" + ")" * 5000,
    "total_spent >= 1 and " * 60_000 + "x",
    "total_spent >= -1 and not not not not email_reachable",
    "\ufeffemail_reachable",
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_refused_or_harmless(shop, query):
    before = sql(shop, "select count(*)::varchar from customers")
    try:
        r = count(shop, query)
        assert 0 <= r["count"] <= 2_500
    except AudienceError as e:
        assert e.line >= 1 and e.column >= 1
    assert sql(shop, "select count(*)::varchar from customers") == before == {"2500"}


TOKENS = st.sampled_from(
    [
        "total_spent", "province", "bought", "(", ")", ",", "=", ">=", "<", "and", "or", "not",
        "in", "between", "is", "null", "within", '"Jiangsu"', "'x'", "500", "-3.5", "7d", "2m",
        "2026-01-31", "2026-02-30", "true", "category", "count", "email_reachable", "age",
        "in_audience", '"vip"', "birthday", "lifecycle", '"lost"', "viewed", "\\", '"', "!",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), st.lists(TOKENS, max_size=14).map(" ".join)))
def test_any_text_parses_or_gets_a_positioned_error(text):
    try:
        parse(text)
    except AudienceError as e:
        assert e.line >= 1 and e.column >= 1 and str(e)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(TOKENS, min_size=1, max_size=12).map(" ".join))
def test_any_token_soup_counts_or_gets_a_positioned_error(shop, text):
    try:
        r = count(shop, text, resolve=resolve)
        assert 0 <= r["count"] <= r["customers"]
    except AudienceError as e:
        assert e.line >= 1 and e.column >= 1 and str(e)


DOC = Path(__file__).resolve().parents[1] / "docs" / "audiences.md"


def _block(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]


def test_reference_names_every_field_with_its_type_and_a_working_example(shop):
    from archer.audiences.evaluate import base_table

    rows = re.findall(r"^\| (`[^|]+`) \| (\w+) \| `(.+)` \|$", _block("fields"), flags=re.M)
    documented = {}
    for names, kind, example in rows:
        for name in re.findall(r"`(\w+)`", names):
            documented[name] = (kind, example)
    with shop.warehouse() as wh:
        schema = base_table(wh).schema()
    fields = {n: cat.language_type(n, schema[n]) for n in schema.names if n != "as_of"}
    assert set(documented) == set(fields) | set(cat.ALIASES)
    for name, (kind, example) in documented.items():
        want = fields[cat.ALIASES.get(name, name)]
        assert kind == {"timestamp": "time"}.get(want, want), name
        assert count(shop, example)["count"] >= 0, example  # every example is a valid query


def test_reference_names_every_predicate_with_its_arguments_and_working_examples(shop):
    block = _block("predicates")
    sections = dict(re.findall(r"^### `(\w+)`\n(.*?)(?=^### |\Z)", block, flags=re.M | re.S))
    assert set(sections) == {*cat.PREDICATES, cat.REFERENCE}
    for name, spec in cat.PREDICATES.items():
        for arg in spec.args:
            assert f"`{arg}`" in sections[name], (name, arg)
        for example in re.findall(r"```\n(.*?)```", sections[name], flags=re.S):
            for line in example.strip().splitlines():
                try:
                    count(shop, line)
                except AudienceError as e:  # a brand or product the sample lacks is fine
                    assert "no brand" in str(e) or "no customer has occupation" in str(e), e
