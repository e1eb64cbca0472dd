"""A campaign round: enrol the subjects the triggers select, walk each due run through its steps,
plan the messages it reaches — every write keyed so that repeating a round, or finishing one a
crash cut short, adds nothing.

* **Enrol.** For each active campaign the trigger's candidates (:mod:`triggers`) are filtered by
  the re-entry rule and inserted with ``ON CONFLICT DO NOTHING`` on (campaign, customer, trigger
  key). The arm (holdout or treatment) and the variant are drawn from a stable hash of
  (campaign salt, customer), so a customer stays in one arm on every key.
* **Advance.** A due run (``next_run_at`` ≤ now) first meets its exit and goal conditions, then
  walks: a delay moves ``next_run_at`` on (from the time the step was due, so lateness of
  rounds never piles up); a message step plans one row in the outbox; a branch or wait-until
  looks its condition up (an audience condition, evaluated once per round). A batch of runs —
  their messages and their advance — is written in one transaction.
* **Dispatch** is :mod:`archer.messaging.dispatch`: it needs only the store, so any number of
  workers can send.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
from sqlalchemy import bindparam, func, select, type_coerce, update
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from archer.campaigns import definition as df
from archer.campaigns.definition import Definition
from archer.campaigns.fields import WECOM_ID
from archer.campaigns.triggers import candidates
from archer.errors import ArcherError
from archer.facts import Snapshot
from archer.store import campaigns as rows
from archer.store.sql import insert_ignore

if TYPE_CHECKING:
    from archer.warehouse import Warehouse
    from archer.workspace import Workspace

BATCH = 5000  # runs advanced per transaction
INSERT_CHUNK = 20_000
BULK_CACHE_KB = 256 * 1024  # SQLite's page cache while a large insert runs


def draw(salt: str, customer_id: str, what: str = "arm") -> float:
    """A stable number in [0, 1) for (campaign salt, customer): the holdout and variant draw."""
    h = hashlib.sha256(f"{salt}\x1f{what}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def arm_of(d: Definition, customer_id: str) -> tuple[str, str | None]:
    arm = "holdout" if draw(d.salt_or_name, customer_id) < d.holdout else "treatment"
    if not d.variants:
        return arm, None
    total = sum(v.weight for v in d.variants)
    x, acc = draw(d.salt_or_name, customer_id, "variant") * total, 0.0
    for v in d.variants:
        acc += v.weight
        if x < acc:
            return arm, v.name
    return arm, d.variants[-1].name


def message_uid(campaign_id: int, customer_id: str, trigger_key: str, step: str) -> str:
    """The message's identity, from its natural key: the same on every re-run."""
    raw = f"{campaign_id}\x1f{customer_id}\x1f{trigger_key}\x1f{step}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def _aware(t: datetime | pd.Timestamp) -> datetime:
    t = pd.Timestamp(t).to_pydatetime()
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass
class Live:
    """An active campaign with the definitions of every version its runs are on."""

    row: rows.Campaign
    versions: dict[int, Definition]

    @property
    def current(self) -> Definition:
        return self.versions[self.row.version]


def live_campaigns(s: Session, names: Iterable[str] | None = None) -> list[Live]:
    q = select(rows.Campaign).where(rows.Campaign.status == "active")
    if names is not None:
        q = q.where(rows.Campaign.name.in_(list(names)))
    out = []
    for c in s.scalars(q.order_by(rows.Campaign.id)):
        vs = s.execute(
            select(rows.CampaignVersion.version, rows.CampaignVersion.definition).where(
                rows.CampaignVersion.campaign_id == c.id
            )
        )
        out.append(Live(c, {v: df.load(json.loads(text)) for v, text in vs}))
    return out


