"""Per-symbol performance: shrink the size of poor performers, pause a symbol after a losing run.

Everything is read from the account's closed trades (in the order they closed), so the verdict
on a symbol is the same in a backtest, after a restart, and live.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tradebrain.execution.account import ClosedTrade


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Numbers of the per-symbol rules.

    Attributes
    ----------
    review_trades
        How many of the symbol's latest trades its performance is judged on.
    min_trades
        Fewer trades than this: no verdict, full size.
    poor_size_factor
        Size multiplier for a symbol whose latest trades sum to a negative R.
    pause_after_losses
        Losing trades in a row that pause the symbol.
    pause
        How long a pause lasts after the last loss of the run.
    """

    review_trades: int = 20
    min_trades: int = 5
    poor_size_factor: float = 0.5
    pause_after_losses: int = 5
    pause: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class SymbolPerformance:
    """The verdict on one symbol.

    Attributes
    ----------
    trades
        Trades judged (at most ``review_trades``).
    total_r
        Sum of their R-multiples (trades without a known R count as 0).
    losing_streak
        Losing trades in a row, latest first.
    size_factor
        1.0, or ``poor_size_factor`` for a poor performer.
    paused_until
        End of the pause, or None when the symbol may trade.
    reasons
        Why the size was cut or the symbol paused, with numbers.
    """

    symbol: str
    trades: int
    total_r: float
    losing_streak: int
    size_factor: float
    paused_until: datetime | None
    reasons: tuple[str, ...]

    def is_paused(self, now: datetime) -> bool:
        """Whether the symbol may not open new trades at ``now``."""
        return self.paused_until is not None and now < self.paused_until


def losing_streak(trades: Sequence[ClosedTrade]) -> int:
    """Return how many of the latest trades lost money (pnl < 0 after costs) in a row."""
    streak = 0
    for trade in reversed(trades):
        if trade.pnl >= 0:
            break
        streak += 1
    return streak


def symbol_performance(
    symbol: str, trades: Sequence[ClosedTrade], rules: SymbolRules
) -> SymbolPerformance:
    """Judge ``symbol`` on its latest closed trades among ``trades`` (all symbols, in order)."""
    latest: list[ClosedTrade] = []
    for trade in reversed(trades):
        if trade.symbol == symbol:
            latest.append(trade)
            if len(latest) == rules.review_trades:
                break
    latest.reverse()
    streak = losing_streak(latest)
    total_r = sum(t.r_multiple for t in latest if math.isfinite(t.r_multiple))
    reasons: list[str] = []
    size_factor = 1.0
    if len(latest) >= rules.min_trades and total_r < 0:
        size_factor = rules.poor_size_factor
        reasons.append(
            f"{symbol} made {total_r:+.1f}R over its last {len(latest)} trades; "
            f"size x{size_factor:g}"
        )
    paused_until = None
    if streak >= rules.pause_after_losses:
        paused_until = latest[-1].exit_time + rules.pause
        reasons.append(
            f"{symbol} lost {streak} trades in a row (pause after {rules.pause_after_losses}); "
            f"paused until {paused_until.isoformat()}"
        )
    return SymbolPerformance(
        symbol=symbol,
        trades=len(latest),
        total_r=total_r,
        losing_streak=streak,
        size_factor=size_factor,
        paused_until=paused_until,
        reasons=tuple(reasons),
    )
