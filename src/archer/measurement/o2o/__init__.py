"""The O2O group-buy funnel: an offline event (a home-furnishing mall's group-buy day), who
signed up through which channel, who came, and what they bought.

* **Event**: a name, a start and an end (the shop's time zone), the channels it was promoted
  through with what each cost, an optional event coupon code, and how many days after its end
  orders still count (``window_days``).
* **Sign-ups** by channel (forum, QQ group, WeChat, SEM, site, walk-in, or the event's own),
  imported from CSV/Excel or sent as rows; a person is their normalised phone (or customer id),
  so importing again adds nothing. A file with a bad row is refused whole, every problem named
  by file, line, field and what was expected.
* **Check-ins**: the desk sends each scan with its id; a scan id seen before is answered as a
  duplicate (the same person) or refused (another person), so a double scan counts once. A
  person who checks in without a sign-up is a **walk-in**.
* **Orders** created from the event's start to ``window_days`` after its end are the event's
  when their customer is an attendee — by customer id, or by a customer whose phone is an
  attendee's — or when they carry the event's coupon code (then, if no attendee matches, they
  are the ``coupon`` row). What "paid", "refunded" and "net" mean comes from
  :mod:`archer.facts`. An order with **staged payments** (a deposit, then the rest) counts the
  payments made by the report's moment instead, less its refunds.
* **Report** per channel: sign-ups → check-ins → buyers → orders → sales, customer unit price
  (sales ÷ buyers), and cost per sign-up, per attendee and per order.

Money is counted in integer fen and shown in yuan.

The package: :mod:`.common` (constants, errors, small checks, reading files), :mod:`.events`,
:mod:`.imports` (sign-ups and staged payments), :mod:`.checkins` and :mod:`.funnel` (the report).
"""

from __future__ import annotations

from archer.measurement.o2o.checkins import (
    check_in,
)
from archer.measurement.o2o.common import (
    CHANNEL_ALIASES,
    CHECKIN_SLACK,
    COUPON,
    MAX_CHANNELS,
    MAX_COST_YUAN,
    MAX_EVENT_DAYS,
    MAX_FILE_BYTES,
    MAX_PAYMENT_YUAN,
    MAX_ROWS,
    MAX_WINDOW_DAYS,
    PAYMENT_COLUMNS,
    PAYMENT_KINDS,
    SHOWN_ERRORS,
    SIGNUP_COLUMNS,
    STANDARD_CHANNELS,
    TOTAL,
    WALK_IN,
    O2OError,
    UnknownEvent,
    channel_name,
    masked,
    normalise_phone,
    parse_moment,
    phone_key,
    read_rows,
)
from archer.measurement.o2o.events import (
    create_event,
    get_event,
    list_events,
)
from archer.measurement.o2o.funnel import (
    report,
)
from archer.measurement.o2o.imports import (
    add_payments,
    add_signups,
    import_payments,
    import_signups,
)

__all__ = [
    "CHANNEL_ALIASES",
    "CHECKIN_SLACK",
    "COUPON",
    "MAX_CHANNELS",
    "MAX_COST_YUAN",
    "MAX_EVENT_DAYS",
    "MAX_FILE_BYTES",
    "MAX_PAYMENT_YUAN",
    "MAX_ROWS",
    "MAX_WINDOW_DAYS",
    "O2OError",
    "PAYMENT_COLUMNS",
    "PAYMENT_KINDS",
    "SHOWN_ERRORS",
    "SIGNUP_COLUMNS",
    "STANDARD_CHANNELS",
    "TOTAL",
    "UnknownEvent",
    "WALK_IN",
    "add_payments",
    "add_signups",
    "channel_name",
    "check_in",
    "create_event",
    "get_event",
    "import_payments",
    "import_signups",
    "list_events",
    "masked",
    "normalise_phone",
    "parse_moment",
    "phone_key",
    "read_rows",
    "report",
]