@dataclass
class Round:
    """What one round knows: the moment, the warehouse and the conditions looked up so far."""

    ws: Workspace
    wh: Warehouse
    now: datetime
    _members: dict[str, frozenset[str]] = field(default_factory=dict)
    _snap: Snapshot | None = None

    @property
    def snap(self) -> Snapshot:
        if self._snap is None:
            self._snap = Snapshot.instant(self.wh, self.now, self.ws.tz)
        return self._snap

    def members(self, condition: str) -> frozenset[str]:
        """Customers meeting an audience condition (as of the last build), once per round."""
        got = self._members.get(condition)
        if got is None:
            ids = self.ws.audiences.members(condition).customer_id
            got = self._members[condition] = frozenset(ids.astype(str))
        return got


@dataclass
class Report:
    enrolled: Counter = field(default_factory=Counter)
    planned: Counter = field(default_factory=Counter)
    ended: Counter = field(default_factory=Counter)  # by reason
    coupons: Counter = field(default_factory=Counter)  # issued, by campaign
    points: Counter = field(default_factory=Counter)  # awarded, by campaign
    held: Counter = field(default_factory=Counter)  # offers the holdout was not given
    not_given: Counter = field(default_factory=Counter)  # by reason (limits, budget, pool)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "enrolled": sum(self.enrolled.values()),
            "planned": sum(self.planned.values()),
            "enrolled_by_campaign": dict(self.enrolled),
            "planned_by_campaign": dict(self.planned),
            "ended": dict(self.ended),
            "coupons_issued": sum(self.coupons.values()),
            "points_awarded": sum(self.points.values()),
            "offers_held_back": sum(self.held.values()),
            "offers_not_given": dict(self.not_given),
            "errors": self.errors,
        }


# -- enrolment -----------------------------------------------------------------------------------
def enrol(r: Round, live: Live, report: Report) -> int:
    d, c = live.current, live.row
    if d.kind == "broadcast":
        if d.send_at is None or r.now < _local_instant(d.send_at, r.ws.tz):
            return 0
        if d.send_until is not None and r.now >= _local_instant(d.send_until, r.ws.tz):
            return 0
        with r.ws.session() as s:
            if s.scalar(select(rows.Enrollment.id).where(rows.Enrollment.campaign_id == c.id)):
                return 0  # a broadcast enrols once, at its send time
    found = candidates(r.wh, d, r.now, r.ws.tz, r.members)
    if found.empty:
        return 0
    found = found.sort_values(["entered_at", "customer_id", "trigger_key"], kind="stable")
    with r.ws.session() as s:
        found = _reentry(s, c.id, d, found)
    if found.empty:
        return 0
    first = d.steps[0].id
    base = _utc(_local_instant(d.send_at, r.ws.tz)) if d.kind == "broadcast" else None
    records = []
    # a broadcast's runs all enter at its send time: their own times need not be read
    times = [None] * len(found) if base else found.entered_at
    for cust, key, at in zip(found.customer_id, found.trigger_key, times, strict=True):
        arm, variant = arm_of(d, str(cust))
        entered = base or _utc(_aware(at))
        records.append((c.id, c.version, str(cust), str(key), arm, variant, entered, "active",
                        first, entered, entered))  # fmt: skip
    added = 0
    for i in range(0, len(records), INSERT_CHUNK):
        with r.ws.session(write=True) as s:
            added += insert_rows(
                s, rows.Enrollment.__table__, ENROLMENT_COLUMNS, records[i : i + INSERT_CHUNK],
                ("campaign_id", "customer_id", "trigger_key"),
            )  # fmt: skip
    report.enrolled[c.name] += added
    return added


ENROLMENT_COLUMNS = ("campaign_id", "version", "customer_id", "trigger_key", "arm", "variant",
                     "entered_at", "state", "step", "next_run_at", "step_started_at")  # fmt: skip


