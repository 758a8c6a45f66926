"""Market and order events: immutable, named in the past tense, stamped with their event time.

Every mode (backtest, paper, live) feeds the same engine with these events, in the order of
``event_time``. A candle is stamped with its open time but becomes an event only when it
closes, so its ``event_time`` is ``close_time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradebrain.core.orders import Fill, OrderIntent


@dataclass(frozen=True, slots=True)
class CandleClosed:
    """One OHLCV candle, known at ``close_time`` (prices in quote units, volume in base)."""

    symbol: str
    open_time: datetime
    close_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def event_time(self) -> datetime:
        return self.close_time


@dataclass(frozen=True, slots=True)
class FundingSettled:
    """A perpetual's funding settlement: longs pay shorts ``funding_rate`` x notional when > 0.

    ``mark_price`` is the price the notional is valued at; None means the last close.
    """

    symbol: str
    timestamp: datetime
    funding_rate: float
    mark_price: float | None = None

    @property
    def event_time(self) -> datetime:
        return self.timestamp


@dataclass(frozen=True, slots=True)
class TradePrinted:
    """One public trade on the venue (``side`` is the aggressor: ``"buy"`` or ``"sell"``)."""

    symbol: str
    timestamp: datetime
    price: float
    amount: float
    side: str

    @property
    def event_time(self) -> datetime:
        return self.timestamp


@dataclass(frozen=True, slots=True)
class BookUpdated:
    """The top of the order book changed."""

    symbol: str
    timestamp: datetime
    bid_price: float
    bid_amount: float
    ask_price: float
    ask_amount: float

    @property
    def event_time(self) -> datetime:
        return self.timestamp


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """A broker executed (part of) an order."""

    fill: Fill

    @property
    def event_time(self) -> datetime:
        return self.fill.timestamp


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """A resting order was cancelled (by request, or because its position is gone)."""

    timestamp: datetime
    order_id: str
    intent: OrderIntent
    reason: str

    @property
    def event_time(self) -> datetime:
        return self.timestamp


@dataclass(frozen=True, slots=True)
class OrderDenied:
    """Risk or the venue refused an order; never a silent drop.

    ``rule`` names the rule that denied it (``"spot_short"``, ``"size"``...).
    """

    timestamp: datetime
    intent: OrderIntent
    reason: str
    rule: str = ""
    order_id: str = ""  # the broker's id when a venue refused an order it had accepted

    @property
    def event_time(self) -> datetime:
        return self.timestamp


MarketEvent = CandleClosed | FundingSettled | TradePrinted | BookUpdated
OrderEvent = OrderFilled | OrderCancelled | OrderDenied
Event = MarketEvent | OrderEvent
