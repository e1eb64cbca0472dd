"""A campaign's definition: a typed tree, checked whole before it is stored or run.

A definition is plain data (TOML for people, JSON over the API)::

    name = "unpaid-reminders"
    kind = "flow"
    [trigger]
    on = "order_unpaid"          # who enters, and per what key
    [[steps]]
    id = "wait-1d"
    type = "delay"
    for = "1d"
    [[steps]]
    id = "remind"
    type = "message"
    channel = "email"
    subject = "…"

Every problem is reported with its place (``steps[1] "remind".subject, line 2``) and, for a
misspelt name, what was probably meant. The rules of running a campaign live in
:mod:`archer.campaigns.engine`; this module only says what a valid campaign is.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from archer.durations import parse_clock, parse_duration
from archer.errors import Invalid, suggest

NAME = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff][\w\u4e00-\u9fff .:-]{0,99}$")
STEP_ID = re.compile(r"^[A-Za-z][\w-]{0,63}$")
MAX_STEPS = 50
MAX_TEMPLATE = 100_000  # characters of one template
MAX_VARIANTS = 10
GOAL_WITHIN_MAX_DAYS = 366  # the results window: at most a year and a day

KEYS = ("order", "cart", "customer", "customer_year", "customer_month", "customer_lapse",
        "favourite")  # fmt: skip
# What each trigger source enters subjects by, and the keys it can give.
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "order_unpaid": ("order",),
    "cart": ("cart",),
    "audience": ("customer", "customer_year", "customer_month", "customer_lapse"),
    "favourite": ("favourite",),
}
# built-in exit and goal conditions (bought_product: the product of a run keyed by product)
EVENTS = ("order_paid", "order_closed", "purchased", "bought_product")
# A favourite's trigger, unless told otherwise: a price at least 10% under the price when it
# was favourited, or stock under 10, for favourites of the last 90 days.
FAVOURITE_DEFAULTS = {"min_drop": "10%", "low_stock": 10, "favourited_within": "90d"}
PERCENT = re.compile(r"^(\d{1,2}(?:\.\d{1,2})?)%$")
CHANNELS = ("email", "sms", "wecom", "inbox")
NEEDS = {"email": ("subject", "text"), "sms": ("text",), "wecom": ("text",),
         "inbox": ("subject", "text")}  # fmt: skip
SMS_PARAM = re.compile(r"^[A-Za-z0-9_]{1,40}$")
MAX_PARAMS = 20
PURPOSES = ("marketing", "service")


class CampaignError(Invalid):
    """A definition that cannot be used; ``problems`` lists each with its place."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        lines = [f"{p['at']}: {p['message']}" if p.get("at") else p["message"] for p in problems]
        if len(lines) == 1:
            super().__init__(f"the campaign is not valid: {lines[0]}")
        else:
            super().__init__("the campaign is not valid:\n  " + "\n  ".join(lines))

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "problems": self.problems}


Duration = Annotated[str, Field(description="a duration such as 1d, 12h or 30m")]


def _check_duration(v: str | None) -> str | None:
    if v is not None:
        parse_duration(v)
    return v


