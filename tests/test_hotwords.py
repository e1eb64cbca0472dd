"""Search hot words: cleaning and segmenting queries, the rise test (3 searchers instead of 1
is not hot), and on the sample shop the festival words planted in the 11.11 window found rising
there — with where they lead — while words of other festivals and ordinary words are not;
hostile queries (markup, 10 KB, control characters) come out bounded and clean."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from archer.analytics.hotwords import (
    MAX_QUERY_CHARS,
    Period,
    bh,
    clean_query,
    festival_key,
    festival_window,
    hot_words,
    rise_test,
    words_of,
)
from archer.analytics.reports import snapshot
from archer.errors import Invalid
from archer.festivals import RULES_BY_KEY
from archer.ingest.importer import import_file
from support import sample_shop

START, END = date(2025, 6, 1), date(2025, 11, 30)
AS_OF = date(2025, 11, 30)


def test_queries_are_cleaned_and_bounded():
    # full-width letters and the ideographic space a Chinese keyboard types
    assert clean_query("  ＤＲＥＳＳ\u3000连衣裙 ") == "dress 连衣裙"
    assert clean_query("双十一\x00\x1b[31m\u200b羽绒服") == "双十一[31m羽绒服"
    assert len(clean_query("a" * 10_000)) == MAX_QUERY_CHARS
    assert clean_query(None) == "" and clean_query("\x00\x01") == ""


def test_chinese_queries_are_cut_into_words_and_festival_words_stay_whole():
    assert words_of("双十一羽绒服") == ["双十一", "羽绒服"]
    assert words_of("七夕礼物送女友") == ["七夕礼物", "女友"]  # a planted word stays whole
    assert words_of("母亲节的礼物") == ["母亲节", "礼物"]  # stop word left out
    assert words_of("11.11 deals") == ["11.11", "deals"]
    assert words_of("<script>alert(1)</script>") == ["script", "alert"]


def test_three_instead_of_one_is_not_hot_but_a_real_rise_is():
    t = rise_test(np.array([3, 60, 30]), np.array([1, 5, 30]), 1000, 1000)
    assert t["p_value"][0] > 0.3  # 3 vs 1 in equal periods: p ≈ 0.31
    assert t["p_value"][1] < 1e-9 and t["lift_low"][1] > 4
    assert t["p_value"][2] > 0.4 and t["lift_low"][2] < 1
    assert np.isinf(rise_test(np.array([5]), np.array([0]), 10, 10)["lift"][0])


def test_benjamini_hochberg_matches_the_hand_computed_q_values():
    q = bh(np.array([0.01, 0.04, 0.03, 0.5]))
    assert np.allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5])  # 0.03 × 4/2 > 0.04 × 4/3


def test_festivals_are_named_by_key_name_or_alias():
    assert festival_key("11.11") == festival_key("双十一") == festival_key("singles_day")
    assert festival_key("Mother's Day") == "mothers_day"
    with pytest.raises(Invalid, match="unknown"):
        festival_key("11.12")
    f = festival_window("11.11", AS_OF)
    assert (f.start, f.end) == (date(2025, 10, 31), date(2025, 11, 11))
    with pytest.raises(Invalid, match="at most"):
        Period(date(2020, 1, 1), date(2025, 1, 1)).check()


# -- on the sample shop ------------------------------------------------------------------------
HOSTILE = [
    "<script>alert('x')</script>",
    "羽绒服" + "\x07\x1b" * 10 + "x" * 1_950,  # the importer refuses cells over 2,000
    "\u202e双十一\u202c",
]


def _hostile(sample: Path) -> None:
    """Add searches with hostile queries on 11.11 (a second events file, imported after)."""
    with (sample / "hostile_events.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["event_id", "customer_id", "type", "occurred_at", "query"])
        for i, q in enumerate(HOSTILE):
            w.writerow([f"H{i}", "C0001", "search", "2025-11-10 12:00:00", q])


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("hotwords")
    ws = sample_shop(root, customers=3000, seed=7, start=START, end=END, edit=_hostile)
    r = import_file(ws, "events", root / "sample" / "hostile_events.csv", now=datetime(2026, 1, 1))
    assert r.rejected == 0, r.reasons
    truth = json.loads((root / "sample" / "truth.json").read_text(encoding="utf-8"))
    yield ws, truth
    ws.close()


@pytest.fixture(scope="module")
def singles(shop):
    ws, truth = shop
    w = next(f for f in truth["festivals"] if f["key"] == "singles_day")
    period = Period(date.fromisoformat(w["start"]), date.fromisoformat(w["end"]))
    with snapshot(ws, AS_OF) as snap:
        return hot_words(snap, period, top=30), w


def test_the_truth_names_each_windows_planted_words(shop):
    _, truth = shop
    for w in truth["festivals"]:
        assert w["hot_words"] == list(RULES_BY_KEY[w["key"]].hot_words)


def test_the_planted_11_11_words_rise_in_their_window(singles):
    doc, w = singles
    assert doc["period"]["start"] == "2025-10-31" and doc["baseline"]["end"] == "2025-10-30"
    planted = {x for q in w["hot_words"] for x in words_of(clean_query(q))}
    rising = {r["word"] for r in doc["rising"]}
    assert planted <= rising, planted - rising
    assert rising <= planted, rising - planted  # nothing else is called hot
    for r in doc["rising"]:
        assert r["searchers"] >= 10 and r["q_value"] < 0.01 and r["lift_low"] >= 1.5
        assert 0 < r["buyers"] <= r["viewers"] <= r["searchers"]
        assert r["conversion"] == round(r["buyers"] / r["searchers"], 4)
        assert r["categories"] and r["products"]
    top = [r["word"] for r in doc["words"][:6]]
    assert set(top) == planted


def test_other_festivals_words_are_not_rising_in_the_11_11_window(singles):
    doc, _ = singles
    others = {x for k, r in RULES_BY_KEY.items() if k not in ("singles_day",)
              for q in r.hot_words for x in words_of(clean_query(q))}  # fmt: skip
    others -= {x for q in RULES_BY_KEY["singles_day"].hot_words for x in words_of(clean_query(q))}
    assert not others & {r["word"] for r in doc["rising"]}


def test_outside_any_window_nothing_is_hot(shop):
    ws, _ = shop
    with snapshot(ws, AS_OF) as snap:
        doc = hot_words(snap, Period(date(2025, 7, 10), date(2025, 7, 24)))
    assert doc["searchers"] > 100 and doc["rising"] == []


def test_hostile_queries_come_out_bounded_and_without_control_characters(shop):
    ws, _ = shop
    with snapshot(ws, AS_OF) as snap:
        doc = hot_words(snap, Period(date(2025, 11, 10), date(2025, 11, 10)), top=200,
                        min_count=1)  # fmt: skip
    phrases = [r["word"] for r in doc["phrases"]]
    assert "<script>alert('x')</script>" in phrases  # kept as text: the page escapes it
    assert all(len(p) <= MAX_QUERY_CHARS for p in phrases)
    assert all(ch.isprintable() for p in phrases for ch in p)
    assert any(p.startswith("羽绒服xxx") for p in phrases) and "双十一" in phrases


def test_no_search_data_says_so(shop):
    ws, _ = shop
    with snapshot(ws, AS_OF) as snap:
        doc = hot_words(snap, Period(date(2024, 1, 1), date(2024, 1, 31)))
    assert doc["searchers"] == 0 and doc["words"] == [] and "no search data" in doc["notes"][0]


# -- the CLI, the API and the page ---------------------------------------------------------------
def test_the_cli_answers_json_and_names_a_bad_festival(shop):
    from typer.testing import CliRunner

    from archer.cli import app

    ws, _ = shop
    home = str(ws.settings.home)
    r = CliRunner().invoke(app, ["hotwords", "--home", home, "--festival", "11.11", "--as-of",
                                 "2025-11-30", "--top", "10", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["festival"]["key"] == "singles_day"
    assert "双十一" in {x["word"] for x in doc["rising"]}
    bad = CliRunner().invoke(app, ["hotwords", "--home", home, "--festival", "11.12"])
    assert bad.exit_code == 1 and "unknown" in bad.stderr and "Traceback" not in bad.output


def test_the_api_and_the_page_show_the_words_with_markup_escaped(shop):
    import asyncio
    import re

    import httpx

    from archer.store import apikeys, users, utcnow
    from archer.web import create_app

    ws, _ = shop
    with ws.session(write=True) as s:
        users.create(s, "olga", "s3cret-password", now=utcnow())
        _, key = apikeys.create(s, "t", created_by="test", now=utcnow())
    app = create_app(ws, sync_every=None, round_every=None)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            api = await c.get("/api/hotwords", params={"festival": "11.11", "as_of": "2025-11-30"},
                              headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            bad = await c.get("/api/hotwords", params={"top": 100_000},
                              headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            form = (await c.get("/login")).text
            token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
            await c.post("/login", data={"username": "olga", "password": "s3cret-password",
                                         "csrf": token})  # fmt: skip
            page = await c.get("/hotwords", params={"start": "2025-11-10", "end": "2025-11-10",
                                                    "top": 200, "lang": "en"})  # fmt: skip
            fest = await c.get("/hotwords", params={"festival": "11.11", "lang": "en"})
            wrong = await c.get("/hotwords", params={"festival": "nope", "lang": "en"})
            return api, bad, page, fest, wrong

    api, bad, page, fest, wrong = asyncio.run(go())
    assert api.status_code == 200, api.text
    assert {"双十一", "双11预售"} <= {r["word"] for r in api.json()["rising"]}
    assert bad.status_code == 422
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(" in page.text
    assert fest.status_code == 200 and 'id="rising-table"' in fest.text
    assert 'data-word="双十一"' in fest.text.split('id="words-table"')[0]
    assert wrong.status_code == 200 and "unknown" in wrong.text
