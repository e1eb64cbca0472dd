"""Campaigns as the operator handles them: templates, create, check, version, start, pause,
resume, show the ledger, preview a message for a real customer, and run a round.

Every definition is checked whole before it is stored: its shape (:mod:`definition`), its
templates (compiled in the sandbox, fields known) and its audience conditions (parsed, and
compiled against the profile when there is one). Editing a campaign stores a new version; runs
already enrolled finish on the version they entered.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from archer.audiences.grammar import AudienceError, parse
from archer.campaigns import definition as df
from archer.campaigns import engine
from archer.campaigns.definition import CampaignError, Definition
from archer.campaigns.fields import KNOWN
from archer.errors import ArcherError, Conflict, Invalid, NotBuilt, NotFound, suggest
from archer.messaging import templates
from archer.messaging.channels.sms import problems as sms_problems
from archer.messaging.dispatch import Dispatcher
from archer.store import campaigns as rows

if TYPE_CHECKING:
    from archer.workspace import Workspace

MAX_SETTING_DEPTH = 4
LANGS = ("zh", "en")
COUPON_FIELDS = ("name", "kind", "amount", "threshold", "rate", "max_saving", "valid_days",
                 "per_customer", "total_limit", "budget", "categories")  # fmt: skip


class UnknownCampaign(NotFound):
    pass


class CampaignExists(Conflict):
    pass


# -- templates -------------------------------------------------------------------------------------
def _library() -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(resources.files("archer.campaigns.library").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml"):
            out[f.name.removesuffix(".toml")] = tomllib.loads(f.read_text("utf-8"))
    return out


def templates_list() -> list[dict[str, Any]]:
    return [
        {"name": k, "kind": v.get("kind", "flow"), "description": v.get("description"),
         "trigger": v.get("trigger", {}).get("on"),
         "channels": sorted({s.get("channel") for s in v.get("steps", []) if s.get("channel")})}
        for k, v in _library().items()
    ]  # fmt: skip


def template(name: str, lang: str = "zh") -> dict[str, Any]:
    """A library campaign as a definition to start from, its texts in ``lang`` (zh or en)."""
    lib = _library()
    if name not in lib:
        hint = suggest(name, lib)
        msg = f"no campaign template {name!r} (known: {', '.join(lib)})"
        if hint:
            msg = f"no campaign template {name!r} — did you mean {hint[0]!r}?"
        raise UnknownCampaign(msg)
    if lang not in LANGS:
        raise Invalid(f"language {lang!r}: expected one of {', '.join(LANGS)}")
    raw = json.loads(json.dumps(lib[name], default=str))
    texts = raw.pop("en", {})
    if lang == "en":
        for key, value in texts.items():
            if key != "steps":
                raw[key] = value
        for st in raw.get("steps", []):
            st.update(texts.get("steps", {}).get(st.get("id"), {}))
    return raw


def default_lang(ws: Workspace) -> str:
    """The language of a shop's messages: Chinese for a shop in yuan, else English."""
    return "zh" if ws.settings.currency == "CNY" else "en"


