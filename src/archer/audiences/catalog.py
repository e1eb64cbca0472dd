"""What a query may name: the fields (every column of ``customer_profile`` and ``customers``,
with a type the checker understands) and the behaviour predicates with their arguments.

Types of the language:

* ``number`` — counts and money; compared with numbers;
* ``days`` — a number of days; compared with numbers or durations (``unpaid_order_age >= 1d``);
* ``text`` — compared with quoted texts; some have a known set of values (``lifecycle``);
* ``bool`` — used bare (``email_reachable``) or compared with ``true`` / ``false``;
* ``date``, ``timestamp`` — compared with dates, or ``within`` a duration of the as-of day.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis.expr.datatypes as dt

from archer.customers.lifecycle import LIFECYCLE_STATES, STAGES
from archer.customers.preferences import PRICE_BANDS
from archer.customers.rfm import SEGMENTS, VALUE_TIERS

# Profile columns that count days, and the shorter names the language also accepts for them.
DAY_FIELDS = {
    "days_since_last_purchase",
    "days_since_last_order",
    "lapse_threshold_days",
    "unpaid_order_age_days",
    "days_to_birthday",
}
ALIASES = {
    "lapse_threshold": "lapse_threshold_days",
    "unpaid_order_age": "unpaid_order_age_days",
    # The documented name of the spend before refunds; `total_spent` (the profile's column) is
    # kept for the queries written with it.
    "gross_spent": "total_spent",
}
# What the money fields mean, for the field reference: spend before and after refunds are easy
# to take for each other, and an audience of "big spenders" wants the net.
FIELD_DOCS = {
    "net_spent": "spent after refunds: paid orders' amounts less the money refunded on them",
    "gross_spent": "spent before refunds: paid orders' amounts, money refunded on them not "
    "taken off (see net_spent)",
    "total_spent": "the same as gross_spent (its former name): spent before refunds",
    "total_refunded": "money refunded on paid orders (at most each order's amount)",
    "largest_order": "the largest paid order's amount, before refunds",
}
# Columns of `customers` an audience may use besides the profile's, with their types.
CUSTOMER_FIELD_TYPES = {
    "name": "text",
    "email": "text",
    "phone": "text",
    "occupation": "text",
    "email_opt_in": "bool",
    "sms_opt_in": "bool",
}
CUSTOMER_FIELDS = tuple(CUSTOMER_FIELD_TYPES)
# Text fields whose values are fixed by Archer's own rules.
FIXED_VALUES: dict[str, tuple[str, ...]] = {
    "lifecycle": LIFECYCLE_STATES,
    "stage": STAGES,
    "rfm_segment": SEGMENTS,
    "value_tier": tuple(dict.fromkeys(VALUE_TIERS.values())),
    "price_band": PRICE_BANDS,
    "churn_risk": ("high", "medium", "low"),
    "gender": ("f", "m"),
}
# Text fields whose values come from the shop's data (looked up when a query is checked).
DATA_VALUES = (
    "province",
    "city",
    "top_category",
    "second_category",
    "main_category",
    "acquisition_channel",
    "preferred_channel",
)


def language_type(name: str, dtype: dt.DataType) -> str:
    if name in DAY_FIELDS:
        return "days"
    if dtype.is_boolean():
        return "bool"
    if dtype.is_numeric():
        return "number"
    if dtype.is_date():
        return "date"
    if dtype.is_timestamp():
        return "timestamp"
    return "text"


@dataclass(frozen=True)
class ArgSpec:
    type: str  # text, number, days (a duration), bool
    doc: str
    ops: tuple[str, ...] = ("=",)
    values: str = ""  # where known values come from: "category", "product", "channel" …


@dataclass(frozen=True)
class Predicate:
    """A behaviour predicate: which rows it counts and what it may filter and measure."""

    name: str
    source: str  # lines, orders, refunds, events, messages
    doc: str
    example: str
    args: dict[str, ArgSpec] = field(default_factory=dict)
    event_type: str | None = None
    bare: str | None = None  # the argument a bare value stands for: searched("tea")


MEASURE_OPS = ("=", "!=", "<", "<=", ">", ">=")
WITHIN = ArgSpec("days", "only what happened in this time before the end of the as-of day")
COUNT = ArgSpec("number", "how many (default: at least 1)", MEASURE_OPS)
AMOUNT = ArgSpec("number", "their total amount", MEASURE_OPS)
CATEGORY = ArgSpec("text", "product category", values="category")
PRODUCT = ArgSpec("text", "product id", values="product")
BRAND = ArgSpec("text", "brand", values="brand")
CHANNEL = ArgSpec("text", "order channel (app, web …)", values="channel")
UTM = {
    "source": ArgSpec("text", "UTM source of the event"),
    "medium": ArgSpec("text", "UTM medium of the event"),
    "campaign": ArgSpec("text", "UTM campaign of the event"),
}
_EVENT_ARGS = {"within": WITHIN, "count": COUNT, "category": CATEGORY, "product": PRODUCT}

PREDICATES: dict[str, Predicate] = {
    p.name: p
    for p in (
        Predicate(
            "bought",
            "lines",
            "paid order lines; count = paid orders with such lines, amount = their line value",
            'bought(category = "chocolate", within = 90d)',
            {
                "within": WITHIN,
                "count": COUNT,
                "amount": AMOUNT,
                "category": CATEGORY,
                "product": PRODUCT,
                "brand": BRAND,
                "channel": CHANNEL,
            },
        ),
        Predicate(
            "ordered",
            "orders",
            "orders of any status; count = orders, amount = their value",
            "ordered(within = 30d)",
            {
                "within": WITHIN,
                "count": COUNT,
                "amount": AMOUNT,
                "channel": CHANNEL,
                "status": ArgSpec("text", "order status", values="status"),
                "paid": ArgSpec("bool", "only paid (true) or only unpaid (false) orders"),
                "coupon": ArgSpec("text", "coupon code used"),
            },
        ),
        Predicate(
            "refunded",
            "refunds",
            "refunds; count = refunds, amount = money given back",
            "refunded(within = 30d)",
            {"within": WITHIN, "count": COUNT, "amount": AMOUNT},
        ),
        Predicate(
            "viewed",
            "events",
            "product views",
            'viewed(category = "skincare", within = 7d, count >= 3)',
            _EVENT_ARGS,
            event_type="view",
        ),
        Predicate(
            "favorited",
            "events",
            "products added to favourites",
            "favorited(within = 30d)",
            _EVENT_ARGS,
            event_type="favorite",
        ),
        Predicate(
            "carted",
            "events",
            "products added to the cart",
            'carted(category = "baby", within = 14d)',
            _EVENT_ARGS,
            event_type="cart_add",
        ),
        Predicate(
            "searched",
            "events",
            "searches whose text contains the given words (case-insensitive)",
            """searched("mother's day", within = 30d)""",
            {
                "query": ArgSpec("text", "words the search contains"),
                "within": WITHIN,
                "count": COUNT,
            },
            event_type="search",
            bare="query",
        ),
        Predicate(
            "visited",
            "events",
            "visits of the site or app",
            'visited(within = 7d, source = "wechat")',
            {"within": WITHIN, "count": COUNT, **UTM},
            event_type="visit",
        ),
        Predicate(
            "received",
            "messages",
            "campaign messages sent to the customer (copied from the ledger by each build)",
            'received(campaign = "unpaid-reminders", within = 7d)',
            {
                "within": WITHIN,
                "count": COUNT,
                "campaign": ArgSpec("text", "the campaign's name", values="campaign"),
                "channel": ArgSpec("text", "email, sms, wecom or inbox"),
                "step": ArgSpec("text", "the message step's id"),
            },
        ),
        Predicate(
            "event",
            "events",
            "events of any type",
            'event("coupon_claim", within = 30d)',
            {"type": ArgSpec("text", "event type", values="event_type"), **_EVENT_ARGS, **UTM},
            bare="type",
        ),
    )
}
REFERENCE = "in_audience"
