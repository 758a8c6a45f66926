"""The broker as the engines see it (RecordingBroker): ids it gave, orders restored, dust."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from tradebrain.core.events import CandleClosed, Event, FundingSettled
from tradebrain.core.market import MarketSource
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.engine.ports import Broker
from tradebrain.execution.account import AccountSnapshot, ClosedTrade
from tradebrain.state import OrderRecord

DUST_NOTIONAL = 10.0
"""A live position worth less than this (quote currency) is dust: Binance's minimum order
value is 5-10 USDT, so it can be neither sold nor protected, and counts as flat."""


class RecordingBroker:
    """The broker port, passed through, remembering the id of every order it accepted.

    With a venue that takes client order ids (the exchange broker), each order gets an id
    derived from its candle and its place among that candle's orders (so replaying a candle
    after a crash asks for the same ids, which the venue will not open twice), and
    ``before_send`` records it as open before the request leaves.
    """

    def __init__(
        self,
        inner: Broker,
        timeframe: str,
        before_send: Callable[[str, OrderIntent, datetime], None] | None = None,
    ) -> None:
        self.inner = inner
        self.submitted: list[tuple[str, OrderIntent]] = []
        self._step_s = timeframe_seconds(timeframe)
        self._before_send = before_send
        self._candle_number = 0
        self._in_candle = 0
        self.trades: list[ClosedTrade] | None = None  # a venue's round trips, paired here

    def begin(self, candle: CandleClosed) -> None:
        """Start numbering the orders of ``candle``."""
        self._candle_number = int(candle.close_time.timestamp()) // self._step_s
        self._in_candle = 0

    def submit(self, intent: OrderIntent) -> str:
        inner = self.inner
        client_id_for = getattr(inner, "client_id_for", None)
        if client_id_for is not None:
            sequence = self._candle_number * 100 + min(self._in_candle, 99)
            self._in_candle += 1
            client_id = str(client_id_for(intent, sequence))
            if self._before_send is not None:
                self._before_send(client_id, intent, intent.timestamp)
            order_id = str(inner.submit(intent, client_id=client_id))  # type: ignore[call-arg]
        else:
            order_id = str(inner.submit(intent))
        self.submitted.append((order_id, intent))
        return order_id

    def drain(self) -> list[tuple[str, OrderIntent]]:
        """Return the orders accepted since the last call."""
        submitted, self.submitted = self.submitted, []
        return submitted

    def cancel(self, order_id: str, timestamp: datetime) -> list[Event]:
        return self.inner.cancel(order_id, timestamp)

    def on_candle(self, candle: CandleClosed, market: MarketSource | None = None) -> list[Event]:
        return self.inner.on_candle(candle, market)

    def on_funding(self, event: FundingSettled) -> list[Event]:
        return self.inner.on_funding(event)

    def account(self, timestamp: datetime) -> AccountSnapshot:
        snapshot = self.inner.account(timestamp)
        if self.trades is not None and not snapshot.closed_trades:
            return dataclasses.replace(snapshot, closed_trades=tuple(self.trades))
        return snapshot

    def equity(self) -> float:
        return self.inner.equity()

    def liquidation_price(self, symbol: str) -> float | None:
        return self.inner.liquidation_price(symbol)


def intent_of(order: OrderRecord) -> OrderIntent:
    """Return the intent a stored order was sent with (for reconciling after a restart)."""
    return OrderIntent(
        order.created_at, order.symbol, Side(order.side), order.quantity,
        order_type=OrderType(order.order_type), limit_price=order.limit_price,
        stop_price=order.stop_price, target_price=order.target_price,
        reduce_only=order.reduce_only, tag=order.tag, confidence=order.confidence,
        trigger_price=order.trigger_price,
    )  # fmt: skip
