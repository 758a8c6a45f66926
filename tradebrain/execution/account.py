"""Positions and the account snapshot that risk reviews every order against."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Position:
    """An open position in one symbol.

    Attributes
    ----------
    quantity
        Signed base-asset units: positive long, negative short.
    initial_risk
        Quote currency lost if the initial stop is hit (1R), > 0.
    leverage
        Notional / margin for perpetuals; 1 for spot.
    """

    symbol: str
    quantity: float
    entry_price: float
    opened_at: datetime
    stop_price: float | None = None
    target_price: float | None = None
    initial_risk: float = 0.0
    leverage: float = 1.0

    @property
    def side(self) -> int:
        """+1 long, -1 short, 0 flat."""
        return (self.quantity > 0) - (self.quantity < 0)

    @property
    def notional(self) -> float:
        """|quantity| × entry price, in quote currency."""
        return abs(self.quantity) * self.entry_price


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A finished round trip, for performance statistics and Kelly sizing."""

    symbol: str
    side: int  # +1 long, -1 short
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    quantity: float  # base units, > 0
    pnl: float  # quote currency, after fees and funding
    fees: float
    funding: float
    r_multiple: float  # pnl / initial risk (nan when no risk was set)
    exit_reason: str


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The account as risk sees it when it reviews an order."""

    timestamp: datetime
    equity: float  # quote currency, marked to market
    cash: float
    peak_equity: float
    day_start_equity: float
    positions: dict[str, Position] = field(default_factory=dict)
    closed_trades: tuple[ClosedTrade, ...] = ()
