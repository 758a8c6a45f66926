"""Strategies: a tiny surface. ``init`` declares what is needed; ``on_candle`` decides.

A strategy emits :class:`~tradebrain.core.orders.OrderIntent` s and never touches a
broker; the engine sends them through risk to the broker, and they execute no earlier than the
next event after the candle's close (by default the next candle's open). Warm-up and
no-look-ahead are the engine's job: ``on_candle`` only ever sees closed candles.

:class:`SignalStrategy` is the base of strategies that can state their decisions as a target
exposure per candle, computed causally over arrays (``targets``). Those run either through the
event loop or, when nothing else needs a per-event call, through the engine's array fast path;
both give the same trades (a test proves it).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tradebrain.core.events import CandleClosed, Event
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.engine.feed import CandleArrays


@dataclass
class StrategyContext:
    """What the engine tells a strategy: its symbol, the candle count, its position.

    Attributes
    ----------
    history
        Candles known when the run starts, for strategies that precompute causal indicators
        in ``init``; a replay passes the whole series (indicators must then be causal, which
        the parity tests check), a live run passes its warm-up tail.
    bar
        Index of the candle being decided on, counted from the first candle of ``history``.
    position
        Signed open quantity in ``symbol`` (base units), kept current by the engine.
    liquidation_price
        Where the open leveraged position would be liquidated (perps), or None.
    equity
        Account equity marked at the candle's close (quote currency; NaN before the first).
    publish
        Set by the engine while someone listens to it (None otherwise): a strategy announces
        what it decided (a :class:`~tradebrain.core.events.DecisionMade`) through it.
    """

    symbol: str
    timeframe: str
    history: CandleArrays | None = None
    bar: int = -1
    position: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    liquidation_price: float | None = None
    equity: float = math.nan
    publish: Callable[[Event], None] | None = None


class Strategy(Protocol):
    """The strategy port: declare needs in ``init``, decide in ``on_candle``."""

    name: str

    def init(self, context: StrategyContext) -> None: ...

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]: ...


class SignalStrategy(ABC):
    """A strategy whose decisions are a target exposure per candle.

    Subclasses implement :meth:`targets`: a (n,) float64 array where ``target[t]`` in
    [-1, 1] is the fraction of equity to hold (sign = side) decided at candle ``t``'s close
    using only candles ``0..t``; NaN keeps the previous target. Orders go out only when the
    target changes: an exit of what is open, then an entry sized as ``|target|`` of equity.
    """

    name = "signal"

    def __init__(self) -> None:
        self._targets: np.ndarray | None = None
        self._target_list: list[float] = []
        self._plain_orders = False
        self._current = 0.0

    @abstractmethod
    def targets(self, candles: CandleArrays) -> np.ndarray:
        """Return the (n,) target exposure decided at each candle's close."""

    def init(self, context: StrategyContext) -> None:
        """Precompute the targets over the history the engine hands over."""
        self._current = 0.0
        self._targets = None if context.history is None else self.targets(context.history)
        self._target_list = (
            [] if self._targets is None else np.asarray(self._targets, dtype=np.float64).tolist()
        )
        self._plain_orders = type(self).orders_for_target is SignalStrategy.orders_for_target

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        """Return the orders that move the exposure to this candle's target."""
        targets = self._target_list
        bar = context.bar
        if bar >= len(targets):
            return []
        target = targets[bar]
        if self._plain_orders and (target == self._current or target != target):
            return []  # what orders_for_target returns for an unchanged or NaN target
        return self.orders_for_target(candle, target)

    def orders_for_target(self, candle: CandleClosed, target: float) -> list[OrderIntent]:
        """Return exit-then-entry intents when ``target`` differs from the current one."""
        if math.isnan(target) or target == self._current:
            return []
        previous, self._current = self._current, target
        intents: list[OrderIntent] = []
        when = candle.close_time
        if previous != 0.0:
            side = Side.SELL if previous > 0 else Side.BUY
            intents.append(OrderIntent(when, candle.symbol, side, reduce_only=True, tag="exit"))
        if target != 0.0:
            side = Side.BUY if target > 0 else Side.SELL
            intents.append(
                OrderIntent(when, candle.symbol, side, tag="entry", equity_fraction=abs(target))
            )
        return intents