def insert_rows(
    s: Session, table, columns: tuple[str, ...], values: list[tuple], keys: tuple[str, ...]
) -> int:
    """Insert rows given as tuples in ``columns`` order, skipping those that collide on the
    unique ``keys``; how many were new.

    On SQLite the rows go to the driver as they are, each column's conversion (an instant to
    its stored text) made once per distinct value: a broadcast's million rows share a few
    instants, and converting them row by row costs more than the insert. Elsewhere this is
    :func:`insert_ignore`.
    """
    if not values:
        return 0
    dialect = s.get_bind().dialect
    if dialect.name != "sqlite":
        return insert_ignore(s, table, [dict(zip(columns, v, strict=True)) for v in values], keys)
    procs = {i: p for i, col in enumerate(columns)
             if (p := table.c[col].type.dialect_impl(dialect).bind_processor(dialect))
             is not None}  # fmt: skip
    if procs:
        seen: dict[int, dict[Any, Any]] = {i: {} for i in procs}
        out = []
        for v in values:
            v = list(v)
            for i, proc in procs.items():
                x = v[i]
                if x is not None:
                    done = seen[i].get(x)
                    if done is None:
                        done = seen[i][x] = proc(x)
                    v[i] = done
            out.append(tuple(v))
        values = out
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    )
    conn = s.connection()
    # The unique keys are hashes, so rows land all over their indexes: with SQLite's default
    # 2 MB page cache a large insert rereads index pages from disk. A bigger cache for this
    # statement only.
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KB}")
    try:
        return max(conn.exec_driver_sql(sql, values).rowcount, 0)
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


def _local_instant(t: datetime, tz) -> datetime:
    """A definition's wall-clock time (no zone: the shop's) as an aware instant."""
    return (t.replace(tzinfo=tz) if t.tzinfo is None else t).astimezone(UTC)


def _reentry(s: Session, campaign_id: int, d: Definition, found: pd.DataFrame) -> pd.DataFrame:
    """Drop candidates the re-entry rule keeps out (and keys already enrolled)."""
    e = rows.Enrollment
    last: dict[str, datetime] = {}
    keys: set[tuple[str, str]] = set()
    if len(found) <= 50_000:
        ids = list(dict.fromkeys(found.customer_id.astype(str)))
        for i in range(0, len(ids), 900):
            q = select(e.customer_id, e.trigger_key, e.entered_at).where(
                e.campaign_id == campaign_id, e.customer_id.in_(ids[i : i + 900])
            )
            for cust, key, at in s.execute(q):
                keys.add((cust, key))
                last[cust] = max(at, last.get(cust, at))
    else:
        q = select(e.customer_id, e.trigger_key, e.entered_at).where(e.campaign_id == campaign_id)
        for cust, key, at in s.execute(q):
            keys.add((cust, key))
            last[cust] = max(at, last.get(cust, at))
    if not keys and not found.customer_id.duplicated().any():
        return found  # nobody here has run before, nobody twice: the rule keeps everyone
    gap = df.parse_duration(d.reentry_after) if d.reentry_after else None
    keep = []
    for cust, key, at in zip(found.customer_id, found.trigger_key, found.entered_at, strict=True):
        cust, key = str(cust), str(key)
        if (cust, key) in keys:
            keep.append(False)
            continue
        entered = _aware(at)
        prev = last.get(cust)
        ok = prev is None or (d.reentry and (gap is None or entered - prev >= gap))
        keep.append(ok)
        if ok:
            last[cust] = entered
            keys.add((cust, key))
    return found[keep]


# -- advancing -------------------------------------------------------------------------------------
def advance(r: Round, live: Live, report: Report) -> None:
    """Walk every due run of the campaign, a batch per transaction."""
    if all(_messages_only(d) for d in live.versions.values()):
        return _advance_messages_only(r, live, report)
    c = live.row
    after_id = 0
    while True:
        with r.ws.session() as s:
            batch = list(
                s.scalars(
                    select(rows.Enrollment)
                    .where(
                        rows.Enrollment.campaign_id == c.id,
                        rows.Enrollment.state == "active",
                        rows.Enrollment.next_run_at <= r.now,
                        rows.Enrollment.id > after_id,
                    )
                    .order_by(rows.Enrollment.id)
                    .limit(BATCH)
                )
            )
        if not batch:
            return
        after_id = batch[-1].id
        _advance_batch(r, live, batch, report)


