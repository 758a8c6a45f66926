"""The backtest runner: replay stored candles through the engine and the simulated broker.

:func:`run_backtest` picks the path: the array fast path (numba) when the strategy is a
:class:`~tradebrain.engine.strategy.SignalStrategy` traded with flat costs, no risk gate and
no protective stops (its rules are the broker's, operation for operation), else the event loop.
``path="events"`` forces the event loop; both give the same trades (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import polars as pl

from tradebrain.core.events import to_datetime
from tradebrain.core.market import MarketType, check_account
from tradebrain.engine.engine import Engine, EngineResult
from tradebrain.engine.fast import EXIT_REASONS, run_fast
from tradebrain.engine.feed import ReplayFeed
from tradebrain.engine.ports import PassThroughRisk, RiskGate
from tradebrain.engine.strategy import SignalStrategy, Strategy, StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.execution.account import ClosedTrade
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import CostModel, FlatCosts, ScaledCosts
from tradebrain.execution.monitor import MonitorRules, PositionMonitor

Path_ = Literal["auto", "events", "fast"]


@dataclass(frozen=True)
class BacktestConfig:
    """How to simulate: starting cash, costs, market, leverage, monitor rules, path.

    The position monitor's exits (break-even, trailing stop, partial exit) are off by default,
    as ``risk.manage_exits`` is; ``MonitorRules.from_settings`` follows the setting.
    """

    cash: float = 10_000.0
    costs: CostModel = field(default_factory=lambda: FlatCosts(0.001))
    market: MarketType = MarketType.SPOT
    leverage: float = 1.0
    maintenance_margin: float = 0.005
    monitor: MonitorRules = field(default_factory=MonitorRules.off)
    path: Path_ = "auto"

    def __post_init__(self) -> None:
        check_account(self.cash, self.leverage, self.market)
        if not (math.isfinite(self.maintenance_margin) and 0 <= self.maintenance_margin < 1):
            raise UserInputError(
                f"maintenance_margin must be in [0, 1), got {self.maintenance_margin}"
            )

    def with_costs_scaled(self, factor: float) -> BacktestConfig:
        """Return this config with fees and slippage multiplied by ``factor``."""
        return replace(self, costs=scale_costs(self.costs, factor))


def scale_costs(costs: CostModel, factor: float) -> CostModel:
    """Return ``costs`` times ``factor`` (a :class:`FlatCosts` stays flat, for the fast path)."""
    if isinstance(costs, FlatCosts):
        maker = None if costs.maker_fee_rate is None else costs.maker_fee_rate * factor
        return FlatCosts(costs.fee_rate * factor, costs.slippage_bps * factor, maker)
    return ScaledCosts(costs, factor)


def run_backtest(
    candles: pl.DataFrame,
    strategy: Strategy,
    config: BacktestConfig | None = None,
    *,
    symbol: str,
    timeframe: str,
    funding: pl.DataFrame | None = None,
    risk: RiskGate | None = None,
) -> EngineResult:
    """Replay ``candles`` (and ``funding``) through ``strategy``; return curves and trades."""
    config = config or BacktestConfig()
    feed = ReplayFeed(candles, symbol, timeframe, funding)
    if _fast_path_fits(strategy, config, risk, feed) and isinstance(strategy, SignalStrategy):
        return _run_fast(feed, strategy, config)
    if config.path == "fast":
        raise UserInputError(
            "the fast path needs a signal strategy, flat costs, no risk gate and long-only "
            "targets on spot; use path='events'"
        )
    broker = SimulatedBroker(
        cash=config.cash,
        costs=config.costs,
        market=config.market,
        leverage=config.leverage,
        maintenance_margin=config.maintenance_margin,
        monitor=PositionMonitor(config.monitor),
    )
    engine = Engine(
        strategy,
        broker,
        risk,
        symbol=symbol,
        timeframe=timeframe,
        history=feed.arrays(),
        market_type=config.market,
        leverage=broker.leverage,
    )
    return engine.run(feed)


def _fast_path_fits(
    strategy: Strategy, config: BacktestConfig, risk: RiskGate | None, feed: ReplayFeed
) -> bool:
    if config.path == "events" or not isinstance(strategy, SignalStrategy):
        return False
    if risk is not None and not isinstance(risk, PassThroughRisk):
        return False
    if type(config.costs) is not FlatCosts:
        return False
    return type(strategy).orders_for_target is SignalStrategy.orders_for_target


def _run_fast(feed: ReplayFeed, strategy: SignalStrategy, config: BacktestConfig) -> EngineResult:
    arrays = feed.arrays()
    context = StrategyContext(symbol=feed.symbol, timeframe=feed.timeframe, history=arrays)
    strategy.init(context)
    targets = strategy.targets(arrays)
    spot = config.market is MarketType.SPOT
    if spot and np.nanmin(np.append(targets, 0.0)) < 0:
        raise UserInputError("a spot backtest cannot hold short targets; use --market perp")
    funding_times, funding_rates = feed.funding()
    funding_bar = np.searchsorted(arrays.close_time, funding_times, side="right") - 1
    costs = config.costs
    assert isinstance(costs, FlatCosts)
    result = run_fast(
        arrays.open,
        arrays.high,
        arrays.low,
        arrays.close,
        targets,
        funding_bar,
        funding_rates,
        cash=config.cash,
        fee_rate=costs.fee_rate,
        slippage_bps=costs.slippage_bps,
        spot=spot,
        leverage=config.leverage,
        maintenance_margin=config.maintenance_margin,
    )
    times = arrays.open_time
    trades = [
        ClosedTrade(
            symbol=feed.symbol,
            side=int(result.side[k]),
            entry_time=to_datetime(times[result.entry_bar[k]]),
            exit_time=to_datetime(times[result.exit_bar[k]]),
            entry_price=float(result.entry_price[k]),
            exit_price=float(result.exit_price[k]),
            quantity=float(result.quantity[k]),
            pnl=float(result.pnl[k]),
            fees=float(result.fees[k]),
            funding=float(result.funding[k]),
            r_multiple=float("nan"),
            exit_reason=EXIT_REASONS[int(result.exit_code[k])],
        )
        for k in range(result.pnl.shape[0])
    ]
    open_positions = {feed.symbol: result.open_quantity} if result.open_quantity else {}
    return EngineResult(
        open_time=times.copy(),
        equity=result.equity,
        exposure=result.exposure,
        trades=trades,
        fills=[],
        denials=[],
        cancellations=[],
        fees=result.fees_paid,
        funding=result.funding_paid,
        open_positions=open_positions,
        path="fast",
    )
