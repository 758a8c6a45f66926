"""What risk knows about the market when it reviews an order: one frozen snapshot per symbol."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

from tradebrain.exceptions import UserInputError

TREND_REGIMES = frozenset({"trending_up", "trending_down"})
"""Regime names (from the brain's regime detector) in which targets are stretched."""
RANGE_REGIMES = frozenset({"ranging", "choppy"})
"""Regime names in which targets are pulled in."""


class MarketType(StrEnum):
    SPOT = "spot"  # fully funded: no shorts, no leverage, no funding
    PERP = "perp"  # USDT-margined perpetual swap: leverage, shorts, funding


MAX_LEVERAGE = 125.0
"""The most leverage any supported venue grants (Binance USDT-M); more is refused."""


def check_account(cash: float, leverage: float, market: MarketType) -> None:
    """Refuse a starting account no venue could hold: the one check of backtests and serve.

    Raises
    ------
    UserInputError
        Naming the option and its range: ``--cash`` must be a positive finite amount,
        ``--leverage`` between 1 and :data:`MAX_LEVERAGE`, and 1 on spot.
    """
    if not (math.isfinite(cash) and cash > 0):
        raise UserInputError(f"--cash must be a positive amount (quote currency), got {cash}")
    if not (math.isfinite(leverage) and 1 <= leverage <= MAX_LEVERAGE):
        raise UserInputError(f"--leverage must be between 1 and {MAX_LEVERAGE:g}, got {leverage}")
    if market is MarketType.SPOT and leverage != 1:
        raise UserInputError(
            f"--leverage applies to perpetuals (--market perp, or BTC/USDT:USDT); spot is 1, "
            f"got {leverage}"
        )


@dataclass(frozen=True, slots=True)
class MarketState:
    """The market of one symbol as of ``timestamp``, in the units risk sizes with.

    Attributes
    ----------
    timestamp
        UTC time of the event this state was built on.
    price
        Reference price for sizing (quote per base unit), > 0: usually the last close.
    atr
        Average true range in quote units per base unit (same units as ``price``).
    volume
        Recent volume per bar in base units; 0 when unknown (slippage assumes the worst).
    spread
        Relative bid-ask spread, (ask - bid) / mid: 0.0004 is 4 bps.
    regime
        Regime name from the brain (``"trending_up"``, ``"ranging"``, ...).
    data_healthy
        False when the feed is stale, gapped or failed validation: no new trades then.
    funding_rate
        Latest funding rate per settlement (fraction of notional); 0 for spot.
    market_type
        Spot or perpetual.
    leverage
        Leverage the venue account uses for this symbol (notional / margin); ignored on spot.
    min_notional
        Smallest order the venue accepts, in quote currency.
    """

    timestamp: datetime
    symbol: str
    price: float
    atr: float
    volume: float = 0.0
    spread: float = 0.0
    regime: str = "unknown"
    data_healthy: bool = True
    funding_rate: float = 0.0
    market_type: MarketType = MarketType.SPOT
    leverage: float = 1.0
    min_notional: float = 0.0

    @property
    def is_trend(self) -> bool:
        """Whether the regime is a trend (targets stretched)."""
        return self.regime in TREND_REGIMES

    @property
    def is_range(self) -> bool:
        """Whether the regime is a range or chop (targets pulled in)."""
        return self.regime in RANGE_REGIMES


MarketSource = Callable[[], MarketState | None]
"""Returns the market a broker's cost model sees while it matches a candle: the state as of the
previous close (None before the first). Building a state costs more than matching an idle
candle, so the engine hands a broker this source and the broker calls it only when it fills."""


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Return the true range of each candle, ``max(high, prev close) - min(low, prev close)``.

    (n,) float64, NaN on the first candle (it has no previous close). The batch twin of
    :meth:`AtrTracker.update`'s range: the features' ATR, the labels' barriers and the engine's
    ATR all measure a candle's range this one way.
    """
    high, low, close = (np.asarray(a, dtype=np.float64) for a in (high, low, close))
    out = np.empty(high.shape[0])
    out[:1] = np.nan
    out[1:] = np.maximum(high[1:], close[:-1]) - np.minimum(low[1:], close[:-1])
    return out


@dataclass(slots=True)
class AtrTracker:
    """The average true range of one symbol, updated one closed candle at a time.

    The first candle's range seeds the average; later candles smooth it Wilder's way,
    ``atr += (true_range - atr) / period``. With ``mean_first`` the first ``period`` candles
    are a plain mean instead (the divisor is the candle count until it reaches ``period``),
    which is what the position monitor trails stops with; the engine's ATR, which risk sizes
    with, smooths from the second candle on. Prices in quote units per base unit.

    Attributes
    ----------
    previous_close
        The last close seen (NaN before the first candle).
    count
        Candles seen.
    atr
        The average true range so far (NaN before the first candle).
    """

    period: int = 14
    mean_first: bool = False
    previous_close: float = math.nan
    count: int = 0
    atr: float = math.nan

    def update(self, high: float, low: float, close: float) -> float:
        """Add one closed candle and return the new ATR."""
        true_range = high - low
        previous = self.previous_close
        if previous == previous:  # not NaN: the gap from the last close counts too
            up = abs(high - previous)
            down = abs(low - previous)
            if up > true_range:
                true_range = up
            if down > true_range:
                true_range = down
        self.previous_close = close
        count = self.count + 1
        self.count = count
        atr = self.atr
        if atr != atr:  # NaN: the first candle seeds the average
            atr = true_range
        else:
            period = self.period
            if self.mean_first and count < period:
                period = count
            atr = atr + (true_range - atr) / period
        self.atr = atr
        return atr
