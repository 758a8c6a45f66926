"""Positions and the account snapshot that risk reviews every order against."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import overload


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


class ClosedTradesView(Sequence[ClosedTrade]):
    """A read-only view of the first ``length`` trades of an append-only trade log.

    Taking a snapshot of a growing log costs O(1) instead of copying it into a tuple; the
    view behaves like the tuple of those trades (indexing, slicing, iteration, equality).

    Parameters
    ----------
    log
        The trade log; only ever appended to while views of it exist.
    length
        How many trades of ``log`` the view covers.
    """

    __slots__ = ("_length", "_log")

    def __init__(self, log: list[ClosedTrade], length: int) -> None:
        self._log = log
        self._length = length

    def __len__(self) -> int:
        return self._length

    def covers(self, log: list[ClosedTrade]) -> bool:
        """Return whether this view reads ``log`` (the very list, not an equal one)."""
        return self._log is log

    @overload
    def __getitem__(self, index: int) -> ClosedTrade: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ClosedTrade, ...]: ...

    def __getitem__(self, index: int | slice) -> ClosedTrade | tuple[ClosedTrade, ...]:
        length = self._length
        if isinstance(index, slice):
            log = self._log
            return tuple(log[i] for i in range(*index.indices(length)))
        position = index + length if index < 0 else index
        if not 0 <= position < length:
            raise IndexError("closed trade index out of range")
        return self._log[position]

    def __iter__(self) -> Iterator[ClosedTrade]:
        return islice(self._log, self._length)

    def __reversed__(self) -> Iterator[ClosedTrade]:
        log = self._log
        return (log[i] for i in range(self._length - 1, -1, -1))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ClosedTradesView | tuple):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The account as risk sees it when it reviews an order."""

    timestamp: datetime
    equity: float  # quote currency, marked to market
    cash: float
    peak_equity: float
    day_start_equity: float
    positions: dict[str, Position] = field(default_factory=dict)
    closed_trades: Sequence[ClosedTrade] = ()
