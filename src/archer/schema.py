"""The canonical shop tables: names, columns, types and keys — the one source.

Every import lands in these tables and every analysis reads from them. Types are
the portable subset every warehouse engine has: strings, 64-bit integers,
decimals with two places for money, booleans, dates and timestamps. Timestamps
are naive and mean UTC; ``attributes`` and ``properties`` hold JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt

MONEY = dt.Decimal(18, 2)

# Logical kinds drive validation and parsing; each maps to one storage type.
KIND_TYPES: dict[str, dt.DataType] = {
    "id": dt.string,
    "text": dt.string,
    "json": dt.string,
    "int": dt.int64,
    "money": MONEY,
    "bool": dt.boolean,
    "date": dt.date,
    "timestamp": dt.timestamp,
    "gender": dt.string,
    "province": dt.string,
    "city": dt.string,
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = False
    doc: str = ""
    choices: tuple[str, ...] = ()
    nonnegative: bool = False

    @property
    def dtype(self) -> dt.DataType:
        return KIND_TYPES[self.kind]


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    doc: str = ""
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    def ibis_schema(self) -> ibis.Schema:
        return ibis.schema({c.name: c.dtype for c in self.columns})


ORDER_STATUSES = ("created", "paid", "shipped", "completed", "cancelled", "refunded")
EVENT_TYPES = (
    "visit",
    "register",
    "login",
    "view",
    "search",
    "favorite",
    "cart_add",
    "cart_remove",
    "checkout",
    "coupon_claim",
    "message_open",
    "message_click",
    "purchase",  # a buy in a behaviour log (Tianchi UserBehavior's ``buy``), not an order
)

C = Column

CUSTOMERS = Table(
    "customers",
    key=("customer_id",),
    doc="Members of the shop.",
    columns=(
        C("customer_id", "id", required=True),
        C("registered_at", "timestamp", doc="when the member signed up (UTC)"),
        C("name", "text"),
        C("email", "text"),
        C("phone", "text"),
        C("gender", "gender", doc="'f', 'm' or empty when unknown"),
        C("birthday", "date"),
        C("province", "province", doc="canonical English form: Jiangsu, Shanghai …"),
        C("city", "city", doc="canonical English form: Nanjing, Shanghai …"),
        C("occupation", "text"),
        C("acquisition_channel", "text"),
        C("email_opt_in", "bool"),
        C("sms_opt_in", "bool"),
        C("attributes", "json", doc="everything else the shop exports, as JSON"),
    ),
)

PRODUCTS = Table(
    "products",
    key=("product_id",),
    doc="The catalogue.",
    columns=(
        C("product_id", "id", required=True),
        C("name", "text"),
        C("category", "text"),
        C("brand", "text"),
        C("list_price", "money", nonnegative=True),
        C("unit_cost", "money", nonnegative=True),
        C("stock", "int"),
    ),
)

ORDERS = Table(
    "orders",
    key=("order_id",),
    doc="One row per order; amounts in the shop's currency.",
    columns=(
        C("order_id", "id", required=True),
        C("customer_id", "id", doc="empty for a guest order"),
        C("created_at", "timestamp", required=True),
        C("paid_at", "timestamp"),
        C("cancelled_at", "timestamp"),
        C("status", "text", choices=ORDER_STATUSES),
        C("goods_amount", "money"),
        C("discount_amount", "money", nonnegative=True),
        C("shipping_fee", "money", nonnegative=True),
        C("paid_amount", "money"),
        C("coupon_code", "text"),
        C("channel", "text"),
        C("province", "province"),
        C("city", "city"),
    ),
)

ORDER_ITEMS = Table(
    "order_items",
    key=("order_id", "line_no"),
    doc="Lines of orders.",
    columns=(
        C("order_id", "id", required=True),
        C("line_no", "int", required=True),
        C("product_id", "id", required=True),
        C("quantity", "int", required=True),
        C("unit_price", "money", nonnegative=True),
        C("unit_cost", "money", nonnegative=True),
    ),
)

REFUNDS = Table(
    "refunds",
    key=("refund_id",),
    doc="Money given back on an order.",
    columns=(
        C("refund_id", "id", required=True),
        C("order_id", "id", required=True),
        C("refunded_at", "timestamp", required=True),
        C("amount", "money", required=True, nonnegative=True),
        C("reason", "text"),
    ),
)

EVENTS = Table(
    "events",
    key=("event_id",),
    doc="Behaviour on the site: visits, views, searches, favourites, carts …",
    columns=(
        C("event_id", "id", required=True),
        C("customer_id", "id"),
        C("anonymous_id", "id"),
        C("type", "text", required=True),
        C("occurred_at", "timestamp", required=True),
        C("product_id", "id"),
        C("category", "text"),
        C("query", "text"),
        C("source", "text"),
        C("medium", "text"),
        C("campaign", "text"),
        C("properties", "json"),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (CUSTOMERS, PRODUCTS, ORDERS, ORDER_ITEMS, REFUNDS, EVENTS)
}

# Load order that respects references (customers before orders, orders before items).
LOAD_ORDER = ("customers", "products", "orders", "order_items", "refunds", "events")

# The warehouse's own bookkeeping: one row per import.
IMPORT_LOG = ibis.schema(
    {
        "import_id": dt.string,
        "table_name": dt.string,
        "source": dt.string,
        "preset": dt.string,
        "started_at": dt.timestamp,
        "finished_at": dt.timestamp,
        "rows_read": dt.int64,
        "inserted": dt.int64,
        "updated": dt.int64,
        "unchanged": dt.int64,
        "rejected": dt.int64,
        "quarantine": dt.string,
    }
)

# Price and stock as each products import found them: a row per product whenever its
# list_price or stock differs from the product's latest row (or it has none), stamped with
# the import's moment; re-importing the same file adds nothing. Kept by archer.ingest.history.
PRODUCT_HISTORY = "product_history"
PRODUCT_HISTORY_SCHEMA = ibis.schema(
    {
        "product_id": dt.string,
        "list_price": MONEY,
        "stock": dt.int64,
        "valid_from": dt.timestamp,
        "import_id": dt.string,
    }
)


# The tables a build derives (see archer.pipeline): the one registry of their names.
PROFILE = "customer_profile"
CATEGORIES = "customer_categories"
THRESHOLDS = "lapse_thresholds"
CUSTOMER_POINTS = "customer_points"  # the points ledger per customer, copied by each build
CAMPAIGN_RUNS = "campaign_enrollments"  # the ledger, copied by each build
CAMPAIGN_MESSAGES = "campaign_messages"
DEVICES = "member_devices"  # anonymous id → member, as of the build
UPLIFT_SCORES = "uplift_scores"  # the last coupon targeting's choice (measurement.targeting)
SHOP_VIEWS = (
    "shop_kpis",
    "shop_funnel",
    "shop_cohorts",
    "category_affinities",
    "customer_recommendations",
)
MEMBERSHIPS = "audience_memberships"
SNAPSHOTS = "audience_snapshots"
BUILD_LOG = "build_log"
DERIVED = (
    PROFILE, CATEGORIES, THRESHOLDS, DEVICES, *SHOP_VIEWS, MEMBERSHIPS, SNAPSHOTS, BUILD_LOG,
    CAMPAIGN_RUNS, CAMPAIGN_MESSAGES, CUSTOMER_POINTS,
)  # fmt: skip

# The campaigns' ledger as each build copies it (times naive UTC).
CAMPAIGN_RUNS_SCHEMA = ibis.schema(
    {
        "campaign": dt.string, "customer_id": dt.string, "trigger_key": dt.string,
        "arm": dt.string, "variant": dt.string, "version": dt.int64,
        "entered_at": dt.timestamp, "state": dt.string, "end_reason": dt.string,
        "ended_at": dt.timestamp,
    }
)  # fmt: skip
CAMPAIGN_MESSAGES_SCHEMA = ibis.schema(
    {
        "campaign": dt.string, "customer_id": dt.string, "trigger_key": dt.string,
        "step": dt.string, "channel": dt.string, "purpose": dt.string, "arm": dt.string,
        "variant": dt.string, "state": dt.string, "reason": dt.string,
        "due_at": dt.timestamp, "sent_at": dt.timestamp, "cost_fen": dt.int64,
    }
)  # fmt: skip

CUSTOMER_POINTS_SCHEMA = ibis.schema(
    {"customer_id": dt.string, "points_balance": dt.int64, "points_expiring_30d": dt.int64}
)

# One row per published build: which tables it wrote, as of which day.
BUILD_LOG_SCHEMA = ibis.schema(
    {
        "build_id": dt.string,
        "as_of": dt.date,
        "finished_at": dt.timestamp,
        "seconds": dt.float64,
        "tables": dt.string,
    }
)


def known_tables() -> tuple[str, ...]:
    """Every table a workspace's warehouse may hold: canonical, bookkeeping and derived."""
    return (*LOAD_ORDER, "import_log", PRODUCT_HISTORY, *DERIVED, UPLIFT_SCORES)


def get_table(name: str) -> Table:
    """The canonical table called ``name``, or a ValueError listing the known ones."""
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(TABLES)
        raise ValueError(f"unknown table {name!r}: expected one of {known}") from None