# -- a broadcast: runs that meet nothing but messages, in bulk -------------------------------------
BULK = 50_000  # runs planned per transaction
MESSAGE_COLUMNS = ("uid", "enrollment_id", "step", "campaign_id", "version", "customer_id",
                   "channel", "purpose", "arm", "variant", "state", "address", "opt_in",
                   "context", "planned_at", "due_at", "not_before", "expires_at", "attempts",
                   "cost_fen")  # fmt: skip


def _messages_only(d: Definition) -> bool:
    """A campaign whose runs only plan messages and end (a broadcast with no exit or goal):
    nothing to look up per run, so its runs can be planned in bulk."""
    return (
        d.kind == "broadcast"
        and not (d.exit_on or d.goal or d.exit_if)
        and all(isinstance(s, df.Message | df.Exit) for s in d.steps)
    )


def _path(d: Definition, step_id: str | None) -> tuple[list[df.Message], str, str]:
    """The messages a run at ``step_id`` plans, and how it ends (state, reason)."""
    index = {s.id: i for i, s in enumerate(d.steps)}
    out: list[df.Message] = []
    for _ in range(2 * df.MAX_STEPS):
        if step_id is None:
            return out, "completed", "completed"
        i = index.get(step_id)
        if i is None:
            return out, "exited", "step_missing"
        s = d.steps[i]
        if isinstance(s, df.Exit):
            return out, "completed", "completed"
        out.append(s)  # type: ignore[arg-type]
        step_id = d.after(i)
    return out, "completed", "completed"


def _advance_messages_only(r: Round, live: Live, report: Report) -> None:
    """Plan the messages of every due run and end it, :data:`BULK` runs per transaction: the
    same rows as walking them one by one (the same uids, so a re-run adds nothing), written
    in bulk — a broadcast to a million customers is planned in seconds."""
    from archer.campaigns.fields import customer_context, used_fields

    c = live.row
    e = rows.Enrollment.__table__
    fields: set[str] = set()
    for d in live.versions.values():
        fields |= used_fields(d)
    paths: dict[tuple[int, str | None], tuple[list[tuple[df.Message, Any]], str, str]] = {}
    instants: dict[Any, datetime] = {}
    with r.ws.session() as s:
        dialect = s.get_bind().dialect
    convert = e.c.next_run_at.type.dialect_impl(dialect).result_processor(dialect, None)

    def instant(v: Any) -> Any:
        return convert(v) if convert is not None else v

    stored = type_coerce(e.c.next_run_at, NullType()).label("next_run_at")
    now = _utc(r.now)
    due = (e.c.campaign_id == c.id) & (e.c.state == "active") & (e.c.next_run_at <= r.now)
    after_id = 0
    while True:
        with r.ws.session() as s:
            q = (
                select(
                    e.c.id,
                    e.c.customer_id,
                    e.c.trigger_key,
                    e.c.arm,
                    e.c.variant,
                    e.c.version,
                    e.c.step,
                    stored,
                )  # fmt: skip
                .where(due, e.c.id > after_id)
                .order_by(e.c.id)
                .limit(BULK)
            )
            chunk = s.execute(q).all()
        if not chunk:
            return
        lo, after_id = chunk[0].id, chunk[-1].id
        people = customer_context(r.wh, sorted({x.customer_id for x in chunk}), fields, r.snap)
        msgs: list[tuple] = []
        ends: dict[tuple[str, str], list[int]] = defaultdict(list)
        for x in chunk:
            key = (x.version, x.step)
            path = paths.get(key)
            if path is None:
                found, state, reason = _path(live.versions[x.version], x.step)
                path = paths[key] = (
                    [(m, df.parse_duration(m.expires) if m.expires else None) for m in found],
                    state,
                    reason,
                )
            steps, state, reason = path
            ends[(state, reason)].append(x.id)
            if not steps:
                continue
            at = instants.get(x.next_run_at)
            if at is None:  # read as stored, converted once per distinct value
                at = instants[x.next_run_at] = _utc(_aware(instant(x.next_run_at)))
            customer = people.get(x.customer_id, {})
            context = orjson.dumps({"customer": customer}, default=str).decode()
            for m, lasts in steps:
                email = m.channel == "email"
                address = customer.get("email") if email else customer.get("phone")
                opt_in = customer.get("email_opt_in") if email else customer.get("sms_opt_in")
                expires = at + lasts if lasts is not None else None
                msgs.append((
                    message_uid(c.id, x.customer_id, x.trigger_key, m.id), x.id, m.id, c.id,
                    x.version, x.customer_id, m.channel, m.purpose, x.arm, x.variant, "planned",
                    None if m.channel == "inbox" or not address else str(address),
                    None if opt_in is None else bool(opt_in),
                    context, now, at, at, expires, 0, 0,
                ))  # fmt: skip
        with r.ws.session(write=True) as s:
            added = insert_rows(s, rows.Message.__table__, MESSAGE_COLUMNS, msgs, ("uid",))
            report.planned[c.name] += added
            for (state, reason), ids in ends.items():
                done = {"state": state, "end_reason": reason, "ended_at": now, "step": None,
                        "next_run_at": None}  # fmt: skip
                if len(ends) == 1:  # every due run of the id range: one statement
                    s.execute(update(e).where(due, e.c.id.between(lo, after_id)).values(done))
                else:
                    stmt = update(e).where(e.c.id == bindparam("_id")).values(done)
                    s.connection().execute(stmt, [{"_id": i} for i in ids])
                report.ended[reason] += len(ids)


