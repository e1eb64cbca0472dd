"""The loader: tracked events from the store's inbox into the warehouse, idempotently.

Every message becomes exactly one ``events`` row whose id is ``<source>:<messageId>``; the
Segment e-commerce events also fill their canonical tables (see :data:`SPEC_TYPES` and
docs/tracking.md). A chunk of the inbox is written to the warehouse in one transaction, and
only then deleted from the inbox. A crash in between loads the chunk again, which changes
nothing: every table is written by key (rows whose key the table does not hold yet are
appended, the others upserted, identical rows left alone), and the chunk is the oldest one,
so nothing newer has been written over it yet. While a chunk is written, the next one is read
and mapped in a second thread; it is written only after this one is deleted from the inbox.

Unknown event names are kept, not squeezed into a spec type: their ``type`` is the name in
snake case (``Coupon Applied`` → ``coupon_applied``), and the name as sent is in
``properties.event``. A name whose snake case is a canonical type (``Login``) counts as it.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import ibis
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from archer.clock import elapsed
from archer.ingest.parse import FALSE_WORDS, GENDERS, TRUE_WORDS
from archer.places import lookup_city, normalise_key, parse_address, province_aliases, sole_cities
from archer.schema import LOAD_ORDER, get_table
from archer.store import inbox, sources
from archer.warehouse import UpsertResult, Warehouse

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from archer.workspace import Workspace

CHUNK = 100_000

# Segment's spec names (case and spacing ignored) → canonical event types.
SPEC_TYPES = {
    "products searched": "search",
    "product viewed": "view",
    "product added": "cart_add",
    "product removed": "cart_remove",
    "product added to wishlist": "favorite",
    "checkout started": "checkout",
    "order completed": "order_completed",  # + orders, order_items, the customer
    "order refunded": "order_refunded",  # + refunds
    "signed up": "register",  # + the customer, registered then
    "signed in": "login",
    "coupon applied": "coupon_claim",
    "email opened": "message_open",
    "email link clicked": "message_click",
}
# An event's columns as map_message fills them.
EVENT_FIELDS = (
    "event_id",
    "customer_id",
    "anonymous_id",
    "type",
    "occurred_at",
    "product_id",
    "category",
    "query",
    "source",
    "medium",
    "campaign",
    "properties",
)
# Calls other than track: page and screen are visits; the others keep their call's name.
CALL_TYPES = {
    "page": "visit",
    "screen": "visit",
    "identify": "identify",
    "alias": "alias",
    "group": "group",
}

_GENDER = {w: g for g, ws in GENDERS.items() for w in ws}
_BOOL = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"\W+")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class SyncResult:
    read: int = 0
    tables: dict[str, UpsertResult] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)
    pending: int = 0
    pruned_ids: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "tables": {k: vars(v) for k, v in self.tables.items()},
            "notes": dict(self.notes),
            "pending": self.pending,
            "pruned_ids": self.pruned_ids,
            "seconds": self.seconds,
        }


@functools.lru_cache(maxsize=4096)  # a site sends a few dozen names, again and again
def event_type(name: str) -> str:
    """The canonical type of a track call named ``name``."""
    spec = SPEC_TYPES.get(" ".join(name.lower().split()))
    if spec:
        return spec
    snake = _NON_WORD.sub("_", _CAMEL.sub("_", name.strip())).strip("_").lower()
    return snake or "track"


# -- mapping ---------------------------------------------------------------------------------


@dataclass
class Rows:
    """Canonical rows from a chunk of messages, one per key (the latest message wins)."""

    events: dict[str, tuple] = field(default_factory=dict)  # values in EVENT_FIELDS order
    orders: dict[str, tuple[dict, set[str]]] = field(default_factory=dict)
    order_items: dict[tuple[str, int], dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    customers: dict[str, tuple[dict, set[str]]] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)

    def customer(self, cid: str, values: dict | None = None) -> None:
        """Add what is known of customer ``cid`` (creating it in the warehouse if unknown)."""
        row, provided = self.customers.setdefault(cid, ({"customer_id": cid}, {"customer_id"}))
        for k, v in (values or {}).items():
            if k == "attributes" and row.get("attributes"):
                v = {**row["attributes"], **v}
            row[k] = v
            provided.add(k)


def map_message(msg: dict, source: str, rows: Rows) -> None:
    """Add the canonical rows of one stored message to ``rows``."""
    kind = msg["type"]
    props = msg.get("properties") or {}
    ctx = msg.get("context") or {}
    uid, aid = msg.get("userId"), msg.get("anonymousId")
    at = _naive(msg["timestamp"])
    campaign = ctx.get("campaign") if isinstance(ctx.get("campaign"), dict) else {}
    if kind == "track":
        etype = event_type(msg["event"])
        stored = {**props}
        stored.setdefault("event", msg["event"])
    else:
        etype = CALL_TYPES[kind]
        stored = {**props}
        for f in ("name", "category"):
            if msg.get(f) is not None:
                stored.setdefault(f, msg[f])
        if kind in ("identify", "group"):
            stored = {**(msg.get("traits") or {}), **stored}
        if kind == "group":
            stored.setdefault("groupId", msg["groupId"])
        if kind == "alias":
            aid = msg["previousId"]
            if msg.get("anonymousId") and msg["anonymousId"] != aid:
                stored.setdefault("anonymousId", msg["anonymousId"])
    if ctx:
        stored.setdefault("context", ctx)
    event_id = f"{source}:{msg['messageId']}"
    rows.events[event_id] = (  # in the order of EVENT_FIELDS
        event_id,
        uid,
        aid,
        etype,
        at,
        _text(props.get("product_id") or props.get("sku")),
        _text(props.get("category")),
        _text(props.get("query")) if etype == "search" else None,
        _text(campaign.get("source")),
        _text(campaign.get("medium")),
        _text(campaign.get("name")),
        orjson.dumps(stored).decode(),
    )
    if kind == "identify" and uid:
        rows.customer(uid, customer_fields(msg.get("traits") or {}, rows.notes))
    elif etype == "register" and uid:
        rows.customer(uid, {"registered_at": at})
    elif etype == "order_completed":
        _order(props, uid, at, source, rows)
    elif etype == "order_refunded":
        _refund(props, event_id, at, rows)


def _order(p: dict, uid: str | None, at: datetime, source: str, rows: Rows) -> None:
    oid = _text(p.get("order_id"))
    if not oid:
        rows.notes["Order Completed without order_id: kept as an event only"] += 1
        return
    items = []
    for i, prod in enumerate(p.get("products") or [], start=1):
        pid = _text(prod.get("product_id") or prod.get("sku")) if isinstance(prod, dict) else None
        if not pid:
            rows.notes["order product without product_id or sku: line left out"] += 1
            continue
        qty = _int(prod.get("quantity"), rows.notes)
        items.append(
            {
                "order_id": oid,
                "line_no": i,
                "product_id": pid,
                "quantity": 1 if qty is None else qty,
                "unit_price": _money(prod.get("price"), rows.notes),
                "unit_cost": None,
            }
        )
    goods = _money(p.get("subtotal"), rows.notes)
    if goods is None and items and all(x["unit_price"] is not None for x in items):
        goods = sum((x["unit_price"] * x["quantity"] for x in items), Decimal("0.00"))
    discount = _money(p.get("discount"), rows.notes)
    shipping = _money(p.get("shipping"), rows.notes)
    paid = _money(p.get("total"), rows.notes)
    if paid is None and goods is not None:
        paid = goods - (discount or 0) + (shipping or 0) + (_money(p.get("tax"), rows.notes) or 0)
    order = {
        "order_id": oid,
        "customer_id": uid,
        "created_at": at,
        "paid_at": at,
        "cancelled_at": None,
        "status": "paid",
        "goods_amount": goods,
        "discount_amount": abs(discount) if discount is not None else None,
        "shipping_fee": shipping,
        "paid_amount": paid,
        "coupon_code": _text(p.get("coupon")),
        "channel": _text(p.get("affiliation")) or source,
        "province": None,
        "city": None,
    }
    rows.orders[oid] = (order, {k for k, v in order.items() if v is not None})
    for x in items:
        rows.order_items[(oid, x["line_no"])] = x
    if uid:
        rows.customer(uid)


def _refund(p: dict, event_id: str, at: datetime, rows: Rows) -> None:
    oid = _text(p.get("order_id"))
    amount = _money(p.get("total"), rows.notes)
    if amount is None:
        amount = _money(
            p.get("revenue") if p.get("revenue") is not None else p.get("value"), rows.notes
        )
    if amount is None:
        prods = [x for x in p.get("products") or [] if isinstance(x, dict)]
        prices = [
            (_money(x.get("price"), rows.notes), _int(x.get("quantity"), rows.notes)) for x in prods
        ]
        if prices and all(pr is not None for pr, _ in prices):
            amount = sum((pr * (q or 1) for pr, q in prices), Decimal("0.00"))
    if not oid or amount is None:
        rows.notes["Order Refunded without order_id or amount: kept as an event only"] += 1
        return
    rid = _text(p.get("refund_id")) or event_id
    rows.refunds[rid] = {
        "refund_id": rid,
        "order_id": oid,
        "refunded_at": at,
        "amount": abs(amount),
        "reason": _text(p.get("reason")),
    }


def customer_fields(traits: dict, notes: Counter[str]) -> dict[str, Any]:
    """Customer columns from identify traits; the traits left over go to ``attributes``."""
    t = dict(traits)
    out: dict[str, Any] = {}

    def take(*names: str) -> Any:
        found = None
        for n in names:
            v = t.pop(n, None)
            if found is None and v not in (None, ""):
                found = v
        return found

    for col, names in {
        "email": ("email",),
        "phone": ("phone", "mobile"),
        "occupation": ("occupation", "title"),
        "acquisition_channel": ("acquisition_channel", "acquisitionChannel"),
    }.items():
        v = take(*names)
        if v is not None:
            out[col] = str(v)
    name = take("name")
    first, last = take("firstName", "first_name"), take("lastName", "last_name")
    if name is None and (first or last):
        parts = [str(x) for x in (first, last) if x]
        name = "".join(reversed(parts)) if _CJK.search("".join(parts)) else " ".join(parts)
    if name is not None:
        out["name"] = str(name)
    g = take("gender", "sex")
    if g is not None:
        code = _GENDER.get(str(g).strip().casefold())
        if code is None:
            notes[f"gender {str(g)[:20]!r} not understood: left empty"] += 1
        out["gender"] = code
    b = take("birthday", "birth_date", "birthDate")
    if b is not None:
        out["birthday"] = _date(b, notes)
    created = take("createdAt", "created_at")
    if created is not None:
        out["registered_at"] = _instant(created, notes)
    for col, names in {
        "email_opt_in": ("email_opt_in", "emailOptIn"),
        "sms_opt_in": ("sms_opt_in", "smsOptIn"),
    }.items():
        v = take(*names)
        if v is not None:
            out[col] = v if isinstance(v, bool) else _BOOL.get(str(v).strip().casefold())
    out.update(_place(t))
    if t:
        out["attributes"] = t
    return out


def _place(t: dict) -> dict[str, str | None]:
    addr = t.pop("address", None)
    province = t.pop("province", None) or t.pop("state", None)
    city = t.pop("city", None)
    if isinstance(addr, dict):
        province = province or addr.get("state") or addr.get("province")
        city = city or addr.get("city")
    elif isinstance(addr, str) and addr.strip():
        p, c = parse_address(addr)
        province, city = province or p, city or c
        t["address"] = addr  # the rest of the address is not a column: keep it
    if not province and not city:
        return {}
    p = province_aliases().get(normalise_key(str(province))) if province else None
    c = None
    if city:
        found = lookup_city(str(city), p)
        if found:
            p, c = p or found[0], found[1]
        else:
            c = str(city)
    p = p or (str(province) if province else None)
    if c is None and p:
        c = sole_cities().get(p)
    return {"province": p, "city": c}


# -- values ------------------------------------------------------------------------------------


def _naive(iso: str) -> datetime:
    if iso.endswith("Z"):  # as the API stores every time: UTC already
        return datetime.fromisoformat(iso[:-1])
    return datetime.fromisoformat(iso).astimezone(UTC).replace(tzinfo=None)


def _text(v: Any) -> str | None:
    if v is None or v == "" or isinstance(v, dict | list):
        return None
    return str(v)


def _money(v: Any, notes: Counter[str]) -> Decimal | None:
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        notes[f"amount {str(v)[:20]!r} is not a number: left empty"] += 1
        return None
    if not d.is_finite():
        return None
    return d.quantize(Decimal("0.01"))


def _int(v: Any, notes: Counter[str]) -> int | None:
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        return int(Decimal(str(v).strip()))
    except (InvalidOperation, ValueError):
        notes[f"quantity {str(v)[:20]!r} is not a number: taken as 1"] += 1
        return None


def _date(v: Any, notes: Counter[str]) -> date | None:
    s = str(v).strip().replace("/", "-")
    try:
        return date.fromisoformat(s[:10])
    except ValueError:
        notes[f"birthday {str(v)[:20]!r} is not a date: left empty"] += 1
        return None


def _instant(v: Any, notes: Counter[str]) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(v).strip())
    except ValueError:
        notes[f"createdAt {str(v)[:30]!r} is not an ISO date-time: left empty"] += 1
        return None
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


# -- writing -----------------------------------------------------------------------------------


def write(wh: Warehouse, rows: Rows) -> dict[str, UpsertResult]:
    """Write the rows into the warehouse (call inside ``wh.transaction()``).

    Events and customers whose keys the warehouse does not hold yet are appended; the others
    (a chunk loaded again after a crash, a message sent again after the dedup window, a known
    customer identified again) go through the upsert, which leaves identical rows alone.
    """
    out: dict[str, UpsertResult] = {}
    if rows.customers:
        _merge_attributes(wh, rows)
    grouped = {
        "customers": list(rows.customers.values()),
        "orders": list(rows.orders.values()),
        "order_items": [(r, None) for r in rows.order_items.values()],
        "refunds": [(r, None) for r in rows.refunds.values()],
    }
    for name in LOAD_ORDER:
        if name == "events":
            if rows.events:
                out[name] = _append_new(wh, name, _event_table(rows.events), None)
            continue
        items = grouped.get(name) or []
        by_cols: dict[frozenset[str] | None, list[dict]] = {}
        for row, provided in items:
            by_cols.setdefault(frozenset(provided) if provided else None, []).append(row)
        total = UpsertResult(0, 0, 0)
        for provided, part in by_cols.items():
            cols = sorted(provided) if provided else None
            if name in APPENDED:
                total += _append_new(wh, name, _arrow(name, part), cols)
            else:
                total += wh.upsert(name, ibis.memtable(_arrow(name, part)), cols)
        if items:
            out[name] = total
    return out


# Tables whose new keys are appended rather than upserted: one key column, no decimals (which
# only the upsert hands to Spark safely, through Parquet).
APPENDED = ("customers", "events")


def _append_new(
    wh: Warehouse, name: str, rows: pa.Table, provided: list[str] | None
) -> UpsertResult:
    """Append the rows whose key is new; upsert the others (usually none).

    Only the key column of the stored table is read, against the chunk's keys, and only
    between their least and greatest: the engine skips the blocks whose keys lie outside (other
    sources, imported history), so a chunk's cost grows with the stored keys in its range, not
    with every column of the table. The full upsert runs only on the rows that need it.
    """
    (key,) = get_table(name).key
    lo, hi = (v.as_py() for v in pc.min_max(rows[key]).values())
    t = wh.table(name)
    stored = t.filter(t[key].between(lo, hi)).select(key)
    keys = ibis.memtable(rows.select([key]))
    known = keys.semi_join(stored, key).to_pyarrow()[key]
    if len(known):
        present = pc.is_in(rows[key], value_set=known)
        new, old = rows.filter(pc.invert(present)), rows.filter(present)
    else:
        new, old = rows, None
    if new.num_rows:
        wh.con.insert(name, ibis.memtable(new))
    done = UpsertResult(new.num_rows, 0, 0)
    if old is not None:
        done += wh.upsert(name, ibis.memtable(old), provided)
    return done


def _event_table(events: dict[str, tuple]) -> pa.Table:
    schema = get_table("events").ibis_schema().to_pyarrow()
    row = pa.struct([schema.field(f) for f in EVENT_FIELDS])
    # Arrow turns the tuples into columns itself: several times faster than zip(*rows).
    table = pa.Table.from_struct_array(pa.array(list(events.values()), type=row))
    return table.select(schema.names)


def _arrow(name: str, part: list[dict]) -> pa.Table:
    spec = get_table(name)
    schema = spec.ibis_schema().to_pyarrow()
    cols = {c: [r.get(c) for r in part] for c in spec.names}
    if name == "customers":
        cols["attributes"] = [
            orjson.dumps(a).decode() if isinstance(a, dict) else a for a in cols["attributes"]
        ]
    return pa.table(cols, schema=schema)


def _merge_attributes(wh: Warehouse, rows: Rows) -> None:
    """Extra traits add to the attributes stored before instead of replacing them."""
    ids = [cid for cid, (r, _) in rows.customers.items() if r.get("attributes")]
    if not ids:
        return
    keys = ibis.memtable(pa.table({"customer_id": pa.array(ids, pa.string())}))
    t = wh.table("customers")
    known = keys.inner_join(t, "customer_id").select("customer_id", "attributes")
    for rec in wh.adopt(known, wh.con).to_pyarrow().to_pylist():
        if not rec["attributes"]:
            continue
        try:
            old = orjson.loads(rec["attributes"])
        except orjson.JSONDecodeError:
            continue
        if isinstance(old, dict):
            row = rows.customers[rec["customer_id"]][0]
            row["attributes"] = {**old, **row["attributes"]}


# -- the loop ----------------------------------------------------------------------------------


def _read_and_map(
    eng: Engine, names: dict[int, str], chunk: int, after: int
) -> tuple[int, int, Rows]:
    """The next ``chunk`` events of the inbox after seq ``after``, mapped: how many, the last
    seq, their :class:`Rows`."""
    with eng.connect() as conn:
        batch = inbox.next_bodies(conn, chunk, after)
    rows = Rows()
    for _, source_id, body in batch:
        map_message(orjson.loads(body), names.get(source_id, str(source_id)), rows)
    return len(batch), batch[-1].seq if batch else after, rows


def sync(ws: Workspace, *, chunk: int = CHUNK, now: datetime | None = None) -> SyncResult:
    """Move everything in the inbox into the warehouse; prune message ids past the window."""
    started = elapsed()
    res = SyncResult()
    eng = ws.engine()
    with ws.session() as s:
        names = sources.names_by_id(s)
        waiting = inbox.pending(s.connection())
    if waiting:
        with ws.warehouse() as wh, ThreadPoolExecutor(1, thread_name_prefix="archer-sync") as pool:
            ahead = pool.submit(_read_and_map, eng, names, chunk, 0)
            while ahead is not None:
                n, last_seq, rows = ahead.result()
                if not n:
                    break
                # The next chunk is read and mapped while this one is written: DuckDB and
                # SQLite let go of the GIL while they work. A short chunk was the last.
                more = n == chunk
                ahead = pool.submit(_read_and_map, eng, names, chunk, last_seq) if more else None
                with wh.transaction():
                    written = write(wh, rows)
                with ws.session(write=True) as s:
                    inbox.remove_through(s.connection(), last_seq)
                res.read += n
                res.notes.update(rows.notes)
                for k, v in written.items():
                    res.tables[k] = res.tables.get(k, UpsertResult(0, 0, 0)) + v
    with ws.session(write=True) as s:
        res.pruned_ids = inbox.prune_ids(s.connection(), now or ws.now())
        res.pending = inbox.pending(s.connection())
    res.seconds = round(elapsed() - started, 3)
    return res


def pending(ws: Workspace) -> int:
    """How many events wait in the inbox."""
    with ws.session() as s:
        return inbox.pending(s.connection())


def sync_if_pending(ws: Workspace) -> SyncResult | None:
    """:func:`sync` when the inbox has events (the server's loop: idle costs one count)."""
    return sync(ws) if pending(ws) else None
