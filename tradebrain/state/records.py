"""The immutable records the trading service writes to its state store, one per kind of fact.

Every timestamp is a timezone-aware ``datetime``; the store keeps it as integer epoch
microseconds (exact and ordered on every database) and gives it back in UTC. A naive timestamp
is refused when the record is built, because its instant is ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ORDER_STATUSES = frozenset(
    {"open", "partially_filled", "filled", "cancelled", "denied", "rejected"}
)
WORKING_STATUSES = ("open", "partially_filled")
"""Statuses of an order the venue may still fill."""
TRADE_SIDES = frozenset({"long", "short"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Return ``moment`` as integer microseconds since the UTC epoch (exact, no float step)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"timestamp {moment.isoformat()} has no time zone; tradebrain stores UTC instants, "
            "so build it with tzinfo=UTC (datetime.now(UTC), datetime(..., tzinfo=UTC))"
        )
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Return the UTC ``datetime`` of ``micros`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def _check_aware(record: object, *names: str) -> None:
    for name in names:
        value = getattr(record, name)
        if value is not None:
            try:
                to_micros(value)
            except ValueError as error:
                raise ValueError(f"{type(record).__name__}.{name}: {error}") from None


@dataclass(frozen=True)
class CandleRecord:
    """One closed candle, stamped with its open time."""

    symbol: str
    timeframe: str
    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __post_init__(self) -> None:
        _check_aware(self, "open_time")


@dataclass(frozen=True)
class OrderRecord:
    """The latest known state of one order; ``client_id`` is stable across restarts."""

    client_id: str
    symbol: str
    side: str
    order_type: str
    quantity: float
    status: str
    created_at: datetime
    updated_at: datetime
    limit_price: float | None = None
    stop_price: float | None = None
    target_price: float | None = None
    trigger_price: float | None = None
    reduce_only: bool = False
    tag: str = "entry"
    reason: str = ""
    exchange_id: str | None = None
    filled_quantity: float = 0.0
    confidence: float = 1.0

    def __post_init__(self) -> None:
        _check_aware(self, "created_at", "updated_at")
        if self.status not in ORDER_STATUSES:
            raise ValueError(
                f"OrderRecord {self.client_id!r}: status {self.status!r} is not one of "
                f"{sorted(ORDER_STATUSES)}"
            )


@dataclass(frozen=True)
class FillRecord:
    """One execution of (part of) an order; ``fill_id`` is unique."""

    fill_id: str
    client_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    liquidity: str
    tag: str
    timestamp: datetime
    slippage: float = 0.0

    def __post_init__(self) -> None:
        _check_aware(self, "timestamp")


@dataclass(frozen=True)
class TradeRecord:
    """One closed round trip; ``r_multiple`` may be NaN when the trade had no risk defined."""

    trade_id: str
    symbol: str
    side: str
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float
    fees: float
    funding: float
    exit_reason: str
    r_multiple: float

    def __post_init__(self) -> None:
        _check_aware(self, "entry_time", "exit_time")
        if self.side not in TRADE_SIDES:
            raise ValueError(
                f"TradeRecord {self.trade_id!r}: side {self.side!r} is not 'long' or 'short'"
            )


@dataclass(frozen=True)
class PositionRecord:
    """One open position; ``quantity`` is signed (negative = short)."""

    symbol: str
    quantity: float
    entry_price: float
    opened_at: datetime
    stop_price: float | None = None
    target_price: float | None = None

    def __post_init__(self) -> None:
        _check_aware(self, "opened_at")


@dataclass(frozen=True)
class EquityPoint:
    """Account equity, cash and the buy-and-hold benchmark at one instant (quote currency)."""

    timestamp: datetime
    equity: float
    cash: float
    buy_and_hold: float

    def __post_init__(self) -> None:
        _check_aware(self, "timestamp")


@dataclass(frozen=True)
class EventRecord:
    """One line of the audit log: a pause, an emergency stop, a reconciliation, an error."""

    at: datetime
    kind: str
    message: str

    def __post_init__(self) -> None:
        _check_aware(self, "at")


@dataclass(frozen=True)
class Step:
    """Everything one closed candle caused, written by ``StateStore.record_step`` at once.

    ``positions`` is the complete snapshot of open positions after the step (``None`` keeps the
    stored one); ``broker_state`` and ``runner_state`` replace the stored blobs when given.
    ``shadow_decisions`` are the decisions of candidate models on the same candle, as
    ``(shadow run, document)``: stored under the shadow run's name, in the same transaction.
    """

    run: str
    symbol: str
    timeframe: str
    candle: CandleRecord
    decision: dict[str, Any] | None = None
    orders: list[OrderRecord] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)
    trades: list[TradeRecord] = field(default_factory=list)
    equity: EquityPoint | None = None
    positions: list[PositionRecord] | None = None
    broker_state: dict[str, Any] | None = None
    runner_state: dict[str, Any] | None = None
    shadow_decisions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