@dataclass
class _Walk:
    enrolment: rows.Enrollment
    changes: dict[str, Any] = field(default_factory=dict)
    # what the walk reached, in order: messages, coupons, points, with when each was due
    messages: list[tuple[df.Message | df.CouponStep | df.PointsStep, datetime]] = field(
        default_factory=list
    )


def _advance_batch(r: Round, live: Live, batch: list[rows.Enrollment], report: Report) -> None:
    events = _events(r, live, batch)
    walks = [_walk(r, live.versions[e.version], e, events) for e in batch]
    planning = [w for w in walks if w.messages]
    contexts = _contexts(r, live, planning) if planning else {}
    for w in walks:
        if w.changes.get("state") in ("completed", "exited", "converted"):
            report.ended[w.changes["end_reason"]] += 1
    with r.ws.session(write=True) as s:
        offers = Offers(s, r, live, report)
        msgs: list[dict[str, Any]] = []
        for w in walks:
            e = w.enrolment
            ctx: dict[str, Any] = {}
            for step, due in w.messages:
                if isinstance(step, df.Message):
                    msgs.append(_message_row(r, live, e, step, due, contexts, ctx))
                    ctx.pop("coupons", None)  # carried by this message; a later one shows its own
                else:
                    offers.give(e, step, due, contexts, ctx)
        if msgs:
            added = insert_ignore(s, rows.Message.__table__, msgs, ("uid",))
            report.planned[live.row.name] += added
        _write_changes(s, walks)


def _write_changes(s: Session, walks: list[_Walk]) -> None:
    """The runs' advances, as one prepared UPDATE per shape of change (executemany): a
    statement per run costs more than the rest of planning."""
    t = rows.Enrollment.__table__
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for w in walks:
        if w.changes:
            shapes[tuple(sorted(w.changes))].append({"_id": w.enrolment.id, **w.changes})
    for keys, params in shapes.items():
        stmt = update(t).where(t.c.id == bindparam("_id")).values({k: bindparam(k) for k in keys})
        s.connection().execute(stmt, params)


