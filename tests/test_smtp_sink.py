"""The test SMTP sink itself (tests/smtp_sink.py), spoken to with the standard library's client:
it records, deduplicates, refuses, hangs up, is slow, goes down and comes back."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from smtp_sink import SmtpSink


def mail(uid: str, to: str = "ann@example.com") -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "shop@shop.test", to, "你好"
    m["Message-ID"] = f"<{uid}@shop.test>"
    m.set_content("hello")
    m.add_alternative("<p>hello</p>", subtype="html")
    return m


def send(sink: SmtpSink, *msgs: EmailMessage, timeout: float = 5) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=timeout) as c:
        for m in msgs:
            c.send_message(m)


def test_records_what_it_receives(smtp_sink):
    send(smtp_sink, mail("u1"), mail("u2", "bo@example.com"), mail("u1"))
    got = smtp_sink.wait_for(3, timeout=5)
    assert [m.uid for m in got] == ["u1", "u2", "u1"]
    assert smtp_sink.uids()["u1"] == 2 and smtp_sink.accepted == 3
    first = got[0]
    assert (first.mail_from, first.rcpt_tos) == ("shop@shop.test", ("ann@example.com",))
    assert first.message_id == "<u1@shop.test>" and first.subject == "你好"
    assert first.text().strip() == "hello" and first.html().strip() == "<p>hello</p>"
    assert [m.uid for m in smtp_sink.to("BO@example.com")] == ["u2"]
    assert smtp_sink.settings().port == smtp_sink.port


def test_dedup_keeps_each_message_id_once():
    with SmtpSink(dedup=True) as sink:
        send(sink, mail("u1"), mail("u1"), mail("u2"))
        assert sorted(sink.uids().elements()) == ["u1", "u2"]
        assert sink.accepted == 3  # every copy was acknowledged


def test_refusals_hang_ups_and_recovery(smtp_sink):
    smtp_sink.refuse("ann@example.com", 550)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(smtp_sink, mail("u1"))
    assert e.value.recipients["ann@example.com"][0] == 550
    smtp_sink.refuse(None, 451)  # everyone, for now
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(smtp_sink, mail("u2", "bo@example.com"))
    assert e.value.recipients["bo@example.com"][0] == 451
    smtp_sink.heal()
    smtp_sink.hang_up = True
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(smtp_sink, mail("u3"))
    smtp_sink.heal()
    send(smtp_sink, mail("u4"))
    assert list(smtp_sink.uids()) == ["u4"]
    with pytest.raises(ValueError):
        smtp_sink.refuse(None, 250)


def test_slow_server_times_the_client_out_and_keeps_the_message(smtp_sink):
    smtp_sink.delay = 1.0
    with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
        send(smtp_sink, mail("u1"), timeout=0.2)
    assert smtp_sink.wait_for(1, timeout=5)[0].uid == "u1"  # it arrived, unacknowledged


def test_down_then_back_on_the_same_port(smtp_sink):
    smtp_sink.stop()
    with pytest.raises(ConnectionRefusedError):
        send(smtp_sink, mail("u1"))
    smtp_sink.start()
    send(smtp_sink, mail("u2"))
    assert list(smtp_sink.uids()) == ["u2"]
