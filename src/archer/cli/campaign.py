"""`archer campaign …`: templates, create, update, list, show, ledger, preview, start, pause,
resume, end, run, worker — each a thin shell over :mod:`archer.campaigns.service` (see
docs/campaigns.md)."""

from __future__ import annotations

import json
import signal
import threading
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from archer.campaigns import service
from archer.cli.audience import default_user
from archer.cli.support import ArcherTyper, HomeOpt, JsonOpt, app, emit_json, fail, load_home, out
from archer.errors import Invalid
from archer.messaging.dispatch import Dispatcher

campaign_app = ArcherTyper(
    help="Campaigns: triggered flows and broadcasts, their ledger and sending "
    "(see docs/campaigns.md).",
    no_args_is_help=True,
)
app.add_typer(campaign_app, name="campaign")

NameArg = Annotated[str, typer.Argument(help="The campaign's name.")]
NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Act as if it were this moment (ISO-8601; without an offset, the shop's time zone).",
    ),
]
MAX_FILE = 1_000_000


def parse_now(text: str | None, tz) -> datetime | None:
    """``--now``: an ISO-8601 moment; a bare one is the shop's local time."""
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(
            f"--now {text!r}: expected an ISO-8601 moment such as 2026-12-05T09:30"
        ) from None
    return t.replace(tzinfo=tz) if t.tzinfo is None else t


def _workspace(home: Path | None, now: str | None = None):
    ws = load_home(home)
    moment = parse_now(now, ws.tz)
    return load_home(home, now=moment) if moment is not None else ws


def read_definition(path: Path) -> dict[str, Any]:
    """A definition from a .toml or .json file; a clear error naming the file otherwise."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise Invalid(f"{path}: a campaign definition is at most {MAX_FILE:,} bytes")
        text = path.read_text("utf-8")
    except OSError as e:
        raise Invalid(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise Invalid(f"{path}: not UTF-8 text") from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise Invalid(f"{path}: {e}") from None
    except json.JSONDecodeError as e:
        raise Invalid(f"{path}, line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(raw, dict):
        raise Invalid(f"{path}: a campaign definition is a table/object")
    return raw


@campaign_app.command("templates")
def templates_cmd(as_json: JsonOpt = False) -> None:
    """The ready-made campaigns to start from."""
    rows = service.templates_list()
    if as_json:
        emit_json(rows)
        return
    t = RichTable("template", "kind", "trigger", "channels", "description")
    for r in rows:
        t.add_row(r["name"], r["kind"], r["trigger"] or "", ", ".join(r["channels"]),
                  escape(r["description"] or ""))  # fmt: skip
    out.print(t)


@campaign_app.command("create")
def create_cmd(
    name: NameArg,
    template: Annotated[
        str | None, typer.Option("--template", "-t", help="Start from this template.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A definition in TOML or JSON.")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE, e.g. holdout=0.2 or steps.remind-1d.channel=inbox"),
    ] = None,
    start: Annotated[bool, typer.Option("--start", help="Start it at once.")] = False,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="zh or en (default: zh for a shop in CNY, else en)."),
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Who creates it.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a campaign from a template or a file, checked whole before it is stored."""
    if (template is None) == (file is None):
        fail("give either --template NAME or --file PATH (see `archer campaign templates`)")
    ws = _workspace(home)
    if template:
        raw = service.template(template, lang or service.default_lang(ws))
    else:
        raw = read_definition(file)  # type: ignore[arg-type]
    raw = service.apply_settings({**raw, "name": name}, sets or [])
    doc = service.create(ws, raw, user=user or default_user(), template_name=template, start=start)
    _show(doc, as_json)


