"""A resting order with an expiry is cancelled when it has not filled by then."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import make_candles
from tradebrain.core.events import OrderCancelled, OrderFilled
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.engine.feed import ReplayFeed
from tradebrain.execution.broker import SimulatedBroker


def _candles() -> list:
    return list(ReplayFeed(make_candles(6, seed=4), "BTC/USDT", "1h"))


def test_a_limit_order_that_is_not_reached_before_its_expiry_is_cancelled_as_expired() -> None:
    candles = _candles()
    broker = SimulatedBroker()
    broker.on_candle(candles[0])
    intent = OrderIntent(
        candles[0].close_time, "BTC/USDT", Side.BUY, 1.0, order_type=OrderType.LIMIT,
        limit_price=candles[0].close * 0.5, expires_at=candles[1].close_time,
    )  # fmt: skip
    order_id = broker.submit(intent)
    events = broker.on_candle(candles[1])
    assert events == [OrderCancelled(candles[1].close_time, order_id, intent, "expired unfilled")]
    assert broker.open_orders() == []


def test_a_limit_order_reached_before_its_expiry_fills_as_maker() -> None:
    candles = _candles()
    broker = SimulatedBroker()
    broker.on_candle(candles[0])
    limit = candles[1].low * 1.0001  # the next candle trades through it
    intent = OrderIntent(
        candles[0].close_time, "BTC/USDT", Side.BUY, 1.0, order_type=OrderType.LIMIT,
        limit_price=limit, expires_at=candles[0].close_time + timedelta(hours=1),
    )  # fmt: skip
    broker.submit(intent)
    events = broker.on_candle(candles[1])
    assert len(events) == 1 and isinstance(events[0], OrderFilled)
    assert events[0].fill.liquidity.value == "maker"
