"""Trading costs as a port: fees and slippage for every simulated fill.

The simulated broker prices every fill through a :class:`CostModel`. :class:`FlatCosts` is the
simple default (one fee rate per liquidity, a fixed slippage in basis points); the risk layer
provides a richer model (fees per venue, half-spread plus square-root impact) that satisfies
the same Protocol. :class:`ScaledCosts` multiplies any model's costs, for cost-sensitivity runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tradebrain.config import ExecutionSettings
from tradebrain.core.market import MarketState
from tradebrain.core.orders import Liquidity, Side
from tradebrain.exceptions import UserInputError
from tradebrain.execution.account import Position
from tradebrain.risk.costs import FEE_SCHEDULES, VENUE_ALIASES, funding_payment

VENUE_FEES: dict[str, tuple[float, float]] = {
    name: (FEE_SCHEDULES[VENUE_ALIASES.get(name, name)][1].maker,
           FEE_SCHEDULES[VENUE_ALIASES.get(name, name)][1].taker)
    for name in (*FEE_SCHEDULES, *VENUE_ALIASES)
}  # fmt: skip
"""Venue -> (maker fee rate, taker fee rate), the public base tiers."""


@runtime_checkable
class CostModel(Protocol):
    """What a fill costs. Both methods are pure; neither may return a negative cost.

    ``fill_price`` returns the execution price after slippage for an order that would trade
    at ``reference_price`` (the candle open for market orders, the stop price for triggered
    stops): never better than the reference for a taker, so a buy pays at least and a sell
    receives at most the reference. ``fee`` returns the fee in quote currency (>= 0) for a
    fill of ``notional`` quote currency. ``funding`` returns what a perpetual position pays
    at one settlement (> 0 paid, < 0 received).
    """

    def fill_price(
        self,
        side: Side,
        reference_price: float,
        quantity: float,
        market: MarketState | None,
        liquidity: Liquidity,
    ) -> float: ...

    def fee(self, notional: float, liquidity: Liquidity) -> float: ...

    def funding(
        self, position: Position, rate: float, mark_price: float | None = None
    ) -> float: ...


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
        if venue not in VENUE_FEES:
            raise UserInputError(
                f"unknown venue {venue!r}; use one of: {', '.join(sorted(VENUE_FEES))}"
            )
        maker, taker = VENUE_FEES[venue]
        return cls(fee_rate=taker, slippage_bps=slippage_bps, maker_fee_rate=maker)

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
        return reference_price * (1.0 + side.sign * self.slippage_bps * 1e-4)

    def fee(self, notional: float, liquidity: Liquidity, market: object = None) -> float:
        """Return the fee for ``notional`` quote currency (the market does not matter here)."""
        if liquidity is Liquidity.MAKER and self.maker_fee_rate is not None:
            return abs(notional) * self.maker_fee_rate
        return abs(notional) * self.fee_rate

    def slippage(
        self, price: float, quantity: float, side: Side, volume: float, spread: float
    ) -> float:
        """Return ``|quantity| × price × slippage_bps / 10 000`` quote currency."""
        return abs(quantity) * price * self.slippage_bps * 1e-4

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

    def fee(self, notional: float, liquidity: Liquidity) -> float:
        """Return ``factor`` times the base model's fee."""
        return self.factor * self.base.fee(notional, liquidity)

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
