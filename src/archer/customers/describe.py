"""One customer's profile read aloud: the words a marketer uses, from the built table."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from archer.errors import NotBuilt, NotFound
from archer.schema import PROFILE

STATE_WORDS = {
    "registered_no_cart": "registered but has never added anything to the cart",
    "cart_no_order": "has added to the cart but never ordered",
    "ordered_unpaid": "has ordered but never paid",
    "one_time_buyer": "has bought once",
    "repeat_buyer": "buys again and again",
    "lapsing": "is lapsing: longer since the last purchase than such buyers usually wait",
    "lost": "is probably lost: far longer since the last purchase than such buyers wait",
}
STAGE_WORDS = {
    "potential": "a potential customer (no paid order yet)",
    "target": "a customer to win over (has bought, not yet loyal)",
    "loyal": "a loyal customer (buys repeatedly and is active)",
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

if TYPE_CHECKING:
    from archer.workspace import Workspace


class UnknownCustomer(NotFound):
    pass


def load_profile(ws: Workspace, customer_id: str) -> dict[str, Any]:
    """The customer's row of ``customer_profile`` as plain Python values."""
    with ws.warehouse() as wh:
        if not wh.has_table(PROFILE):
            raise NotBuilt()
        t = wh.table(PROFILE)
        rows = t.filter(t.customer_id == customer_id).to_pyarrow().to_pylist()
    if not rows:
        raise UnknownCustomer(f"no customer {customer_id!r} in the profile")
    return rows[0]


def _money(v: float | None, currency: str) -> str:
    return f"{v or 0:,.2f} {currency}"


def _day(v: date | datetime | None) -> str:
    if v is None:
        return "never"
    return (v.date() if isinstance(v, datetime) else v).isoformat()


def sentences(p: dict[str, Any], currency: str) -> list[tuple[str, str]]:
    """(heading, sentence) pairs describing the profile ``p``."""
    out = [
        ("State", f"{p['customer_id']} {STATE_WORDS.get(p['lifecycle'], p['lifecycle'])}."),
        ("Stage", f"{STAGE_WORDS.get(p['stage'], p['stage'])}.".capitalize()),
    ]
    if p["purchase_days"]:
        out.append(
            (
                "Purchases",
                f"{p['purchase_days']} purchase day(s) from {p['paid_orders']} paid order(s), "
                f"first {_day(p['first_purchase_day'])}, last {_day(p['last_purchase_day'])} "
                f"({p['days_since_last_purchase']} days before {_day(p['as_of'])}; such buyers "
                f"usually come back within {p['lapse_threshold_days']:.0f} days).",
            )
        )
        out.append(
            (
                "Money",
                f"Spent {_money(p['total_spent'], currency)}, refunded "
                f"{_money(p['total_refunded'], currency)}, net "
                f"{_money(p['net_spent'], currency)}; largest order "
                f"{_money(p['largest_order'], currency)}.",
            )
        )
        out.append(
            (
                "RFM",
                f"Recency {p['r_score']}, frequency {p['f_score']}, monetary {p['m_score']}: "
                f"segment “{p['rfm_segment']}”, value tier {p['value_tier']}.",
            )
        )
    flags = []
    if p["has_open_cart"]:
        flags.append("has an open cart")
    if p["has_unpaid_order"]:
        flags.append(f"has an unpaid order ({p['unpaid_order_age_days']} days old)")
    if p["has_favorites"]:
        flags.append(f"has {p['favorites']} favourite(s)")
    if p["refunded_recently"]:
        flags.append("was refunded recently")
    if p["birthday_soon"]:
        flags.append(f"has a birthday in {p['days_to_birthday']} day(s)")
    if flags:
        out.append(("Now", "; ".join(flags).capitalize() + "."))
    likes = []
    if p["top_category"]:
        likes.append(f"mostly {p['top_category']} ({p['top_category_share']:.0%} of interest)")
    if p["second_category"]:
        likes.append(f"then {p['second_category']}")
    if p["price_band"]:
        likes.append(f"{p['price_band']} prices")
    if p["discount_sensitive"]:
        likes.append("buys on discount")
    if p["festival_buyer"]:
        likes.append("buys in festival sales")
    if likes:
        out.append(("Likes", "; ".join(likes).capitalize() + "."))
    if p["preferred_hour"] is not None:
        when = f"Most active around {p['preferred_hour']:02d}:00"
        if p["preferred_weekday"] is not None:
            when += f", mostly on {WEEKDAYS[p['preferred_weekday']]}s"
        if p["preferred_channel"]:
            when += f"; orders on {p['preferred_channel']}"
        out.append(("When", when + "."))
    reach = [
        name for name, ok in (("e-mail", p["email_reachable"]), ("SMS", p["sms_reachable"])) if ok
    ]
    reach_words = "Reachable by " + " and ".join(reach) + "." if reach else "Not reachable."
    out.append(("Reach", reach_words))
    return out
