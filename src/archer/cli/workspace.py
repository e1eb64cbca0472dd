"""Workspace commands: init, import, status, sample and demo."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from archer import status as status_mod
from archer.cli.support import (
    ArcherTyper,
    HomeOpt,
    JsonOpt,
    app,
    emit_json,
    fail,
    load_home,
    out,
    progress_bar,
)
from archer.config import CONFIG_FILE, default_home, init_workspace


@app.command()
def init(
    home: HomeOpt = None,
    shop_name: Annotated[str, typer.Option(help="The shop's name.")] = "My shop",
    timezone: Annotated[str, typer.Option(help="IANA time zone of the shop.")] = "Asia/Shanghai",
    currency: Annotated[str, typer.Option(help="ISO 4217 currency code.")] = "CNY",
    json_out: JsonOpt = False,
) -> None:
    """Create the workspace folder with its archer.toml and an empty warehouse."""
    from archer.workspace import Workspace

    cfg = (home or default_home()) / CONFIG_FILE
    kept = cfg.exists()
    try:
        s = init_workspace(home, shop_name=shop_name, timezone=timezone, currency=currency)
    except ValueError as e:
        fail(str(e))
    with Workspace(s).warehouse():  # the empty canonical tables
        pass
    doc = {
        "home": str(s.home.resolve()),
        "warehouse": s.warehouse_url,
        "timezone": s.timezone,
        "currency": s.currency,
        "language": s.app_language,
        "settings_file": str(cfg.resolve()),
        "settings_file_kept": kept,
    }
    if json_out:
        emit_json(doc)
        return
    out.print(f"Workspace ready at [bold]{doc['home']}[/].", highlight=False)
    for line in _chosen(s, kept, str(cfg.resolve()), timezone=timezone, currency=currency):
        out.print(line, highlight=False, markup=False)


def _chosen(s, kept: bool, cfg: str, *, timezone: str, currency: str) -> list[str]:
    """What ``archer init`` chose for currency, time zone and language, and how to change them."""

    def how(flag: str, given: str, default: str, example: str) -> str:
        if kept:
            return "from the settings file"
        if given != default:
            return f"--{flag} {given}"
        return f"the default; another with --{flag}, e.g. --{flag} {example}"

    lang = "the language setting" if s.language else "the default: zh for a shop in CNY, else en"
    name = {"zh": "Simplified Chinese", "en": "English"}[s.app_language]
    lines = [
        f"  currency   {s.currency:<14} ({how('currency', currency, 'CNY', 'GBP')})",
        f"  time zone  {s.timezone:<14} "
        f"({how('timezone', timezone, 'Asia/Shanghai', 'Europe/London')}): "
        "the dates of imported files are read as its clock times",
        f"  language   {s.app_language:<14} ({name}; {lang})",
    ]
    if kept:
        lines.insert(0, f"Its settings file {cfg} was there already and is kept as it is:")
        ignored = [
            f"--{flag} {given}"
            for flag, given, has in (
                ("currency", currency, s.currency),
                ("timezone", timezone, s.timezone),
            )
            if given.upper() != has.upper()
        ]
        if ignored:
            lines.append(f"Not applied, as the file says otherwise: {', '.join(ignored)}.")
    lines.append(
        f'To change them, set currency = "…", timezone = "…" or language = "zh" / "en" in {cfg}'
        + ("" if kept else " (the time zone before the first import)")
        + "."
    )
    return lines


@app.command("import")
def import_(
    table: Annotated[
        str, typer.Argument(help="customers, products, orders, order_items, refunds or events.")
    ],
    file: Annotated[
        Path, typer.Argument(help="CSV (any delimiter, UTF-8 or GBK, .gz ok), .xlsx or .parquet.")
    ],
    preset: Annotated[
        str | None,
        typer.Option(
            help="A known export format: online-retail, cdnow, taobao-orders, taobao-userbehavior …"
        ),
    ] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="SOURCE_HEADER=column; repeat as needed.")
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="Field delimiter (default: detected).")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (default: detected).")] = None,
    date_format: Annotated[
        str | None,
        typer.Option(help="strptime format tried first, e.g. %d/%m/%Y; epoch or epoch_ms."),
    ] = None,
    ignore_unknown_columns: Annotated[
        bool, typer.Option(help="Import even if a header looks like a misspelt column.")
    ] = False,
    map_values: Annotated[
        list[str] | None,
        typer.Option(
            "--map-values",
            help="COLUMN:VALUE=stored,VALUE=stored, e.g. type:pv=view,buy=purchase; other "
            "values of the column are refused.",
        ),
    ] = None,
    header: Annotated[
        bool,
        typer.Option(
            "--header/--no-header", help="Whether the CSV file's first line names its columns."
        ),
    ] = True,
    columns: Annotated[
        str | None,
        typer.Option(help="The CSV file's column names, comma-separated (with --no-header)."),
    ] = None,
    sheet: Annotated[
        str | None,
        typer.Option(help="An Excel workbook's sheet: its name or number from 1 (default 1)."),
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import a file into a canonical table; bad rows go to the quarantine."""
    from archer.ingest.importer import import_file
    from archer.ingest.sources import SourceError
    from archer.warehouse import WarehouseError

    s = load_home(home)
    try:
        with progress_bar(not json_out) as report:
            r = import_file(
                s,
                table,
                file,
                preset=preset,
                mapping=map_,
                delimiter=delimiter,
                encoding=encoding,
                date_format=date_format,
                ignore_unknown_columns=ignore_unknown_columns,
                map_values=map_values,
                header=header,
                columns=columns,
                sheet=sheet,
                progress=report,
            )
    except (ValueError, SourceError, WarehouseError) as e:
        fail(str(e))
    if json_out:
        emit_json(r.to_dict())
        if r.all_rejected:
            raise typer.Exit(1)
        return
    out.print(
        f"[bold]{r.source}[/] → {', '.join(r.tables)}: {r.rows_read:,} rows read, "
        f"{r.inserted:,} inserted, {r.updated:,} updated, {r.unchanged:,} unchanged, "
        f"[{'red' if r.rejected else 'green'}]{r.rejected:,} rejected[/] ({r.seconds:.1f} s)"
    )
    if len(r.tables) > 1:
        for name, t in r.tables.items():
            out.print(
                f"  {name:<12} {t.inserted:>10,} inserted {t.updated:>8,} updated "
                f"{t.unchanged:>8,} unchanged {t.rejected:>8,} rejected"
            )
    if r.repeats:
        out.print(f"  {r.repeats:,} identical copies of rows were taken once")
    for reason, n in list(r.reasons.items())[:8]:
        out.print(f"  {n:>8,} × {reason}", highlight=False)
    if r.quarantine:
        out.print(f"Rejected rows, with line numbers and reasons: [bold]{r.quarantine}[/]")
    if r.ignored_columns:
        out.print(f"Columns not imported: {', '.join(r.ignored_columns)}", highlight=False)
    for note in r.notes:
        out.print(f"Note: {note}", highlight=False)
    for header, cols in r.suggestions.items():
        out.print(f"  {header}: did you mean {' or '.join(cols)}?", highlight=False)
    if r.all_rejected:
        fail(f"every row of {r.source} was rejected ({r.rejected:,}): nothing was imported")


