"""Trading costs: exchange fees, slippage and funding, all in quote currency.

A cost model answers, for one fill or one funding settlement:

- ``fee(notional, liquidity, market)`` — the venue's maker or taker rate for that market (spot or
  perpetual) times the notional;
- ``slippage(price, quantity, side, volume, spread)`` — what a taker fill costs versus the
  reference price: half the spread plus a square-root market impact,
  ``impact_coefficient × √(quantity / volume)`` of the price;
- ``fill_price(side, reference_price, quantity, market, liquidity)`` — the reference price moved
  against a taker by that slippage (makers fill at their price), the method the simulated
  broker's port (:class:`tradebrain.execution.costs.CostModel`) calls;
- ``funding(position, rate)`` — what a perpetual position pays at one settlement:
  ``quantity × mark price × rate``, so longs pay a positive rate and shorts receive it.

:class:`VenueCosts` carries the fee tiers of real venues (:data:`FEE_SCHEDULES`, regular
VIP 0 / Lv 1 tiers); :class:`FlatCosts` charges one fee rate and a fixed slippage in basis
points, for parity tests and quick studies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from tradebrain.core.market import MarketState, MarketType
from tradebrain.core.orders import Liquidity, Side
from tradebrain.exceptions import ConfigError
from tradebrain.execution.account import Position


class CostModel(Protocol):
    """What a broker needs to charge realistic costs."""

    def fee(
        self, notional: float, liquidity: Liquidity, market: MarketType | str | None = None
    ) -> float:
        """Return the fee in quote currency for a fill of ``notional`` quote currency."""
        ...

    def slippage(
        self, price: float, quantity: float, side: Side, volume: float, spread: float
    ) -> float:
        """Return the slippage in quote currency (>= 0) paid versus ``price``."""
        ...

    def fill_price(
        self,
        side: Side,
        reference_price: float,
        quantity: float,
        market: MarketState | None,
        liquidity: Liquidity,
    ) -> float:
        """Return the average fill price: never better than the reference for a taker."""
        ...

    def funding(self, position: Position, rate: float, mark_price: float | None = None) -> float:
        """Return the funding ``position`` pays at one settlement (< 0: it receives)."""
        ...


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fee rates of one venue market (fractions of notional: 0.001 = 0.1 %)."""

    maker: float
    taker: float

    def rate(self, liquidity: Liquidity) -> float:
        """Return the fee rate for ``liquidity``."""
        return self.maker if liquidity is Liquidity.MAKER else self.taker


FEE_SCHEDULES: dict[str, tuple[MarketType, FeeSchedule]] = {
    "binance-spot": (MarketType.SPOT, FeeSchedule(maker=0.0010, taker=0.0010)),
    "binance-usdm": (MarketType.PERP, FeeSchedule(maker=0.0002, taker=0.0005)),
    "okx-spot": (MarketType.SPOT, FeeSchedule(maker=0.0008, taker=0.0010)),
    "okx-swap": (MarketType.PERP, FeeSchedule(maker=0.0002, taker=0.0005)),
    "bybit-spot": (MarketType.SPOT, FeeSchedule(maker=0.0010, taker=0.0010)),
    "bybit-linear": (MarketType.PERP, FeeSchedule(maker=0.0002, taker=0.00055)),
}
"""Regular-tier (VIP 0 / Lv 1) fees per venue market, without exchange-token discounts."""

VENUE_ALIASES: dict[str, str] = {
    "binance-perp": "binance-usdm",
    "okx-perp": "okx-swap",
    "bybit-perp": "bybit-linear",
}
"""Other names of the same venue markets."""


def _market_type(market: MarketType | str) -> MarketType:
    try:
        return MarketType(market)
    except ValueError:
        raise ConfigError(
            f"unknown market type {market!r}; use one of: " + ", ".join(m.value for m in MarketType)
        ) from None


def slippage_fraction(quantity: float, volume: float, spread: float, impact: float) -> float:
    """Return the taker slippage as a fraction of price: ``spread / 2 + impact × √(q / V)``.

    Unknown volume (<= 0) counts as trading the whole bar's volume: the worst case.
    """
    participation = abs(quantity) / volume if volume > 0 else 1.0
    return max(spread, 0.0) / 2 + impact * math.sqrt(participation)


def funding_payment(position: Position, rate: float, mark_price: float | None) -> float:
    price = position.entry_price if mark_price is None else mark_price
    return position.quantity * price * rate


@dataclass(frozen=True, slots=True)
class VenueCosts:
    """Fees of one venue market, plus half-spread and square-root impact slippage.

    Attributes
    ----------
    venue
        Preset name, for reports (``"binance-usdm"``).
    market
        The market type the fees apply to (None: any); asking another market's fee is an error.
    fees
        Maker and taker rates.
    impact_coefficient
        Price impact, as a fraction of price, of an order as large as the bar's volume;
        impact scales with the square root of quantity / volume (0.01: 10 bps at 1 %).
    """

    venue: str
    market: MarketType | None
    fees: FeeSchedule
    impact_coefficient: float = 0.01

    @classmethod
    def preset(cls, venue: str, impact_coefficient: float = 0.01) -> VenueCosts:
        """Return the costs of ``venue``, a key of FEE_SCHEDULES or VENUE_ALIASES."""
        key = VENUE_ALIASES.get(venue.lower(), venue.lower())
        if key not in FEE_SCHEDULES:
            known = ", ".join([*FEE_SCHEDULES, *VENUE_ALIASES])
            raise ConfigError(f"unknown venue {venue!r}; known venues: {known}")
        market, fees = FEE_SCHEDULES[key]
        return cls(key, market, fees, impact_coefficient)

    def fee(
        self, notional: float, liquidity: Liquidity, market: MarketType | str | None = None
    ) -> float:
        """Return ``|notional| × rate`` of the maker or taker tier (``market`` is checked)."""
        if market is not None and self.market is not None:
            asked = _market_type(market)
            if asked is not self.market:
                others = [name for name, (kind, _) in FEE_SCHEDULES.items() if kind is asked]
                raise ConfigError(
                    f"venue {self.venue!r} charges {self.market.value} fees, not "
                    f"{asked.value}; use one of: {', '.join(others)}"
                )
        return abs(notional) * self.fees.rate(liquidity)

    def slippage(
        self, price: float, quantity: float, side: Side, volume: float, spread: float
    ) -> float:
        """Return ``|quantity| × price × (spread / 2 + impact × √(|quantity| / volume))``."""
        fraction = slippage_fraction(quantity, volume, spread, self.impact_coefficient)
        return abs(quantity) * price * fraction

    def fill_price(
        self,
        side: Side,
        reference_price: float,
        quantity: float,
        market: MarketState | None,
        liquidity: Liquidity,
    ) -> float:
        """Return the reference moved against a taker by the slippage; makers get their price.

        Without market data (``market`` None) the volume is unknown and the spread taken as 0.
        """
        if liquidity is Liquidity.MAKER:
            return reference_price
        volume = 0.0 if market is None else market.volume
        spread = 0.0 if market is None else market.spread
        fraction = slippage_fraction(quantity, volume, spread, self.impact_coefficient)
        return reference_price * (1.0 + side.sign * fraction)

    def funding(self, position: Position, rate: float, mark_price: float | None = None) -> float:
        """Return ``quantity × mark × rate``: > 0 paid (long, positive rate), < 0 received."""
        return funding_payment(position, rate, mark_price)