def _walk(r: Round, d: Definition, e: rows.Enrollment, events: dict[str, set]) -> _Walk:
    w = _Walk(e)
    now = r.now
    ended = _ended(r, d, e, events)
    if ended is not None:
        state, reason = ended
        w.changes = {"state": state, "end_reason": reason, "ended_at": _utc(now),
                     "step": None, "next_run_at": None}  # fmt: skip
        return w
    index = {s.id: i for i, s in enumerate(d.steps)}
    step_id: str | None = e.step
    base = _aware(e.next_run_at)
    started = _aware(e.step_started_at or e.next_run_at)
    for _ in range(2 * df.MAX_STEPS):
        if step_id is None:
            w.changes = {"state": "completed", "end_reason": "completed",
                         "ended_at": _utc(now), "step": None, "next_run_at": None}  # fmt: skip
            return w
        i = index.get(step_id)
        if i is None:  # a step that no longer exists: the version changed under it
            w.changes = {"state": "exited", "end_reason": "step_missing",
                         "ended_at": _utc(now), "step": None, "next_run_at": None}  # fmt: skip
            return w
        s = d.steps[i]
        if isinstance(s, df.Exit):
            step_id = None
            continue
        if isinstance(s, df.Delay):
            until = _delay_end(s, base, r.ws.tz)
            if until > now:
                nxt = d.after(i)
                w.changes = {"step": nxt, "next_run_at": _utc(until),
                             "step_started_at": _utc(until)}  # fmt: skip
                if nxt is None:
                    w.changes["next_run_at"] = _utc(until)
                return w
            base = started = until
            step_id = d.after(i)
            continue
        if isinstance(s, df.Message | df.CouponStep | df.PointsStep):
            w.messages.append((s, base))
            step_id = d.after(i)
            started = base
            continue
        if isinstance(s, df.Branch):
            step_id = s.then if e.customer_id in r.members(s.condition) else s.else_
            continue
        if isinstance(s, df.WaitUntil):
            if e.customer_id in r.members(s.condition):
                base = started = max(base, now)
                step_id = d.after(i)
                continue
            deadline = started + df.parse_duration(s.timeout)
            if deadline <= now:
                base = started = deadline
                step_id = s.on_timeout
                continue
            nxt_look = min(now + df.parse_duration(s.every), deadline)
            w.changes = {"step": s.id, "next_run_at": _utc(nxt_look),
                         "step_started_at": _utc(started)}  # fmt: skip
            return w
    w.changes = {"step": step_id, "next_run_at": _utc(now + timedelta(hours=1))}
    return w


def _delay_end(s: df.Delay, base: datetime, tz) -> datetime:
    if s.for_ is not None:
        return base + df.parse_duration(s.for_)
    at = df.parse_clock(s.until or "00:00")
    local = base.astimezone(tz)
    target = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if target < local:
        target = (local + timedelta(days=1)).replace(
            hour=at.hour, minute=at.minute, second=0, microsecond=0
        )
    return target.astimezone(UTC)


def _ended(
    r: Round, d: Definition, e: rows.Enrollment, events: dict[str, set]
) -> tuple[str, str] | None:
    if d.goal and (e.customer_id, e.trigger_key) in events.get(d.goal, set()):
        return "converted", f"goal:{d.goal}"
    for ev in d.exit_on:
        if (e.customer_id, e.trigger_key) in events.get(ev, set()):
            return "exited", ev
    if d.exit_if and e.customer_id in r.members(d.exit_if):
        return "exited", "exit_if"
    return None


def _events(r: Round, live: Live, batch: list[rows.Enrollment]) -> dict[str, set]:
    """Which runs of the batch saw each built-in event (order paid or closed; a purchase
    after entering), from the warehouse at the round's instant."""
    wanted: set[str] = set()
    for d in live.versions.values():
        wanted.update(d.exit_on)
        if d.goal:
            wanted.add(d.goal)
    out: dict[str, set] = defaultdict(set)
    if not wanted:
        return out
    snap = r.snap
    o = snap.orders
    if wanted & {"order_paid", "order_closed"}:
        keys = list({e.trigger_key for e in batch})
        mine = o.filter(o.order_id.isin(keys))
        got = mine.select(
            "order_id", "customer_id", paid=snap.is_paid(mine), closed=snap.is_closed(mine)
        ).execute()
        for oid, cust, paid, closed in got.itertuples(index=False):
            if paid:
                out["order_paid"].add((cust, oid))
            if closed:
                out["order_closed"].add((cust, oid))
    if "purchased" in wanted:
        custs = list({e.customer_id for e in batch})
        p = o.filter(o.customer_id.isin(custs))
        p = p.filter(snap.is_paid(p))
        pay_time = p.paid_at.coalesce(p.created_at)
        last = p.group_by("customer_id").aggregate(last=pay_time.max()).execute()
        latest = {c: _aware(t) for c, t in zip(last.customer_id, last["last"], strict=True)}
        for e in batch:
            t = latest.get(e.customer_id)
            if t is not None and t > _aware(e.entered_at):
                out["purchased"].add((e.customer_id, e.trigger_key))
    if "bought_product" in wanted:  # the product of a favourites run
        from archer.campaigns.favourites import bought

        out["bought_product"] = bought(
            snap, [(e.customer_id, e.trigger_key, e.entered_at) for e in batch]
        )
    return out


