"""The shop's tables as they stood at a moment, and the facts every analysis shares.

A build looks at the shop *as of* a calendar day in the shop's time zone: everything that
happened up to the end of that day counts, nothing after it. ``Snapshot`` holds the canonical
tables filtered to that moment plus the derived facts the profile and the shop-level views all
use — so "a paid order", "its net amount" and "a customer's local hour" mean one thing
everywhere:

* an order is **paid** when it has a ``paid_at`` before the cut-off, or (for exports without
  payment times) a status that implies payment (``paid``, ``shipped``, ``completed``,
  ``refunded``) and was created before the cut-off; its payment time is ``paid_at`` or else
  ``created_at``;
* its **amount** is ``paid_amount``, or else goods − discount + shipping;
* its **refunded** amount is the sum of its refunds up to the cut-off, never more than the
  amount; **net** = amount − refunded;
* a **purchase day** is a local calendar day with at least one paid order: several orders on one
  day count as one purchase (as in the CLV literature).

Stored times are UTC; local times add the zone's offset at the as-of day (exact for zones
without daylight saving, such as Asia/Shanghai; an hour off across a DST change elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir

from archer.errors import Invalid
from archer.schema import CUSTOMERS, ORDER_ITEMS, ORDERS
from archer.warehouse import Warehouse

PAID_STATUSES = ("paid", "shipped", "completed", "refunded")
DAY_SECONDS = 86400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def cutoff_utc(as_of: date, tz: ZoneInfo) -> datetime:
    """The first instant after ``as_of`` in ``tz``, as a naive UTC datetime."""
    local = datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=tz)
    return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def utc_offset_seconds(as_of: date, tz: ZoneInfo) -> int:
    off = datetime.combine(as_of, time(12), tzinfo=tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def latest_activity(wh: Warehouse, tz: ZoneInfo) -> date | None:
    """The local day of the latest order or event: the default as-of day of a build."""
    latest: list[datetime] = []
    for name, col in (("orders", "created_at"), ("orders", "paid_at"), ("events", "occurred_at")):
        v = wh.table(name)[col].max().execute()
        if v is not None and not _is_nat(v):
            latest.append(_to_datetime(v))
    if not latest:
        return None
    moment = max(latest).replace(tzinfo=ZoneInfo("UTC")).astimezone(tz)
    return moment.date()


def events_only(wh: Warehouse) -> bool:
    """Whether the shop imported events with user ids but no members at all."""
    if int(wh.table("customers").count().execute()) > 0:
        return False
    e = wh.table("events")
    return int(e.filter(e.customer_id.notnull()).limit(1).count().execute()) > 0


def purchases_only(wh: Warehouse) -> bool:
    """Whether the shop imported no orders but ``purchase`` events of known members (a
    behaviour log's buys): each such event is then an order (see ``Snapshot.orders``)."""
    if int(wh.table("orders").count().execute()) > 0:
        return False
    e = wh.table("events")
    buys = e.filter((e.type == "purchase") & e.customer_id.notnull())
    return int(buys.limit(1).count().execute()) > 0


def due_amount(o: ir.Table) -> ir.FloatingValue:
    """What an order asks the customer to pay: goods − discount + shipping."""
    return (
        o.goods_amount.cast("float64").fill_null(0)
        - o.discount_amount.cast("float64").fill_null(0)
        + o.shipping_fee.cast("float64").fill_null(0)
    )


def _is_nat(v) -> bool:
    return v != v  # NaT / NaN compare unequal to themselves


def _to_datetime(v) -> datetime:
    return v.to_pydatetime() if hasattr(v, "to_pydatetime") else v


@dataclass(frozen=True)
class Snapshot:
    """The shop as of the end of ``as_of`` (local day); every table an unexecuted Ibis table."""

    wh: Warehouse
    as_of: date
    tz: ZoneInfo
    cutoff: datetime  # naive UTC, exclusive
    offset: int  # seconds to add to UTC for local time
    # The anonymous-id → member map, once computed and staged by a build (see identities());
    # a snapshot with it is made by ``dataclasses.replace``, never by changing this one.
    identity_map: ir.Table | None = None
    # A shop that imported events but no members: its members are the user ids of its
    # identified events (see ``customers``).
    members_from_events: bool = False
    # A shop that imported no orders but purchase events: each purchase is a paid order of
    # one unit with no amount known (see ``orders``), so lifecycle, RFM frequency and
    # recency, repeat purchase and preferences count the buyers the log names.
    orders_from_events: bool = False

    @classmethod
    def at(
        cls, wh: Warehouse, as_of: date | None, tz: ZoneInfo, *, today: date | None = None
    ) -> Snapshot:
        """The shop as of ``as_of``; by default the day of its latest activity, or ``today``
        (the workspace clock's, in the shop's zone) when it has none."""
        if as_of is None:
            as_of = latest_activity(wh, tz) or today
        if as_of is None:
            raise Invalid("the shop has no orders or events yet: give the as-of day")
        try:
            cutoff = cutoff_utc(as_of, tz)
        except OverflowError:
            raise Invalid(f"as-of day {as_of} is out of range") from None
        return cls(wh, as_of, tz, cutoff, utc_offset_seconds(as_of, tz),
                   members_from_events=events_only(wh),
                   orders_from_events=purchases_only(wh))  # fmt: skip

    @classmethod
    def instant(cls, wh: Warehouse, moment: datetime, tz: ZoneInfo) -> Snapshot:
        """The shop at an instant (aware), not at the end of a day: what a campaign round sees
        (an order paid a minute from now is not paid yet)."""
        local = moment.astimezone(tz)
        cutoff = moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
        return cls(wh, local.date(), tz, cutoff, utc_offset_seconds(local.date(), tz),
                   members_from_events=events_only(wh),
                   orders_from_events=purchases_only(wh))  # fmt: skip

    # -- helpers -----------------------------------------------------------------------------
    @property
    def cut(self) -> ir.TimestampScalar:
        return ibis.literal(self.cutoff, type="timestamp")

    @property
    def as_of_date(self) -> ir.DateScalar:
        return ibis.literal(self.as_of, type="date")

    def local(self, ts: ir.TimestampValue) -> ir.TimestampValue:
        """A UTC timestamp column in shop-local time."""
        return ts + ibis.interval(seconds=self.offset)

    def local_day(self, ts: ir.TimestampValue) -> ir.DateValue:
        return self.local(ts).date()

    def days_before_as_of(self, d: ir.DateValue) -> ir.IntegerValue:
        """Whole days from local day ``d`` to the as-of day (0 when the same day)."""
        return (ibis.literal(self.as_of.toordinal() - EPOCH_ORDINAL) - d.epoch_days()).cast("int64")

    def local_days_before(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        """Whole local days from the moment ``ts`` (UTC) to the as-of day."""
        return self.days_before_as_of(self.local_day(ts))

    # -- the canonical tables up to the cut-off ----------------------------------------------
    @property
    def customers(self) -> ir.Table:
        """The members registered by the cut-off. A shop that imported only events has, as
        its members, the user ids of its identified events, registered at their first event
        and with nothing else known."""
        if self.members_from_events:
            e = self.events.filter(
                self.events.customer_id.notnull() & (self.events.customer_id != "")
            )
            first = e.group_by("customer_id").aggregate(registered_at=e.occurred_at.min())
            schema = CUSTOMERS.ibis_schema()
            return first.select(
                **{
                    name: first[name] if name in ("customer_id", "registered_at")
                    else ibis.null().cast(dtype)
                    for name, dtype in schema.items()
                }
            )  # fmt: skip
        c = self.wh.table("customers")
        return c.filter(c.registered_at.isnull() | (c.registered_at < self.cut))

    @property
    def products(self) -> ir.Table:
        return self.wh.table("products")

    @property
    def orders(self) -> ir.Table:
        if self.orders_from_events:
            e = self._purchase_events()
            return e.select(**{
                name: (
                    e.event_id if name == "order_id"
                    else e.customer_id if name == "customer_id"
                    else e.occurred_at if name in ("created_at", "paid_at")
                    else ibis.literal("paid") if name == "status"
                    else ibis.null().cast(dtype)
                )
                for name, dtype in ORDERS.ibis_schema().items()
            })  # fmt: skip
        o = self.wh.table("orders")
        return o.filter(o.created_at < self.cut)

    @property
    def order_items(self) -> ir.Table:
        """Lines of orders (all of them: join to ``orders`` for the cut-off); a purchase
        event's order has one line of one unit of its product, price unknown."""
        if self.orders_from_events:
            e = self._purchase_events()
            e = e.filter(e.product_id.notnull())
            known = {"order_id": e.event_id, "line_no": ibis.literal(1),
                     "product_id": e.product_id, "quantity": ibis.literal(1)}  # fmt: skip
            return e.select(**{
                name: known[name].cast(dtype) if name in known else ibis.null().cast(dtype)
                for name, dtype in ORDER_ITEMS.ibis_schema().items()
            })  # fmt: skip
        return self.wh.table("order_items")

    def _purchase_events(self) -> ir.Table:
        e = self.events
        return e.filter((e.type == "purchase") & e.customer_id.notnull())

    @property
    def events(self) -> ir.Table:
        e = self.wh.table("events")
        return e.filter(e.occurred_at < self.cut)

    @property
    def refunds(self) -> ir.Table:
        r = self.wh.table("refunds")
        return r.filter(r.refunded_at < self.cut)

    # -- derived facts -----------------------------------------------------------------------
    def identities(self) -> ir.Table:
        """Anonymous ids that an event ties to a member (``anonymous_id`` → ``person``).

        An event carrying both ids (the register event, a login) links them; when a device is
        shared by several members the smallest member id is taken, so the answer is stable.
        """
        if self.identity_map is not None:
            return self.identity_map
        e = self.events
        both = e.filter(e.anonymous_id.notnull() & e.customer_id.notnull())
        return both.group_by(anonymous_id=both.anonymous_id).aggregate(
            person=both.customer_id.min()
        )

    def people(self, events: ir.Table) -> ir.Table:
        """``events`` with ``person`` (the member's id, given or linked through the anonymous
        id) and ``anonymous`` (the anonymous id of a visitor never linked, else null)."""
        ids = self.identities()
        j = events.left_join(ids, events.anonymous_id == ids.anonymous_id)
        person = j.customer_id.coalesce(j.person)
        return j.select(
            *[j[c] for c in events.columns],
            person=person,
            anonymous=ibis.ifelse(person.isnull(), j.anonymous_id, ibis.null("string")),
        )

    def member_events(self) -> ir.Table:
        """Events of members, including those they made before signing in on a device that
        an event later linked to them: the events' columns with ``customer_id`` filled in."""
        p = self.people(self.events)
        p = p.filter(p.person.notnull())
        return p.mutate(customer_id=p.person).drop("person", "anonymous")

    def order_facts(self) -> ir.Table:
        """Every order created before the cut-off with ``is_paid``, ``pay_time``, ``value`` (what
        the order is for, paid or not), ``amount`` (its value once paid, else 0), ``refunded``,
        ``net``, ``discounted``, local ``day`` and ``pay_day``."""
        o = self.orders
        is_paid = self.is_paid(o)
        amount = o.paid_amount.cast("float64").coalesce(due_amount(o))
        r = self.refunds
        ref = r.group_by(_oid=r.order_id).aggregate(_refunded=r.amount.cast("float64").sum())
        j = o.left_join(ref, o.order_id == ref._oid)
        pay_time = ibis.ifelse(is_paid, j.paid_at.coalesce(j.created_at), ibis.null("timestamp"))
        amount_j = ibis.ifelse(is_paid, amount, 0.0)
        refunded = ibis.ifelse(is_paid, ibis.least(j._refunded.fill_null(0), amount_j), 0.0)
        discounted = (j.discount_amount.cast("float64").fill_null(0) > 0) | (
            j.coupon_code.notnull() & (j.coupon_code != "")
        )
        return j.select(
            "order_id",
            "customer_id",
            "created_at",
            "status",
            "channel",
            "coupon_code",
            "cancelled_at",
            is_paid=is_paid,
            pay_time=pay_time,
            value=amount,
            amount=amount_j,
            refunded=refunded,
            net=amount_j - refunded,
            discounted=discounted,
            day=self.local_day(j.created_at),
            pay_day=self.local_day(pay_time),
        )

    def is_paid(self, o: ir.Table) -> ir.BooleanValue:
        """Whether each order of ``o`` (``orders``' columns) is paid at the cut-off."""
        by_time = o.paid_at.notnull() & (o.paid_at < self.cut)
        by_status = o.paid_at.isnull() & o.status.isin(PAID_STATUSES)
        return (by_time | by_status).fill_null(False)

    def is_closed(self, o: ir.Table) -> ir.BooleanValue:
        """Whether each order is paid or cancelled at the cut-off: nothing more to pay."""
        cancelled = (o.cancelled_at.notnull() & (o.cancelled_at < self.cut)) | (
            o.status == "cancelled"
        )
        return self.is_paid(o) | cancelled.fill_null(False)

    def paid_orders(self) -> ir.Table:
        """Paid orders of known customers (guest orders left out)."""
        f = self.order_facts()
        return f.filter(f.is_paid & f.customer_id.notnull())

    def purchases(self) -> ir.Table:
        """Paid orders as the customer-base models see them: ``customer_id``, ``day`` (the
        local pay day) and ``amount`` (net of refunds)."""
        f = self.paid_orders()
        return f.select("customer_id", day=f.pay_day, amount=f.net)

    def paid_lines(self) -> ir.Table:
        """Lines of paid orders with the order's customer, channel, payment time (``pay_time``)
        and local pay ``day``, and the product's category and brand."""
        f = self.paid_orders()
        i = self.order_items
        p = self.products.select(
            _pid="product_id", category="category", brand="brand", list_price="list_price"
        )
        j = i.join(f, i.order_id == f.order_id).left_join(p, i.product_id == p._pid)
        return j.select(
            order_id=j.order_id,
            customer_id=j.customer_id,
            product_id=j.product_id,
            category=j.category,
            brand=j.brand,
            channel=j.channel,
            quantity=j.quantity,
            unit_price=j.unit_price.cast("float64"),
            unit_cost=j.unit_cost.cast("float64"),
            list_price=j.list_price.cast("float64"),
            line_amount=j.quantity.cast("float64") * j.unit_price.cast("float64"),
            pay_time=j.pay_time,
            day=j.pay_day,
            discounted=j.discounted,
        )
