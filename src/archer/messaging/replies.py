"""Replies to an SMS: "R", "T", "TD" or "退订" opts the number out.

A provider pushes the replies it received (its uplink callback) to ``POST /v1/sms/replies``;
:func:`sms_reply` judges one. An opt-out — the words above, in any case, with spaces or
punctuation around them, full-width or not, and combined (``TD退订``, ``退订T``) — denies
marketing SMS for every customer whose phone is that number (consent, source ``reply``, with
the reply as evidence) and suppresses the number, and the customer's number as the shop wrote
it, so no SMS goes to it any more. Any other reply is only acknowledged.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Any

from archer.errors import Invalid
from archer.messaging.consent import normalise, record, suppress
from archer.store.consent import Consent

if TYPE_CHECKING:
    from archer.workspace import Workspace

MAX_CONTENT = 500  # characters of a reply looked at
MAX_PHONE = 32
MAX_CUSTOMERS = 50  # customers sharing one number that a reply opts out
_OPT_OUT = re.compile(r"^(?:(?:R|TD?|N)(?:退订)?|退订(?:R|TD?)?)$")
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def is_opt_out(content: str) -> bool:
    """Whether a reply asks to stop: R, T, TD, N, 退订 and their combinations."""
    text = unicodedata.normalize("NFKC", content or "")[:MAX_CONTENT]
    return bool(_OPT_OUT.match(_NOISE.sub("", text).upper()))


def phone_key(phone: str) -> str:
    """A number reduced to compare: its digits, without a leading +86 / 0086 on a mainland
    mobile."""
    digits = re.sub(r"\D", "", phone or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and _MOBILE.match(digits[len(prefix) :]):
            return digits[len(prefix) :]
    return digits


def customers_with_phone(ws: Workspace, phone: str) -> list[tuple[str, str]]:
    """(customer id, phone as stored) of the customers whose phone is ``phone``."""
    key = phone_key(phone)
    if len(key) < 6:
        return []
    with ws.warehouse() as wh:
        if not wh.has_table("customers"):
            return []
        c = wh.table("customers")
        digits = c.phone.re_replace(r"[^0-9]", "")
        found = (
            c.filter(c.phone.notnull(), digits.endswith(key))
            .select("customer_id", "phone")
            .limit(10 * MAX_CUSTOMERS)
            .execute()
        )
    out = [
        (str(cid), str(p))
        for cid, p in zip(found.customer_id, found.phone, strict=True)
        if phone_key(str(p)) == key
    ]
    return sorted(out)[:MAX_CUSTOMERS]


def sms_reply(
    ws: Workspace, phone: str, content: str, at: datetime | None = None
) -> dict[str, Any]:
    """Judge one reply from ``phone``; an opt-out is recorded. What was done."""
    if not isinstance(phone, str) or not phone.strip() or len(phone) > MAX_PHONE:
        raise Invalid(f"phone: expected a number of at most {MAX_PHONE} characters")
    if not isinstance(content, str):
        raise Invalid("content: expected the text of the reply")
    number = normalise("sms", phone)
    if not re.search(r"\d{5}", number):
        raise Invalid(f"phone: {phone!r} is not a phone number")
    content = content[:MAX_CONTENT]
    at = at or ws.now()
    out: dict[str, Any] = {"phone": number, "opt_out": is_opt_out(content), "customers": []}
    if not out["opt_out"]:
        return out
    found = customers_with_phone(ws, number)
    evidence = f"replied {content.strip()[:100]!r} from {number} at {at.isoformat()}"
    with ws.session(write=True) as s:
        for cid, _ in found:
            row = s.get(Consent, (cid, "sms", "marketing"))
            if row is None or row.granted or row.source != "reply":
                record(s, cid, "sms", "marketing", False, source="reply", evidence=evidence, at=at)
    for address in dict.fromkeys([number, phone_key(number), *(p for _, p in found)]):
        suppress(ws, "sms", address, reason="unsubscribe", source=evidence[:500])
    out["customers"] = [cid for cid, _ in found]
    return out
