"""The position monitor: protective levels for an open position, moved as candles close.

A position opened with a stop has a risk unit ``R = |entry - initial stop|`` per base unit.
The monitor keeps, for each open position, a :class:`Protection`: the stop, the target and an
optional partial exit, which the broker matches against every candle (stop first when one
candle touches both stop and target). After each closed candle it may move the stop:

- break-even: once the best price since entry reaches +1R, the stop moves to the entry price;
- trailing: once the best price reaches +2R, the stop trails 1 ATR behind the best price;
- partial exit: half the position is taken off at +2R with a limit order.

Each rule has a switch (None turns it off) so ablations can measure what it adds. Levels only
ever move in the position's favour and only use closed candles (no look-ahead).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tradebrain.config import RiskSettings
from tradebrain.core.market import AtrTracker
from tradebrain.exceptions import UserInputError


@dataclass(frozen=True, slots=True)
class MonitorRules:
    """The switches and distances of the position monitor (R multiples and ATR multiples)."""

    break_even_at_r: float | None = 1.0
    trailing_at_r: float | None = 2.0
    trailing_atr: float = 1.0
    partial_at_r: float | None = 2.0
    partial_fraction: float = 0.5
    atr_period: int = 14

    def __post_init__(self) -> None:
        if not 0.0 < self.partial_fraction < 1.0:
            raise UserInputError(f"partial_fraction must be in (0, 1); got {self.partial_fraction}")
        if self.trailing_atr <= 0 or self.atr_period < 1:
            raise UserInputError("trailing_atr must be > 0 and atr_period >= 1")

    @classmethod
    def from_settings(cls, settings: RiskSettings) -> MonitorRules:
        """Return the rules ``risk.manage_exits`` asks for: these defaults, or :meth:`off`."""
        return cls() if settings.manage_exits else cls.off()

    @classmethod
    def off(cls) -> MonitorRules:
        """Return rules that only keep the initial stop and target."""
        return cls(break_even_at_r=None, trailing_at_r=None, partial_at_r=None)


@dataclass(frozen=True, slots=True)
class Protection:
    """The protective levels of one open position (prices in quote units).

    ``stop_reason`` is the exit reason a stop fill gets: ``"stop"``, ``"break_even"`` or
    ``"trailing"``. ``partial_quantity`` is in base units (> 0 when ``partial_price`` is set).
    """

    side: int  # +1 long, -1 short
    entry_price: float
    stop_price: float | None = None
    target_price: float | None = None
    partial_price: float | None = None
    partial_quantity: float = 0.0
    stop_reason: str = "stop"
    risk_per_unit: float = 0.0  # R in quote units per base unit; 0 when no stop was set
    best_price: float = 0.0  # highest high (long) or lowest low (short) since entry
    trailing: bool = False


class PositionMonitor:
    """Sets and moves the protective levels of open positions, one symbol at a time."""

    def __init__(self, rules: MonitorRules | None = None) -> None:
        self.rules = rules or MonitorRules()
        self.atr_trackers: dict[str, AtrTracker] = {}
        """Each symbol's running ATR (saved and restored with a paper account)."""

    def atr(self, symbol: str) -> float:
        """Return the Wilder ATR of ``symbol`` so far (NaN before its first candle)."""
        tracker = self.atr_trackers.get(symbol)
        return tracker.atr if tracker is not None else float("nan")

    def open(
        self,
        side: int,
        entry_price: float,
        quantity: float,
        stop_price: float | None,
        target_price: float | None,
    ) -> Protection:
        """Return the protection of a position just opened at ``entry_price``."""
        risk = 0.0 if stop_price is None else abs(entry_price - stop_price)
        partial_price = None
        partial_quantity = 0.0
        if self.rules.partial_at_r is not None and risk > 0:
            partial_price = entry_price + side * self.rules.partial_at_r * risk
            partial_quantity = quantity * self.rules.partial_fraction
        return Protection(
            side=side,
            entry_price=entry_price,
            stop_price=stop_price,
            target_price=target_price,
            partial_price=partial_price,
            partial_quantity=partial_quantity,
            risk_per_unit=risk,
            best_price=entry_price,
        )

    def on_candle(self, symbol: str, high: float, low: float, close: float) -> None:
        """Update the ATR of ``symbol`` with a closed candle (a mean over the first
        ``atr_period`` candles, then Wilder's smoothing)."""
        tracker = self.atr_trackers.get(symbol)
        if tracker is None:
            tracker = self.atr_trackers[symbol] = AtrTracker(self.rules.atr_period, mean_first=True)
        tracker.update(high, low, close)

    def after_candle(
        self, symbol: str, protection: Protection, high: float, low: float
    ) -> Protection:
        """Return ``protection`` moved after a closed candle (break-even, trailing)."""
        risk = protection.risk_per_unit
        if risk <= 0 or protection.stop_price is None:
            return protection
        side = protection.side
        best = max(protection.best_price, high) if side > 0 else min(protection.best_price, low)
        excursion = side * (best - protection.entry_price) / risk  # in R
        stop = protection.stop_price
        reason = protection.stop_reason
        trailing = protection.trailing
        rules = self.rules
        at_break_even = rules.break_even_at_r is not None and excursion >= rules.break_even_at_r
        if at_break_even and side * (protection.entry_price - stop) > 0:
            stop, reason = protection.entry_price, "break_even"
        if rules.trailing_at_r is not None and excursion >= rules.trailing_at_r:
            trailing = True
        if trailing:
            atr = self.atr(symbol)
            if atr == atr:  # not NaN
                trail = best - side * rules.trailing_atr * atr
                if side * (trail - stop) > 0:
                    stop, reason = trail, "trailing"
        if stop == protection.stop_price and best == protection.best_price:
            return protection
        return replace(
            protection, stop_price=stop, stop_reason=reason, best_price=best, trailing=trailing
        )
