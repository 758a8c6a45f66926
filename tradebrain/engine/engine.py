"""The engine: one event loop for backtest, paper and live trading.

``Engine.run(feed)`` hands every event to :meth:`Engine.on_event`, which dispatches it to an
``on_*`` handler. On each closed candle:

1. the broker matches what can execute during the candle (orders from earlier decisions fill
   at its open at the earliest; protective stops and targets; see the broker's rules), and the
   resulting order events are handled (``on_order_filled``, ...);
2. equity is marked at the close and recorded;
3. the strategy decides on the closed candle; each intent goes through the risk gate, and what
   risk approves is submitted to the broker, to execute from the next event on. A denial
   becomes an :class:`OrderDenied` event with its reason.

The broker's cost model sees the market as of the previous close while it matches (the state
risk sized the orders with): the engine hands it a source of that state with the candle, and
updates its ATR only afterwards.

The engine publishes: :meth:`Engine.subscribe` registers a listener that is called with every
event the engine handled, in order: fills, cancellations and denials as they are handled, a
funding settlement, and each candle once its matching is done and equity is marked (before the
strategy decides, so the denials of that decision follow it). With no listener, publishing
costs one truth test per event.

Nothing here knows whether the feed is a replay or a live stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from tradebrain.core.events import (
    CandleClosed,
    Event,
    FundingSettled,
    OrderCancelled,
    OrderDenied,
    OrderFilled,
)
from tradebrain.core.market import AtrTracker, MarketSource, MarketState, MarketType
from tradebrain.core.orders import Fill, OrderIntent
from tradebrain.engine.feed import CandleArrays
from tradebrain.engine.ports import (
    Broker,
    EventListener,
    PassThroughRisk,
    RiskDenial,
    RiskGate,
)
from tradebrain.engine.strategy import Strategy, StrategyContext
from tradebrain.execution.account import ClosedTrade


@dataclass
class EngineResult:
    """What a run produced, one row per closed candle for the curves.

    Attributes
    ----------
    open_time
        (n,) int64 epoch microseconds: the open time of each candle (the data's timestamp).
    equity
        (n,) float64 equity marked at each candle's close, quote currency.
    exposure
        (n,) float64 signed position notional / equity at each close.
    """

    open_time: np.ndarray
    equity: np.ndarray
    exposure: np.ndarray
    trades: list[ClosedTrade]
    fills: list[Fill]
    denials: list[OrderDenied]
    cancellations: list[OrderCancelled]
    fees: float
    funding: float  # net funding paid (> 0 costs the account)
    open_positions: dict[str, float] = field(default_factory=dict)
    path: str = "events"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Engine:
    """Runs a strategy against a feed through risk and a broker.

    Parameters
    ----------
    strategy
        Decides on each closed candle (see :class:`~tradebrain.engine.strategy.Strategy`).
    broker
        Executes approved intents (simulated or exchange).
    risk
        Reviews every intent; :class:`PassThroughRisk` when None.
    symbol, timeframe
        The market the strategy trades.
    history
        Candles known at the start (a replay's whole series, or a live warm-up tail).
    market_type, leverage
        What risk is told about the market.

    Attributes
    ----------
    position_source
        When set (live trading), the strategy's position is read from it on every candle,
        after the broker's events, instead of being summed from fills: a venue's balances
        include fees taken in the coin and lot-size rounding that fills alone do not show.
    """

    def __init__(
        self,
        strategy: Strategy,
        broker: Broker,
        risk: RiskGate | None = None,
        *,
        symbol: str,
        timeframe: str,
        history: CandleArrays | None = None,
        market_type: MarketType = MarketType.SPOT,
        leverage: float = 1.0,
    ) -> None:
        self.strategy = strategy
        self.broker = broker
        self.risk: RiskGate = risk or PassThroughRisk()
        self.context = StrategyContext(symbol=symbol, timeframe=timeframe, history=history)
        self.market_type = market_type
        self.leverage = leverage
        self._handlers = {
            CandleClosed: self.on_candle_closed,
            FundingSettled: self.on_funding_settled,
            OrderFilled: self.on_order_filled,
            OrderCancelled: self.on_order_cancelled,
            OrderDenied: self.on_order_denied,
        }
        self._open_times: list[datetime] = []
        self._equity: list[float] = []
        self._exposure: list[float] = []
        self.fills: list[Fill] = []
        self.denials: list[OrderDenied] = []
        self.cancellations: list[OrderCancelled] = []
        self._last: CandleClosed | None = None
        self._market: MarketState | None = None
        self._funding_rate = 0.0
        self._atr = AtrTracker()
        self._listeners: list[EventListener] = []
        self._market_source: MarketSource = self._prior_market  # bound once, not per candle
        self.position_source: Callable[[str], float] | None = None

    @property
    def last_candle(self) -> CandleClosed | None:
        """Return the last closed candle handled (None before the first)."""
        return self._last

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` with every event this engine handles; return the unsubscriber.

        The listener sees fills, cancellations and denials as they are handled, funding
        settlements, each :class:`CandleClosed` after its matching and equity mark and before
        the strategy decides on it, and the strategy's :class:`DecisionMade` where it announces
        one (through ``context.publish``). It must not raise: an error stops the engine.
        """
        self._listeners.append(listener)
        self.context.publish = self._publish

        def unsubscribe() -> None:
            self._listeners.remove(listener)
            if not self._listeners:
                self.context.publish = None

        return unsubscribe

    def _publish(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)

    def run(self, feed: Iterable[Event]) -> EngineResult:
        """Initialise the strategy, handle every event of ``feed``, return the result."""
        self.strategy.init(self.context)
        on_event = self.on_event
        on_candle_closed = self.on_candle_closed
        for event in feed:
            if type(event) is CandleClosed:
                on_candle_closed(event)
            else:
                on_event(event)
        return self.result()

    def on_event(self, event: Event) -> None:
        """Dispatch ``event`` to its ``on_*`` handler (unknown kinds are ignored)."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)  # type: ignore[operator]

    def on_candle_closed(self, candle: CandleClosed) -> None:
        """Match orders, mark equity, then let the strategy decide on the closed candle."""
        broker = self.broker
        events = broker.on_candle(candle, self._market_source)
        if events:
            on_event = self.on_event
            for event in events:
                on_event(event)
        self._atr.update(candle.high, candle.low, candle.close)
        self._last = candle
        self._market = None
        equity = broker.equity()
        context = self.context
        if self.position_source is not None:  # a venue's account is the truth (live trading)
            context.position = self.position_source(context.symbol)
        position = context.position
        context.equity = equity
        self._open_times.append(candle.open_time)
        self._equity.append(equity)
        self._exposure.append(position * candle.close / equity if equity > 0 else 0.0)
        context.bar += 1
        context.liquidation_price = broker.liquidation_price(context.symbol) if position else None
        if self._listeners:
            self._publish(candle)
        intents = self.strategy.on_candle(context, candle)
        if intents:
            for intent in intents:
                self.submit(intent)

    def on_funding_settled(self, event: FundingSettled) -> None:
        """Settle funding on open perp positions."""
        self._funding_rate = event.funding_rate
        self._market = None
        if self._listeners:
            self._publish(event)
        for follow_up in self.broker.on_funding(event):
            self.on_event(follow_up)

    def on_order_filled(self, event: OrderFilled) -> None:
        """Record the fill and keep the strategy's view of its position current."""
        fill = event.fill
        self.fills.append(fill)
        if fill.symbol == self.context.symbol:
            self.context.position += fill.side.sign * fill.quantity
            if abs(self.context.position) < 1e-12 * fill.quantity:
                self.context.position = 0.0
        if self._listeners:
            self._publish(event)

    def on_order_cancelled(self, event: OrderCancelled) -> None:
        """Record the cancellation."""
        self.cancellations.append(event)
        if self._listeners:
            self._publish(event)

    def on_order_denied(self, event: OrderDenied) -> None:
        """Record the denial with its reason (never a silent drop)."""
        self.denials.append(event)
        if self._listeners:
            self._publish(event)

    def submit(self, intent: OrderIntent) -> None:
        """Send ``intent`` through risk; submit what is approved, record what is denied."""
        timestamp = self._last.close_time if self._last is not None else intent.timestamp
        verdict = self.risk.review(intent, self.broker.account(timestamp), self.market_state())
        if isinstance(verdict, OrderIntent):
            self.broker.submit(verdict)
        else:
            self.on_event(_as_denied(verdict, timestamp))

    def market_state(self) -> MarketState:
        """Return the market as of the last closed candle, for risk and costs.

        The state is built once per candle (and again after a funding settlement) and shared
        by risk and the broker's cost model until the next candle closes.
        """
        market = self._market
        if market is not None:
            return market
        candle = self._last
        if candle is None:
            raise RuntimeError("no candle has closed yet; the market state is unknown")
        market = self._market = MarketState(
            timestamp=candle.close_time,
            symbol=candle.symbol,
            price=candle.close,
            atr=self._atr.atr,
            volume=candle.volume,
            funding_rate=self._funding_rate,
            market_type=self.market_type,
            leverage=self.leverage,
        )
        return market

    def _prior_market(self) -> MarketState | None:
        """Return the market as of the last close the broker knows of (None before the first).

        Handed to the broker with each candle, before the engine moves its own state on.
        """
        return None if self._last is None else self.market_state()

    def memory(self) -> dict[str, Any]:
        """Return what this engine remembers between candles (for a restart to resume from)."""
        return {
            "bar": self.context.bar,
            "atr": self._atr.atr,
            "previous_close": self._atr.previous_close,
            "atr_count": self._atr.count,
            "funding_rate": self._funding_rate,
            "last": self._last,
        }

    def restore_memory(self, memory: dict[str, Any]) -> None:
        """Put back what :meth:`memory` returned (before the next candle is handled)."""
        self.context.bar = memory["bar"]
        self._atr.atr = memory["atr"]
        self._atr.previous_close = memory["previous_close"]
        self._atr.count = memory.get("atr_count", 0)
        self._funding_rate = memory["funding_rate"]
        self._last = memory["last"]
        self._market = None

    def trim(self, keep: int) -> None:
        """Forget all but the newest ``keep`` records once a list holds twice as many.

        A long-running service keeps its memory short this way (its state store has them all).
        """
        records: tuple[list[Any], ...] = (
            self.fills, self.denials, self.cancellations,
            self._open_times, self._equity, self._exposure,
        )  # fmt: skip
        for kept in records:
            if len(kept) > 2 * keep:
                del kept[:-keep]

    def result(self) -> EngineResult:
        """Return the curves and records so far."""
        account = self.broker.account(self._last.close_time if self._last else datetime.min)
        micros = np.array(_epoch_micros(self._open_times), dtype=np.int64)
        return EngineResult(
            open_time=micros,
            equity=np.asarray(self._equity, dtype=np.float64),
            exposure=np.asarray(self._exposure, dtype=np.float64),
            trades=list(account.closed_trades),
            fills=list(self.fills),
            denials=list(self.denials),
            cancellations=list(self.cancellations),
            fees=sum(f.fee for f in self.fills),
            funding=float(getattr(getattr(self.broker, "portfolio", None), "funding_paid", 0.0)),
            open_positions={s: p.quantity for s, p in account.positions.items()},
        )


def _epoch_micros(times: list[datetime]) -> list[int]:
    """Return epoch microseconds of ``times`` (aware: exact; naive: as local time)."""
    try:
        return [(t - _EPOCH) // _MICROSECOND for t in times]
    except TypeError:
        return [int(t.timestamp()) * 1_000_000 + t.microsecond for t in times]


def _as_denied(verdict: RiskDenial, timestamp: datetime) -> OrderDenied:
    if isinstance(verdict, OrderDenied):
        return verdict
    return OrderDenied(timestamp, verdict.intent, verdict.reason, str(getattr(verdict, "rule", "")))
