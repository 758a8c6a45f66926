"""``tradebrain demo``: the main job on the embedded synthetic market.

It generates a synthetic perpetual market (candles, trades, book snapshots, funding), validates
it, stores it under ``TRADEBRAIN_HOME``, resamples it, prints what the data looks like and
computes every feature on it. Then it runs the whole pipeline — walk-forward model evaluation
and the hybrid strategy backtested after costs — on a planted-signal world and a null world side
by side, and writes an HTML report for each (see :mod:`tradebrain.cli.demo_worlds`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tradebrain.cli._shared import console, friendly_errors, settings_of, store_of
from tradebrain.data.schemas import Kind
from tradebrain.data.store import DatasetKey
from tradebrain.exceptions import DataValidationError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from tradebrain.data.synthetic import SyntheticMarket

MIN_PIPELINE_BARS = 2_000
SYMBOL = "SYN/USDT"
EXCHANGE = "synthetic"


@friendly_errors
def demo(
    ctx: typer.Context,
    bars: Annotated[
        int | None,
        typer.Option("--bars", help="Candles to generate (default: data.synthetic_bars)."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
) -> None:
    """Run the main job on the embedded synthetic market and print a summary."""
    from tradebrain.data.resample import resample_candles
    from tradebrain.data.synthetic import SyntheticConfig, generate_market
    from tradebrain.data.validation import validate

    settings = settings_of(ctx)
    store = store_of(settings)
    config = SyntheticConfig(
        bars=bars or settings.data.synthetic_bars,
        timeframe="1h",
        seed=settings.data.synthetic_seed if seed is None else seed,
        orderflow=True,
    )
    console.rule("[bold]tradebrain demo: the synthetic market")
    with console.status(f"generating {config.bars:,} 1h candles with trades, book and funding..."):
        market = generate_market(config)

    frames = {
        Kind.CANDLES: market.candles,
        Kind.TRADES: market.trades,
        Kind.BOOK: market.book,
        Kind.FUNDING: market.funding,
    }
    for kind, frame in frames.items():
        if frame is None:
            continue
        _, report = validate(frame, kind, "1h" if kind is Kind.CANDLES else None)
        if not report.ok:
            raise DataValidationError(
                f"the synthetic {kind.value} failed validation; this is a bug in tradebrain\n"
                + report.summary(),
                report,
            )
        timeframe = {Kind.CANDLES: "1h", Kind.FUNDING: "8h"}.get(kind)
        key = DatasetKey.of(SYMBOL, timeframe, kind, exchange=EXCHANGE, market="perp")
        store.write(key, frame, replace=True)
    for higher in ("4h", "1d"):
        key = DatasetKey.of(SYMBOL, higher, Kind.CANDLES, exchange=EXCHANGE, market="perp")
        store.write(key, resample_candles(market.candles, "1h", higher), replace=True)

    console.print(f"validated and stored in [bold]{store.root}[/]")
    _print_datasets(store)
    _print_stylized_facts(market.candles, market.regimes)
    _print_features(market)
    if config.bars < MIN_PIPELINE_BARS:
        console.print(
            f"[yellow]skipping the model and backtest part: it needs --bars >= "
            f"{MIN_PIPELINE_BARS:,} for walk-forward training[/]"
        )
    else:
        from tradebrain.cli.demo_worlds import print_worlds, run_worlds

        console.rule("[bold]the whole pipeline: a planted world and a null world")
        print_worlds(run_worlds(settings, config.bars, config.seed))
    console.print(
        "[dim]Next: `tradebrain data list`, `tradebrain features list`, "
        "`tradebrain data import FILE --symbol BTC/USDT --timeframe 1h`.[/]"
    )


def _print_features(market: SyntheticMarket) -> None:
    """Compute every feature on the synthetic market and show how many each set gives."""
    from tradebrain.features import compute_features, list_features, orderflow_columns

    started = time.perf_counter()
    with console.status("computing features (candles, order flow, funding)..."):
        inputs = orderflow_columns(
            market.candles, "1h", trades=market.trades, book=market.book, funding=market.funding
        )
        table = compute_features(inputs)
    seconds = time.perf_counter() - started
    sets = {row["name"]: row["set"] for row in list_features()}
    counts: dict[str, int] = {}
    for name in table.columns[1:]:
        counts[str(sets[name])] = counts.get(str(sets[name]), 0) + 1
    summary = Table(title=f"{table.width - 1} leak-free features in {seconds:.1f} s")
    summary.add_column("feature set")
    summary.add_column("features", justify="right")
    summary.add_column("rows with every value", justify="right")
    for set_name, count in counts.items():
        columns = [n for n in table.columns[1:] if sets[n] == set_name]
        usable = table.select(columns).drop_nulls().height
        summary.add_row(set_name, str(count), f"{usable:,}")
    console.print(summary)


def _print_datasets(store: object) -> None:
    from tradebrain.data.store import ParquetStore

    assert isinstance(store, ParquetStore)
    table = Table(title="stored datasets")
    table.add_column("dataset", no_wrap=True)
    for column in ("rows", "first", "last", "gaps"):
        table.add_column(column, justify="right" if column in ("rows", "gaps") else "left")
    for key in store.datasets():
        if key.exchange != EXCHANGE:
            continue
        info = store.info(key)
        table.add_row(
            key.name,
            f"{info.rows:,}",
            str(info.first)[:16],
            str(info.last)[:16],
            "-" if key.timeframe == "tick" else str(info.gaps),
        )
    console.print(table)


def _print_stylized_facts(candles: pl.DataFrame, regimes: pl.DataFrame) -> None:
    import numpy as np

    close = candles["close"].to_numpy()
    returns = np.diff(np.log(close))
    table = Table(title="what the synthetic market looks like (1h log returns)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("real crypto, for comparison")
    table.add_row("candles", f"{candles.height:,}", "")
    table.add_row("annualised volatility", f"{returns.std() * np.sqrt(24 * 365):.0%}", "40-90%")
    table.add_row("excess kurtosis", f"{_kurtosis(returns) - 3:.1f}", "> 0 (fat tails)")
    table.add_row("autocorrelation of returns, lag 1", f"{_acf(returns):+.3f}", "about 0")
    table.add_row("autocorrelation of |returns|, lag 1", f"{_acf(np.abs(returns)):+.3f}", "> 0.1")
    table.add_row("worst candle", f"{returns.min():.1%}", "")
    table.add_row("price start -> end", f"{close[0]:,.0f} -> {close[-1]:,.0f}", "")
    if "regime" in regimes.columns:
        shares = regimes["regime"].value_counts(normalize=True).sort("regime")
        share_text = ", ".join(f"{r} {s:.0%}" for r, s in shares.iter_rows())
        table.add_row("time in each regime", share_text, "")
    if "flash_crash" in regimes.columns:
        table.add_row("flash-crash candles", str(int(regimes["flash_crash"].sum())), "")
    console.print(table)


def _kurtosis(values: np.ndarray) -> float:
    centred = values - values.mean()
    return float((centred**4).mean() / (centred**2).mean() ** 2)


def _acf(values: np.ndarray, lag: int = 1) -> float:
    centred = values - values.mean()
    return float((centred[:-lag] @ centred[lag:]) / (centred @ centred))