def parse_percent(v: str) -> float:
    """``"10%"`` → 0.1; a ValueError unless it is more than 0% and less than 100%."""
    m = PERCENT.match(v.strip()) if isinstance(v, str) else None
    share = float(m.group(1)) / 100 if m else 0.0
    if not 0 < share < 1:
        raise ValueError(f"{v!r} is not a percentage such as 10% (more than 0%, less than 100%)")
    return share


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Trigger(_Node):
    on: Literal["order_unpaid", "cart", "audience", "favourite"] = Field(
        description="order_unpaid: each order created and not paid; cart: each cart left with "
        "goods in it; audience: customers who match `audience`; favourite: a favourited "
        "product whose price dropped or stock ran low"
    )
    key: (
        Literal[
            "order", "cart", "customer", "customer_year", "customer_month", "customer_lapse",
            "favourite",
        ]
        | None
    ) = None  # fmt: skip
    audience: str | None = Field(None, description="an audience condition the subjects must meet")
    lookback: Duration = Field(
        "2d",
        description="how old an order or cart may be and still enter (a new campaign "
        "does not reach back years)",
    )
    idle: Duration = Field("1h", description="a cart enters after it was left this long")
    min_drop: str | None = Field(
        None, description="favourite: a price this much under the price when favourited (10%)"
    )
    low_stock: int | None = Field(
        None, ge=0, le=1_000_000, description="favourite: stock under this (10; 0: no stock notes)"
    )
    favourited_within: Duration | None = Field(
        None, description="favourite: how old a favourite may be (90d)"
    )

    _d = field_validator("lookback", "idle", "favourited_within")(_check_duration)

    @field_validator("min_drop", mode="before")
    @classmethod
    def _percent(cls, v: Any) -> Any:
        if v is not None:
            parse_percent(v)
        return v

    def favourite(self, name: str) -> Any:
        """A favourite trigger's parameter, or its default."""
        v = getattr(self, name)
        return FAVOURITE_DEFAULTS[name] if v is None else v

    @model_validator(mode="after")
    def _key_fits(self) -> Trigger:
        keys = SOURCE_KEYS[self.on]
        if self.key is None:
            object.__setattr__(self, "key", keys[0])
        elif self.key not in keys:
            raise ValueError(
                f"a trigger on {self.on} enters per {' or '.join(keys)}, not per {self.key}"
            )
        if self.on == "audience" and not self.audience:
            raise ValueError("a trigger on audience needs an `audience` condition")
        given = [f"`{n}`" for n in FAVOURITE_DEFAULTS if getattr(self, n) is not None]
        if given and self.on != "favourite":
            raise ValueError(f"{' and '.join(given)}: only for a trigger on favourite")
        return self


class Variant(_Node):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,20}$")
    weight: float = Field(1.0, gt=0, le=1000)


