"""``tradebrain data ...``: validate, import, list, resample, download and synthesise data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tradebrain.cli._output import Column, print_rows, stdout_is_terminal
from tradebrain.cli._shared import console, errors, friendly_errors, settings_of, store_of
from tradebrain.core.atomic_write import write_parquet_atomic
from tradebrain.data.schemas import Kind
from tradebrain.data.store import DatasetKey
from tradebrain.data.validation import ValidationReport
from tradebrain.exceptions import UserInputError

data_app = typer.Typer(
    help="Market data: validate, import, list, resample, download, synthesise.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

KindOption = Annotated[
    Kind, typer.Option("--kind", "-k", help="What the file holds.", case_sensitive=False)
]
TimeColumn = Annotated[
    str | None, typer.Option("--time-column", help="Timestamp column, when not auto-detected.")
]
SourceSymbol = Annotated[
    str | None,
    typer.Option("--source-symbol", help="Keep only this symbol of a multi-symbol file."),
]


@data_app.command("validate")
@friendly_errors
def validate_command(
    path: Annotated[Path, typer.Argument(help="CSV, Parquet, feather or JSON file.")],
    kind: KindOption = Kind.CANDLES,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", "-t", help="Candle timeframe (default: inferred).")
    ] = None,
    allow_gaps: Annotated[
        bool, typer.Option("--allow-gaps", help="Report gaps as warnings, not errors.")
    ] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="Drop the bad rows and report what was dropped.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="With --repair: write the kept rows here.")
    ] = None,
    time_column: TimeColumn = None,
    source_symbol: SourceSymbol = None,
) -> None:
    """Check a market-data file; exit 0 when clean, 1 with a report of every problem."""
    from tradebrain.data.importing import read_market_file
    from tradebrain.data.loading import infer_timeframe
    from tradebrain.data.validation import ROW, repair_frame, validate

    read = read_market_file(path, kind, time_column=time_column, source_symbol=source_symbol)
    for note in read.notes:
        console.print(f"[dim]note: {note}[/]")
    if kind in (Kind.CANDLES, Kind.MARK) and timeframe is None and read.frame.height > 1:
        timeframe = infer_timeframe(read.frame["timestamp"])
        console.print(f"[dim]note: timeframe inferred from the data: {timeframe}[/]")
    candle_timeframe = timeframe if kind in (Kind.CANDLES, Kind.MARK) else None
    frame, report = validate(
        read.frame,
        kind,
        candle_timeframe,
        allow_gaps=allow_gaps,
        source=read.source,
        first_line=read.first_line,
    )
    print_report(report)
    if not repair:
        if out is not None:
            raise UserInputError("--out writes repaired data; add --repair")
        raise typer.Exit(0 if report.ok else 1)
    kept, dropped = repair_frame(frame, kind, candle_timeframe)
    console.print(f"--repair dropped {dropped.height} of {frame.height} rows")
    _, after = validate(kept, kind, candle_timeframe, allow_gaps=allow_gaps, source="repaired")
    if not after.ok:
        print_report(after)
    if out is not None and after.ok:
        write_parquet_atomic(kept.drop(ROW), out)
        console.print(f"[green]wrote[/] {kept.height} rows to {out}")
    raise typer.Exit(0 if after.ok else 1)


@data_app.command("import")
@friendly_errors
def import_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV, Parquet, feather or JSON file.")],
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Symbol, e.g. BTC/USDT.")],
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", "-t", help="Candle timeframe, e.g. 1h.")
    ] = None,
    exchange: Annotated[
        str | None,
        typer.Option("--exchange", "-e", help="Exchange name (data.default_exchange)."),
    ] = None,
    market: Annotated[str, typer.Option("--market", help="spot or perp.")] = "spot",
    kind: KindOption = Kind.CANDLES,
    repair: Annotated[
        bool, typer.Option("--repair", help="Drop bad rows instead of failing.")
    ] = False,
    allow_gaps: Annotated[bool, typer.Option("--allow-gaps", help="Accept candle gaps.")] = False,
    time_column: TimeColumn = None,
    source_symbol: SourceSymbol = None,
    book_snapshot: Annotated[
        bool, typer.Option("--book-snapshot", help="Book rows are full snapshots.")
    ] = False,
) -> None:
    """Validate a file and add it to the store (atomic, de-duplicated by timestamp)."""
    from tradebrain.data.importing import import_file

    if kind in (Kind.CANDLES, Kind.MARK) and timeframe is None:
        raise UserInputError(
            f"--timeframe is required for {kind.value} (for example --timeframe 1h)"
        )
    if kind is Kind.FUNDING:
        timeframe = timeframe or "8h"
    elif kind in (Kind.TRADES, Kind.BOOK):
        timeframe = None
    settings = settings_of(ctx)
    exchange = exchange or settings.data.default_exchange
    key = DatasetKey.of(symbol, timeframe, kind, exchange=exchange, market=market)
    result = import_file(
        path,
        store_of(settings),
        key,
        repair=repair,
        allow_gaps=allow_gaps or settings.data.allow_gaps,
        time_column=time_column,
        source_symbol=source_symbol,
        book_snapshot=book_snapshot,
    )
    for note in result.notes:
        console.print(f"[dim]note: {note}[/]")
    if result.report.problems:
        print_report(result.report)
    if result.dropped.height:
        console.print(f"[yellow]--repair dropped {result.dropped.height} row(s)[/]")
    assert result.written is not None
    console.print(
        f"[green]stored[/] {key.name}: {result.written.rows_added} new row(s), "
        f"{result.written.rows_total} in total"
    )


@data_app.command("list")
@friendly_errors
def list_command(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON array of objects instead.")
    ] = False,
) -> None:
    """Show every stored dataset with its first/last timestamp, rows and gaps.

    Piped or redirected, it prints tab-separated rows with whole ISO-8601 timestamps.
    """
    store = store_of(settings_of(ctx))
    keys = store.datasets()
    if not keys and not as_json:
        errors.print(f"no datasets in {store.root}; try `tradebrain data synth` or `data import`")
        if stdout_is_terminal():
            return
    rows = []
    for key in keys:
        info = store.info(key)
        rows.append(
            {
                "dataset": key.name,
                "exchange": key.exchange,
                "market": key.market,
                "symbol": key.symbol,
                "timeframe": key.timeframe,
                "kind": key.kind.value,
                "rows": info.rows,
                "first": _iso(info.first),
                "last": _iso(info.last),
                "gaps": info.gaps if key.timeframe != "tick" else None,
                "bytes": info.bytes,
            }
        )
    print_rows(rows, DATASET_COLUMNS, title=f"datasets in {store.root}", as_json=as_json)


DATASET_COLUMNS = (
    Column("dataset", "dataset"),
    Column("rows", "rows", numeric=True, show="{:,}".format),
    Column("first", "first", show=lambda text: _when(datetime.fromisoformat(text))),
    Column("last", "last", show=lambda text: _when(datetime.fromisoformat(text))),
    Column("gaps", "gaps", numeric=True),
    Column("bytes", "size", numeric=True, show=lambda size: f"{size / 1e6:.2f} MB"),
)
"""What ``data list`` shows (``--json`` adds exchange, market, symbol, timeframe, kind)."""


@data_app.command("resample")
@friendly_errors
def resample_command(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="Candle file or stored dataset name.")],
    to: Annotated[str, typer.Option("--to", help="Target timeframe, e.g. 4h.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (default for stored data: the store).")
    ] = None,
) -> None:
    """Build higher-timeframe candles; incomplete buckets are dropped, never guessed."""
    from tradebrain.data.loading import load_market_data
    from tradebrain.data.resample import resample_candles

    store = store_of(settings_of(ctx))
    loaded = load_market_data(data, store)
    assert loaded.timeframe is not None
    higher = resample_candles(loaded.frame, loaded.timeframe, to)
    if out is not None:
        write_parquet_atomic(higher, out)
        console.print(f"[green]wrote[/] {higher.height} {to} candles to {out}")
        return
    if Path(data).exists():
        raise UserInputError("resampling a file needs --out PATH (stored datasets go to the store)")
    source_key = DatasetKey.parse(data)
    key = DatasetKey(source_key.exchange, source_key.market, source_key.symbol, to, source_key.kind)
    written = store.write(key, higher)
    console.print(f"[green]stored[/] {key.name}: {written.rows_total} {to} candles")


@data_app.command("synth")
@friendly_errors
def synth_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Candle Parquet file to write.")],
    bars: Annotated[int, typer.Option("--bars", "-n", help="Number of candles.")] = 5000,
    timeframe: Annotated[
        str | None,
        typer.Option("--timeframe", "-t", help="Candle timeframe (data.default_timeframe)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same bytes.")] = 7,
    signal: Annotated[
        float,
        typer.Option("--signal", help="Strength of a planted, past-only predictable component."),
    ] = 0.0,
    orderflow: Annotated[
        bool, typer.Option("--orderflow", help="Also write trades, book snapshots and funding.")
    ] = False,
    edge: Annotated[
        str,
        typer.Option(
            "--edge",
            help="Kind of planted edge: reversal or shock (one candle), trend or revert "
            "(persistent).",
        ),
    ] = "reversal",
    half_life: Annotated[
        int, typer.Option("--half-life", help="Candles a persistent edge takes to half-forget.")
    ] = 48,
    fee: Annotated[
        float | None,
        typer.Option("--fee", help="Fee per side the oracle strategy pays (execution.taker_fee)."),
    ] = None,
    slippage_bps: Annotated[
        float | None,
        typer.Option("--slippage-bps", help="Slippage the oracle pays (execution.slippage_bps)."),
    ] = None,
) -> None:
    """Generate the synthetic market: fat tails, volatility clustering, regimes, flash crashes.

    With ``--signal`` a past-only predictable edge is planted; the sidecar ``.oracle.json``
    says how well it can be predicted and what trading it exactly earns after costs (the
    oracle strategy, long-only and long-short).
    """
    from tradebrain.config import with_costs
    from tradebrain.data.synthetic import SyntheticConfig, generate_market, write_market
    from tradebrain.evaluation.oracle import oracle_strategy

    settings = with_costs(settings_of(ctx), fee, slippage_bps)
    timeframe = timeframe or settings.data.default_timeframe
    fee, slippage = settings.execution.taker_fee, settings.execution.slippage_bps
    config = SyntheticConfig(
        bars=bars, timeframe=timeframe, seed=seed, signal=signal, orderflow=orderflow,
        edge=edge, half_life=half_life,  # type: ignore[arg-type]  # checked by the config
    )  # fmt: skip
    with console.status(f"generating {bars:,} {timeframe} candles..."):
        market = generate_market(config)
        close = market.candles["close"].to_numpy()
        expected = market.regimes["oracle_expected_return"].to_numpy()
        strategies = {
            name: oracle_strategy(
                close, expected, fee=fee, slippage_bps=slippage, long_short=both,
                timeframe=timeframe,
            ).to_dict()
            for name, both in (("long_only", False), ("long_short", True))
        }  # fmt: skip
        market.oracle["strategy"] = strategies
        written = write_market(market, out)
    for path in written:
        console.print(f"[green]wrote[/] {path}")
    accuracy = market.oracle.get("accuracy")
    if accuracy is not None:
        console.print(f"oracle directional accuracy (the ceiling for any model): {accuracy:.4f}")
    for name, result in strategies.items():
        console.print(
            f"oracle strategy, {name.replace('_', '-')} at {fee:.2%} fee + {slippage:g} bps: "
            f"log return {result['log_return']:+.3f}, Sharpe {result['sharpe']:.2f}, "
            f"{result['trades']} trades"
        )


@data_app.command("download")
@friendly_errors
def download_command(
    ctx: typer.Context,
    symbols: Annotated[
        str, typer.Option("--symbols", help="Comma-separated, e.g. BTC/USDT,ETH/USDT.")
    ],
    timeframes: Annotated[str, typer.Option("--timeframes", help="Comma-separated, e.g. 1h,5m.")],
    since: Annotated[str, typer.Option("--since", help="UTC date or time, e.g. 2024-01-01.")],
    until: Annotated[str | None, typer.Option("--until", help="UTC end (default: now).")] = None,
    market: Annotated[str, typer.Option("--market", help="spot or perp.")] = "spot",
    trades: Annotated[bool, typer.Option("--trades", help="Also download trades.")] = False,
    funding: Annotated[
        bool, typer.Option("--funding", help="Also download funding rates.")
    ] = False,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", help="Send requests to this base URL (a testnet or a proxy)."),
    ] = None,
    exchange: Annotated[
        str | None,
        typer.Option("--exchange", "-e", help="binance, okx, ... (data.default_exchange)."),
    ] = None,
) -> None:
    """Download candles (and trades, funding) through ccxt, resuming from the last stored candle."""
    from tradebrain.data.download import DownloadRequest, download
    from tradebrain.data.exchanges import RetryPolicy, make_exchange

    settings = settings_of(ctx)
    exchange = exchange or settings.data.default_exchange
    request = DownloadRequest(
        exchange=exchange.lower(),
        symbols=_split(symbols),
        timeframes=_split(timeframes),
        since=parse_utc(since, "--since"),
        until=parse_utc(until, "--until") if until else None,
        trades=trades,
        funding=funding,
        market=market,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, int] = {}

        def on_progress(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = int(progress.add_task(name, total=total))
            progress.update(tasks[name], completed=done, total=total)  # type: ignore[arg-type]

        exchange = make_exchange(
            request.exchange,
            markets=request.markets_needed,
            api_urls=api_url,
            timeout_s=settings.data.download_timeout_s,
        )
        results = download(
            request,
            store_of(settings),
            exchange=exchange,
            retry=RetryPolicy(retries=settings.data.download_retries),
            on_progress=on_progress,
        )
    for result in results:
        console.print(
            f"[green]stored[/] {result.key.name}: "
            f"{result.rows_added} new, {result.rows_total} total"
        )


def print_report(report: ValidationReport) -> None:
    """Print a validation report: a table of problems, then the first offending rows."""
    if not report.problems:
        console.print(f"[green]clean[/]: {report.source}, {report.rows:,} {report.kind.value} rows")
        return
    table = Table(title=f"{report.source}: {report.rows:,} {report.kind.value} rows")
    for column in ("problem", "severity", "rows", "what it means"):
        table.add_column(column)
    for problem in report.problems:
        colour = "red" if problem.severity == "error" else "yellow"
        table.add_row(
            problem.rule,
            f"[{colour}]{problem.severity}[/]",
            f"{problem.count:,}",
            problem.description,
        )
    console.print(table)
    console.print(report.summary().split("\n", 1)[-1], markup=False, highlight=False)


def parse_utc(text: str, option: str) -> datetime:
    """Parse an ISO date/time as UTC (naive input is taken as UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserInputError(
            f"{option} {text!r} is not a date; use ISO format such as 2024-01-01 or "
            "2024-01-01T12:00:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _split(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise UserInputError(f"expected a comma-separated list, got {text!r}")
    return parts


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
