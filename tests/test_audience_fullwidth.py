"""The audience language as a Chinese keyboard types it: full-width quotes, brackets, commas
and comparison signs are read as their ASCII (outside quoted texts), one character for one, so
the places of errors stay where they were typed."""

from __future__ import annotations

import pytest

from archer.audiences.grammar import AudienceError, normalise, parse

CASES = [
    ("province = “江苏” and total_spent ＞＝ 500", 'province = "江苏" and total_spent >= 500'),
    ("lifecycle in （「lapsing」，‘lost’）", "lifecycle in (\"lapsing\",'lost')"),
    ("stage ＝ 『loyal』 and n_orders ！＝ ３", 'stage = "loyal" and n_orders != 3'),
    ("city in (“南京”、“苏州”)", 'city in ("南京","苏州")'),
    ("n_orders　>= 1", "n_orders >= 1"),
]


@pytest.mark.parametrize(("typed", "ascii_"), CASES)
def test_full_width_punctuation_reads_as_ascii(typed, ascii_):
    fixed, notes = normalise(typed)
    assert fixed == ascii_ and len(fixed) == len(typed) and notes
    assert parse(typed) == parse(ascii_)  # the same tree, at the same places


def test_what_a_text_holds_is_kept():
    fixed, notes = normalise('name = "张，三（小）" and city = “南京，江苏”')
    assert fixed == 'name = "张，三（小）" and city = "南京，江苏"'
    assert notes == ['“ → "', '” → "']
    assert normalise('x = "a\\"，b" and y ＞ 1')[0] == 'x = "a\\"，b" and y > 1'


def test_the_notes_say_what_was_changed():
    assert normalise("a ＞ 1，")[1] == ["＞ → >", "， → ,"]
    assert normalise("a > 1") == ("a > 1", [])
    assert normalise("a　> 1")[1] == ["full-width space → space"]


def test_comparison_signs_and_errors_keep_their_place():
    assert parse("total_spent ≥ 500").op == ">=" and parse("total_spent ≤ 5").op == "<="
    assert parse("n_orders ≠ 1").op == "!="
    typed = "lifecycle ＝ “lost” and （n_orders ＞"
    with pytest.raises(AudienceError) as e:
        parse(typed)
    assert "ends too early" in str(e.value) and e.value.column == len(typed) + 1
