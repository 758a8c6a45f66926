"""The built-in strategies and the registry that finds a strategy by name.

- ``sma_cross``: long-only, all-in moving-average crossover, the reference for parity (with
  backtesting.py) and for speed.
- ``buy_and_hold``: buy at the first opportunity and hold; the benchmark of every report.
- ``precomputed``: replays a given target-exposure array, a stand-in for the hybrid strategy
  with predictions computed beforehand.

- ``hybrid``: the full AI pipeline (:mod:`tradebrain.strategies.hybrid`), imported when asked for.

:func:`register_strategy` is how further strategies plug in by name.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from functools import reduce
from itertools import islice
from operator import add
from typing import Any

import numba
import numpy as np

from tradebrain.core.events import CandleClosed
from tradebrain.core.orders import OrderIntent
from tradebrain.engine.feed import CandleArrays
from tradebrain.engine.strategy import SignalStrategy, Strategy, StrategyContext
from tradebrain.exceptions import UserInputError

NOT_AVAILABLE: dict[str, str] = {}


@numba.njit(cache=True)
def window_means(values: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - jitted
    """Return the (n,) trailing means over ``window`` values; NaN for the first window - 1.

    Each window is summed left to right, exactly as :class:`SmaCross` does one candle at a
    time, so both give bit-identical averages.
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        total = 0.0
        for j in range(t - window + 1, t + 1):
            total += values[j]
        out[t] = total / window
    return out


class SmaCross(SignalStrategy):
    """Go long all-in when the fast SMA crosses above the slow one; exit when it crosses below.

    A cross at candle ``t`` means ``fast[t-1] < slow[t-1]`` and ``fast[t] > slow[t]`` (strict,
    as in backtesting.py's ``crossover``).
    """

    name = "sma_cross"

    def __init__(self, fast: int = 10, slow: int = 50) -> None:
        super().__init__()
        if not 1 <= fast < slow:
            raise UserInputError(f"need 1 <= fast < slow; got fast={fast}, slow={slow}")
        self.fast = fast
        self.slow = slow
        self._closes: deque[float] = deque(maxlen=slow)
        self._previous = (math.nan, math.nan)

    def targets(self, candles: CandleArrays) -> np.ndarray:
        """Return 1 after an upward cross, 0 after a downward cross, NaN elsewhere."""
        fast = window_means(candles.close, self.fast)
        slow = window_means(candles.close, self.slow)
        targets = np.full(len(candles), np.nan)
        up = np.zeros(len(candles), dtype=bool)
        down = np.zeros(len(candles), dtype=bool)
        up[1:] = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
        down[1:] = (fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])
        targets[up] = 1.0
        targets[down] = 0.0
        return targets

    def init(self, context: StrategyContext) -> None:
        """Start with empty averages: this strategy updates them one candle at a time."""
        self._current = 0.0
        self._closes.clear()
        self._previous = (math.nan, math.nan)

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        """Update both averages with the closed candle; trade on a cross."""
        closes = self._closes
        closes.append(candle.close)
        fast = slow = math.nan
        if len(closes) == self.slow:
            slow = _left_sum(closes, 0) / self.slow
            fast = _left_sum(closes, self.slow - self.fast) / self.fast
        elif len(closes) >= self.fast:
            fast = _left_sum(closes, len(closes) - self.fast) / self.fast
        previous_fast, previous_slow = self._previous
        self._previous = (fast, slow)
        if previous_fast < previous_slow and fast > slow:
            return self.orders_for_target(candle, 1.0)
        if previous_fast > previous_slow and fast < slow:
            return self.orders_for_target(candle, 0.0)
        return []


def _left_sum(values: deque[float], start: int) -> float:
    """Return the sum of ``values[start:]`` added left to right from 0.0 (no compensation)."""
    return reduce(add, islice(values, start, None), 0.0)


class BuyAndHold(SignalStrategy):
    """Buy all-in at the first candle's close (filled at the next open) and hold to the end."""

    name = "buy_and_hold"

    def targets(self, candles: CandleArrays) -> np.ndarray:
        """Return 1 at the first candle, NaN after."""
        targets = np.full(len(candles), np.nan)
        targets[:1] = 1.0
        return targets

    def init(self, context: StrategyContext) -> None:
        """Start flat; the targets are not needed, :meth:`on_candle` always targets 1."""
        self._current = 0.0

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        """Buy once."""
        return self.orders_for_target(candle, 1.0)


class PrecomputedSignals(SignalStrategy):
    """Trade a target-exposure array computed beforehand (e.g. from out-of-sample predictions).

    ``targets[t]`` must have been computed from data up to candle ``t`` only.
    """

    name = "precomputed"

    def __init__(self, targets: np.ndarray) -> None:
        super().__init__()
        self._given = np.asarray(targets, dtype=np.float64)

    def targets(self, candles: CandleArrays) -> np.ndarray:
        """Return the given targets, checked against the candle count."""
        if self._given.shape != (len(candles),):
            raise UserInputError(
                f"precomputed targets have shape {self._given.shape}; the feed has "
                f"{len(candles)} candles"
            )
        return self._given


def _hybrid(**params: Any) -> Strategy:
    """Return a :class:`~tradebrain.strategies.hybrid.HybridStrategy` (imported on demand)."""
    from tradebrain.strategies.hybrid import HybridStrategy

    return HybridStrategy(**params)


STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "sma_cross": SmaCross,
    "buy_and_hold": BuyAndHold,
    "hybrid": _hybrid,
}


def register_strategy(name: str, factory: Callable[..., Strategy]) -> None:
    """Make ``factory`` available by ``name`` (how ``hybrid`` plugs in)."""
    STRATEGIES[name] = factory
    NOT_AVAILABLE.pop(name, None)


def make_strategy(name: str, **params: Any) -> Strategy:
    """Return a new strategy by name with ``params``; explain what to do when unknown."""
    if name in STRATEGIES:
        return STRATEGIES[name](**params)
    if name in NOT_AVAILABLE:
        raise UserInputError(NOT_AVAILABLE[name])
    known = ", ".join(sorted([*STRATEGIES, *NOT_AVAILABLE]))
    raise UserInputError(f"unknown strategy {name!r}; use one of: {known}")
