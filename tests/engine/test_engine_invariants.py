"""Invariants of the event loop, for any candles and any decisions (property-based)."""

from __future__ import annotations

import numpy as np
import pytest
from builders import make_candles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradebrain.core.events import CandleClosed
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.engine.engine import Engine
from tradebrain.engine.feed import ReplayFeed
from tradebrain.engine.strategy import StrategyContext
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import FlatCosts


class RandomTrader:
    """Buys or sells a random quantity, with a random stop, on a random share of candles."""

    name = "random"

    def __init__(self, seed: int, short: bool) -> None:
        self.rng = np.random.default_rng(seed)
        self.short = short
        self.decided: list[CandleClosed] = []

    def init(self, context: StrategyContext) -> None:
        pass

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        if self.rng.random() > 0.3:
            return []
        self.decided.append(candle)
        side = Side.SELL if (self.short and self.rng.random() < 0.5) else Side.BUY
        if not self.short and context.position > 0 and self.rng.random() < 0.5:
            return [OrderIntent(candle.close_time, candle.symbol, Side.SELL, reduce_only=True)]
        stop = candle.close * (1 - side.sign * self.rng.uniform(0.005, 0.05))
        return [
            OrderIntent(
                candle.close_time,
                candle.symbol,
                side,
                equity_fraction=float(self.rng.uniform(0.1, 0.9)),
                stop_price=float(stop),
            )
        ]


class MarkedEngine(Engine):
    """Checks equity = cash + marked positions after every candle."""

    def on_candle_closed(self, candle: CandleClosed) -> None:
        super().on_candle_closed(candle)
        broker = self.broker
        assert isinstance(broker, SimulatedBroker)
        portfolio = broker.portfolio
        marked = sum(portfolio.marked_value(h, candle.close) for h in portfolio.holdings.values())
        assert broker.equity() == pytest.approx(portfolio.cash + marked, rel=1e-12, abs=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    perp=st.booleans(),
    fee=st.floats(0.0, 0.005),
    slippage=st.floats(0.0, 20.0),
)
def test_fills_never_precede_the_next_event_and_books_balance(
    seed: int, perp: bool, fee: float, slippage: float
) -> None:
    frame = make_candles(120, seed=seed)
    market = MarketType.PERP if perp else MarketType.SPOT
    broker = SimulatedBroker(10_000.0, FlatCosts(fee, slippage), market, leverage=2.0)
    trader = RandomTrader(seed, short=perp)
    engine = MarkedEngine(trader, broker, symbol="X", timeframe="1h", market_type=market)
    result = engine.run(ReplayFeed(frame, "X", "1h"))
    decisions = sorted(c.close_time for c in trader.decided)
    for fill in result.fills:
        assert fill.fee >= 0.0
        # every fill follows a decision: at the earliest, the open right after its close
        assert decisions and fill.timestamp >= decisions[0]
        if fill.tag == "entry":
            assert fill.timestamp in {d for d in decisions} or fill.timestamp > decisions[0]
    assert all(t.fees >= 0 for t in result.trades)
    assert np.all(np.isfinite(result.equity))


def test_decision_on_a_candle_fills_at_the_next_candles_open() -> None:
    frame = make_candles(5)

    class BuyOnSecond:
        name = "buy_on_second"

        def init(self, context: StrategyContext) -> None:
            pass

        def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
            if context.bar != 1:
                return []
            return [OrderIntent(candle.close_time, "X", Side.BUY, 1.0)]

    broker = SimulatedBroker(10_000.0, FlatCosts(0.0))
    result = Engine(BuyOnSecond(), broker, symbol="X", timeframe="1h").run(
        ReplayFeed(frame, "X", "1h")
    )
    (fill,) = result.fills
    assert fill.timestamp == frame["timestamp"][2]
    assert fill.price == frame["open"][2]
