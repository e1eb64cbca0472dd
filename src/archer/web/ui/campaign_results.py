"""``/campaigns/{name}/results``: what a campaign earned over its holdout, as a page — the arms
side by side, the differences per run with their intervals drawn (server-side SVG), promotion
cost, incremental gross profit and ROI, per step, channel and variant, the variants compared
with the first, the attribution by window labelled as what it is, and the verdict in words.
The figures are :func:`archer.measurement.results.results`'s, as the CLI and REST show them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from archer.errors import ArcherError
from archer.web.auth import CurrentUser
from archer.web.ui import charts, i18n
from archer.web.ui.render import page

router = APIRouter(include_in_schema=False)

# the figures of an arm shown side by side: (key, label, digits, kind)
ARM_ROWS = (
    ("runs", "Enrolled", 0, "count"),
    ("reached", "Reached", 0, "count"),
    ("registered", "Registered", 0, "count"),
    ("buyers", "Buyers", 0, "count"),
    ("conversion", "Conversion", 2, "rate"),
    ("refund_users", "Refund users", 0, "count"),
    ("orders", "Orders", 0, "count"),
    ("units", "Units", 0, "count"),
    ("sales", "Sales (net of refunds)", 2, "money"),
    ("gross_profit", "Gross profit", 2, "money"),
    ("gross_margin", "Gross margin", 1, "rate"),
    ("coupon_cost", "Coupons redeemed", 2, "money"),
    ("points_cost", "Points spent", 2, "money"),
    ("message_cost", "Message cost", 2, "money"),
    ("promotion_cost", "Promotion cost", 2, "money"),
)
UPLIFTS = (
    ("conversion", "Conversion", True),
    ("sales_per_run", "Sales per run", False),
    ("gross_profit_per_run", "Gross profit per run", False),
)


def pts(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:+.2f}"


def money(v: float | None) -> str:
    return "–" if v is None else f"{v:+,.2f}"


def said(d: dict[str, Any] | None, rate: bool, t) -> str:
    """A difference in words: '+1.23 pts (95% interval +0.50 to +2.00 pts) — higher'."""
    if d is None or d["diff"] is None:
        return t("not enough data")
    f = (lambda v: f"{pts(v)} {t('pts')}") if rate else money
    if d["low"] is None:
        return f"{f(d['diff'])} — {t(d['verdict'])}"
    return (f"{f(d['diff'])} ({t('Interval (95%)')} {f(d['low'])} {t('to')} {f(d['high'])}) — "
            f"{t(d['verdict'])}")  # fmt: skip


def verdict_words(doc: dict[str, Any], t) -> str:
    """The campaign's verdict in a sentence, from the conversion and gross-profit verdicts."""
    c = doc["uplift"]["conversion"]
    if c is None:
        return t("No holdout: nothing to compare with, so no uplift can be told.")
    g = doc["uplift"]["gross_profit_per_run"]
    if c["verdict"] == "higher":
        s = t("The campaign raised conversion beyond chance and the smallest effect it could see.")
    elif c["verdict"] == "lower":
        s = t("The campaign lowered conversion beyond chance.")
    elif c["verdict"] == "not enough data":
        s = t("Not enough data to tell.")
    else:
        s = t("The difference in conversion is not distinguishable from zero at this size.")
    if g and g["verdict"] in ("higher", "lower"):
        up = g["verdict"] == "higher"
        s += " " + t(f"Gross profit per run is {'higher' if up else 'lower'} than the holdout's.")
    return s


def variants_words(v: dict[str, Any], t) -> str:
    """The variants' verdict in the page's language (in English, as the report words it)."""
    if v["needed_per_variant"] is not None and not v["ready"]:
        text = t("no winner yet: needs {needed} per variant, has {has}")
        return text.format(needed=f"{v['needed_per_variant']:,}", has=f"{v['has_per_variant']:,}")
    if v["winner"]:
        text = t("{winner} wins: its conversion is the highest, beyond chance and the MDE")
        return text.format(winner=v["winner"])
    return t(v["verdict"])


def view(doc: dict[str, Any], t) -> dict[str, Any]:
    """What the page shows, from ``results(...).to_dict()``."""
    uplift = {k: doc["uplift"][k] for k, _, _ in UPLIFTS}
    forest = []
    for key, label, rate in UPLIFTS:
        d = uplift[key]
        if d is None:
            continue
        row = {"label": t(label), **{k: d[k] for k in ("diff", "low", "high", "mde", "verdict")}}
        forest.append(Markup(charts.intervals_svg([row], percent=rate, title=t(label))))
    steps = [
        {"label": k, "diff": (r["conversion"] or {}).get("diff"),
         "low": (r["conversion"] or {}).get("low"), "high": (r["conversion"] or {}).get("high"),
         "mde": (r["conversion"] or {}).get("mde"),
         "verdict": (r["conversion"] or {}).get("verdict")}
        for k, r in doc["by_step"].items()
    ]  # fmt: skip
    v = doc["variants"]
    variant_rows = []
    if v:
        variant_rows = [
            {"label": f"{r['variant']} − {r['against']}", **{k: r["conversion"][k] for k in
             ("diff", "low", "high", "mde", "verdict")}}
            for r in v["comparisons"]
        ]  # fmt: skip
    return {
        "uplift": uplift,
        "said": {k: said(uplift[k], rate, t) for k, _, rate in UPLIFTS},
        "verdict": verdict_words(doc, t),
        "variants_verdict": variants_words(v, t) if v else None,
        "forest": forest,
        "steps_svg": Markup(charts.intervals_svg(
            steps, percent=True, title=t("Conversion difference per step"))) if steps else None,
        "variants_svg": Markup(charts.intervals_svg(
            variant_rows, percent=True, title=t("Conversion against the first variant")))
        if variant_rows else None,
        "arms_spec": _translated(charts.arms(doc), t),
    }  # fmt: skip


def _translated(spec: dict[str, Any], t) -> dict[str, Any]:
    """The chart's words in the page's language."""
    spec["categories"] = [t(c) for c in spec["categories"]]
    for s in spec["series"]:
        s["name"] = t(s["name"])
    return spec


@router.get("/campaigns/{name}/results", response_class=HTMLResponse)
def results_page(
    request: Request,
    user: CurrentUser,
    name: str,
    window: Annotated[str | None, Query(max_length=20)] = None,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
):
    """A campaign's results (docs/measure.md), over ``window`` as of ``as_of``."""
    from archer.measurement.results import as_of_day, results

    lang = i18n.lang_of(request)
    t = i18n.translator(lang)
    ws = request.app.state.ws
    try:
        doc = results(ws, name, window=window or None, as_of=as_of_day(as_of)).to_dict()
    except ArcherError as e:
        return page(request, "missing.html", user, section="campaigns", status_code=e.status,
                    title=t("Not found") if e.status == 404 else t("No results"),
                    message=str(e), back="/campaigns")  # fmt: skip
    r = page(request, "campaign_results.html", user, section="campaigns", lang=lang, t=t,
             name=name, doc=doc, v=view(doc, t), arm_rows=ARM_ROWS, uplifts=UPLIFTS,
             pts=pts, money=money)  # fmt: skip
    return i18n.remember(request, r)
