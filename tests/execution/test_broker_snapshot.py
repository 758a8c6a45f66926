"""A paper account saved mid-run and restored into a fresh broker carries on exactly as before."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from tests.builders import make_candles
from tradebrain.core.events import CandleClosed
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.engine.engine import Engine
from tradebrain.engine.feed import ReplayFeed
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import FlatCosts
from tradebrain.execution.snapshot import broker_state, decode, encode, restore_broker


class Rhythm:
    """Enters every 40 candles with a stop and a target, exits 25 candles later: no memory."""

    name = "rhythm"

    def init(self, context: StrategyContext) -> None:
        pass

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        when, price = candle.close_time, candle.close
        if context.bar % 40 == 0 and context.position == 0:
            return [
                OrderIntent(
                    when,
                    candle.symbol,
                    Side.BUY,
                    equity_fraction=0.5,
                    stop_price=price * 0.97,
                    target_price=price * 1.06,
                )
            ]
        if context.bar % 40 == 25 and context.position:
            return [OrderIntent(when, candle.symbol, Side.SELL, reduce_only=True, tag="exit")]
        return []


def _broker(market: MarketType = MarketType.PERP) -> SimulatedBroker:
    return SimulatedBroker(10_000.0, FlatCosts(0.001, 2.0), market=market, leverage=2.0)


def _events(candles: pl.DataFrame) -> list:
    return list(ReplayFeed(candles, "BTC/USDT", "1h"))


@pytest.mark.parametrize("market", [MarketType.SPOT, MarketType.PERP])
def test_a_broker_restored_from_its_saved_state_gives_the_same_equity_and_trades(
    market: MarketType,
) -> None:
    candles = make_candles(600, seed=3)
    events = _events(candles)
    cut = 350

    def engine(broker: SimulatedBroker) -> Engine:
        return Engine(
            Rhythm(), broker, None, symbol="BTC/USDT", timeframe="1h",
            history=ReplayFeed(candles, "BTC/USDT", "1h").arrays(), market_type=market,
        )  # fmt: skip

    whole = engine(_broker(market))
    whole.strategy.init(whole.context)
    for event in events:
        whole.on_event(event)

    first_broker = _broker(market)
    first = engine(first_broker)
    first.strategy.init(first.context)
    for event in events[:cut]:
        first.on_event(event)
    saved = json.loads(json.dumps(broker_state(first_broker)))  # through JSON, like the store

    second_broker = _broker(market)
    restore_broker(second_broker, saved)
    second = engine(second_broker)
    second.strategy.init(second.context)
    second.restore_memory(first.memory())
    second.context.position = first.context.position
    for event in events[cut:]:
        second.on_event(event)

    assert whole.broker.equity() == pytest.approx(second_broker.equity(), rel=1e-12)
    assert len(whole.result().trades) > 8
    assert whole.result().trades[-3:] == second_broker.portfolio.closed_trades[-3:]
    np.testing.assert_allclose(whole.result().equity[cut:], second.result().equity, rtol=1e-12)


def test_resting_orders_and_order_ids_survive_a_restore() -> None:
    broker = _broker(MarketType.SPOT)
    candles = make_candles(3, seed=1)
    first = _events(candles)[0]
    broker.on_candle(first)
    intent = OrderIntent(
        first.close_time, "BTC/USDT", Side.BUY, 1.0, order_type=OrderType.LIMIT,
        limit_price=50.0, reasons=("cheap",),
    )  # fmt: skip
    order_id = broker.submit(intent)
    restored = _broker(MarketType.SPOT)
    restore_broker(restored, json.loads(json.dumps(broker_state(broker))))
    assert restored.open_orders() == [(order_id, intent)]
    assert restored.submit(intent) != order_id  # ids go on where they stopped


def test_restoring_a_spot_account_into_a_perp_broker_is_refused() -> None:
    saved = broker_state(_broker(MarketType.SPOT))
    with pytest.raises(UserInputError, match="spot"):
        restore_broker(_broker(MarketType.PERP), saved)


def test_encoding_round_trips_nan_infinity_tuples_and_enums() -> None:
    value = {"a": (1.0, float("nan")), "b": [Side.SELL, float("-inf")]}
    back = decode(json.loads(json.dumps(encode(value))))
    assert back["a"][0] == 1.0 and np.isnan(back["a"][1])
    assert back["b"] == [Side.SELL, float("-inf")]


def test_a_broker_restored_the_same_day_keeps_the_days_starting_equity() -> None:
    broker = _broker(MarketType.SPOT)
    events = _events(make_candles(30, seed=2))
    broker.on_candle(events[0])
    broker.submit(OrderIntent(events[0].close_time, "BTC/USDT", Side.BUY, 50.0))
    for event in events[1:10]:  # all on 2024-01-01
        broker.on_candle(event)
    saved = json.loads(json.dumps(broker_state(broker)))
    restored = _broker(MarketType.SPOT)
    restore_broker(restored, saved)
    assert restored.portfolio.day == broker.portfolio.day == "2024-01-01"
    assert restored.portfolio.day_start_equity == broker.portfolio.day_start_equity
    for event in events[10:20]:  # still 2024-01-01: a restart must not reset the day's start
        broker.on_candle(event)
        restored.on_candle(event)
    assert restored.portfolio.day_start_equity == broker.portfolio.day_start_equity
    assert restored.portfolio.day_start_equity != pytest.approx(restored.equity())
    assert restored.portfolio.peak_equity == broker.portfolio.peak_equity