def apply_settings(raw: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` overrides: ``holdout=0.2``, ``trigger.lookback=3d``,
    ``steps.remind-1d.subject=…`` (a step by its id). The value is read as TOML when it
    parses (numbers, booleans, lists), else taken as text."""
    out = json.loads(json.dumps(raw, default=str))
    for item in sets:
        if "=" not in item:
            raise Invalid(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        path = key.strip().split(".")
        if len(path) > MAX_SETTING_DEPTH or not all(path):
            raise Invalid(f"--set {item!r}: expected a key such as holdout or trigger.lookback")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        node: Any = out
        for part in path[:-1]:
            if isinstance(node, list):
                found = [s for s in node if isinstance(s, dict) and s.get("id") == part]
                if not found:
                    ids = [s.get("id") for s in node if isinstance(s, dict)]
                    raise Invalid(f"--set {key}: no step {part!r} (steps: {', '.join(ids)})")
                node = found[0]
                continue
            if not isinstance(node, dict):
                raise Invalid(f"--set {key}: {part!r} is not a table")
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            node = nxt
        if isinstance(node, list):
            raise Invalid(f"--set {key}: name a step's field, e.g. steps.<id>.subject")
        node[path[-1]] = parsed
    return out


# -- checking ------------------------------------------------------------------------------------
def check(ws: Workspace, raw: Any) -> tuple[Definition, list[str]]:
    """The definition if it is valid, with notes (what could not be checked yet); else
    :class:`CampaignError` with every problem and its place."""
    raw, brought = _split_coupons(raw)
    d = df.load(raw)
    problems: list[dict[str, Any]] = []
    notes: list[str] = []
    for at, part, text in df.contents(d):
        try:
            templates.check(text, html=part == "html", customer_fields=KNOWN)
        except templates.TemplateProblem as e:
            where = f"{at}.{part}" + (f", line {e.line}" if e.line else "")
            problems.append({"at": where, "message": e.message})
            continue
        if d.trigger.key != "order" and "order." in text.replace(" ", ""):
            problems.append(
                {"at": f"{at}.{part}", "message": "`order` is known only in a flow keyed by order"}
            )
        if d.trigger.on != "favourite" and "product." in text.replace(" ", ""):
            msg = "`product` is known only in a flow on favourite"
            problems.append({"at": f"{at}.{part}", "message": msg})
    problems += sms_problems(ws.settings.sms, d)  # the provider's approved templates
    for at, cond in df.conditions(d):
        try:
            parse(cond)
        except AudienceError as e:
            problems.append({"at": f"{at}, {e.line}:{e.column}", "message": e.message,
                             "suggestions": list(e.suggestions)})  # fmt: skip
    problems += _coupon_templates(ws, d, {c.get("name") for c in brought})
    if not problems:
        problems, notes = _compile_conditions(ws, d)
    if problems:
        raise CampaignError(problems)
    return d, notes


def _split_coupons(raw: Any) -> tuple[Any, list[dict[str, Any]]]:
    """A definition without its ``coupon_templates`` (what it brings to define), and those."""
    if not isinstance(raw, dict) or "coupon_templates" not in raw:
        return raw, []
    raw = dict(raw)
    brought = raw.pop("coupon_templates")
    if (
        not isinstance(brought, list)
        or len(brought) > 20
        or not all(
            isinstance(c, dict) and set(c) <= set(COUPON_FIELDS) and isinstance(c.get("name"), str)
            for c in brought
        )
    ):
        raise CampaignError([{"at": "coupon_templates", "message": "a list of at most 20 "
                              f"tables with {', '.join(COUPON_FIELDS)}"}])  # fmt: skip
    return raw, brought


def _define_coupons(ws: Workspace, brought: list[dict[str, Any]], user: str) -> list[str]:
    """Define the coupon templates a campaign brings, unless the shop has them already."""
    from archer.offers import coupons
    from archer.store.offers import CouponTemplate

    with ws.session() as s:
        known = set(s.scalars(select(CouponTemplate.name)))
    made = []
    for c in brought:
        if c["name"] in known:
            continue
        try:
            coupons.define(ws, user=user, **c)
        except Invalid as e:
            raise CampaignError([{"at": f"coupon_templates {c['name']!r}",
                                  "message": str(e)}]) from None  # fmt: skip
        made.append(c["name"])
    return made


def _coupon_templates(ws: Workspace, d: Definition, brought: set | None = None) -> list[dict]:
    from archer.store.offers import CouponTemplate

    wanted = {
        (i, st.id, name)
        for i, st in enumerate(d.steps)
        if isinstance(st, df.CouponStep)
        for name in (st.template, *st.by_tier.values())
    }
    if not wanted:
        return []
    with ws.session() as s:
        known = set(s.scalars(select(CouponTemplate.name))) | (brought or set())
    out = []
    for i, sid, name in sorted(wanted):
        if name not in known:
            hint = suggest(name, known)
            out.append({"at": f'steps[{i}] "{sid}".template',
                        "message": f"no coupon template {name!r}"
                        + (f" — did you mean {hint[0]!r}?" if hint else
                           " (make it with `archer coupon define`)"),
                        "suggestions": list(hint)})  # fmt: skip
    return out


def _compile_conditions(ws: Workspace, d: Definition) -> tuple[list[dict], list[str]]:
    from archer.audiences.evaluate import compile_audience
    from archer.audiences.service import resolver

    conds = df.conditions(d)
    if not conds:
        return [], []
    problems: list[dict] = []
    try:
        with ws.warehouse() as wh:
            for at, cond in conds:
                try:
                    compile_audience(wh, ws, cond, resolver(ws))
                except AudienceError as e:
                    problems.append({"at": f"{at}, {e.line}:{e.column}", "message": e.message,
                                     "suggestions": list(e.suggestions)})  # fmt: skip
    except NotBuilt:
        return [], ["conditions were checked for syntax only: build the profile to check fields"]
    return problems, []


# -- storing -------------------------------------------------------------------------------------
def _row(s, name: str) -> rows.Campaign:
    c = s.scalar(select(rows.Campaign).where(rows.Campaign.name == name))
    if c is None:
        known = list(s.scalars(select(rows.Campaign.name)))
        hint = suggest(name, known)
        msg = f"no campaign {name!r}" + (f" — did you mean {hint[0]!r}?" if hint else "")
        raise UnknownCampaign(msg)
    return c


def create(
    ws: Workspace,
    raw: dict[str, Any],
    *,
    user: str,
    template_name: str | None = None,
    start: bool = False,
) -> dict[str, Any]:
    d, notes = check(ws, raw)
    made = _define_coupons(ws, _split_coupons(raw)[1], user)
    if made:
        notes = [*notes, "coupon templates defined: " + ", ".join(made)]
    now = ws.now()
    try:
        with ws.session(write=True) as s:
            if s.scalar(select(rows.Campaign.id).where(rows.Campaign.name == d.name)):
                raise CampaignExists(f"a campaign {d.name!r} exists: edit it to make a new version")
            c = rows.Campaign(
                name=d.name, kind=d.kind, status="draft", version=1, template=template_name,
                created_by=user, created_at=now, updated_at=now,
            )  # fmt: skip
            s.add(c)
            s.flush()
            s.add(rows.CampaignVersion(campaign_id=c.id, version=1, definition=_dump(d),
                                       created_by=user, created_at=now))  # fmt: skip
    except IntegrityError:
        raise CampaignExists(f"a campaign {d.name!r} exists") from None
    out = get(ws, d.name)
    if start:
        out = set_status(ws, d.name, "active")
    out["notes"] = notes
    return out


def _dump(d: Definition) -> str:
    return d.model_dump_json(by_alias=True, exclude_none=True)


def update(ws: Workspace, name: str, raw: dict[str, Any], *, user: str) -> dict[str, Any]:
    """Store a new version; new subjects enter it, enrolled ones finish on theirs."""
    d, notes = check(ws, raw)
    _define_coupons(ws, _split_coupons(raw)[1], user)
    if d.name != name:
        raise Invalid(
            f"the definition is named {d.name!r}, not {name!r}: a campaign keeps its name"
        )
    with ws.session(write=True) as s:
        c = _row(s, name)
        if d.kind != c.kind:
            raise Invalid(f"{name!r} is a {c.kind}; a new version cannot make it a {d.kind}")
        c.version += 1
        c.updated_at = ws.now()
        s.add(rows.CampaignVersion(campaign_id=c.id, version=c.version, definition=_dump(d),
                                   created_by=user, created_at=ws.now()))  # fmt: skip
    out = get(ws, name)
    out["notes"] = notes
    return out


TRANSITIONS = {"active": ("draft", "paused"), "paused": ("active",), "ended": ("draft", "active",
               "paused")}  # fmt: skip


def set_status(ws: Workspace, name: str, status: str) -> dict[str, Any]:
    """Start (draft → active), pause, resume (paused → active) or end a campaign."""
    with ws.session(write=True) as s:
        c = _row(s, name)
        if c.status == status:
            return get(ws, name)
        if c.status not in TRANSITIONS[status]:
            raise Conflict(f"campaign {name!r} is {c.status}; it cannot become {status}")
        if status == "active":
            d = df.load(json.loads(s.get(rows.CampaignVersion, (c.id, c.version)).definition))
            missing = sorted({st.channel for st in d.steps if isinstance(st, df.Message)}
                             - set(ws.settings.channels()))  # fmt: skip
            if missing:
                raise Invalid(
                    f"campaign {name!r} sends by {', '.join(missing)}, which is not set up "
                    "(e-mail: [smtp] in archer.toml or ARCHER_SMTP)"
                )
            c.started_at = c.started_at or ws.now()
        c.status = status
        c.updated_at = ws.now()
    return get(ws, name)


def list_campaigns(ws: Workspace) -> list[dict[str, Any]]:
    with ws.session() as s:
        out = []
        for c in s.scalars(select(rows.Campaign).order_by(rows.Campaign.name)):
            doc = c.to_dict()
            doc.update(_summary(s, c.id))
            out.append(doc)
    return out


def _summary(s, campaign_id: int) -> dict[str, Any]:
    e, m = rows.Enrollment, rows.Message
    enrolled = dict(s.execute(select(e.arm, func.count()).where(e.campaign_id == campaign_id)
                              .group_by(e.arm)).all())  # fmt: skip
    states = dict(s.execute(select(m.state, func.count()).where(m.campaign_id == campaign_id)
                            .group_by(m.state)).all())  # fmt: skip
    held = s.scalar(select(func.count()).where(m.campaign_id == campaign_id,
                                               m.reason == "holdout"))  # fmt: skip
    reasons = s.execute(
        select(m.reason, func.count())
        .where(m.campaign_id == campaign_id, m.state == "skipped", m.reason != "holdout")
        .group_by(m.reason)
    ).all()
    return {
        "enrolled": sum(enrolled.values()),
        "holdout": enrolled.get("holdout", 0),
        "planned": states.get("planned", 0) + states.get("claimed", 0),
        "sent": states.get("sent", 0),
        "held_back": held or 0,
        "skipped": states.get("skipped", 0) - (held or 0),
        "skipped_by_reason": {r or "unknown": n for r, n in reasons},
        "failed": states.get("failed", 0),
        **_offers_given(s, campaign_id),
    }


def _offers_given(s, campaign_id: int) -> dict[str, Any]:
    """Coupons a campaign issued (and how many were redeemed) and points it awarded."""
    from archer.store.offers import Coupon, PointsEntry

    by_state = dict(s.execute(select(Coupon.state, func.count()).where(
        Coupon.campaign_id == campaign_id).group_by(Coupon.state)).all())  # fmt: skip
    awarded = s.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
        PointsEntry.source.like(f"campaign:{campaign_id}:%")))  # fmt: skip
    return {  # a voided coupon's message never went out: not issued (offers/coupons.py)
        "coupons_issued": sum(n for st, n in by_state.items() if st not in ("void", "pool")),
        "coupons_voided": by_state.get("void", 0),
        "coupons_redeemed": by_state.get("redeemed", 0),
        "points_awarded": int(awarded or 0),
    }


def get(ws: Workspace, name: str) -> dict[str, Any]:
    with ws.session() as s:
        c = _row(s, name)
        doc = c.to_dict()
        v = s.get(rows.CampaignVersion, (c.id, c.version))
        doc["definition"] = json.loads(v.definition)
        doc["versions"] = [
            n
            for (n,) in s.execute(
                select(rows.CampaignVersion.version)
                .where(rows.CampaignVersion.campaign_id == c.id)
                .order_by(rows.CampaignVersion.version)
            )
        ]
        doc.update(_summary(s, c.id))
        doc["ledger"] = engine.counts(s, c.id)
    return doc


def ledger(
    ws: Workspace, name: str, *, limit: int = 100, offset: int = 0, customer: str | None = None
) -> dict[str, Any]:
    """Who entered with which key, what was sent when, what was skipped and why."""
    limit = max(1, min(limit, 1000))
    with ws.session() as s:
        c = _row(s, name)
        e, m = rows.Enrollment, rows.Message
        q = select(e).where(e.campaign_id == c.id)
        if customer:
            q = q.where(e.customer_id == customer)
        runs = list(s.scalars(q.order_by(e.entered_at.desc(), e.id.desc()).offset(offset)
                              .limit(limit)))  # fmt: skip
        ids = [r.id for r in runs]
        msgs: dict[int, list[dict]] = {}
        if ids:
            for x in s.scalars(select(m).where(m.enrollment_id.in_(ids)).order_by(m.due_at)):
                msgs.setdefault(x.enrollment_id, []).append(
                    {
                        "step": x.step,
                        "channel": x.channel,
                        "state": x.state,
                        "reason": x.reason,
                        "due_at": x.due_at.isoformat(),
                        "sent_at": x.sent_at.isoformat() if x.sent_at else None,
                        "attempts": x.attempts,
                        "uid": x.uid,
                    }  # fmt: skip
                )
        return {
            "campaign": name,
            "runs": [
                {
                    "customer_id": r.customer_id,
                    "trigger_key": r.trigger_key,
                    "arm": r.arm,
                    "variant": r.variant,
                    "version": r.version,
                    "entered_at": r.entered_at.isoformat(),
                    "state": r.state,
                    "step": r.step,
                    "next_run_at": r.next_run_at.isoformat() if r.next_run_at else None,
                    "end_reason": r.end_reason,
                    "messages": msgs.get(r.id, []),
                }
                for r in runs
            ],  # fmt: skip
        }


def preview(ws: Workspace, name: str, customer_id: str, step: str | None = None) -> dict:
    """A message of the campaign rendered for a real customer (nothing is stored or sent)."""
    from archer.campaigns.fields import customer_context, order_context, used_fields
    from archer.facts import Snapshot

    with ws.session() as s:
        c = _row(s, name)
        d = df.load(json.loads(s.get(rows.CampaignVersion, (c.id, c.version)).definition))
    msgs = [x for x in d.steps if isinstance(x, df.Message)]
    if step is not None:
        msgs = [x for x in msgs if x.id == step]
        if not msgs:
            raise NotFound(f"campaign {name!r} has no message step {step!r}")
    m = msgs[0]
    with ws.warehouse() as wh:
        snap = Snapshot.instant(wh, ws.now(), ws.tz)
        ctx = customer_context(wh, [customer_id], used_fields(d), snap)
        if customer_id not in ctx:
            raise NotFound(f"no customer {customer_id!r}")
        order = None
        if d.trigger.key == "order":
            o = wh.table("orders")
            last = o.filter(o.customer_id == customer_id).order_by(o.created_at.desc()).limit(1)
            ids = list(last.order_id.execute())
            order = order_context(wh, ids).get(ids[0]) if ids else {"order_id": "—"}
    product = None
    if d.trigger.on == "favourite":
        from archer.campaigns.favourites import preview as favourite
        from archer.facts import Snapshot

        with ws.warehouse() as wh:
            product = favourite(Snapshot.instant(wh, ws.now(), ws.tz), customer_id)
    fake = rows.Message(
        uid="preview", customer_id=customer_id, campaign_id=c.id, version=c.version, step=m.id,
        channel=m.channel, purpose=m.purpose, arm="treatment", variant=None,
        address=ctx[customer_id].get("email"),
        context=json.dumps({"customer": ctx[customer_id], "order": order, "product": product},
                           default=str),
    )  # fmt: skip
    disp = Dispatcher(ws)
    disp._defs[(c.id, c.version)] = json.loads(_dump(d))
    disp._names[c.id] = name
    out = disp.render(fake)
    return {
        "campaign": name, "step": m.id, "channel": m.channel, "customer_id": customer_id,
        "to": out.address, "subject": out.subject, "text": out.text, "html": out.html,
        **({"template": out.template, "params": out.params} if out.template else {}),
    }  # fmt: skip


# -- a round ---------------------------------------------------------------------------------------
def run_round(
    ws: Workspace, now: datetime | None = None, *, send: bool = True, names=None
) -> dict[str, Any]:
    """Enrol due subjects, advance due runs, send due messages — what the scheduler does each
    minute and ``archer campaign run`` does once."""
    now = now or ws.now()
    from archer.offers import coupons, points

    expired = {"points_expired": points.expire(ws, now)["points"],
               "coupons_expired": coupons.expire(ws, now)}  # fmt: skip
    planned = engine.plan(ws, now, names)
    out: dict[str, Any] = {"now": now.isoformat(), **planned.to_dict(), **expired}
    if send:
        try:
            with Dispatcher(ws) as d:
                out.update(d.run(now).to_dict())
        except ArcherError as e:
            out["errors"]["dispatch"] = str(e)
    return out


def has_active(ws: Workspace) -> bool:
    """Whether any campaign is active: the scheduler of `archer serve` runs a round only then."""
    with ws.session() as s:
        found = s.scalar(select(rows.Campaign.id).where(rows.Campaign.status == "active").limit(1))
    return found is not None


MAX_TEXT = 1_000_000
MAX_DEPTH = 64  # a definition nests five levels (steps → variants → content); templates' {{ }}


def parse_text(text: str) -> dict[str, Any]:
    """A definition pasted as text: JSON when it starts with ``{``, else TOML. Refused with the
    line (and column) of the mistake; bounded in size and nesting before it is read."""
    if len(text) > MAX_TEXT:
        raise Invalid(f"a campaign definition is at most {MAX_TEXT:,} characters")
    body = text.strip()
    if not body:
        raise Invalid("the definition is empty: paste TOML or JSON")
    if _nesting(body) > MAX_DEPTH:
        raise Invalid(f"the definition nests deeper than {MAX_DEPTH} levels")
    try:
        raw = json.loads(body) if body.startswith("{") else tomllib.loads(body)
    except json.JSONDecodeError as e:
        raise Invalid(f"JSON, line {e.lineno} column {e.colno}: {e.msg}") from None
    except tomllib.TOMLDecodeError as e:
        raise Invalid(f"TOML: {e}") from None
    except RecursionError:
        raise Invalid(f"the definition nests deeper than {MAX_DEPTH} levels") from None
    if not isinstance(raw, dict):
        raise Invalid("a campaign definition is a table/object")
    return raw


def _nesting(text: str) -> int:
    """An upper bound of how deep brackets and braces nest (strings not told apart: a bound)."""
    depth = most = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            most = max(most, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return most
