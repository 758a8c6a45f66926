"""Orders and fills: what a strategy asks for, what risk lets through, what a broker did.

A strategy emits an :class:`OrderIntent`; risk turns it into an approved intent (sized, with a
stop) or denies it with a reason; a broker executes approved intents and reports
:class:`Fill` s. All are immutable; quantities are in base-asset units, prices in quote units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell."""
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"  # fills only if the price trades through the limit
    STOP = "stop"  # becomes a market order once the price touches the stop


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What a strategy wants: never an exchange call, only a request that risk reviews.

    Attributes
    ----------
    quantity
        Base-asset units; 0 means "let risk size it" for entries.
    stop_price, target_price
        Protective exit levels for an entry; risk refuses an entry without a stop.
    reduce_only
        True for exits: may only shrink an open position.
    tag
        Why: ``"entry"``, ``"exit"``, ``"stop"``, ``"target"``, ``"trailing"``, ``"partial"``,
        ``"panic"``, ``"emergency"``.
    trigger_price
        The price that triggers a STOP order (it then fills like a market order).
    equity_fraction
        When ``quantity`` is 0: size the entry at fill time as this fraction of equity
        (times leverage), net of the fee; 1.0 is "all in". Ignored when ``quantity`` > 0.
    risk_fraction
        The fraction of equity the strategy suggests risking on this entry (0: no
        suggestion). Risk sizes with the smaller of this and its own limit, never more.
    expires_at
        A resting (limit or stop) order not filled by this time is cancelled ("expired");
        None keeps it until it fills or is cancelled.
    """

    timestamp: datetime
    symbol: str
    side: Side
    quantity: float = 0.0
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    target_price: float | None = None
    reduce_only: bool = False
    tag: str = "entry"
    confidence: float = 1.0
    reasons: tuple[str, ...] = ()
    equity_fraction: float = 0.0
    trigger_price: float | None = None
    risk_fraction: float = 0.0
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution reported by a broker."""

    timestamp: datetime
    order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float  # quote currency, >= 0
    liquidity: Liquidity = Liquidity.TAKER
    tag: str = "entry"
    slippage: float = 0.0  # quote currency paid versus the reference price, >= 0
    reasons: tuple[str, ...] = field(default=())
    trade_id: str = ""  # the venue's id of the trade behind this fill ("" when simulated)