@campaign_app.command("update")
def update_cmd(
    name: NameArg,
    file: Annotated[Path, typer.Option("--file", "-f", help="The new definition.")],
    user: Annotated[str | None, typer.Option("--user")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a new version: new subjects enter it; enrolled ones finish on theirs."""
    ws = _workspace(home)
    raw = {**read_definition(file), "name": name}
    _show(service.update(ws, name, raw, user=user or default_user()), as_json)


@campaign_app.command("list")
def list_cmd(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Every campaign with its status and counts."""
    rows = service.list_campaigns(_workspace(home))
    if as_json:
        emit_json(rows)
        return
    t = RichTable("campaign", "kind", "status", "v", "enrolled", "holdout", "sent", "held back",
                  "skipped", "failed", "waiting")  # fmt: skip
    for r in rows:
        t.add_row(r["name"], r["kind"], r["status"], str(r["version"]), f"{r['enrolled']:,}",
                  f"{r['holdout']:,}", f"{r['sent']:,}", f"{r['held_back']:,}",
                  f"{r['skipped']:,}", f"{r['failed']:,}", f"{r['planned']:,}")  # fmt: skip
    out.print(t)


def _show(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(doc)
        return
    out.print(f"[bold]{escape(doc['name'])}[/] — {doc['kind']}, {doc['status']}, "
              f"version {doc['version']}")  # fmt: skip
    for note in doc.get("notes") or []:
        out.print(f"note: {escape(note)}")
    led = doc["ledger"]
    out.print(f"enrolled {led['enrolled']:,}: " + ", ".join(
        f"{arm} {sum(v.values()):,}" for arm, v in sorted(led["runs"].items())))  # fmt: skip
    t = RichTable("arm", "step", "planned", "sent", "skipped", "failed")
    for arm, steps in sorted(led["messages"].items()):
        for step, st in steps.items():
            t.add_row(arm, step, str(st.get("planned", 0) + st.get("claimed", 0)),
                      str(st.get("sent", 0)), str(st.get("skipped", 0)),
                      str(st.get("failed", 0)))  # fmt: skip
    if led["messages"]:
        out.print(t)
    if led["skipped"]:
        out.print("skipped: " + ", ".join(f"{k} {v:,}" for k, v in led["skipped"].items()))


@campaign_app.command("show")
def show_cmd(name: NameArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """A campaign: its definition, and its ledger's counts per arm and step."""
    _show(service.get(_workspace(home), name), as_json)


@campaign_app.command("ledger")
def ledger_cmd(
    name: NameArg,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who entered with which key, what was sent when, what was skipped and why."""
    doc = service.ledger(_workspace(home), name, limit=limit, customer=customer)
    if as_json:
        emit_json(doc)
        return
    t = RichTable("customer", "key", "arm", "entered", "state", "messages")
    for r in doc["runs"]:
        msgs = "; ".join(f"{m['step']} {m['state']}" + (f" ({m['reason']})" if m["reason"] else "")
                         for m in r["messages"])  # fmt: skip
        t.add_row(r["customer_id"], r["trigger_key"], r["arm"], r["entered_at"][:16],
                  r["state"] + (f" ({r['end_reason']})" if r["end_reason"] else ""),
                  escape(msgs))  # fmt: skip
    out.print(t)


@campaign_app.command("results")
def results_cmd(
    name: NameArg,
    window: Annotated[
        str | None,
        typer.Option(
            help="Count each run's orders this long after it entered (default: the "
            "campaign's goal_within, else 14d; 45d for an unpaid-order flow)."
        ),
    ] = None,
    min_lift: Annotated[
        float,
        typer.Option(
            "--min-lift",
            help="Variants: the relative rise in conversion over the first variant the test "
            "is sized for (0.2 = 20%); no winner before each variant has the runs it needs.",
        ),
    ] = 0.2,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Count what the shop held at the end of this day (default: its latest activity).",
        ),
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the campaign earned over its holdout: buyers, refund users, sales net of refunds,
    gross profit and margin, promotion cost per arm; the uplift per run with 95% intervals,
    the minimum detectable effect, incremental gross profit and ROI (docs/measure.md)."""
    from archer.measurement.results import as_of_day, results

    doc = results(
        _workspace(home), name, window=window, as_of=as_of_day(as_of), min_lift=min_lift
    ).to_dict()
    if as_json:
        emit_json(doc)
        return
    out.print(_arms_table(doc["arms"], f"{escape(name)}: each run counted over {doc['window']} "
                          f"from its entry, as of {doc['as_of']}"))  # fmt: skip
    labels = {"conversion": ("conversion", True), "sales_per_run": ("sales per run", False),
              "gross_profit_per_run": ("gross profit per run", False)}  # fmt: skip
    for key, (label, rate) in labels.items():
        d = doc["uplift"][key]
        if d is None or d["diff"] is None:
            continue
        f = (lambda v: f"{v * 100:+.2f} pts") if rate else (lambda v: f"{v:+,.2f}")
        mde = "—" if d["mde"] is None else (f"{d['mde'] * 100:.2f} pts" if rate
                                            else f"{d['mde']:,.2f}")  # fmt: skip
        out.print(f"{label}: {f(d['diff'])} (95% interval {f(d['low'])} to {f(d['high'])}; "
                  f"detectable at this size: {mde}) — {d['verdict']}", highlight=False)  # fmt: skip
    if doc["incremental_gross_profit"] is not None:
        roi = "—" if doc["roi"] is None else f"{doc['roi']:.2f}"
        out.print(f"incremental gross profit {doc['incremental_gross_profit']:,.2f}; promotion "
                  f"cost {doc['arms']['treatment']['promotion_cost']:,.2f}; ROI {roi}",
                  highlight=False)  # fmt: skip
    a = doc["attributed"]
    out.print(f"attributed (not caused): {a['buyers']:,} buyers, {a['sales']:,.2f} in sales "
              "after a message", highlight=False)  # fmt: skip
    for part, rows in (("step", doc["by_step"]), ("channel", doc["by_channel"])):
        if not rows:
            continue
        t = RichTable(part, "arm", "reached", "buyers", "conversion", "sales", "message cost",
                      title=f"per {part}: the runs it reached (holdout: would have)")  # fmt: skip
        for key, r in rows.items():
            for arm, x in r["arms"].items():
                t.add_row(escape(key), arm, f"{x['reached']:,}", f"{x['buyers']:,}",
                          _pct(x["conversion"]), f"{x['sales']:,.2f}",
                          f"{x['message_cost']:,.2f}")  # fmt: skip
        out.print(t)
    for v, r in doc["by_variant"].items():
        out.print(_arms_table(r["arms"], f"variant {escape(v)}"))
    if doc["variants"]:
        _variants(doc["variants"])
    for n in doc["notes"]:
        out.print(n, highlight=False)


def _arms_table(arms: dict[str, Any], title: str) -> RichTable:
    t = RichTable("arm", "enrolled", "reached", "registered", "buyers", "conversion",
                  "refund users", "orders", "units", "sales", "gross profit", "margin",
                  "promotion cost", title=title)  # fmt: skip
    for a in arms.values():
        t.add_row(a["arm"], f"{a['runs']:,}", f"{a['reached']:,}", f"{a['registered']:,}",
                  f"{a['buyers']:,}", _pct(a["conversion"]), f"{a['refund_users']:,}",
                  f"{a['orders']:,}", f"{a['units']:,}", f"{a['sales']:,.2f}",
                  f"{a['gross_profit']:,.2f}", _pct(a["gross_margin"]),
                  f"{a['promotion_cost']:,.2f}")  # fmt: skip
    return t


def _variants(v: dict[str, Any]) -> None:
    """Each variant against the first (treated runs only), and the fixed-horizon verdict."""
    t = RichTable("variant", "runs", "conversion diff", "95% interval", "MDE",
                  "sales/run diff", "95% interval", "verdict",
                  title=f"treated runs of each variant against {escape(v['control'])}")  # fmt: skip
    for r in v["comparisons"]:
        c, m = r["conversion"], r["sales_per_run"]
        t.add_row(escape(r["variant"]), f"{r['runs']:,}", _pts(c["diff"]),
                  f"{_pts(c['low'])} to {_pts(c['high'])}",
                  "—" if c["mde"] is None else f"{c['mde'] * 100:.2f} pts", _money(m["diff"]),
                  f"{_money(m['low'])} to {_money(m['high'])}", c["verdict"])  # fmt: skip
    out.print(t)
    out.print(v["verdict"], highlight=False)


def _pts(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.2f} pts"


def _money(x: float | None) -> str:
    return "—" if x is None else f"{x:+,.2f}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1%}"


@campaign_app.command("preview")
def preview_cmd(
    name: NameArg,
    customer: Annotated[str, typer.Option("--customer", help="The customer to render for.")],
    step: Annotated[str | None, typer.Option("--step", help="The message step.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A message rendered for a real customer (nothing is sent)."""
    doc = service.preview(_workspace(home), name, customer, step)
    if as_json:
        emit_json(doc)
        return
    out.print(f"to: {escape(str(doc['to']))}\nsubject: {escape(str(doc['subject']))}\n")
    out.print(doc["text"] or "", markup=False, highlight=False)


def _status(name: str, status: str, home: Path | None, as_json: bool) -> None:
    _show(service.set_status(_workspace(home), name, status), as_json)


@campaign_app.command("start")
def start_cmd(name: NameArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Start a draft campaign: the next round enrols its subjects."""
    _status(name, "active", home, as_json)


@campaign_app.command("pause")
def pause_cmd(name: NameArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Pause: nothing is enrolled, advanced or sent until it is resumed."""
    _status(name, "paused", home, as_json)


@campaign_app.command("resume")
def resume_cmd(name: NameArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Resume a paused campaign."""
    _status(name, "active", home, as_json)


@campaign_app.command("end")
def end_cmd(name: NameArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """End a campaign for good (its ledger stays)."""
    _status(name, "ended", home, as_json)


@campaign_app.command("run")
def run_cmd(
    now: NowOpt = None,
    only: Annotated[
        list[str] | None, typer.Option("--campaign", help="Only this campaign (repeatable).")
    ] = None,
    no_send: Annotated[bool, typer.Option("--no-send", help="Plan only; send nothing.")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One round: enrol due subjects, advance due runs, send due messages."""
    ws = _workspace(home, now)
    doc = service.run_round(ws, send=not no_send, names=only)
    if as_json:
        emit_json(doc)
        return
    out.print(f"{doc['now']}: enrolled {doc['enrolled']:,}, planned {doc['planned']:,}, "
              f"sent {doc.get('sent', 0):,}, held back {doc.get('held_back', 0):,}, "
              f"skipped {doc.get('skipped', 0):,}, deferred {doc.get('deferred', 0):,}, "
              f"failed {doc.get('failed', 0):,}")  # fmt: skip
    for reason, n in (doc.get("skipped_by_reason") or {}).items():
        out.print(f"  skipped, {reason}: {n:,}")
    for name, e in doc["errors"].items():
        out.print(f"[red]{escape(name)}[/]: {escape(e)}")


@campaign_app.command("worker")
def worker_cmd(
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Only these channels (repeatable).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    every: Annotated[float, typer.Option("--every", help="Seconds between passes.")] = 2.0,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A dispatcher alone: send due messages until stopped (more workers on PostgreSQL)."""
    ws = _workspace(home)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    total: dict[str, Any] = {}
    with Dispatcher(ws, channels=channel) as d:
        while True:
            got = d.run().to_dict()
            for k, v in got.items():
                if isinstance(v, int):
                    total[k] = total.get(k, 0) + v
            if once or stop.wait(every):
                break
    if as_json:
        emit_json(total)
    else:
        out.print(", ".join(f"{k} {v:,}" for k, v in total.items()))
