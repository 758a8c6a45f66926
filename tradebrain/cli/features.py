"""``tradebrain features``: list the features, or compute them for a candle file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tradebrain.cli._shared import console, friendly_errors, settings_of, store_of
from tradebrain.data.schemas import Kind
from tradebrain.exceptions import UserInputError

features_app = typer.Typer(
    help="Compute leak-free features for a candle file, or list them.",
    rich_markup_mode="rich",
    invoke_without_command=True,
)

DataOption = Annotated[str | None, typer.Option("--data", help="Candle file or stored dataset.")]


@features_app.callback()
@friendly_errors
def features(
    ctx: typer.Context,
    data: DataOption = None,
    trades: Annotated[Path | None, typer.Option("--trades", help="Trades file.")] = None,
    book: Annotated[Path | None, typer.Option("--book", help="Order-book file.")] = None,
    funding: Annotated[Path | None, typer.Option("--funding", help="Funding-rate file.")] = None,
    sets: Annotated[
        str | None, typer.Option("--sets", help="Comma-separated sets (default: all that fit).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output Parquet file.")] = None,
) -> None:
    """Write one row per candle: timestamp, then one float64 column per feature.

    Values before a feature's warm-up are null: never dropped, never back-filled.
    """
    if ctx.invoked_subcommand is not None:
        return
    if data is None or out is None:
        raise UserInputError(
            "give --data CANDLES and --out OUT.parquet (or run `tradebrain features list`)"
        )
    from tradebrain.data.atomic import write_parquet_atomic
    from tradebrain.data.loading import load_market_data
    from tradebrain.features import compute_features

    store = store_of(settings_of(ctx))
    with console.status("loading data..."):
        loaded = load_market_data(data, store)
        candles = loaded.frame
        extras = {
            kind: load_market_data(str(path), store, kind).frame
            for kind, path in ((Kind.TRADES, trades), (Kind.BOOK, book), (Kind.FUNDING, funding))
            if path is not None
        }
    if extras:
        from tradebrain.features.orderflow_inputs import orderflow_columns

        assert loaded.timeframe is not None
        candles = orderflow_columns(
            candles,
            loaded.timeframe,
            trades=extras.get(Kind.TRADES),
            book=extras.get(Kind.BOOK),
            funding=extras.get(Kind.FUNDING),
        )
    chosen = [name.strip() for name in sets.split(",")] if sets else None
    with console.status(f"computing features for {candles.height:,} candles..."):
        table = compute_features(candles, chosen)
    write_parquet_atomic(table, out)
    console.print(
        f"[green]wrote[/] {out}: {table.height:,} rows x {table.width - 1} features "
        f"from {loaded.source}"
    )


@features_app.command("list")
@friendly_errors
def list_command(
    sets: Annotated[str | None, typer.Option("--sets", help="Only these sets.")] = None,
) -> None:
    """Show every feature with its set, warm-up, inputs and a one-line description."""
    from tradebrain.features import list_features

    chosen = [name.strip() for name in sets.split(",")] if sets else None
    rows = list_features(chosen)
    table = Table(title=f"{len(rows)} features")
    for column in ("name", "set", "warmup", "inputs", "description"):
        table.add_column(column, justify="right" if column == "warmup" else "left")
    for row in rows:
        table.add_row(
            *(str(row[key]) for key in ("name", "set", "warmup", "inputs", "description"))
        )
    console.print(table)
