"""Campaign definitions are checked whole before they are stored: every problem with its place."""

from __future__ import annotations

import copy

import pytest
from typer.testing import CliRunner

from archer.campaigns import definition as df
from archer.campaigns import service
from archer.campaigns.definition import CampaignError
from archer.cli import app

BASE = {
    "name": "reminders",
    "trigger": {"on": "order_unpaid"},
    "steps": [
        {"id": "wait", "type": "delay", "for": "1d"},
        {"id": "remind", "type": "message", "channel": "inbox", "subject": "Hi",
         "text": "Order {{ order.order_id }}"},
    ],
}  # fmt: skip


def edited(**changes) -> dict:
    d = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = d
        parts = path.split("__")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node[p]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value
    return d


def problems(ws, raw) -> list[dict]:
    with pytest.raises(CampaignError) as e:
        service.check(ws, raw)
    return e.value.problems


def test_a_valid_definition_passes_and_keeps_its_steps(ws):
    d, notes = service.check(ws, BASE)
    assert [s.id for s in d.steps] == ["wait", "remind"]
    assert d.trigger.key == "order" and d.holdout == 0.10
    assert notes == []  # no conditions to check


def test_an_unknown_field_is_named_with_its_place_and_a_suggestion(ws):
    raw = edited(steps__1__subjet="x")
    (p,) = problems(ws, raw)
    assert p["at"] == 'steps[1] "remind".subjet'
    assert "unknown field 'subjet'" in p["message"] and p["suggestions"] == ["subject"]
    (p,) = problems(ws, edited(holdut=0.2))
    assert p["at"] == "holdut" and p["suggestions"] == ["holdout"]


def test_a_step_that_points_nowhere_is_refused(ws):
    (p,) = problems(ws, edited(steps__0__next="remnid"))
    assert p["at"] == 'steps[0] "wait".next'
    assert "does not exist" in p["message"] and p["suggestions"] == ["remind"]


def test_a_negative_or_malformed_delay_is_refused(ws):
    for bad in ("-3d", "3 days", "0d", ""):
        (p,) = problems(ws, edited(steps__0__for=bad))
        assert p["at"] == 'steps[0] "wait".for', bad
        assert "duration" in p["message"]


def test_a_template_that_does_not_compile_is_refused_with_its_line(ws):
    (p,) = problems(ws, edited(steps__1__text="Hello\n{{ order.order_id }"))
    assert p["at"].startswith('steps[1] "remind".text, line 2')


def test_a_template_that_reaches_for_python_internals_is_refused(ws):
    for text in (
        "{{ ''.__class__.__mro__ }}",
        "{{ customer['__class__'] }}",
        "{{ _private }}",
        "{{ cycler.__init__.__globals__ }}",
    ):
        (p,) = problems(ws, edited(steps__1__text=text))
        assert p["at"].startswith('steps[1] "remind".text'), text
        assert "internals" in p["message"] or "not available" in p["message"], text


def test_unknown_variables_and_customer_fields_get_suggestions(ws):
    (p,) = problems(ws, edited(steps__1__text="{{ custmer.name }}"))
    assert "did you mean 'customer'" in p["message"]
    (p,) = problems(ws, edited(steps__1__text="{{ customer.nmae }}"))
    assert "customer.nmae" in p["message"] and "customer.name" in p["message"]


def test_order_is_known_only_in_a_flow_keyed_by_order(ws):
    raw = edited(trigger={"on": "audience", "audience": 'lifecycle = "lapsing"'})
    (p,) = problems(ws, raw)
    assert "keyed by order" in p["message"]


def test_a_condition_with_a_syntax_error_is_placed(ws):
    raw = edited(trigger={"on": "order_unpaid", "audience": "net_spent >= "})
    (p,) = problems(ws, raw)
    assert p["at"].startswith("trigger.audience, 1:")


def test_keys_must_fit_the_trigger_and_steps_must_be_reachable(ws):
    (p,) = problems(ws, edited(trigger={"on": "order_unpaid", "key": "customer"}))
    assert "per order" in p["message"]
    raw = edited(steps__0__next="remind")
    raw["steps"].insert(1, {"id": "lonely", "type": "exit"})
    (p,) = problems(ws, raw)
    assert p["at"] == 'steps[1] "lonely"' and "can never run" in p["message"]


def test_every_problem_is_reported_at_once(ws):
    raw = edited(steps__0__for="-1d", steps__1__subjet="x", holdout=2)
    got = {p["at"] for p in problems(ws, raw)}
    assert got == {'steps[0] "wait".for', 'steps[1] "remind".subjet', "holdout"}


def test_a_message_needs_what_its_channel_shows(ws):
    raw = edited()
    del raw["steps"][1]["subject"]
    (p,) = problems(ws, raw)
    assert "needs `subject`" in p["message"]


def test_durations_parse():
    assert df.parse_duration("1d12h").total_seconds() == 36 * 3600
    assert df.parse_duration("30m").total_seconds() == 1800
    with pytest.raises(ValueError):
        df.parse_duration("1w")


def test_every_library_template_is_a_valid_campaign(ws):
    names = [t["name"] for t in service.templates_list()]
    assert {"unpaid-reminders", "first-order", "abandoned-cart", "win-back", "vip-birthday",
            "newsletter"} <= set(names)  # fmt: skip
    for name in names:
        d, _ = service.check(ws, service.template(name))
        assert d.name == name


def test_the_cli_refuses_a_bad_file_with_the_place(ws, tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(
        'name = "x"\n[trigger]\non = "order_unpaid"\n[[steps]]\nid = "w"\ntype = "delay"\n'
        'for = "-3d"\n[[steps]]\nid = "m"\ntype = "message"\nchannel = "inbox"\n'
        'subject = "s"\ntext = "t"\n',
        encoding="utf-8",
    )
    r = CliRunner().invoke(app, ["campaign", "create", "x", "--file", str(f), "--home",
                                 str(ws.home)])  # fmt: skip
    assert r.exit_code != 0
    assert 'steps[0] "w".for' in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["campaign", "list", "--home", str(ws.home), "--json"])
    assert r.exit_code == 0 and r.stdout.strip() == "[]"  # nothing was stored
