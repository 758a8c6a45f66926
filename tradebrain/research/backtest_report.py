"""The backtest report: metrics, the buy-and-hold benchmark, cost sensitivity and trades.

Everything in the report comes from one replay of the same data; the benchmark pays the same
costs, and cost sensitivity reruns the strategy with costs at 0x, 1x and 2x.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tradebrain.engine.backtest import BacktestConfig, FastReplay, FastRun, run_backtest
from tradebrain.engine.engine import EngineResult
from tradebrain.engine.ports import RiskGate
from tradebrain.engine.strategy import Strategy
from tradebrain.evaluation.backtest_metrics import backtest_metrics, metrics_of_arrays
from tradebrain.strategies.builtin import BuyAndHold

COST_FACTORS = (0.0, 1.0, 2.0)
SENSITIVITY_KEYS = ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "fees")


@dataclass(frozen=True)
class BacktestReport:
    """The strategy's run and the report built from it (``report`` is JSON-ready)."""

    result: EngineResult
    report: dict[str, Any]


def backtest_report(
    candles: pl.DataFrame,
    make_strategy: Callable[[], Strategy],
    config: BacktestConfig,
    *,
    symbol: str,
    timeframe: str,
    funding: pl.DataFrame | None = None,
    risk: RiskGate | None = None,
    make_risk: Callable[[], RiskGate] | None = None,
    n_trials: int = 1,
    trials_variance: float | None = None,
    settings: dict[str, Any] | None = None,
) -> BacktestReport:
    """Run the strategy, the benchmark and the cost sensitivity; return the report.

    ``make_strategy`` returns a fresh strategy for each run (strategies keep state); a signal
    strategy on the fast path is made once and its targets replayed at each cost. ``risk``
    gates every run; alternatively ``make_risk`` builds a fresh risk gate for each strategy
    run (risk keeps state too) and the buy-and-hold benchmark runs ungated.
    """

    def run(
        strategy: Strategy, run_config: BacktestConfig, benchmark: bool = False
    ) -> EngineResult:
        gate = risk if make_risk is None else (None if benchmark else make_risk())
        return run_backtest(
            candles,
            strategy,
            run_config,
            symbol=symbol,
            timeframe=timeframe,
            funding=funding,
            risk=gate,
        )

    def metrics(result: EngineResult | FastRun, trials: int = 1) -> dict[str, Any]:
        if isinstance(result, FastRun):  # a cost rerun: its trades stay arrays
            fast = result.result
            return metrics_of_arrays(
                fast.equity,
                config.cash,
                fast.pnl,
                np.full(fast.pnl.shape, np.nan),  # the fast path sets no stops, so no R
                timeframe,
                exposure=fast.exposure,
                fees=fast.fees_paid,
                funding=fast.funding_paid,
            )
        return backtest_metrics(
            result.equity,
            config.cash,
            result.trades,
            timeframe,
            exposure=result.exposure,
            fees=result.fees,
            funding=result.funding,
            n_trials=trials,
            trials_variance=trials_variance if trials > 1 else None,
        )

    strategy = make_strategy()
    # A signal strategy on the fast path decides its targets once for every cost multiple.
    replay = None
    if make_risk is None:
        replay = FastReplay.of(
            candles, strategy, config, symbol=symbol, timeframe=timeframe, funding=funding,
            risk=risk,
        )  # fmt: skip
    result = run(strategy, config) if replay is None else replay.run(config).engine_result()
    benchmark = run(BuyAndHold(), config, benchmark=True)
    sensitivity = {}
    for factor in COST_FACTORS:
        scaled: EngineResult | FastRun = result
        if factor != 1.0:
            costs = config.with_costs_scaled(factor)
            scaled = run(make_strategy(), costs) if replay is None else replay.run(costs)
        values = metrics(scaled)
        sensitivity[f"{factor:g}x"] = {key: values[key] for key in SENSITIVITY_KEYS}
    report = {
        "settings": {"symbol": symbol, "timeframe": timeframe, **(settings or {})},
        "data": {
            "candles": candles.height,
            "start": str(candles["timestamp"][0]),
            "end": str(candles["timestamp"][-1]),
            "funding_settlements": 0 if funding is None else funding.height,
        },
        "path": result.path,
        "metrics": metrics(result, n_trials),
        "benchmark": metrics(benchmark),
        "cost_sensitivity": sensitivity,
        "trades": [trade_row(t) for t in result.trades],
        "open_positions": result.open_positions,
        "denials": [{"time": d.timestamp.isoformat(), "reason": d.reason} for d in result.denials],
    }
    return BacktestReport(result, finite(report))


def trade_row(trade: Any) -> dict[str, Any]:
    """Return one closed trade as a JSON-ready row."""
    return {
        "entry_time": trade.entry_time.isoformat(),
        "exit_time": trade.exit_time.isoformat(),
        "side": "long" if trade.side > 0 else "short",
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price,
        "quantity": trade.quantity,
        "pnl": trade.pnl,
        "fees": trade.fees,
        "funding": trade.funding,
        "r_multiple": trade.r_multiple,
        "return": trade.pnl / (trade.quantity * trade.entry_price),
        "exit_reason": trade.exit_reason,
    }


def finite(value: Any) -> Any:
    """Return ``value`` with every NaN or infinity replaced by None (valid JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_item(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_item(item) for item in value]
    return value


def _finite_item(item: Any) -> Any:
    """Return :func:`finite` of ``item``, quickly for the plain values a report is made of."""
    kind = type(item)
    if kind is float:
        return item if math.isfinite(item) else None
    if kind is str or kind is int or kind is bool or item is None:
        return item
    return finite(item)
