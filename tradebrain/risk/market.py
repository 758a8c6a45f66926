"""What risk knows about the market when it reviews an order: one frozen snapshot per symbol."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

TREND_REGIMES = frozenset({"trending_up", "trending_down"})
"""Regime names (from the brain's regime detector) in which targets are stretched."""
RANGE_REGIMES = frozenset({"ranging", "choppy"})
"""Regime names in which targets are pulled in."""


class MarketType(StrEnum):
    SPOT = "spot"  # fully funded: no shorts, no leverage, no funding
    PERP = "perp"  # USDT-margined perpetual swap: leverage, shorts, funding


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
