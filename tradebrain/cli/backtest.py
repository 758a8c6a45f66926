"""``tradebrain backtest``: replay candles through a strategy and write an honest report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from tradebrain.cli._shared import (
    console,
    friendly_errors,
    hybrid_config,
    report_json,
    settings_of,
    store_of,
    track_run,
)
from tradebrain.exceptions import UserInputError

if TYPE_CHECKING:
    from tradebrain.strategies.hybrid_config import HybridConfig


@friendly_errors
def backtest_command(
    ctx: typer.Context,
    data: Annotated[str, typer.Option("--data", help="Candle file or stored dataset name.")],
    json_out: Annotated[Path, typer.Option("--json", help="Report file to write (JSON).")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="sma_cross, buy_and_hold or hybrid.")
    ] = "sma_cross",
    funding: Annotated[
        str | None, typer.Option("--funding", help="Funding-rate file (perpetuals).")
    ] = None,
    fast: Annotated[int, typer.Option("--fast", help="Fast SMA length (sma_cross).")] = 10,
    slow: Annotated[int, typer.Option("--slow", help="Slow SMA length (sma_cross).")] = 50,
    fee: Annotated[
        float | None, typer.Option("--fee", help="Fee rate per side, e.g. 0.001 = 0.1 %.")
    ] = None,
    venue: Annotated[
        str | None,
        typer.Option(
            "--venue",
            help="Fees of a venue (binance-spot, binance-usdm, okx-spot, okx-swap...) with "
            "square-root market-impact slippage; add --slippage-bps for a flat slippage instead.",
        ),
    ] = None,
    slippage_bps: Annotated[
        float | None, typer.Option("--slippage-bps", help="Taker slippage in basis points.")
    ] = None,
    market: Annotated[str, typer.Option("--market", help="spot or perp.")] = "spot",
    leverage: Annotated[float, typer.Option("--leverage", help="Perp leverage.")] = 1.0,
    cash: Annotated[float, typer.Option("--cash", help="Starting cash (quote).")] = 10_000.0,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Symbol name (default: the file name).")
    ] = None,
    allow_no_funding: Annotated[
        bool,
        typer.Option("--allow-no-funding", help="Run a perp backtest without funding data."),
    ] = False,
    retrain_every: Annotated[
        int | None,
        typer.Option(
            "--retrain-every",
            help="hybrid: candles between retrains (learning.retrain_every_bars).",
        ),
    ] = None,
    min_train: Annotated[
        int | None,
        typer.Option(
            "--min-train",
            help="hybrid: candles learned from before trading (learning.min_train_bars).",
        ),
    ] = None,
    models: Annotated[
        str | None, typer.Option("--models", help="hybrid: models (models.enabled).")
    ] = None,
    sets: Annotated[
        str | None,
        typer.Option("--sets", help="hybrid: feature sets offered to the models (features.sets)."),
    ] = None,
    horizons: Annotated[
        str | None,
        typer.Option(
            "--horizons", help="hybrid: forecast horizons to try, e.g. 12,24,48 (models.horizons)."
        ),
    ] = None,
    trades: Annotated[
        str | None, typer.Option("--trades", help="hybrid: trades file (order-flow features).")
    ] = None,
    book: Annotated[
        str | None, typer.Option("--book", help="hybrid: book file (order-flow features).")
    ] = None,
    agent: Annotated[
        Path | None,
        typer.Option(
            "--agent",
            help="hybrid: an RL agent folder (`tradebrain rl train`) that scales or vetoes the "
            "brain's entries; decides with the Python brain.",
        ),
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Also write an offline HTML report with charts.")
    ] = None,
) -> None:
    """Backtest a strategy; writes metrics, benchmark, cost sensitivity and trades as JSON."""
    from tradebrain.config import with_costs
    from tradebrain.core.atomic_write import check_output_file, write_text_atomic
    from tradebrain.core.market import MarketType
    from tradebrain.data.loading import load_market_data
    from tradebrain.evaluation.statistics import home_ledger
    from tradebrain.execution.costs import FlatCosts, settings_costs
    from tradebrain.research.backtest_report import BacktestReport, backtest_report
    from tradebrain.research.hybrid_request import backtest_config
    from tradebrain.strategies.builtin import make_strategy

    params: dict[str, Any] = {"fast": fast, "slow": slow} if strategy == "sma_cross" else {}
    if strategy != "hybrid":
        make_strategy(strategy, **params)  # fail fast on an unknown or unavailable strategy
    if fee is not None and venue is not None:
        raise UserInputError("give either --fee or --venue, not both")
    if market not in ("spot", "perp"):
        raise UserInputError(f"--market must be spot or perp; got {market!r}")
    if market == "perp" and funding is None and not allow_no_funding:
        raise UserInputError(
            "a perpetual backtest needs funding data: pass --funding PATH (funding-rate "
            "history), or --allow-no-funding to ignore funding knowingly"
        )
    # The brain weighs the costs the run pays.
    settings = with_costs(settings_of(ctx), fee, slippage_bps)
    check_output_file(json_out)
    if html_out is not None:
        check_output_file(html_out)
    slippage = settings.execution.slippage_bps if slippage_bps is None else slippage_bps
    costs: Any
    if venue is not None and slippage_bps is None:
        # A venue's maker/taker fees plus slippage that grows with √(order size / candle volume).
        from tradebrain.execution.costs import VenueCosts

        costs = VenueCosts.preset(venue)
    elif venue is not None:
        costs = FlatCosts.for_venue(venue, slippage)
    else:  # the settings' costs, with --fee and --slippage-bps already folded in
        costs = settings_costs(settings.execution)
    config = backtest_config(  # refuses an account no venue could hold, as serve does
        settings, cash=cash, costs=costs, market=MarketType(market), leverage=leverage
    )
    store = store_of(settings)
    loaded = load_market_data(data, store)
    funding_frame = None if funding is None else load_market_data(funding, store, "funding").frame
    name = symbol or Path(loaded.source).stem
    timeframe = loaded.timeframe or "1h"
    run_settings = {"strategy": strategy, **params, "costs": repr(costs), "market": market,
                    "leverage": leverage, "cash": cash, "source": loaded.source}  # fmt: skip
    ledger = home_ledger(settings.home)
    backtests = [e["metric"] for e in ledger.entries() if str(e["name"]).startswith("backtest:")]
    variance = float(_variance(backtests)) if len(backtests) >= 2 else None
    hybrid: HybridConfig | None = None
    if strategy == "hybrid":
        hybrid = hybrid_config(
            settings, retrain_every=retrain_every, min_train=min_train, models=models, sets=sets,
            horizons=horizons, funding=funding, trades=trades, book=book,
        )  # fmt: skip
        run_settings.update(hybrid.to_dict())
    outcome: BacktestReport
    with console.status(f"backtesting {strategy} on {loaded.frame.height:,} candles...") as status:
        if hybrid is not None:
            from tradebrain.data.loading import load_planted_edge
            from tradebrain.research.hybrid_request import HybridRequest
            from tradebrain.research.walk_forward_backtest import hybrid_backtest_report

            request = HybridRequest.from_settings(
                settings, loaded.frame, symbol=name, timeframe=timeframe, funding=funding_frame,
                orderflow=_orderflow(loaded, store, trades, book, funding_frame), hybrid=hybrid,
                backtest=config,
            )  # fmt: skip
            if agent is not None:
                from tradebrain.rl.saved import load_agent

                request = replace(request, agent=load_agent(agent))
                run_settings["rl_agent"] = f"{request.agent.name} from {agent}"  # type: ignore[union-attr]
            outcome = hybrid_backtest_report(
                request,
                n_trials=max(ledger.n_trials, 1),
                trials_variance=variance,
                settings=run_settings,
                progress=lambda text: status.update(f"hybrid: {text}"),
                planted=load_planted_edge(loaded.source, loaded.frame),
            )
        else:
            outcome = backtest_report(
                loaded.frame,
                lambda: make_strategy(strategy, **params),
                config,
                symbol=name,
                timeframe=timeframe,
                funding=funding_frame,
                n_trials=max(ledger.n_trials, 1),
                trials_variance=variance,
                settings=run_settings,
            )
    sharpe = outcome.report["metrics"]["sharpe_per_period"]
    if sharpe is not None:
        ledger.record(run_settings, sharpe, name=f"backtest:{strategy}")
    write_text_atomic(report_json(outcome.report), json_out)
    _print_summary(outcome.report)
    console.print(f"[green]wrote[/] {json_out}")
    oracle = outcome.report.get("oracle") or {}
    track_run(
        settings, "backtest", outcome.report["settings"],
        {**outcome.report["metrics"],
         **{f"benchmark.{k}": v for k, v in outcome.report["benchmark"].items()},
         **{f"oracle.{k}": v for k, v in oracle.items() if not isinstance(v, dict)}},
    )  # fmt: skip
    if html_out is not None:
        from tradebrain.evaluation.html_report import write_html_report

        decisions = getattr(outcome.result, "decisions", None)
        frame, equity = loaded.frame, outcome.result.equity
        write_html_report(html_out, outcome.report, frame, equity, decisions=decisions)
        console.print(f"[green]wrote[/] {html_out}")


def _orderflow(loaded: Any, store: Any, trades: str | None, book: str | None, funding: Any) -> Any:
    """Return the candles with order-flow columns when trades, book or funding are given."""
    if trades is None and book is None and funding is None:
        return None
    from tradebrain.data.loading import load_market_data
    from tradebrain.data.schemas import Kind
    from tradebrain.features import orderflow_columns

    return orderflow_columns(
        loaded.frame,
        loaded.timeframe or "1h",
        trades=None if trades is None else load_market_data(trades, store, Kind.TRADES).frame,
        book=None if book is None else load_market_data(book, store, Kind.BOOK).frame,
        funding=funding,
    )


def _variance(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _print_summary(report: dict[str, Any]) -> None:
    from tradebrain.evaluation.backtest_metrics import METRIC_ROWS, format_metric

    table = Table(title=f"backtest: {report['settings']['strategy']}", box=box.SIMPLE_HEAVY)
    table.add_column("metric")
    table.add_column("strategy", justify="right")
    table.add_column("buy & hold", justify="right")
    for key, label, pattern in METRIC_ROWS:
        table.add_row(
            label,
            format_metric(report["metrics"].get(key), pattern),
            format_metric(report["benchmark"].get(key), pattern),
        )
    console.print(table)
    costs = "  ".join(
        f"{factor} costs: {format_metric(row['total_return'], '{:+.2%}')}"
        for factor, row in report["cost_sensitivity"].items()
    )
    console.print(f"[dim]cost sensitivity (total return)  {costs}[/]")
    oracle = report.get("oracle")
    if oracle:
        best = oracle["strategy"]
        capture = oracle["capture_ratio"]
        console.print(
            f"oracle strategy ({best['market']}, the known edge traded at the same costs): "
            f"log return {best['log_return']:+.3f}, Sharpe {best['sharpe']:.2f}, "
            f"{best['trades']} trades; hybrid {oracle['hybrid_log_return']:+.3f} -> "
            + (
                f"[bold]capture ratio {capture:.0%}[/]"
                if capture is not None
                else "no capture ratio: the oracle itself could not gain after costs"
            )
        )
