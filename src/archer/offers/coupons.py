"""Coupons: templates as Chinese shops use them, codes no one misreads, issue within limits.

* **Templates.** ``threshold`` (满减: spend ``threshold``, save ``amount``), ``rate`` (折: pay
  ``rate`` of the price, e.g. 0.9, at most ``max_saving``), ``cash`` (无门槛: ``amount`` off any
  order). Valid ``valid_days`` from issue, or from ``valid_from`` to ``valid_until``. Limits per
  customer and in total, and a budget (the sum of what issued coupons can save).
* **Codes** come from an alphabet without 0/O and 1/I, drawn with :mod:`secrets`, and end in
  a check character, so a mistyped code is caught before it is looked up. A template may hand
  out codes the shop imported instead (``codes = "pool"``), each once.
* **Issue** happens inside the caller's transaction (a campaign round plans the message that
  shows the code in the same one); a step's coupon is unique on (run, step).
* **Redemption** is read from ``orders.coupon_code`` on each build: :func:`redeem_from_orders`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from archer.errors import Conflict, Invalid, NotFound, suggest
from archer.store.campaigns import CUSTOMER_MAX
from archer.store.offers import COUPON_KINDS, Coupon, CouponTemplate

if TYPE_CHECKING:
    from archer.workspace import Workspace

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0, O, 1, I
CODE_LENGTH = 10  # + 1 check character: 32^10 ≈ 10^15 codes
MAX_POOL = 1_000_000


def check_character(body: str) -> str:
    """The check character of ``body``: a weighted sum mod 32 (Luhn mod N), which catches
    every single-character slip and every swap of two neighbours."""
    n = len(ALPHABET)
    total, factor = 0, 2
    for ch in reversed(body):
        addend = factor * ALPHABET.index(ch)
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return ALPHABET[(n - total % n) % n]


def new_code(prefix: str = "") -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return prefix + body + check_character(body)


def valid_code(code: str) -> bool:
    """Whether a generated code is well formed (its check character agrees)."""
    c = code.strip().upper()
    if len(c) < 2 or any(ch not in ALPHABET for ch in c):
        return False
    return check_character(c[:-1]) == c[-1]


def _bad(field: str, message: str) -> Invalid:
    """A refusal that names its field, in the text and as ``field`` (the API's problem and the
    pages' form show it there)."""
    return Invalid(f"{field}: {message}", field=field)


def _fen(value: Any, field: str) -> int:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise _bad(field, f"expected an amount such as 20 or 19.90, got {value!r}") from None
    if not d.is_finite() or not 0 <= d <= Decimal("10000000") or d != d.quantize(Decimal("0.01")):
        raise _bad(field, "expected an amount from 0 to 10,000,000 with at most 2 decimals")
    return int(d * 100)


def _whole(value: Any, field: str, low: int, high: int) -> int | None:
    """``value`` as a whole number from ``low`` to ``high`` (None stays None)."""
    if value is None:
        return None
    n: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and len(value) <= 20:
        try:
            n = int(value.strip())
        except ValueError:
            n = None
    if n is None or not low <= n <= high:
        raise _bad(field, f"expected a whole number from {low:,} to {high:,}, got {value!r}")
    return n


MAX_LIMIT = 1_000_000_000  # per customer, in total: the store's integer columns hold it


def define(
    ws: Workspace,
    name: str,
    *,
    kind: str,
    amount: Any = 0,
    threshold: Any = 0,
    rate: float | None = None,
    max_saving: Any = None,
    valid_days: int | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    per_customer: int | None = 1,
    total_limit: int | None = None,
    budget: Any = None,
    categories: list[str] | None = None,
    products: list[str] | None = None,
    codes: str = "generated",
    user: str = "archer",
) -> dict[str, Any]:
    """Store a coupon template after checking it; every problem names its field."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or "/" in name:
        raise _bad("name", "1–100 characters, no '/'")
    if kind not in COUPON_KINDS:
        raise _bad("kind", f"expected one of {', '.join(COUPON_KINDS)} (满减, 折扣, 无门槛)")
    amount_fen, threshold_fen = _fen(amount, "amount"), _fen(threshold, "threshold")
    max_fen = _fen(max_saving, "max_saving") if max_saving is not None else None
    if kind == "threshold":
        if threshold_fen <= 0:
            raise _bad("threshold", "a 满减 coupon needs a threshold above zero")
        if amount_fen <= 0:
            raise _bad("amount", "a 满减 coupon saves more than zero")
        if amount_fen >= threshold_fen:
            raise _bad("amount", f"a 满减 coupon saves less than its threshold ({amount} ≥ "
                                 f"{threshold})")  # fmt: skip
    if kind == "cash" and amount_fen <= 0:
        raise _bad("amount", "a cash coupon saves more than zero")
    if kind == "rate":
        try:
            r = float(rate) if rate is not None else None
        except (TypeError, ValueError):
            r = None
        if r is None or not 0 < r < 1:  # NaN fails too
            raise _bad("rate", f"a discount rate is between 0 and 1 (0.9 = 9折), got {rate!r}")
        rate = r
        if max_fen is None or max_fen <= 0:
            raise _bad("max_saving", "a rate coupon needs the most it may save (its value)")
    if valid_days is None and valid_until is None:
        raise _bad("valid_days", "a coupon needs an end: valid_days or valid_until")
    valid_days = _whole(valid_days, "valid_days", 1, 3650)
    if valid_from and valid_until and valid_until <= valid_from:
        raise _bad("valid_until", "must be after valid_from")
    per_customer = _whole(per_customer, "per_customer", 1, MAX_LIMIT)
    total_limit = _whole(total_limit, "total_limit", 1, MAX_LIMIT)
    if codes not in ("generated", "pool"):
        raise _bad("codes", "generated or pool")
    scope = {"categories": list(categories or [])[:1000], "products": list(products or [])[:10000]}
    row = CouponTemplate(
        name=name, kind=kind, threshold_fen=threshold_fen, amount_fen=amount_fen,
        rate=float(rate) if rate is not None else None, max_saving_fen=max_fen,
        valid_days=valid_days, valid_from=valid_from, valid_until=valid_until,
        per_customer=per_customer, total_limit=total_limit,
        budget_fen=_fen(budget, "budget") if budget is not None else None,
        scope=json.dumps(scope, ensure_ascii=False), codes=codes, created_by=user,
        created_at=ws.now(),
    )  # fmt: skip
    try:
        with ws.session(write=True) as s:
            s.add(row)
            s.flush()
    except IntegrityError:
        raise Conflict(f"a coupon template {name!r} exists") from None
    return describe(row)


def value_fen(t: CouponTemplate) -> int:
    """The most one coupon of ``t`` can save: what counts against the budget."""
    return t.max_saving_fen or 0 if t.kind == "rate" else t.amount_fen


def describe(t: CouponTemplate) -> dict[str, Any]:
    words = {
        "threshold": f"满{t.threshold_fen / 100:g}减{t.amount_fen / 100:g}",
        "cash": f"{t.amount_fen / 100:g}元无门槛",
        "rate": f"{(t.rate or 0) * 10:g}折 (最多省{(t.max_saving_fen or 0) / 100:g}元)",
    }[t.kind]
    return {
        "name": t.name, "kind": t.kind, "label": words, "value": value_fen(t) / 100,
        "threshold": t.threshold_fen / 100, "amount": t.amount_fen / 100, "rate": t.rate,
        "valid_days": t.valid_days,
        "valid_until": t.valid_until.isoformat() if t.valid_until else None,
        "per_customer": t.per_customer, "total_limit": t.total_limit,
        "budget": t.budget_fen / 100 if t.budget_fen is not None else None,
        "scope": json.loads(t.scope or "{}"), "codes": t.codes,
    }  # fmt: skip


def template_named(s: Session, name: str) -> CouponTemplate:
    t = s.scalar(select(CouponTemplate).where(CouponTemplate.name == name))
    if t is None:
        known = list(s.scalars(select(CouponTemplate.name)))
        hint = suggest(name, known)
        raise NotFound(f"no coupon template {name!r}" + (f" — did you mean {hint[0]!r}?"
                                                         if hint else ""))  # fmt: skip
    return t


UNCOUNTED = ("pool", "void")  # states that do not count against a template's limits


def issue(
    s: Session,
    t: CouponTemplate,
    customer_id: str,
    *,
    now: datetime,
    source: str,
    campaign_id: int | None = None,
    enrollment_id: int | None = None,
    step: str | None = None,
) -> tuple[Coupon | None, str | None]:
    """Issue one coupon of ``t`` to a customer in the open session ``s`` (which should hold
    the write lock, so limits are counted exactly): the coupon, or None and why not."""
    if t.valid_until is not None and now >= t.valid_until:
        return None, "template_ended"
    if enrollment_id is not None and s.scalar(
        select(Coupon.id).where(Coupon.enrollment_id == enrollment_id, Coupon.step == step)
    ):  # another round reached this run's step first (a pooled code would collide below)
        return None, "already_issued"
    mine = select(func.count()).where(Coupon.template_id == t.id, Coupon.state.not_in(UNCOUNTED))
    if t.per_customer is not None:
        n = s.scalar(mine.where(Coupon.customer_id == customer_id)) or 0
        if n >= t.per_customer:
            return None, "per_customer_limit"
    if t.total_limit is not None and (s.scalar(mine) or 0) >= t.total_limit:
        return None, "total_limit"
    value = value_fen(t)
    if t.budget_fen is not None:
        spent = s.scalar(
            select(func.coalesce(func.sum(Coupon.value_fen), 0)).where(
                Coupon.template_id == t.id, Coupon.state.not_in(UNCOUNTED)
            )
        )
        if (spent or 0) + value > t.budget_fen:
            return None, "budget"
    start = max(now, t.valid_from) if t.valid_from else now
    ends = [x for x in (t.valid_until, start + timedelta(days=t.valid_days) if t.valid_days
                        else None) if x is not None]  # fmt: skip
    fields = dict(customer_id=customer_id, state="issued", value_fen=value, source=source,
                  campaign_id=campaign_id, enrollment_id=enrollment_id, step=step,
                  issued_at=now, expires_at=min(ends))  # fmt: skip
    if t.codes == "pool":
        pooled = s.scalar(
            select(Coupon).where(Coupon.template_id == t.id, Coupon.state == "pool")
            .order_by(Coupon.id).limit(1)
        )  # fmt: skip
        if pooled is None:
            return None, "pool_empty"
        for k, v in fields.items():
            setattr(pooled, k, v)
        s.flush()
        return pooled, None
    for _ in range(5):  # a collision among 32^10 codes: draw again
        c = Coupon(code=new_code(), template_id=t.id, **fields)
        try:
            with s.begin_nested():
                s.add(c)
            return c, None
        except IntegrityError:
            if enrollment_id is not None and s.scalar(
                select(Coupon.id).where(Coupon.enrollment_id == enrollment_id, Coupon.step == step)
            ):
                return None, "already_issued"
    raise Conflict("could not draw a fresh coupon code five times")


def void_unsent(s: Session, codes: Iterable[str]) -> int:
    """Take back the coupons of messages that will never go out (skipped by a guard, refused,
    given up): a code nobody was told is no offer. A generated code becomes ``void`` (it no
    longer counts against the template's limits and budget); an imported one goes back to
    its pool, to be handed out again. Only coupons still ``issued`` change."""
    codes = [c for c in dict.fromkeys(codes) if c]
    if not codes:
        return 0
    n = 0
    q = (
        select(Coupon, CouponTemplate.codes)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.code.in_(codes), Coupon.state == "issued")
    )
    for c, kind in s.execute(q):
        if kind == "pool":  # an imported code: back to the pool, unseen
            c.state, c.customer_id, c.campaign_id, c.enrollment_id = "pool", None, None, None
            c.source, c.step, c.issued_at, c.expires_at = "import", None, None, None
        else:
            c.state = "void"
        n += 1
    s.flush()
    return n


def context(c: Coupon, t: CouponTemplate, tz) -> dict[str, Any]:
    """What a message may show of a coupon."""
    return {
        "code": c.code, "label": describe(t)["label"], "value": c.value_fen / 100,
        "threshold": t.threshold_fen / 100,
        "expires": c.expires_at.astimezone(tz).strftime("%Y-%m-%d") if c.expires_at else "",
    }  # fmt: skip


def import_pool(ws: Workspace, template: str, codes: list[str]) -> dict[str, int]:
    """Add a shop's own codes to a pool template; each is handed out once."""
    clean = list(dict.fromkeys(c.strip() for c in codes if c and c.strip()))
    if len(clean) > MAX_POOL:
        raise _bad("codes", f"at most {MAX_POOL:,} codes at once")
    bad = [c for c in clean if len(c) > 40]
    if bad:
        raise _bad("codes", f"a code is at most 40 characters: {bad[0][:50]!r}")
    bad = [c for c in clean if not c.isprintable()]
    if bad:
        raise _bad("codes", f"a code is printable text, without control characters: {bad[0]!r}")
    added = 0
    with ws.session(write=True) as s:
        t = template_named(s, template)
        if t.codes != "pool":
            raise Invalid(
                f"coupon template {template!r} generates its codes (codes = pool to import)"
            )
        known = set(s.scalars(select(Coupon.code).where(Coupon.code.in_(clean[:50_000]))))
        from archer.store.sql import insert_ignore

        rows = [{"code": c, "template_id": t.id, "state": "pool", "value_fen": value_fen(t),
                 "source": "import"} for c in clean if c not in known]  # fmt: skip
        for i in range(0, len(rows), 20_000):
            added += insert_ignore(s, Coupon.__table__, rows[i : i + 20_000], ("code",))
    return {"codes": len(clean), "added": added, "duplicates": len(clean) - added}


def expire(ws: Workspace, now: datetime | None = None) -> int:
    """Mark issued coupons past their end as expired."""
    now = now or ws.now()
    with ws.session(write=True) as s:
        return s.execute(
            update(Coupon).where(Coupon.state == "issued", Coupon.expires_at <= now)
            .values(state="expired")
        ).rowcount  # fmt: skip


# -- what the CLI, the API and the pages read -----------------------------------------------------
WHY_NOT = {
    "template_ended": "the template's validity has ended",
    "per_customer_limit": "the customer has as many as the template allows per customer",
    "total_limit": "the template's total limit is reached",
    "budget": "one more would pass the template's budget",
    "pool_empty": "the template's pool of imported codes is empty",
    "already_issued": "this step issued one before",
}
MAX_OF_CUSTOMER = 1000


def _counts(s: Session, template_id: int | None = None) -> dict[int, dict[str, tuple[int, int]]]:
    """Per template and state: how many coupons, and what the redeemed ones saved (fen)."""
    q = select(
        Coupon.template_id, Coupon.state, func.count(), func.coalesce(func.sum(Coupon.saved_fen), 0)
    ).group_by(Coupon.template_id, Coupon.state)
    if template_id is not None:
        q = q.where(Coupon.template_id == template_id)
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for tid, state, n, saved in s.execute(q):
        out.setdefault(tid, {})[state] = (int(n), int(saved or 0))
    return out


def _with_counts(t: CouponTemplate, mine: dict[str, tuple[int, int]]) -> dict[str, Any]:
    d = describe(t)
    n = {st: mine.get(st, (0, 0))[0] for st in ("issued", "redeemed", "expired", "pool", "void")}
    d.update(
        issued=n["issued"] + n["redeemed"] + n["expired"],  # ever handed out
        outstanding=n["issued"],  # handed out, not yet used nor expired
        redeemed=n["redeemed"],
        expired=n["expired"],
        pool=n["pool"],
        promotion_cost=mine.get("redeemed", (0, 0))[1] / 100,
    )
    return d


def summary(ws: Workspace) -> list[dict[str, Any]]:
    """Every template, by name, with its coupons issued (ever handed out), outstanding,
    redeemed, expired, waiting in the pool, and the promotion cost (what redeemed ones saved)."""
    with ws.session() as s:
        counts = _counts(s)
        return [
            _with_counts(t, counts.get(t.id, {}))
            for t in s.scalars(select(CouponTemplate).order_by(CouponTemplate.name))
        ]


def get(ws: Workspace, name: str) -> dict[str, Any]:
    """One template with the counts of :func:`summary`; NotFound suggests a close name."""
    with ws.session() as s:
        t = template_named(s, name)
        return _with_counts(t, _counts(s, t.id).get(t.id, {}))


def of_customer(ws: Workspace, customer_id: str, *, limit: int = MAX_OF_CUSTOMER) -> list[dict]:
    """A customer's coupons, newest first (at most ``limit``), each with its template's name
    and label and the day it ends in the shop's time zone."""
    limit = max(1, min(int(limit), MAX_OF_CUSTOMER))
    with ws.session() as s:
        rows = s.execute(
            select(Coupon, CouponTemplate)
            .join(CouponTemplate, Coupon.template_id == CouponTemplate.id)
            .where(Coupon.customer_id == customer_id)
            .order_by(Coupon.issued_at.desc(), Coupon.id.desc())
            .limit(limit)
        ).all()
        return [
            {**c.to_dict(), "template": t.name, "label": describe(t)["label"],
             "expires_on": c.expires_at.astimezone(ws.tz).date().isoformat()
             if c.expires_at else None}
            for c, t in rows
        ]  # fmt: skip


def issue_to(ws: Workspace, template: str, customer_id: str, *, source: str = "manual") -> dict:
    """Give one coupon of ``template`` to a customer by hand (its limits and budget apply);
    a coupon that cannot be given is a Conflict whose ``reason`` says why."""
    customer_id = customer_id.strip() if isinstance(customer_id, str) else ""
    if not customer_id or len(customer_id) > CUSTOMER_MAX:
        raise _bad("customer", f"a customer id of 1 to {CUSTOMER_MAX} characters")
    with ws.session(write=True) as s:
        t = template_named(s, template)
        c, why = issue(s, t, customer_id, now=ws.now(), source=source)
        if c is None:
            said = WHY_NOT.get(why or "", why)
            raise Conflict(f"no coupon of {template!r} for {customer_id}: {said}", reason=why)
        return {**c.to_dict(), "template": t.name, "label": describe(t)["label"]}
