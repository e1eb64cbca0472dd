"""The words the pages show for the core's internal names — lifecycle states, stages, RFM
segments, value tiers, campaign kinds and states, runs, messages, skip reasons, arms, coupon
states — in one place. Each is an English text marked for the catalogue (``N_``); a page shows
``label(kind, name)`` (a Jinja filter: ``{{ name|word("lifecycle") }}``) translated into its
language. A name with no word shows as it is (so a new state is visible, and the page test that
looks for internal names finds it)."""

from __future__ import annotations

from typing import Any

import jinja2

from archer.web.ui.i18n import N_, translator

# fmt: off
WORDS: dict[str, dict[str, str]] = {
    "lifecycle": {
        "registered_no_cart": N_("Registered, no cart"),
        "cart_no_order": N_("Cart, no order"),
        "ordered_unpaid": N_("Ordered, unpaid"),
        "one_time_buyer": N_("One-time buyer"),
        "repeat_buyer": N_("Repeat buyer"),
        "lapsing": N_("Lapsing"),
        "lost": N_("Lost"),
    },
    "stage": {
        "potential": N_("Potential customer"),
        "target": N_("Target customer"),
        "loyal": N_("Loyal customer"),
    },
    "segment": {
        "Champions": N_("Champions"),
        "Loyal": N_("Loyal"),
        "Potential loyalist": N_("Potential loyalist"),
        "New": N_("New"),
        "Promising": N_("Promising"),
        "Needs attention": N_("Needs attention"),
        "About to sleep": N_("About to sleep"),
        "At risk": N_("At risk"),
        "Can't lose": N_("Can't lose"),
        "Hibernating": N_("Hibernating"),
        "Lost": N_("Lost customers"),
    },
    "tier": {
        "top": N_("Top value"),
        "high": N_("High value"),
        "medium": N_("Medium value"),
        "low": N_("Low value"),
    },
    "risk": {"high": N_("high"), "medium": N_("medium"), "low": N_("low")},
    "band": {
        "budget": N_("budget prices"), "mid": N_("mid-range prices"),
        "premium": N_("premium prices"),
    },
    "type": {
        "number": N_("number"), "days": N_("days"), "text": N_("text"), "bool": N_("yes / no"),
        "date": N_("date"), "timestamp": N_("time"),
    },
    "funnel": {
        "visitors": N_("Visited"), "registered": N_("Registered"),
        "viewed": N_("Viewed a product"), "carted": N_("Added to cart"),
        "ordered": N_("Ordered"), "paid": N_("Paid"), "repeated": N_("Bought again"),
    },
    "sentence": {  # the heads of a customer's sentences (customers/describe.py)
        "State": N_("State"), "Stage": N_("Stage"), "When": N_("When"), "Reach": N_("Reach"),
        "Likes": N_("Likes"), "Now": N_("Now"),
    },
    "campaign_kind": {"flow": N_("flow"), "broadcast": N_("broadcast")},
    "campaign_status": {
        "draft": N_("draft"), "active": N_("active"), "paused": N_("paused"),
        "ended": N_("ended"),
    },
    "run": {
        "active": N_("active"), "completed": N_("completed"), "exited": N_("exited"),
        "converted": N_("converted"), "held_back": N_("Held back"),
    },
    "end_reason": {
        "completed": N_("completed"), "converted": N_("converted"),
        "step_missing": N_("its step was removed"), "exit_if": N_("met the exit condition"),
        "ended": N_("campaign ended"),
    },
    "message": {
        "planned": N_("planned"), "claimed": N_("claimed"), "sent": N_("sent"),
        "skipped": N_("skipped"), "failed": N_("failed"),
    },
    "reason": {
        "no_consent": N_("no consent"), "suppressed": N_("address suppressed"),
        "frequency_cap": N_("frequency cap"), "expired": N_("expired"),
        "outside_window": N_("outside the send window"), "no_address": N_("no address"),
        "bad_address": N_("bad address"),
    },
    "arm": {"treatment": N_("treatment"), "holdout": N_("holdout")},
    "coupon": {
        "issued": N_("issued"), "redeemed": N_("redeemed"), "void": N_("void"),
        "pool": N_("pool"), "expired": N_("expired"),
    },
    "coupon_kind": {"threshold": N_("threshold"), "rate": N_("rate"), "cash": N_("cash")},
}
# fmt: on
# the profile's columns whose values these are (an explained clause names its column)
ALIASES = {
    "value_tier": "tier",
    "rfm_segment": "segment",
    "churn_risk": "risk",
    "price_band": "band",
}  # fmt: skip


def label(kind: str, name: Any, lang: str = "en") -> str:
    """The word for ``name`` of ``kind`` in ``lang`` (the name itself when it has none)."""
    if name is None:
        return "–"
    text = WORDS.get(ALIASES.get(kind, kind), {}).get(str(name))
    return translator(lang)(text) if text is not None else str(name)


@jinja2.pass_context
def word(context: jinja2.runtime.Context, name: Any, kind: str) -> str:
    """The Jinja filter: ``{{ r.lifecycle|word("lifecycle") }}`` in the page's language."""
    return label(kind, name, context.get("lang") or "en")


def install(env: jinja2.Environment) -> None:
    env.filters["word"] = word