@app.command()
def status(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Rows per table, the last imports and the last build."""
    doc = status_mod.status(load_home(home))
    if json_out:
        emit_json(doc)
        return
    t = RichTable(title=f"{doc['shop_name']} — {doc['home']}")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in doc["tables"].items():
        t.add_row(name, f"{n:,}")
    out.print(t)
    if doc["last_imports"]:
        last = doc["last_imports"][0]
        out.print(
            f"Last import: {last['source']} into {last['table_name']} at {last['finished_at']} "
            f"({last['inserted']:,} inserted, {last['updated']:,} updated, "
            f"{last['rejected']:,} rejected)"
        )
    else:
        out.print("No imports yet: try `archer import orders FILE`.")
    if doc["last_build"]:
        b = doc["last_build"]
        out.print(f"Profile: {b['customers']:,} customers as of {b['as_of']}.")
    elif any(doc["tables"].values()):
        out.print("No profile yet: run `archer build`.")


sample_app = ArcherTyper(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Write a synthetic shop (`archer sample --out DIR`), or advance one in time after "
    "campaigns have sent (`archer sample simulate`).",
)
app.add_typer(sample_app, name="sample")


@sample_app.callback()
def sample(
    ctx: typer.Context,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder to write the tables to.")
    ] = None,
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same shop.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    start: Annotated[str, typer.Option(help="First day of history (YYYY-MM-DD).")] = "2024-11-01",
    end: Annotated[str, typer.Option(help="Last day of history (YYYY-MM-DD).")] = "2026-10-31",
    json_out: JsonOpt = False,
) -> None:
    """Write a synthetic shop (every canonical table plus truth.csv) to a folder."""
    from archer.sample import generate

    if ctx.invoked_subcommand is not None:
        return
    if out_dir is None:
        fail("--out: the folder to write the sample shop to (or a command: simulate)")

    if fmt not in ("csv", "parquet"):
        fail(f"--format {fmt!r}: expected csv or parquet")
    try:
        d0, d1 = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as e:
        fail(f"--start/--end: {e}")
    with progress_bar(not json_out) as report:
        counts = generate(
            out_dir,
            customers=customers,
            seed=seed,
            fmt=fmt,
            start=d0,
            end=d1,
            progress=lambda stage, frac: report(stage, int(frac * 100), 100),
        )
    if json_out:
        emit_json({"out": str(out_dir), "format": fmt, "rows": counts})
        return
    out.print(f"Sample shop written to [bold]{out_dir}[/]:")
    for name, n in counts.items():
        out.print(f"  {name:<12} {n:>12,}")


@sample_app.command("simulate")
def simulate(
    until: Annotated[str, typer.Option(help="Advance the shop to the end of this day.")],
    home: HomeOpt = None,
    sample_dir: Annotated[
        Path | None,
        typer.Option("--sample", help="The folder `archer sample` wrote (default HOME/sample)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the sample's).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Advance the sample shop to UNTIL: the orders, payments, refunds and events its members
    make on their own and in answer to the campaigns that sent, imported and built; the
    campaigns' true effect goes to truth_campaigns.json beside the sample."""
    from archer.sample.simulate import simulate as run

    try:
        day = date.fromisoformat(until)
    except ValueError:
        fail(f"--until {until!r}: expected a day such as 2026-11-30")
    ws = load_home(home)
    doc = run(ws, day, sample_dir=sample_dir, seed=seed).to_dict()
    if json_out:
        emit_json(doc)
        return
    out.print(
        f"Simulated to {doc['until']}: {doc['orders']:,} orders, {doc['paid_late']:,} unpaid "
        f"orders paid, {doc['refunds']:,} refunds, {doc['events']:,} events."
    )
    for name, c in doc["campaigns"].items():
        out.print(
            f"  {name}: {c['enrolled']:,} enrolled, true uplift {c['true_uplift']:.2%} "
            f"per run, {c['persuaded']:,} persuaded"
        )


@app.command()
def demo(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Folder for the demo workspace, emptied first (default ./demo-shop)."
        ),
    ] = None,
    customers: Annotated[int, typer.Option(min=100, help="Size of the sample shop.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then serve the web app on the demo shop, with an operator 'demo' whose "
            "password is printed, until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the web app with --serve.")] = 8000,
    json_out: JsonOpt = False,
) -> None:
    """The whole loop on a fresh sample shop: sample → import → build → audiences (→ app)."""
    from archer.demo import DemoError, run_demo

    home_dir = home or Path("demo-shop")
    say = (lambda m: None) if json_out else (lambda m: out.print(m, highlight=False))
    try:
        with progress_bar(not json_out) as report:
            doc = run_demo(home_dir, customers=customers, seed=seed, progress=report, say=say)
    except DemoError as e:
        fail(str(e))
    if json_out:
        emit_json(doc)
        return
    out.print(status_mod.summary_text(doc))
    if serve:
        _serve_demo(home_dir, port)


def _serve_demo(home_dir: Path, port: int) -> None:
    """Make the demo's operator and serve the app until Ctrl-C."""
    import secrets

    from archer.store import users as accounts
    from archer.web import serve as serve_app

    ws = load_home(home_dir)
    settings = ws.settings
    password = secrets.token_urlsafe(9)
    with ws.session(write=True) as db:
        accounts.create(db, "demo", password, now=ws.now())
    out.print(
        f"\nThe app: [bold]http://127.0.0.1:{port}[/] — sign in as [bold]demo[/] with the "
        f"password [bold]{password}[/]. Ctrl-C stops it.",
        highlight=False,
    )
    serve_app(settings, "127.0.0.1", port)
