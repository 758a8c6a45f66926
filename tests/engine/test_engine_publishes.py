"""The engine publishes every event it handles, and hands the broker the market it matches in."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
from builders import make_candles

from tradebrain.core.events import (
    CandleClosed,
    DecisionMade,
    Event,
    FundingSettled,
    OrderCancelled,
    OrderDenied,
    OrderFilled,
)
from tradebrain.core.market import AtrTracker, MarketSource, MarketState, MarketType
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.engine.engine import Engine
from tradebrain.engine.feed import ReplayFeed
from tradebrain.engine.strategy import StrategyContext
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import FlatCosts

SYMBOL = "BTC/USDT"


class Busy:
    """Buys, sells short (denied on spot), sends sizeless entries (denied by risk), exits of
    nothing (cancelled) and far limit orders that expire (cancelled), in a fixed rhythm."""

    name = "busy"

    def __init__(self, seen: list[Event] | None = None) -> None:
        self.seen = seen
        self.published_before_decision: list[bool] = []

    def init(self, context: StrategyContext) -> None:
        pass

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        if self.seen is not None:
            self.published_before_decision.append(bool(self.seen) and self.seen[-1] is candle)
        when, bar = candle.close_time, context.bar
        if bar % 5 == 0:
            return [OrderIntent(when, SYMBOL, Side.BUY, equity_fraction=0.3)]
        if bar % 5 == 1:
            return [OrderIntent(when, SYMBOL, Side.SELL, 1e6)]  # more than held: spot short
        if bar % 5 == 2:
            return [OrderIntent(when, SYMBOL, Side.BUY)]  # no size: risk denies it
        if bar % 5 == 3:
            return [
                OrderIntent(when, SYMBOL, Side.SELL, reduce_only=True, tag="exit"),
                OrderIntent(when, SYMBOL, Side.SELL, reduce_only=True, tag="exit"),  # nothing
                OrderIntent(
                    when, SYMBOL, Side.BUY, 0.01, order_type=OrderType.LIMIT,
                    limit_price=candle.close * 0.5, expires_at=when + timedelta(hours=2),
                ),
            ]  # fmt: skip
        return []


def _engine(strategy: Busy, broker: SimulatedBroker | None = None) -> tuple[Engine, ReplayFeed]:
    feed = ReplayFeed(make_candles(200, seed=5), SYMBOL, "1h")
    broker = broker or SimulatedBroker(10_000.0, FlatCosts(0.001, 2.0))
    engine = Engine(strategy, broker, symbol=SYMBOL, timeframe="1h", history=feed.arrays())
    return engine, feed


def test_a_listener_sees_every_fill_denial_and_cancellation_in_the_order_handled() -> None:
    heard: list[Event] = []
    engine, feed = _engine(Busy())
    engine.subscribe(heard.append)
    result = engine.run(feed)

    assert [e.fill for e in heard if isinstance(e, OrderFilled)] == result.fills
    assert [e for e in heard if isinstance(e, OrderDenied)] == result.denials
    assert [e for e in heard if isinstance(e, OrderCancelled)] == result.cancellations
    assert {d.rule for d in result.denials} == {"spot_short", "size"}
    reasons = {c.reason for c in result.cancellations}
    assert reasons == {"reduce-only: nothing to reduce", "expired unfilled"}
    assert len(result.fills) > 20
    times = [event.event_time for event in heard]
    assert times == sorted(times), "events are published in the order of their event time"


def test_every_candle_is_published_once_after_matching_and_before_the_strategy_decides() -> None:
    heard: list[Event] = []
    strategy = Busy(seen=heard)
    engine, feed = _engine(strategy)
    engine.subscribe(heard.append)
    engine.run(feed)

    candles = [e for e in heard if isinstance(e, CandleClosed)]
    assert candles == [e for e in feed if isinstance(e, CandleClosed)]
    assert all(strategy.published_before_decision)


def test_two_listeners_hear_the_same_events_and_an_unsubscribed_one_hears_no_more() -> None:
    first: list[Event] = []
    second: list[Event] = []
    engine, feed = _engine(Busy())
    engine.subscribe(first.append)
    unsubscribe = engine.subscribe(second.append)
    events = list(feed)
    for event in events[:50]:
        engine.on_event(event)
    unsubscribe()
    for event in events[50:]:
        engine.on_event(event)

    assert first[: len(second)] == second
    assert len(first) > len(second) > 50


def test_a_funding_settlement_is_published() -> None:
    candles = make_candles(30, seed=2)
    start = candles["timestamp"][0]
    funding = pl.DataFrame(
        {"timestamp": [start + timedelta(hours=8)], "funding_rate": [0.0001]},
        schema={"timestamp": pl.Datetime("us", "UTC"), "funding_rate": pl.Float64},
    )
    feed = ReplayFeed(candles, SYMBOL, "1h", funding)
    broker = SimulatedBroker(10_000.0, FlatCosts(0.0), MarketType.PERP)
    engine = Engine(Busy(), broker, symbol=SYMBOL, timeframe="1h", market_type=MarketType.PERP)
    heard: list[Event] = []
    engine.subscribe(heard.append)
    engine.run(feed)

    assert [e for e in heard if isinstance(e, FundingSettled)] == [
        e for e in feed if isinstance(e, FundingSettled)
    ]


class MarketRecordingBroker(SimulatedBroker):
    """A simulated broker that notes the market it was handed with each candle."""

    def __init__(self) -> None:
        super().__init__(10_000.0, FlatCosts(0.001))
        self.markets: list[MarketState | None] = []

    def on_candle(self, candle: CandleClosed, market: MarketSource | None = None) -> list[Event]:
        assert market is not None, "the engine hands every candle a market source"
        self.markets.append(market())
        return super().on_candle(candle, market)


def test_the_broker_matches_a_candle_in_the_market_as_of_the_previous_close() -> None:
    broker = MarketRecordingBroker()
    engine, feed = _engine(Busy(), broker)
    engine.run(feed)
    candles = [e for e in feed if isinstance(e, CandleClosed)]

    assert broker.markets[0] is None  # nothing has closed before the first candle
    atr = AtrTracker()
    for previous, market in zip(candles, broker.markets[1:], strict=False):
        atr.update(previous.high, previous.low, previous.close)
        assert market is not None
        assert market.timestamp == previous.close_time
        assert market.price == previous.close
        assert market.volume == previous.volume
        assert market.atr == atr.atr


def test_the_engine_atr_smooths_from_the_second_candle_and_the_monitors_averages_first() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    high, low = close * 1.01, close * 0.99
    engine_atr, monitor_atr = AtrTracker(), AtrTracker(14, mean_first=True)
    ranges: list[float] = []
    expected_engine = expected_monitor = float("nan")
    for k in range(40):
        true_range = high[k] - low[k]
        if k:
            true_range = max(true_range, abs(high[k] - close[k - 1]), abs(low[k] - close[k - 1]))
        ranges.append(true_range)
        expected_engine = (
            true_range if k == 0 else expected_engine + (true_range - expected_engine) / 14
        )
        if k < 14:
            expected_monitor = float(np.mean(ranges))
        else:
            expected_monitor += (true_range - expected_monitor) / 14
        engine_atr.update(high[k], low[k], close[k])
        monitor_atr.update(high[k], low[k], close[k])
        assert engine_atr.atr == expected_engine
        assert abs(monitor_atr.atr - expected_monitor) < 1e-12 * expected_monitor


class Announcer:
    """Announces a decision on every candle, through the context's publisher when it is set."""

    name = "announcer"

    def __init__(self) -> None:
        self.unheard = 0

    def init(self, context: StrategyContext) -> None:
        pass

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        if context.publish is None:
            self.unheard += 1
        else:
            context.publish(DecisionMade(candle.symbol, candle.close_time, ("hold", context.bar)))
        return []


def test_a_strategy_announces_its_decisions_to_the_engines_listeners_in_candle_order() -> None:
    strategy = Announcer()
    feed = ReplayFeed(make_candles(30, seed=2), SYMBOL, "1h")
    engine = Engine(strategy, SimulatedBroker(10_000.0, FlatCosts()), symbol=SYMBOL, timeframe="1h")
    seen: list[Event] = []
    unsubscribe = engine.subscribe(seen.append)
    engine.run(list(feed)[:20])
    decided = [event for event in seen if isinstance(event, DecisionMade)]
    assert [event.decision for event in decided] == [("hold", bar) for bar in range(20)]
    candles = [event for event in seen if isinstance(event, CandleClosed)]
    assert [d.timestamp for d in decided] == [c.close_time for c in candles]
    assert strategy.unheard == 0
    unsubscribe()
    assert engine.context.publish is None  # nobody listens: nothing is built to be published
    for event in list(feed)[20:]:
        engine.on_event(event)
    assert strategy.unheard == 10 and len([e for e in seen if isinstance(e, DecisionMade)]) == 20
