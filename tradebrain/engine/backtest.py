"""The backtest runner: replay stored candles through the engine and the simulated broker.

:func:`run_backtest` picks the path: the array fast path (numba) when the strategy is a
:class:`~tradebrain.engine.strategy.SignalStrategy` traded with flat costs, no risk gate and
no protective stops (its rules are the broker's, operation for operation), else the event loop.
``path="events"`` forces the event loop; both give the same trades (tested).
:class:`FastReplay` decides a signal strategy's targets once and replays them under several
costs (a report's cost sensitivity), building trade records only when asked.
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
from tradebrain.engine.fast import EXIT_REASONS, FastResult, run_fast
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
    if _fast_path_fits(strategy, config, risk) and isinstance(strategy, SignalStrategy):
        return _run_fast(feed, strategy, config)
    if config.path == "fast":
        raise UserInputError(
            "the fast path needs a signal strategy, flat costs, no risk gate and long-only "
            "targets on spot; use path='events'"
        )
    return event_engine(strategy, config, risk, feed=feed, symbol=symbol, timeframe=timeframe).run(
        feed
    )


def event_engine(
    strategy: Strategy,
    config: BacktestConfig,
    risk: RiskGate | None,
    *,
    feed: ReplayFeed,
    symbol: str,
    timeframe: str,
) -> Engine:
    """Return the event-loop engine a backtest runs: ``strategy`` around a fresh simulated
    broker with ``config``'s cash, costs, market, leverage and exit management."""
    broker = SimulatedBroker(
        cash=config.cash,
        costs=config.costs,
        market=config.market,
        leverage=config.leverage,
        maintenance_margin=config.maintenance_margin,
        monitor=PositionMonitor(config.monitor),
    )
    return Engine(
        strategy,
        broker,
        risk,
        symbol=symbol,
        timeframe=timeframe,
        history=feed.arrays(),
        market_type=config.market,
        leverage=broker.leverage,
    )


def _fast_path_fits(strategy: Strategy, config: BacktestConfig, risk: RiskGate | None) -> bool:
    if not _fast_config(config) or not isinstance(strategy, SignalStrategy):
        return False
    if risk is not None and not isinstance(risk, PassThroughRisk):
        return False
    return type(strategy).orders_for_target is SignalStrategy.orders_for_target


def _fast_config(config: BacktestConfig) -> bool:
    return config.path != "events" and type(config.costs) is FlatCosts


def _run_fast(feed: ReplayFeed, strategy: SignalStrategy, config: BacktestConfig) -> EngineResult:
    return FastReplay(feed, _decide_targets(feed, strategy)).run(config).engine_result()


def _decide_targets(feed: ReplayFeed, strategy: SignalStrategy) -> np.ndarray:
    arrays = feed.arrays()
    context = StrategyContext(symbol=feed.symbol, timeframe=feed.timeframe, history=arrays)
    strategy.init(context)
    return strategy.targets(arrays)


class FastReplay:
    """A signal strategy's targets over candles, replayed on the fast path under any costs.

    Targets do not depend on costs: a report decides them once (:meth:`of`) and replays them
    at each cost multiple (:meth:`run`), which gives what :func:`run_backtest` gives with a
    fresh strategy each time.

    Parameters
    ----------
    feed
        The candles (and funding) replayed.
    targets
        (n,) float64 target exposure decided at each candle's close.
    """

    def __init__(self, feed: ReplayFeed, targets: np.ndarray) -> None:
        self.feed = feed
        self.targets = targets

    @classmethod
    def of(
        cls,
        candles: pl.DataFrame,
        strategy: Strategy,
        config: BacktestConfig,
        *,
        symbol: str,
        timeframe: str,
        funding: pl.DataFrame | None = None,
        risk: RiskGate | None = None,
    ) -> FastReplay | None:
        """Decide ``strategy``'s targets when :func:`run_backtest` takes the fast path.

        Returns None when the event loop would run it (then nothing is decided).
        """
        if not (_fast_path_fits(strategy, config, risk) and isinstance(strategy, SignalStrategy)):
            return None
        feed = ReplayFeed(candles, symbol, timeframe, funding)
        return cls(feed, _decide_targets(feed, strategy))

    def run(self, config: BacktestConfig) -> FastRun:
        """Replay the targets with ``config``'s cash, costs and market."""
        if not _fast_config(config):
            raise UserInputError("the fast path needs flat costs; use run_backtest")
        targets = self.targets
        spot = config.market is MarketType.SPOT
        if spot and np.nanmin(np.append(targets, 0.0)) < 0:
            raise UserInputError("a spot backtest cannot hold short targets; use --market perp")
        arrays = self.feed.arrays()
        funding_times, funding_rates = self.feed.funding()
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
        return FastRun(self.feed.symbol, arrays.open_time, result)


@dataclass(frozen=True)
class FastRun:
    """One fast-path run: the kernel's curves and trade arrays.

    Trade records (:class:`ClosedTrade`) cost far more than the run itself; they are built
    only by :meth:`engine_result`. Metrics need only the arrays (``result.pnl``).
    """

    symbol: str
    open_time: np.ndarray  # (n,) int64 epoch microseconds
    result: FastResult

    def engine_result(self) -> EngineResult:
        """Return the run as the event loop returns it, with a record per closed trade."""
        result, times = self.result, self.open_time
        trades = [
            ClosedTrade(
                symbol=self.symbol,
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
        open_positions = {self.symbol: result.open_quantity} if result.open_quantity else {}
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
