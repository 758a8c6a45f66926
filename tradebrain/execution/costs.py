"""Trading costs, one port: fees, slippage and funding for every simulated fill, in quote currency.

Every simulated fill is priced through a :class:`CostModel`:

- ``fill_price(side, reference_price, quantity, market, liquidity)`` — the reference price moved
  against a taker by the slippage (makers fill at their price);
- ``fee(notional, liquidity, market)`` — the maker or taker rate times the notional;
- ``funding(position, rate, mark_price)`` — what a perpetual position pays at one settlement:
  ``quantity × mark price × rate``, so longs pay a positive rate and shorts receive it.

The implementations, side by side:

- :class:`FlatCosts` — one fee rate per liquidity and a fixed slippage in basis points (the
  default, what :func:`settings_costs` builds from the settings);
- :class:`VenueCosts` — the fee tiers of real venues (:data:`FEE_SCHEDULES`, regular VIP 0 /
  Lv 1) plus half the spread and a square-root market impact,
  ``impact_coefficient × √(quantity / volume)`` of the price;
- :class:`ScaledCosts` — any model's fees and slippage multiplied, for cost-sensitivity runs.

The arithmetic they share is written once: :func:`taker_price` (the reference moved against a
taker by a fraction of price) and :func:`funding_payment`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tradebrain.config import ExecutionSettings
from tradebrain.core.market import MarketState, MarketType
from tradebrain.core.orders import Liquidity, Side
from tradebrain.exceptions import ConfigError, UserInputError
from tradebrain.execution.account import Position


@runtime_checkable
class CostModel(Protocol):
    """What a fill costs. Every method is pure; none may return a negative trading cost.

    ``fill_price`` returns the execution price after slippage for an order that would trade
    at ``reference_price`` (the candle open for market orders, the stop price for triggered
    stops): never better than the reference for a taker, so a buy pays at least and a sell
    receives at most the reference. ``fee`` returns the fee in quote currency (>= 0) for a
    fill of ``notional`` quote currency (``market`` lets a venue model refuse another market's
    fees). ``funding`` returns what a perpetual position pays at one settlement (> 0 paid,
    < 0 received).
    """

    def fill_price(
        self,
        side: Side,
        reference_price: float,
        quantity: float,
        market: MarketState | None,
        liquidity: Liquidity,
    ) -> float: ...

    def fee(
        self, notional: float, liquidity: Liquidity, market: MarketType | str | None = None
    ) -> float: ...

    def funding(
        self, position: Position, rate: float, mark_price: float | None = None
    ) -> float: ...


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


def venue_schedule(venue: str) -> tuple[str, MarketType, FeeSchedule]:
    """Return ``(canonical name, market type, fees)`` of ``venue`` (a preset or an alias)."""
    key = VENUE_ALIASES.get(venue.lower(), venue.lower())
    if key not in FEE_SCHEDULES:
        known = ", ".join([*FEE_SCHEDULES, *VENUE_ALIASES])
        raise ConfigError(f"unknown venue {venue!r}; known venues: {known}")
    market, fees = FEE_SCHEDULES[key]
    return key, market, fees


def taker_price(side: Side, reference_price: float, fraction: float) -> float:
    """Return ``reference_price`` moved against a taker of ``side`` by ``fraction`` of it."""
    return reference_price * (1.0 + side.sign * fraction)


def slippage_fraction(quantity: float, volume: float, spread: float, impact: float) -> float:
    """Return the taker slippage as a fraction of price: ``spread / 2 + impact × √(q / V)``.

    Unknown volume (<= 0) counts as trading the whole bar's volume: the worst case.
    """
    participation = abs(quantity) / volume if volume > 0 else 1.0
    return max(spread, 0.0) / 2 + impact * math.sqrt(participation)


def funding_payment(position: Position, rate: float, mark_price: float | None) -> float:
    """Return ``quantity × mark × rate`` (the entry price without a mark): > 0 paid."""
    price = position.entry_price if mark_price is None else mark_price
    return position.quantity * price * rate


@dataclass(frozen=True, slots=True)
class FlatCosts:
    """A flat fee rate per liquidity and a fixed taker slippage.

    Attributes
    ----------
    fee_rate
        Taker fee as a fraction of notional (0.001 is 0.1 %).
    slippage_bps
        Taker slippage in basis points of the reference price; makers pay none.
    maker_fee_rate
        Maker fee rate; None means the same as ``fee_rate``.
    """

    fee_rate: float = 0.001
    slippage_bps: float = 0.0
    maker_fee_rate: float | None = None

    def __post_init__(self) -> None:
        maker = self.fee_rate if self.maker_fee_rate is None else self.maker_fee_rate
        if self.fee_rate < 0 or maker < 0 or self.slippage_bps < 0:
            raise UserInputError(
                f"fees and slippage must be >= 0; got fee_rate={self.fee_rate}, "
                f"maker_fee_rate={self.maker_fee_rate}, slippage_bps={self.slippage_bps}"
            )

    @classmethod
    def for_venue(cls, venue: str, slippage_bps: float = 0.0) -> FlatCosts:
        """Return the base-tier fees of ``venue`` (``"binance-spot"``, ``"binance-perp"``...)."""
        try:
            _, _, fees = venue_schedule(venue)
        except ConfigError as error:
            raise UserInputError(str(error)) from None
        return cls(fee_rate=fees.taker, slippage_bps=slippage_bps, maker_fee_rate=fees.maker)

    def fill_price(
        self,
        side: Side,
        reference_price: float,
        quantity: float,
        market: MarketState | None,
        liquidity: Liquidity,
    ) -> float:
        """Return ``reference_price`` moved against the taker by ``slippage_bps``."""
        if liquidity is Liquidity.MAKER or self.slippage_bps == 0.0:
            return reference_price
        return taker_price(side, reference_price, self.slippage_bps * 1e-4)

    def fee(
        self, notional: float, liquidity: Liquidity, market: MarketType | str | None = None
    ) -> float:
        """Return the fee for ``notional`` quote currency (the market does not matter here)."""
        if liquidity is Liquidity.MAKER and self.maker_fee_rate is not None:
            return abs(notional) * self.maker_fee_rate
        return abs(notional) * self.fee_rate

    def funding(self, position: Position, rate: float, mark_price: float | None = None) -> float:
        """Return ``quantity × mark × rate``: > 0 paid (long, positive rate), < 0 received."""
        return funding_payment(position, rate, mark_price)


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
        key, market, fees = venue_schedule(venue)
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
        return taker_price(side, reference_price, fraction)

    def funding(self, position: Position, rate: float, mark_price: float | None = None) -> float:
        """Return ``quantity × mark × rate``: > 0 paid (long, positive rate), < 0 received."""
        return funding_payment(position, rate, mark_price)


@dataclass(frozen=True, slots=True)
class ScaledCosts:
    """Any cost model with its fees and slippage multiplied by ``factor`` (0 = free trading)."""

    base: CostModel
    factor: float

    def fill_price(
        self,
        side: Side,
        reference_price: float,
        quantity: float,
        market: MarketState | None,
        liquidity: Liquidity,
    ) -> float:
        """Return the reference price plus ``factor`` times the base model's slippage."""
        base_price = self.base.fill_price(side, reference_price, quantity, market, liquidity)
        return reference_price + self.factor * (base_price - reference_price)

    def fee(
        self, notional: float, liquidity: Liquidity, market: MarketType | str | None = None
    ) -> float:
        """Return ``factor`` times the base model's fee."""
        return self.factor * self.base.fee(notional, liquidity, market)

    def funding(self, position: Position, rate: float, mark_price: float | None = None) -> float:
        """Return the base model's funding, unscaled: funding is a cash flow set by the venue,
        not a trading cost that a cost-sensitivity run may multiply."""
        return self.base.funding(position, rate, mark_price)


def fee_rate(costs: CostModel, liquidity: Liquidity = Liquidity.TAKER) -> float:
    """Return the fee of one unit of notional: the rate used to size all-in orders."""
    return costs.fee(1.0, liquidity)


def settings_costs(settings: ExecutionSettings) -> FlatCosts:
    """Return the costs a simulated run pays: the settings' fees and taker slippage.

    Backtests and paper trading both price their fills with it, so the same settings cost the
    same in both.
    """
    return FlatCosts(settings.taker_fee, settings.slippage_bps, settings.maker_fee)


def _market_type(market: MarketType | str) -> MarketType:
    try:
        return MarketType(market)
    except ValueError:
        raise ConfigError(
            f"unknown market type {market!r}; use one of: " + ", ".join(m.value for m in MarketType)
        ) from None