class Content(_Node):
    """What a message says: the subject or title, and its text and HTML bodies; an SMS names
    the provider's approved template and fills its parameters instead."""

    subject: str | None = Field(None, max_length=MAX_TEMPLATE)
    text: str | None = Field(None, max_length=MAX_TEMPLATE)
    html: str | None = Field(None, max_length=MAX_TEMPLATE)
    template: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_]{1,40}$", description="SMS: the provider's template code"
    )
    params: dict[str, Annotated[str, Field(max_length=1000)]] | None = Field(
        None, max_length=MAX_PARAMS, description="SMS: parameter → a template of its value"
    )

    @field_validator("params")
    @classmethod
    def _param_names(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for k in v or {}:
            if not SMS_PARAM.match(k):
                raise ValueError(f"parameter {k!r}: a name of letters, digits and _")
        return v


class Delay(_Node):
    type: Literal["delay"]
    id: str
    next: str | None = None
    for_: Duration | None = Field(None, alias="for")
    until: str | None = Field(None, description="a time of day, HH:MM in the shop's zone")

    _d = field_validator("for_")(_check_duration)

    @field_validator("until")
    @classmethod
    def _clock(cls, v: str | None) -> str | None:
        if v is not None:
            parse_clock(v)
        return v

    @model_validator(mode="after")
    def _one(self) -> Delay:
        if (self.for_ is None) == (self.until is None):
            raise ValueError("a delay gives either `for` (a duration) or `until` (HH:MM)")
        return self


class WaitUntil(_Node):
    type: Literal["wait_until"]
    id: str
    next: str | None = None
    condition: str
    timeout: Duration
    on_timeout: str | None = Field(None, description="the step after a timeout (default: exit)")
    every: Duration = Field("1h", description="how often the condition is looked at")

    _d = field_validator("timeout", "every")(_check_duration)


class Branch(_Node):
    type: Literal["branch"]
    id: str
    condition: str
    then: str
    else_: str = Field(alias="else")
    next: None = None


class Message(Content):
    type: Literal["message"]
    id: str
    next: str | None = None
    channel: Literal["email", "sms", "wecom", "inbox"]
    purpose: Literal["marketing", "service"] = "marketing"
    expires: Duration | None = Field(
        "1d", description="skip it when it could not go out this long after it was due"
    )
    variants: dict[str, Content] = Field(default_factory=dict, max_length=MAX_VARIANTS)

    _d = field_validator("expires")(_check_duration)


class Exit(_Node):
    type: Literal["exit"]
    id: str
    next: None = None


class CouponStep(_Node):
    """Issue a coupon from a coupon template; the messages after it can show it."""

    type: Literal["coupon"]
    id: str
    next: str | None = None
    template: str = Field(max_length=100, description="the coupon template")
    by_tier: dict[str, str] = Field(
        default_factory=dict, max_length=10,
        description="a bigger coupon for customers of higher value: value tier → template",
    )  # fmt: skip


class PointsStep(_Node):
    """Award points (a lot that expires)."""

    type: Literal["points"]
    id: str
    next: str | None = None
    points: int = Field(gt=0, le=1_000_000)
    expires: Duration = "365d"
    by_tier: dict[str, int] = Field(default_factory=dict, max_length=10)

    _d = field_validator("expires")(_check_duration)


Step = Annotated[
    Delay | WaitUntil | Branch | Message | CouponStep | PointsStep | Exit,
    Field(discriminator="type"),
]
STEP_TYPES = ("delay", "wait_until", "branch", "message", "coupon", "points", "exit")


class Definition(_Node):
    """A campaign as the operator wrote it, valid in shape (names, types, durations)."""

    name: str = Field(max_length=100)
    kind: Literal["flow", "broadcast"] = "flow"
    description: str | None = Field(None, max_length=2000)
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    exit_on: list[Literal["order_paid", "order_closed", "purchased", "bought_product"]] = Field(
        default_factory=list, description="events that end a subject's run early"
    )
    exit_if: str | None = Field(None, description="an audience condition that ends a run")
    goal: Literal["order_paid", "purchased", "bought_product"] | None = None
    goal_within: Duration | None = Field(
        None,
        description="how long after entry a run's orders count in the results (1h to 366d; "
        "default 45d for an unpaid-order flow, 14d for the rest)",
    )
    holdout: float = Field(0.10, ge=0, le=0.9)
    salt: str | None = Field(None, max_length=100)
    variants: list[Variant] = Field(default_factory=list, max_length=MAX_VARIANTS)
    reentry: bool = Field(True, description="may a subject enter again with a new key")
    reentry_after: Duration | None = None
    windows: list[str] = Field(
        default_factory=list, max_length=24, description="send windows: HH:MM or HH:MM-HH:MM"
    )
    window_minutes: int = Field(60, ge=5, le=24 * 60)
    outside_window: Literal["wait", "skip"] = "wait"
    send_at: datetime | None = Field(None, description="a broadcast's send time (shop's zone)")
    send_until: datetime | None = None

    _d = field_validator("reentry_after")(_check_duration)

    @field_validator("goal_within")
    @classmethod
    def _goal_within(cls, v: str | None) -> str | None:
        if v is None:
            return v
        span = parse_duration(v)
        if not timedelta(hours=1) <= span <= timedelta(days=GOAL_WITHIN_MAX_DAYS):
            raise ValueError(f"{v!r}: expected a duration from 1h to {GOAL_WITHIN_MAX_DAYS}d")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(
                "a campaign name is 1–100 letters, digits, spaces and . _ : - (no / or \\)"
            )
        return v

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        for w in v:
            for part in w.split("-", 1):
                parse_clock(part)
        return v

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def after(self, index: int) -> str | None:
        """The step that follows step ``index`` when it names none (None: the run ends)."""
        s = self.steps[index]
        if s.next is not None:
            return s.next
        return self.steps[index + 1].id if index + 1 < len(self.steps) else None

    @property
    def salt_or_name(self) -> str:
        return self.salt or self.name


def _where(loc: tuple, raw: Any) -> str:
    """``steps[1] "remind".subject`` from a pydantic location."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            label = ""
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    label = f' "{node["id"]}"'
            else:
                node = None
            out += f"[{part}]{label}"
            continue
        if part in STEP_TYPES and isinstance(node, dict) and node.get("type") == part:
            continue  # the union's tag, which the step's own label already shows
        if part == "function-after" or str(part).startswith("function-"):
            continue
        node = node.get(part) if isinstance(node, dict) else None
        out += ("." if out else "") + str(part)
    return out


def _fields_of(loc: tuple) -> list[str]:
    if "steps" in loc:
        kinds = [p for p in loc if p in STEP_TYPES]
        models = {
            "delay": Delay, "wait_until": WaitUntil, "branch": Branch,
            "message": Message, "coupon": CouponStep, "points": PointsStep, "exit": Exit,
        }  # fmt: skip
        model = models.get(kinds[-1]) if kinds else None
        if model is None:
            return []
        return [f.alias or n for n, f in model.model_fields.items()]
    if "trigger" in loc:
        return list(Trigger.model_fields)
    return [f.alias or n for n, f in Definition.model_fields.items()]


def _problem(err: dict[str, Any], raw: Any) -> dict[str, Any]:
    loc = tuple(err["loc"])
    at = _where(loc, raw)
    msg = err["msg"].removeprefix("Value error, ")
    suggestions: tuple[str, ...] = ()
    if err["type"] == "extra_forbidden":
        name = str(loc[-1])
        suggestions = suggest(name, _fields_of(loc[:-1]))
        msg = f"unknown field {name!r}"
        if suggestions:
            msg += " — did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
    elif err["type"] == "union_tag_invalid":
        msg = (
            f"unknown step type {err.get('input', {}).get('type')!r}"
            if isinstance(err.get("input"), dict)
            else msg
        )
        msg += f" (expected one of {', '.join(STEP_TYPES)})"
    elif err["type"] == "union_tag_not_found":
        msg = f"a step needs a `type` ({', '.join(STEP_TYPES)})"
    elif err["type"] == "literal_error":
        given = err.get("input")
        expected = err.get("ctx", {}).get("expected", "")
        msg = f"{given!r} is not allowed here (expected {expected})"
    return {"at": at, "message": msg, "suggestions": list(suggestions)}


def load(raw: Any) -> Definition:
    """Check the shape of a definition (types, names, durations, step links); raise
    :class:`CampaignError` listing every problem with its place."""
    if not isinstance(raw, dict):
        raise CampaignError([{"at": "", "message": "a campaign definition is a table/object"}])
    try:
        d = Definition.model_validate(raw)
    except ValidationError as e:
        raise CampaignError([_problem(err, raw) for err in e.errors()]) from None
    problems = _links(d)
    if problems:
        raise CampaignError(problems)
    return d


def _links(d: Definition) -> list[dict[str, Any]]:
    """Step ids unique and well formed; every link points at a step; every step reachable."""
    problems: list[dict[str, Any]] = []
    ids = [s.id for s in d.steps]
    seen: set[str] = set()
    for i, s in enumerate(d.steps):
        at = f'steps[{i}] "{s.id}"'
        if not STEP_ID.match(s.id):
            problems.append(
                {"at": f"{at}.id", "message": "a step id is a letter then letters, digits, _ or -"}
            )
        if s.id in seen:
            problems.append({"at": f"{at}.id", "message": f"step id {s.id!r} is used twice"})
        seen.add(s.id)
        for field, target in _targets(s):
            if target not in ids:
                hint = suggest(target, ids)
                msg = f"step {target!r} does not exist"
                if hint:
                    msg += " — did you mean " + " or ".join(repr(h) for h in hint) + "?"
                problems.append({"at": f"{at}.{field}", "message": msg, "suggestions": list(hint)})
        if isinstance(s, Message):
            need = NEEDS[s.channel]
            for name, c in {"": s, **s.variants}.items():
                missing = [p for p in need if getattr(c, p) is None and getattr(s, p) is None]
                if s.channel != "sms" and (c.template is not None or c.params is not None):
                    problems.append({"at": f"{at}.variants.{name}" if name else at,
                                     "message": "`template` and `params` are for sms"})  # fmt: skip
                elif s.channel == "sms" and (c.template or s.template):  # instead of text
                    has = c.params is not None or s.params is not None
                    missing = [] if has else ["params"]
                if missing and not (s.channel == "email" and missing == ["text"] and s.html):
                    where = f"{at}.variants.{name}" if name else at
                    msg = f"a {s.channel} message needs " + " and ".join(f"`{m}`" for m in missing)
                    if s.channel == "sms" and missing == ["text"]:
                        msg = "an sms message needs `template` and `params`, or `text`"
                    problems.append({"at": where, "message": msg})
        if isinstance(s, Message) and s.variants:
            names = {v.name for v in d.variants}
            for name in s.variants:
                if name not in names:
                    problems.append(
                        {
                            "at": f"{at}.variants.{name}",
                            "message": f"variant {name!r} is not one of the campaign's variants "
                            f"({', '.join(sorted(names)) or 'none declared'})",
                        }
                    )
    if problems:
        return problems
    loop = _loop_without_delay(d)
    if loop:
        problems.append({"at": "steps", "message": "the steps " + " → ".join(loop)
                         + " loop without a delay: a run would go round at once"})  # fmt: skip
    reach = _reachable(d)
    for i, s in enumerate(d.steps):
        if s.id not in reach:
            problems.append(
                {"at": f'steps[{i}] "{s.id}"', "message": "no step leads here: it can never run"}
            )
    if d.kind == "broadcast":
        if d.send_at is None:
            problems.append({"at": "send_at", "message": "a broadcast needs a send time"})
        if d.trigger.on != "audience" or d.trigger.key != "customer":
            problems.append(
                {"at": "trigger", "message": "a broadcast enters an audience, once per customer"}
            )
        if any(isinstance(s, Delay | WaitUntil | Branch) for s in d.steps):
            problems.append({"at": "steps", "message": "a broadcast's steps are messages, "
                             "coupons and points only"})  # fmt: skip
    if d.send_until is not None and d.send_at is not None and d.send_until <= d.send_at:
        problems.append({"at": "send_until", "message": "send_until must be after send_at"})
    from archer.customers.rfm import VALUE_TIERS

    tiers = set(VALUE_TIERS.values())
    for i, st in enumerate(d.steps):
        if isinstance(st, CouponStep | PointsStep):
            for tier in st.by_tier:
                if tier not in tiers:
                    problems.append({"at": f'steps[{i}] "{st.id}".by_tier.{tier}',
                                     "message": f"unknown value tier {tier!r} (expected one of "
                                     f"{', '.join(sorted(tiers))})"})  # fmt: skip
    if not any(isinstance(s, Message) for s in d.steps):
        problems.append({"at": "steps", "message": "a campaign sends at least one message"})
    for at, used in (("exit_on", "bought_product" in d.exit_on),
                     ("goal", d.goal == "bought_product")):  # fmt: skip
        if used and d.trigger.on != "favourite":
            problems.append({"at": at, "message": "bought_product is for a run keyed by a "
                             "product: a trigger on favourite"})  # fmt: skip
    return problems


def _targets(s: Step) -> list[tuple[str, str]]:
    out = []
    if s.next is not None:
        out.append(("next", s.next))
    if isinstance(s, Branch):
        out += [("then", s.then), ("else", s.else_)]
    if isinstance(s, WaitUntil) and s.on_timeout is not None:
        out.append(("on_timeout", s.on_timeout))
    return out


def _edges(d: Definition) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i, s in enumerate(d.steps):
        nxt = [t for _, t in _targets(s)]
        if not isinstance(s, Branch | Exit):
            after = d.after(i)
            if after is not None and after not in nxt:
                nxt.append(after)
        out[s.id] = [] if isinstance(s, Exit) else nxt
    return out


def _loop_without_delay(d: Definition) -> list[str] | None:
    """A cycle of steps none of which is a delay, as the ids around it; None when there is
    none."""
    delays = {s.id for s in d.steps if isinstance(s, Delay)}
    edges = {k: [t for t in v if t not in delays] for k, v in _edges(d).items() if k not in delays}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for t in edges.get(n, []):
            if state.get(t) == 1:
                return path[path.index(t) :] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return None

    for n in edges:
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def _reachable(d: Definition) -> set[str]:
    index = {s.id: i for i, s in enumerate(d.steps)}
    todo, seen = [d.steps[0].id], set()
    while todo:
        sid = todo.pop()
        if sid in seen:
            continue
        seen.add(sid)
        i = index[sid]
        s = d.steps[i]
        if isinstance(s, Exit):
            continue
        nxt = [t for _, t in _targets(s)]
        if not isinstance(s, Branch):
            after = d.after(i)
            if after is not None:
                nxt.append(after)
        todo.extend(nxt)
    return seen


def conditions(d: Definition) -> list[tuple[str, str]]:
    """Every audience condition in the definition, with its place."""
    out = []
    if d.trigger.audience:
        out.append(("trigger.audience", d.trigger.audience))
    if d.exit_if:
        out.append(("exit_if", d.exit_if))
    for i, s in enumerate(d.steps):
        if isinstance(s, WaitUntil | Branch):
            out.append((f'steps[{i}] "{s.id}".condition', s.condition))
    return out


def contents(d: Definition) -> list[tuple[str, str, str]]:
    """Every template text in the definition: (place, part, text)."""
    out = []
    for i, s in enumerate(d.steps):
        if not isinstance(s, Message):
            continue
        at = f'steps[{i}] "{s.id}"'
        for where, c in {at: s, **{f"{at}.variants.{n}": c for n, c in s.variants.items()}}.items():
            for part in ("subject", "text", "html"):
                v = getattr(c, part)
                if v is not None:
                    out.append((where, part, v))
            for k, v in (c.params or {}).items():
                out.append((where, f"params.{k}", v))
    return out
