"""Small builders of accounts, markets, orders and closed trades for the risk tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from tradebrain.core.orders import OrderIntent, Side
from tradebrain.execution.account import AccountSnapshot, ClosedTrade, Position
from tradebrain.risk import MarketState, MarketType

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)
SYMBOL = "BTCUSDT"


def make_account(
    equity: float = 10_000.0,
    *,
    cash: float | None = None,
    peak: float | None = None,
    day_start: float | None = None,
    positions: Iterable[Position] = (),
    trades: Iterable[ClosedTrade] = (),
    timestamp: datetime = NOW,
) -> AccountSnapshot:
    """Return an account; cash, peak and day-start equity default to the equity."""
    return AccountSnapshot(
        timestamp=timestamp,
        equity=equity,
        cash=equity if cash is None else cash,
        peak_equity=equity if peak is None else peak,
        day_start_equity=equity if day_start is None else day_start,
        positions={p.symbol: p for p in positions},
        closed_trades=tuple(trades),
    )


def make_market(
    price: float = 100.0,
    atr: float = 1.0,
    *,
    symbol: str = SYMBOL,
    market_type: MarketType = MarketType.SPOT,
    **fields: object,
) -> MarketState:
    """Return a healthy market snapshot at NOW."""
    return MarketState(
        timestamp=NOW,
        symbol=symbol,
        price=price,
        atr=atr,
        market_type=market_type,
        **fields,  # type: ignore[arg-type]
    )


def make_entry(side: Side = Side.BUY, *, symbol: str = SYMBOL, **fields: object) -> OrderIntent:
    """Return an entry for risk to size."""
    return OrderIntent(timestamp=NOW, symbol=symbol, side=side, **fields)  # type: ignore[arg-type]


def make_exit(side: Side, quantity: float = 0.0, *, symbol: str = SYMBOL) -> OrderIntent:
    """Return a reduce-only exit."""
    return OrderIntent(
        timestamp=NOW, symbol=symbol, side=side, quantity=quantity, reduce_only=True, tag="exit"
    )


def make_position(
    quantity: float, entry_price: float = 100.0, *, symbol: str = SYMBOL, leverage: float = 1.0
) -> Position:
    """Return an open position (positive quantity long, negative short)."""
    return Position(
        symbol=symbol,
        quantity=quantity,
        entry_price=entry_price,
        opened_at=NOW - timedelta(hours=5),
        leverage=leverage,
    )


def make_trades(
    r_multiples: Iterable[float], *, symbol: str = SYMBOL, end: datetime = NOW
) -> list[ClosedTrade]:
    """Return closed trades with these R-multiples (1R = 100 quote), the last closing at ``end``."""
    values = list(r_multiples)
    trades = []
    for i, r in enumerate(values):
        exit_time = end - timedelta(hours=len(values) - 1 - i)
        trades.append(
            ClosedTrade(
                symbol=symbol,
                side=1,
                entry_time=exit_time - timedelta(hours=1),
                exit_time=exit_time,
                entry_price=100.0,
                exit_price=100.0 + r,
                quantity=1.0,
                pnl=100.0 * r,
                fees=0.0,
                funding=0.0,
                r_multiple=r,
                exit_reason="target" if r > 0 else "stop",
            )
        )
    return trades