# -- what a message may show -----------------------------------------------------------------------
def _contexts(r: Round, live: Live, walks: list[_Walk]) -> dict[str, Any]:
    from archer.campaigns.fields import (
        customer_context,
        order_context,
        product_context,
        with_wecom_ids,
    )

    fields: set[str] = set()
    for d in live.versions.values():
        fields |= _fields_used(d)
        if any(isinstance(st, df.CouponStep | df.PointsStep) and st.by_tier for st in d.steps):
            fields.add("value_tier")
    custs = sorted({w.enrolment.customer_id for w in walks})
    wecom = any(
        isinstance(s, df.Message) and s.channel == "wecom"
        for d in live.versions.values()
        for s in d.steps
    )
    if wecom:  # the WeCom id lies in the customer's attributes
        fields.add("attributes")
    out: dict[str, Any] = {"customer": customer_context(r.wh, custs, fields, r.snap)}
    if wecom:
        with_wecom_ids(out["customer"], r.ws.settings.wecom.id_attribute)
    if any(d.trigger.key == "order" for d in live.versions.values()):
        out["order"] = order_context(r.wh, sorted({w.enrolment.trigger_key for w in walks}))
    if any(d.trigger.on == "favourite" for d in live.versions.values()):
        runs = [(w.enrolment.customer_id, w.enrolment.trigger_key) for w in walks]
        out["product"] = product_context(r.snap, runs)
    return out


def _fields_used(d: Definition) -> set[str]:
    from archer.campaigns.fields import used_fields

    return used_fields(d)


def _message_row(
    r: Round,
    live: Live,
    e: rows.Enrollment,
    step: df.Message,
    due: datetime,
    ctx: dict,
    given: dict[str, Any],
) -> dict[str, Any]:
    c = live.row
    customer = ctx["customer"].get(e.customer_id, {})
    address = customer.get("email") if step.channel == "email" else customer.get("phone")
    opt_in = customer.get("email_opt_in") if step.channel == "email" else customer.get("sms_opt_in")
    if step.channel == "wecom":  # an external contact of the shop's staff
        address = customer.get(WECOM_ID)
        opt_in = True if address and r.ws.settings.wecom.contact_is_opt_in else None
    context: dict[str, Any] = {"customer": customer}
    if "order" in ctx:
        context["order"] = ctx["order"].get(e.trigger_key, {"order_id": e.trigger_key})
    if "product" in ctx:
        context["product"] = ctx["product"].get((e.customer_id, e.trigger_key))
    context.update(given)  # the coupon or points the run was given before this message
    expires = due + df.parse_duration(step.expires) if step.expires else None
    return {
        "uid": message_uid(c.id, e.customer_id, e.trigger_key, step.id),
        "enrollment_id": e.id,
        "step": step.id,
        "campaign_id": c.id,
        "version": e.version,
        "customer_id": e.customer_id,
        "channel": step.channel,
        "purpose": step.purpose,
        "arm": e.arm,
        "variant": e.variant,
        "state": "planned",
        "address": None if step.channel == "inbox" else (str(address) if address else None),
        "opt_in": None if opt_in is None or pd.isna(opt_in) else bool(opt_in),
        "context": json.dumps(context, ensure_ascii=False, default=str),
        "planned_at": _utc(r.now),
        "due_at": _utc(due),
        "not_before": _utc(max(due, r.now) if due > r.now else due),
        "expires_at": _utc(expires) if expires else None,
        "attempts": 0,
        "cost_fen": 0,
    }


