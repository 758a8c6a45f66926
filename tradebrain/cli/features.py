"""``tradebrain features``: list the features, or compute them for a candle file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tradebrain.cli._output import Column, print_rows
from tradebrain.cli._shared import console, friendly_errors, settings_of, split_list, store_of
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
    from tradebrain.core.atomic_write import write_parquet_atomic
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
    chosen = split_list(sets) or None
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
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON array of objects instead.")
    ] = False,
) -> None:
    """Show every feature with its set, warm-up, inputs and a one-line description.

    Piped or redirected, it prints tab-separated rows, every description whole.
    """
    from tradebrain.features import list_features

    chosen = split_list(sets) or None
    rows = list_features(chosen)
    print_rows(rows, FEATURE_COLUMNS, title=f"{len(rows)} features", as_json=as_json)


FEATURE_COLUMNS = (
    Column("name", "name"),
    Column("set", "set"),
    Column("warmup", "warmup", numeric=True),
    Column("inputs", "inputs"),
    Column("description", "description"),
)


@features_app.command("select")
@friendly_errors
def select_command(
    ctx: typer.Context,
    data: Annotated[str, typer.Option("--data", help="Candle file or stored dataset.")],
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", "-t", help="Candle timeframe (default: inferred).")
    ] = None,
    horizon: Annotated[
        int, typer.Option("--horizon", help="Candles the target return looks ahead.")
    ] = 1,
    max_features: Annotated[
        int | None,
        typer.Option("--max-features", help="Features kept (default: models.max_features)."),
    ] = None,
    cluster_corr: Annotated[
        float,
        typer.Option("--cluster-corr", help="|rank correlation| that puts two in one cluster."),
    ] = 0.9,
    sets: Annotated[
        str | None, typer.Option("--sets", help="Feature sets (default: all that fit).")
    ] = None,
    show_dropped: Annotated[
        bool, typer.Option("--dropped", help="Also list every feature left out, and why.")
    ] = False,
) -> None:
    """Print the features the models would be trained on, and why each was kept or left out.

    The same selection that ``evaluate`` runs inside each fold and the trading forecast inside
    each training window, here on all the candles given: single-feature rank IC with the
    forward return over ``--horizon`` candles (in units of volatility), stability of its sign
    over four blocks of time, clusters of correlated features, and a cap. A research view:
    selecting on every candle and then testing on them would be look-ahead.
    """
    from collections import Counter

    import numpy as np

    from tradebrain.data.loading import load_market_data
    from tradebrain.evaluation.evaluate import first_complete_row
    from tradebrain.evaluation.walk_forward import (
        EvaluationSettings,
        build_dataset,
        select_on_rows,
    )
    from tradebrain.features import compute_features
    from tradebrain.labels import LabelSettings

    app_settings = settings_of(ctx)
    cap = app_settings.models.max_features if max_features is None else max_features
    if cap < 1:
        raise UserInputError(f"--max-features must be at least 1; got {cap}")
    if horizon < 1:
        raise UserInputError(f"--horizon must be at least 1 candle; got {horizon}")
    if not 0.0 < cluster_corr <= 1.0:
        raise UserInputError(f"--cluster-corr must be in (0, 1]; got {cluster_corr}")
    loaded = load_market_data(data, store_of(app_settings), timeframe=timeframe)
    chosen = split_list(sets) or None
    with console.status(f"computing features for {loaded.frame.height:,} candles..."):
        table = compute_features(loaded.frame, chosen)
    settings = EvaluationSettings(
        label=LabelSettings("direction", horizon=horizon),
        folds=1,
        window=1,
        max_features=cap,
        cluster_corr=cluster_corr,
    )
    dataset = build_dataset(loaded.frame, table, first_complete_row(table), settings)
    selection = select_on_rows(dataset, np.arange(dataset.y.size), settings)
    offered = len(dataset.feature_names)
    if selection is None:
        console.print(f"all {offered} features would be kept (the cap is {cap})")
        return
    kept = Table(
        title=f"{len(selection.names)} of {offered} features kept for a {horizon}-candle "
        f"forecast ({dataset.y.size:,} rows of {loaded.source})"
    )
    for column in ("feature", "IC", "stable", "stands for"):
        kept.add_column(column, justify="right" if column in ("IC", "stable") else "left")
    for name in selection.names:
        cluster = selection.clusters.get(name, [])
        shown = ", ".join(cluster[:4]) + (f" +{len(cluster) - 4}" if len(cluster) > 4 else "")
        kept.add_row(
            name,
            f"{selection.importance.get(name, float('nan')):+.4f}",
            f"{selection.stability.get(name, float('nan')):.0%}",
            shown or "-",
        )
    console.print(kept)
    reasons = Counter(
        "in a kept feature's cluster" if why.startswith("cluster of") else why.split(" (")[0]
        for why in selection.dropped.values()
    )
    console.print(
        "left out: "
        + (", ".join(f"{count} {why}" for why, count in reasons.most_common()) or "none")
    )
    console.print(
        "[dim]IC: rank correlation with the forward return in units of volatility; stable: "
        "share of four time blocks whose IC has the same sign[/]"
    )
    if show_dropped:
        dropped = Table(title="left out")
        dropped.add_column("feature")
        dropped.add_column("why")
        for name, why in selection.dropped.items():
            dropped.add_row(name, why)
        console.print(dropped)
