"""The account a broker keeps: cash, open positions, closed trades, fees and funding.

Two ways to mark a position, by market:

- spot: buying spends cash (``cash -= quantity x price + fee``); a position is worth
  ``quantity x price``. Shorts do not exist on spot.
- perp (USDT-margined perpetual): opening costs only the fee; a position is worth its unrealized
  profit ``quantity x (price - entry_price)``; funding moves cash at each settlement. The
  broker cuts an entry to what the free margin pays for (initial margin plus fee), and a loss
  that closes the last position below zero leaves cash at 0: the account is bust, not in debt.

In both, ``equity = cash + sum of marked positions``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from tradebrain.core.market import MarketType
from tradebrain.core.orders import Fill
from tradebrain.execution.account import AccountSnapshot, ClosedTrade, ClosedTradesView, Position


@dataclass(slots=True)
class Holding:
    """An open position as the portfolio tracks it (mutable; :class:`Position` is the view)."""

    symbol: str
    quantity: float  # signed: > 0 long, < 0 short
    entry_price: float
    opened_at: datetime
    entry_fees: float = 0.0  # fees paid to open what is still open
    funding: float = 0.0  # funding received (> 0) or paid (< 0) on what is still open
    initial_risk: float = 0.0  # quote currency lost at the initial stop (1R)
    stop_price: float | None = None
    target_price: float | None = None
    leverage: float = 1.0


@dataclass(slots=True)
class Portfolio:
    """Cash, positions and the record of what happened, for one quote currency."""

    cash: float
    market: MarketType = MarketType.SPOT
    holdings: dict[str, Holding] = field(default_factory=dict)
    closed_trades: list[ClosedTrade] = field(default_factory=list)
    fees_paid: float = 0.0
    funding_paid: float = 0.0  # net funding paid (> 0 costs the account)
    peak_equity: float = 0.0
    day_start_equity: float = 0.0
    day: str = ""  # UTC date (ISO) whose starting equity ``day_start_equity`` is
    _closed_view: ClosedTradesView | None = None

    def __post_init__(self) -> None:
        self.peak_equity = self.day_start_equity = self.cash

    def marked_value(self, holding: Holding, price: float) -> float:
        """Return what ``holding`` adds to equity at ``price`` (see the module notes)."""
        if self.market is MarketType.SPOT:
            return holding.quantity * price
        return holding.quantity * (price - holding.entry_price)

    def equity(self, prices: dict[str, float]) -> float:
        """Return cash plus every position marked at ``prices`` (symbol -> price)."""
        total = self.cash
        holdings = self.holdings
        if not holdings:
            return total
        marked_value = self.marked_value
        for symbol, holding in holdings.items():
            total += marked_value(holding, prices[symbol])
        return total

    def quantity(self, symbol: str) -> float:
        """Return the signed open quantity in ``symbol`` (0 when flat)."""
        holding = self.holdings.get(symbol)
        return 0.0 if holding is None else holding.quantity

    def apply_fill(
        self, fill: Fill, *, stop_price: float | None = None, target_price: float | None = None
    ) -> list[ClosedTrade]:
        """Book ``fill``: open, add to, reduce, close or reverse a position.

        ``stop_price``/``target_price`` set the protective levels (and 1R) of a new position.
        Returns the round trips (or parts of them) this fill closed.
        """
        signed = fill.side.sign * fill.quantity
        self.fees_paid += fill.fee
        holding = self.holdings.get(fill.symbol)
        closed: list[ClosedTrade] = []
        remaining = signed
        fee_left = fill.fee
        if holding is not None and holding.quantity * signed < 0:
            closing = min(abs(signed), abs(holding.quantity))
            remaining = signed + math.copysign(closing, holding.quantity)
            exit_fee = fill.fee * closing / fill.quantity
            closed.append(self._close_part(holding, closing, fill, exit_fee))
            fee_left -= exit_fee
            if abs(holding.quantity) <= 1e-12 * closing:
                del self.holdings[fill.symbol]
                holding = None
        if abs(remaining) > 0.0 and abs(remaining) > 1e-12 * fill.quantity:
            self._open_part(holding, remaining, fill, fee_left, stop_price, target_price)
        self.closed_trades.extend(closed)
        return closed

    def apply_funding(self, symbol: str, paid: float) -> float:
        """Settle funding on ``symbol``: ``paid`` quote currency leaves the account (< 0 arrives).

        The amount comes from the broker's cost model (longs pay ``rate x notional`` when the
        rate is > 0). Returns the payment received (negative when paid).
        """
        holding = self.holdings.get(symbol)
        if holding is None:
            return 0.0
        payment = -paid
        self.cash += payment
        holding.funding += payment
        self.funding_paid -= payment
        return payment

    def mark(self, timestamp: datetime, prices: dict[str, float]) -> float:
        """Return equity at ``prices``; update the peak and, on a new UTC day, its start.

        The first mark of a UTC day sets that day's starting equity (what risk's daily
        drawdown is measured from); the peak only ever rises.
        """
        equity = self.equity(prices)
        day = timestamp.date().isoformat()
        if day != self.day:
            self.day, self.day_start_equity = day, equity
        if equity > self.peak_equity:
            self.peak_equity = equity
        return equity

    def snapshot(self, timestamp: datetime, prices: dict[str, float]) -> AccountSnapshot:
        """Return the account as risk sees it at ``timestamp``."""
        positions = {
            symbol: Position(
                symbol=symbol,
                quantity=h.quantity,
                entry_price=h.entry_price,
                opened_at=h.opened_at,
                stop_price=h.stop_price,
                target_price=h.target_price,
                initial_risk=h.initial_risk,
                leverage=h.leverage,
            )
            for symbol, h in self.holdings.items()
        }
        equity = self.equity(prices)
        return AccountSnapshot(
            timestamp=timestamp,
            equity=equity,
            cash=self.cash,
            peak_equity=max(self.peak_equity, equity),
            day_start_equity=self.day_start_equity,
            positions=positions,
            closed_trades=self._closed_tuple(),
        )

    def _closed_tuple(self) -> ClosedTradesView:
        view = self._closed_view
        trades = self.closed_trades
        if view is None or len(view) != len(trades) or not view.covers(trades):
            view = self._closed_view = ClosedTradesView(trades, len(trades))
        return view

    def _open_part(
        self,
        holding: Holding | None,
        signed: float,
        fill: Fill,
        fee: float,
        stop_price: float | None,
        target_price: float | None,
    ) -> None:
        quantity = abs(signed)
        if self.market is MarketType.SPOT:
            self.cash -= signed * fill.price + fee
        else:
            self.cash -= fee
        if holding is None:
            risk = 0.0 if stop_price is None else quantity * abs(fill.price - stop_price)
            self.holdings[fill.symbol] = Holding(
                symbol=fill.symbol,
                quantity=signed,
                entry_price=fill.price,
                opened_at=fill.timestamp,
                entry_fees=fee,
                initial_risk=risk,
                stop_price=stop_price,
                target_price=target_price,
            )
            return
        total = abs(holding.quantity) + quantity
        holding.entry_price = (
            abs(holding.quantity) * holding.entry_price + quantity * fill.price
        ) / (total)
        holding.quantity += signed
        holding.entry_fees += fee
        if stop_price is not None:
            holding.stop_price = stop_price
            holding.initial_risk = total * abs(holding.entry_price - stop_price)

    def _close_part(
        self, holding: Holding, closing: float, fill: Fill, exit_fee: float
    ) -> ClosedTrade:
        share = closing / abs(holding.quantity)
        side = 1 if holding.quantity > 0 else -1
        gross = side * closing * (fill.price - holding.entry_price)
        if self.market is MarketType.SPOT:
            self.cash += closing * fill.price - exit_fee
        else:
            self.cash += gross - exit_fee
            if self.cash < 0 and len(self.holdings) == 1 and closing >= abs(holding.quantity):
                # BUST: the account cannot owe more than it held; the venue's insurance fund
                # takes the rest, as with isolated margin (engine.fast does the same).
                self.cash = 0.0
        entry_fee = holding.entry_fees * share
        funding = holding.funding * share
        risk = holding.initial_risk * share
        pnl = gross - entry_fee - exit_fee + funding
        holding.entry_fees -= entry_fee
        holding.funding -= funding
        holding.initial_risk -= risk
        holding.quantity -= side * closing
        return ClosedTrade(
            symbol=holding.symbol,
            side=side,
            entry_time=holding.opened_at,
            exit_time=fill.timestamp,
            entry_price=holding.entry_price,
            exit_price=fill.price,
            quantity=closing,
            pnl=pnl,
            fees=entry_fee + exit_fee,
            funding=funding,
            r_multiple=pnl / risk if risk > 0 else math.nan,
            exit_reason=fill.tag,
        )
