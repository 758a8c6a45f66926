"""The engine's ports: one small interface per edge, each with a tiny implementation for tests.

- :class:`RiskGate` reviews every order intent before it reaches a broker (risk has the last
  word). The risk layer's ``RiskManager`` satisfies it; :class:`PassThroughRisk` approves
  everything that is well-formed, for tests and the reference strategies.
- :class:`Broker` executes approved intents and reports fills as events: the simulated broker
  in backtest and paper modes, the exchange broker in live mode. On every candle the engine
  hands it the candle and the market as of the previous close (what its costs may read).
- :class:`Feed` yields market events in time order: a replay of stored data
  (:class:`~tradebrain.engine.feed.ReplayFeed`), or a live stream (the service's
  :class:`~tradebrain.service.feeds.LiveFeed` is a Feed that can also resume and stop).
- :data:`EventListener` is what :meth:`~tradebrain.engine.engine.Engine.subscribe` takes: it
  sees every event the engine handled (state recorders, metrics, experience logs).
- Costs (fees and slippage) are a port of the simulated broker:
  :class:`tradebrain.execution.costs.CostModel`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol, runtime_checkable

from tradebrain.core.events import CandleClosed, Event, FundingSettled, MarketEvent, OrderDenied
from tradebrain.core.market import MarketSource, MarketState
from tradebrain.core.orders import OrderIntent
from tradebrain.execution.account import AccountSnapshot


@runtime_checkable
class RiskDenial(Protocol):
    """What a risk gate returns instead of an order: the refused intent and why.

    ``OrderDenied`` and the risk layer's ``Denial`` both satisfy it.
    """

    @property
    def intent(self) -> OrderIntent: ...

    @property
    def reason(self) -> str: ...

    @property
    def rule(self) -> str: ...


class RiskGate(Protocol):
    """Reviews one order intent against the account and the market.

    Returns the approved intent (possibly resized, with a stop and target set) or a denial
    with a reason. It must not call a broker; the engine submits what it approves and turns a
    denial into an :class:`~tradebrain.core.events.OrderDenied` event.
    """

    def review(
        self, intent: OrderIntent, account: AccountSnapshot, market: MarketState
    ) -> OrderIntent | RiskDenial: ...


class PassThroughRisk:
    """Approves every intent that has a size (or closes a position); for tests and references."""

    def review(
        self, intent: OrderIntent, account: AccountSnapshot, market: MarketState
    ) -> OrderIntent | RiskDenial:
        """Return ``intent`` unchanged, or a denial when an entry carries no size at all."""
        sized = intent.quantity > 0 or intent.equity_fraction > 0 or intent.reduce_only
        if not sized:
            return OrderDenied(market.timestamp, intent, "entry has no size", "size")
        return intent


EventListener = Callable[[Event], None]
"""Called with each event the engine handled, in the order it handled them."""


class Broker(Protocol):
    """A venue: accepts approved intents, reports fills and cancellations as events.

    ``on_candle`` matches what can execute during ``candle``; ``market`` returns the market as
    of the previous close (the state risk sized the orders with), for the cost model. None
    means no market is known: costs then assume the worst.
    """

    def submit(self, intent: OrderIntent) -> str: ...

    def cancel(self, order_id: str, timestamp: datetime) -> list[Event]: ...

    def on_candle(
        self, candle: CandleClosed, market: MarketSource | None = None
    ) -> list[Event]: ...

    def on_funding(self, event: FundingSettled) -> list[Event]: ...

    def account(self, timestamp: datetime) -> AccountSnapshot: ...

    def equity(self) -> float: ...

    def liquidation_price(self, symbol: str) -> float | None: ...


class Feed(Protocol):
    """Yields market events in the order of their event time."""

    def __iter__(self) -> Iterator[MarketEvent]: ...
