"""`archer measure target`: whom a coupon budget should go to, by uplift learned from a past
campaign's holdout (:mod:`archer.measurement.targeting`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from archer.cli.audience import default_user, run
from archer.cli.measure import measure_app
from archer.cli.support import HomeOpt, JsonOpt, emit_json, load_home, out


@measure_app.command("target")
def target_cmd(
    campaign: Annotated[
        str, typer.Option("--campaign", help="A past campaign with a holdout to learn from.")
    ],
    budget: Annotated[
        float, typer.Option("--budget", help="Yuan of expected promotion cost to spend.")
    ],
    coupon: Annotated[
        str | None,
        typer.Option("--coupon", help="The coupon template to give (default: the campaign's)."),
    ] = None,
    audience: Annotated[
        str | None,
        typer.Option(
            "--audience",
            help="Choose only among this audience's members (a saved audience's name or a query).",
        ),
    ] = None,
    save_audience: Annotated[
        str | None,
        typer.Option("--save-audience", help="Save the chosen group as an audience of this name."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="Count each run's outcome this long after it entered (default 14d)."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(help="Who saves the audience (default: the operating-system user)."),
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn from CAMPAIGN's treated and holdout customers who a coupon persuades (a two-model
    and a transformed-outcome learner, the better by Qini on held-out customers), then choose
    the buyers to give the coupon to, ranked by expected incremental gross profit per yuan of
    expected promotion cost, until the budget is spent. Writes the table uplift_scores; the
    audience `uplift_rank <= N` is the chosen group (docs/measure.md)."""
    from archer.measurement.targeting import target

    ws = load_home(home)
    got = run(lambda: target(ws, campaign, budget, coupon=coupon, window=window,
                             audience=save_audience, among=audience,
                             user=user or default_user()), audience)  # fmt: skip
    doc = got.to_dict()
    if as_json:
        emit_json(doc)
        return
    say = lambda s: out.print(s, highlight=False)  # noqa: E731
    say(f"Learned from {doc['runs']:,} customers of {escape(campaign)} "
        f"(features as of {doc['features_as_of']}; outcome over {doc['window']}).")  # fmt: skip
    say(f"Judged out of fold: {doc['held_out']:,} customers — Qini / AUUC (extra buyers):")
    for name, d in doc["learners"].items():
        mark = "  ← chosen" if name == doc["learner"] else ""
        say(f"  {name:<20} Qini {d['qini']:>8,.2f}   AUUC {d['auuc']:>8,.2f}{mark}")
    say(f"Coupon {escape(doc['coupon'])} (¥{doc['coupon_value']:,.2f}), budget "
        f"¥{doc['budget']:,.2f}: {doc['chosen']:,} of {doc['scored']:,} buyers chosen, expected "
        f"cost ¥{doc['expected_cost']:,.2f}, expected incremental gross profit "
        f"¥{doc['expected_incremental_profit']:,.2f}.")  # fmt: skip
    if doc["among"] is not None:
        say(f"Chosen only among the {doc['among_members']:,} members of {escape(doc['among'])}.")
    say("The same budget by the model's expectation — customers, cost, incremental buyers, "
        "sales, gross profit:")  # fmt: skip
    for name, c in doc["compared"].items():
        say(f"  {name:<8} {c['customers']:>8,}  ¥{c['expected_cost']:>12,.2f}  "
            f"{c['expected_incremental_buyers']:>10,.2f}  "
            f"¥{c['expected_incremental_sales']:>12,.2f}  "
            f"¥{c['expected_incremental_profit']:>12,.2f}")  # fmt: skip
    cut = doc["cutoffs"]
    if cut["last_profit_per_yuan"] is not None:
        say(f"Cut-off: the last chosen earns ¥{cut['last_profit_per_yuan']:,.2f} per yuan; the "
            f"expected profit peaks at {cut['peak_customers']:,} customers (cost "
            f"¥{cut['peak_expected_cost']:,.2f}).")  # fmt: skip
    say(
        f"Audience: {doc['audience']}"
        + (f" (saved as {escape(doc['saved_audience'])})" if doc["saved_audience"] else "")
    )
    for note in doc["notes"]:
        say(f"note: {escape(note)}")
