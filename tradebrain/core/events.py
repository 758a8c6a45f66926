"""Market and order events: immutable, named in the past tense, stamped with their event time.

Every mode (backtest, paper, live) feeds the same engine with these events, in the order of
``event_time``. A candle is stamped with its open time but becomes an event only when it
closes, so its ``event_time`` is ``close_time``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

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
    flow: tuple[float, ...] | None = None
    """The candle's order-flow inputs, where the feed streamed them: the values of
    ``tradebrain.features.orderflow_inputs.ORDERFLOW_COLUMNS``, in that order."""

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


@dataclass(frozen=True, slots=True)
class DecisionMade:
    """A strategy decided on a closed candle, at ``timestamp`` (the candle's close).

    ``decision`` is the strategy's own record of it (the hybrid's
    :class:`~tradebrain.brain.decision.Decision`, with its reasons). The engine publishes it to
    its listeners (the service's recorder, later the experience log); it changes nothing in
    the engine itself.
    """

    symbol: str
    timestamp: datetime
    decision: object

    @property
    def event_time(self) -> datetime:
        return self.timestamp


MarketEvent = CandleClosed | FundingSettled | TradePrinted | BookUpdated
OrderEvent = OrderFilled | OrderCancelled | OrderDenied
Event = MarketEvent | OrderEvent | DecisionMade


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _slot_constructor() -> Callable[
    [str, datetime, datetime, float, float, float, float, float], CandleClosed
]:
    """Return a positional constructor of :class:`CandleClosed` for the replay's hot loop.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; writing
    the slots through their member descriptors builds the same (equal, still frozen) event
    about twice as fast (``flow`` is None: replays carry no streamed order flow).
    CandleClosed has no ``__post_init__`` to skip.
    """
    names = [f.name for f in fields(CandleClosed)]
    expected = ["symbol", "open_time", "close_time", "open", "high", "low", "close", "volume"]
    if names != [*expected, "flow"]:
        raise RuntimeError(f"CandleClosed fields changed to {names}; update the feed")
    new = object.__new__
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = (getattr(CandleClosed, name).__set__ for name in names)

    def candle(
        symbol: str,
        open_time: datetime,
        close_time: datetime,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> CandleClosed:
        event = new(CandleClosed)
        s0(event, symbol)
        s1(event, open_time)
        s2(event, close_time)
        s3(event, open_)
        s4(event, high)
        s5(event, low)
        s6(event, close)
        s7(event, volume)
        s8(event, None)
        return event

    return candle


make_candle = _slot_constructor()


def to_datetime(microseconds: int) -> datetime:
    """Return the UTC datetime of epoch ``microseconds``."""
    return _EPOCH + timedelta(microseconds=int(microseconds))
