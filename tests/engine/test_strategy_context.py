"""What the engine tells a strategy on each closed candle."""

from __future__ import annotations

import pytest
from builders import CandleMaker

from tradebrain.core.events import CandleClosed
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.strategy import StrategyContext
from tradebrain.execution.costs import FlatCosts


class _BuyOnceAndWatch:
    """Goes long on the first candle and records what the context says afterwards."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None]] = []

    def init(self, context: StrategyContext) -> None:
        self.seen = []

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        self.seen.append((context.position, context.liquidation_price))
        if context.bar == 0:
            return [OrderIntent(candle.close_time, candle.symbol, Side.BUY, equity_fraction=1.0)]
        return []


@pytest.mark.parametrize(("market", "leverage"), [(MarketType.PERP, 5.0), (MarketType.SPOT, 1.0)])
def test_the_context_carries_the_liquidation_price_of_a_leveraged_position(
    candles: CandleMaker, market: MarketType, leverage: float
) -> None:
    strategy = _BuyOnceAndWatch()
    config = BacktestConfig(costs=FlatCosts(0.0), market=market, leverage=leverage)
    frame = candles(20, seed=1)
    run_backtest(frame, strategy, config, symbol="SYN", timeframe="1h")
    flat_before, held_after = strategy.seen[0], strategy.seen[5]
    assert flat_before == (0.0, None)
    assert held_after[0] > 0
    if market is MarketType.PERP:
        entry = float(frame["open"][1])
        assert held_after[1] == pytest.approx(entry * (1 - (1 / leverage - 0.005)))
    else:
        assert held_after[1] is None