class Offers:
    """Coupons and points a batch's runs reach, given inside the batch's transaction, so the
    message that shows a code is stored with it or not at all."""

    def __init__(self, s, r: Round, live: Live, report: Report) -> None:
        from archer.offers import coupons

        self.s, self.r, self.live, self.report = s, r, live, report
        self.coupons = coupons
        self._templates: dict[str, Any] = {}

    def _template(self, name: str):
        if name not in self._templates:
            self._templates[name] = self.coupons.template_named(self.s, name)
        return self._templates[name]

    def give(self, e: rows.Enrollment, step, due: datetime, ctx: dict, given: dict) -> None:
        if e.arm == "holdout":  # the holdout is measured, never given anything
            self.report.held[self.live.row.name] += 1
            return
        tier = (ctx.get("customer", {}).get(e.customer_id) or {}).get("value_tier")
        if isinstance(step, df.CouponStep):
            t = self._template(step.by_tier.get(tier or "", step.template))
            c, why = self.coupons.issue(
                self.s, t, e.customer_id, now=self.r.now, source="campaign",
                campaign_id=self.live.row.id, enrollment_id=e.id, step=step.id,
            )  # fmt: skip
            if c is None:
                self.report.not_given[why or "?"] += 1
                return
            self.report.coupons[self.live.row.name] += 1
            given["coupon"] = self.coupons.context(c, t, self.r.ws.tz)
            given.setdefault("coupons", []).append(given["coupon"])  # what the next message carries
            return
        from archer.offers import points

        n = step.by_tier.get(tier or "", step.points)
        done = points.award(
            self.s, e.customer_id, n, source=f"campaign:{self.live.row.id}:{e.id}:{step.id}",
            at=self.r.now, expires_at=self.r.now + df.parse_duration(step.expires),
            note=self.live.row.name,
        )  # fmt: skip
        if done:
            self.report.points[self.live.row.name] += n
        given["points"] = {"awarded": n, "balance": points.balance_in(self.s, e.customer_id)}


# -- a round ---------------------------------------------------------------------------------------
def plan(ws: Workspace, now: datetime | None = None, names: Iterable[str] | None = None) -> Report:
    """Enrol and advance every active campaign (or those named) at ``now``: the planning half
    of a round; what it planned is sent by :func:`archer.messaging.dispatch.dispatch`."""
    now = now or ws.now()
    report = Report()
    with ws.session() as s:
        lives = live_campaigns(s, names)
    if not lives:
        return report
    with ws.warehouse() as wh:
        r = Round(ws, wh, now)
        for live in lives:
            try:
                enrol(r, live, report)
                advance(r, live, report)
            except ArcherError as e:
                report.errors[live.row.name] = str(e)
    return report


def counts(s: Session, campaign_id: int) -> dict[str, Any]:
    """The ledger of one campaign in numbers: runs per arm and state, messages per arm, step
    and state, skips by reason."""
    e, m = rows.Enrollment, rows.Message
    runs: dict[str, dict[str, int]] = defaultdict(dict)
    q = select(e.arm, e.state, func.count()).where(e.campaign_id == campaign_id)
    for arm, state, n in s.execute(q.group_by(e.arm, e.state)):
        runs[arm][state] = n
    steps: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    skipped: Counter = Counter()
    q2 = select(m.arm, m.step, m.state, m.reason, func.count()).where(m.campaign_id == campaign_id)
    for arm, step, state, reason, n in s.execute(q2.group_by(m.arm, m.step, m.state, m.reason)):
        steps[arm][step][state] = steps[arm][step].get(state, 0) + n
        if state == "skipped":
            skipped[reason] += n
    return {
        "enrolled": sum(sum(v.values()) for v in runs.values()),
        "runs": {k: dict(v) for k, v in runs.items()},
        "messages": {a: {st: dict(v) for st, v in by.items()} for a, by in steps.items()},
        "sent": sum(v.get("sent", 0) for by in steps.values() for v in by.values()),
        "skipped": dict(skipped),
    }
