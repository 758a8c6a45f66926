"""Policy modes, circuit breakers and the emergency stop.

The mode is worked out from the account and the data health on every review; the most severe
rule that fires sets it:

==========================  ====================  ====================
condition                   DEFENSIVE from        CRITICAL from
==========================  ====================  ====================
daily drawdown              5 %                   10 % (``max_daily_drawdown``)
drawdown from peak equity   20 %                  40 % (``max_drawdown``)
losing trades in a row      3                     6   (``trade_record_rules``)
unhealthy data (any symbol)                       always
equity <= 0                                       always
==========================  ====================  ====================

(The numbers are the settings' defaults; the DEFENSIVE lines sit at half the CRITICAL ones.)
DEFENSIVE halves the size (and asks ``defensive_min_confidence``, 0 by default); CRITICAL opens
nothing. Exits are always allowed. The daily drawdown resets with the account's day-start
equity; the drawdown from the peak only heals if open positions recover, so a 40 % drawdown
halts new trading until a human looks — on purpose.

The losing-streak lines and the per-symbol pause (:mod:`tradebrain.risk.performance`) judge a
strategy by its closed trades; they are off unless ``risk.trade_record_rules`` is set, because
a strategy that holds while its forecast holds loses small and often by design (on the planted
worlds they cost money after costs: ``tradebrain ablation`` measures them).

The emergency stop is a latch: once pulled, every new trade is denied until
:meth:`RiskPolicy.release_emergency_stop`, and :func:`close_all_intents` gives the exits that
flatten the book.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tradebrain.config import RiskSettings
from tradebrain.core.market import MarketState
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.exceptions import ConfigError
from tradebrain.execution.account import AccountSnapshot
from tradebrain.risk.performance import SymbolPerformance, SymbolRules, losing_streak
from tradebrain.risk.performance import symbol_performance as judge_symbol
from tradebrain.risk.verdicts import (
    EmergencyStopped,
    EmergencyStopReleased,
    PolicyMode,
    PolicyModeChanged,
    RiskEvent,
    SymbolPaused,
    SymbolResumed,
)

_SEVERITY = {PolicyMode.NORMAL: 0, PolicyMode.DEFENSIVE: 1, PolicyMode.CRITICAL: 2}
NEVER = 10**9
"""A count no losing streak reaches: the trade-record rules switched off."""


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """Numbers of the policy modes (drawdowns as fractions of equity)."""

    defensive_daily_drawdown: float = 0.015
    critical_daily_drawdown: float = 0.03
    defensive_drawdown: float = 0.05
    critical_drawdown: float = 0.10
    defensive_losing_streak: int = 3
    critical_losing_streak: int = 6
    #: A losing streak weighs on the mode for this long after its last loss, then expires:
    #: otherwise DEFENSIVE/CRITICAL would deny the very trades that could end the streak.
    losing_streak_cooldown: timedelta = timedelta(hours=24)
    normal_min_confidence: float = 0.0
    defensive_min_confidence: float = 0.65
    defensive_size_factor: float = 0.5
    unhealthy_data_mode: PolicyMode = PolicyMode.CRITICAL
    symbols: SymbolRules = field(default_factory=SymbolRules)

    def __post_init__(self) -> None:
        pairs = [
            ("daily drawdown", self.defensive_daily_drawdown, self.critical_daily_drawdown),
            ("drawdown", self.defensive_drawdown, self.critical_drawdown),
            ("losing streak", self.defensive_losing_streak, self.critical_losing_streak),
        ]
        for name, defensive, critical in pairs:
            if not 0 < defensive <= critical:
                raise ConfigError(
                    f"policy {name}: the DEFENSIVE line ({defensive}) must be above 0 and at or "
                    f"below the CRITICAL line ({critical})"
                )
        if not 0 < self.defensive_size_factor <= 1:
            raise ConfigError(
                f"defensive_size_factor must be in (0, 1], got {self.defensive_size_factor}"
            )

    @classmethod
    def from_settings(cls, settings: RiskSettings, defensive_share: float = 0.5) -> PolicyRules:
        """Return rules whose CRITICAL lines are the settings' limits, DEFENSIVE at a share."""
        record: dict[str, object] = {}
        if not settings.trade_record_rules:
            record = {
                "defensive_losing_streak": NEVER,
                "critical_losing_streak": NEVER,
                "symbols": SymbolRules(pause_after_losses=NEVER, poor_size_factor=1.0),
            }
        return cls(
            defensive_daily_drawdown=settings.max_daily_drawdown * defensive_share,
            critical_daily_drawdown=settings.max_daily_drawdown,
            defensive_drawdown=settings.max_drawdown * defensive_share,
            critical_drawdown=settings.max_drawdown,
            defensive_min_confidence=settings.defensive_min_confidence,
            **record,  # type: ignore[arg-type]
        )

    def min_confidence(self, mode: PolicyMode) -> float:
        """Return the lowest confidence an entry needs in ``mode``."""
        if mode is PolicyMode.DEFENSIVE:
            return self.defensive_min_confidence
        return self.normal_min_confidence

    def size_factor(self, mode: PolicyMode) -> float:
        """Return the size multiplier of ``mode`` (0 in CRITICAL)."""
        if mode is PolicyMode.NORMAL:
            return 1.0
        return self.defensive_size_factor if mode is PolicyMode.DEFENSIVE else 0.0


@dataclass(frozen=True, slots=True)
class PolicyAssessment:
    """The mode and the facts behind it.

    Attributes
    ----------
    reasons
        The rules that set the mode (only those at the mode's severity), with numbers.
    daily_drawdown, drawdown
        Fractions of day-start and peak equity lost, >= 0.
    """

    mode: PolicyMode
    reasons: tuple[str, ...]
    daily_drawdown: float
    drawdown: float
    losing_streak: int


def _past(value: float, line: float) -> str:
    return "exceeds" if value > line else "reaches"


def _drawdown(start: float, equity: float) -> float:
    return max(0.0, 1.0 - equity / start) if start > 0 else 0.0


def assess(
    account: AccountSnapshot, unhealthy_symbols: frozenset[str], rules: PolicyRules
) -> PolicyAssessment:
    """Return the policy mode for ``account``, given which symbols have unhealthy data."""
    daily = _drawdown(account.day_start_equity, account.equity)
    total = _drawdown(account.peak_equity, account.equity)
    streak = losing_streak(account.closed_trades)
    if (
        streak
        and account.timestamp - account.closed_trades[-1].exit_time > rules.losing_streak_cooldown
    ):
        streak = 0  # the cool-down after the last loss has passed
    found: list[tuple[PolicyMode, str]] = []
    if account.equity <= 0:
        found.append((PolicyMode.CRITICAL, f"equity {account.equity:.2f} is not positive"))
    checks = [
        ("daily drawdown", daily, rules.defensive_daily_drawdown, rules.critical_daily_drawdown),
        ("drawdown from peak", total, rules.defensive_drawdown, rules.critical_drawdown),
    ]
    for name, value, defensive, critical in checks:
        if value >= critical:
            found.append(
                (
                    PolicyMode.CRITICAL,
                    f"{name} {value:.1%} {_past(value, critical)} the {critical:.1%} limit",
                )
            )
        elif value >= defensive:
            found.append(
                (
                    PolicyMode.DEFENSIVE,
                    f"{name} {value:.1%} {_past(value, defensive)} the "
                    f"{defensive:.1%} defensive line",
                )
            )
    if streak >= rules.critical_losing_streak:
        found.append(
            (
                PolicyMode.CRITICAL,
                f"{streak} losing trades in a row (limit {rules.critical_losing_streak})",
            )
        )
    elif streak >= rules.defensive_losing_streak:
        found.append(
            (
                PolicyMode.DEFENSIVE,
                f"{streak} losing trades in a row (defensive from {rules.defensive_losing_streak})",
            )
        )
    for symbol in sorted(unhealthy_symbols):
        found.append((rules.unhealthy_data_mode, f"data for {symbol} is unhealthy"))
    mode = max((m for m, _ in found), key=_SEVERITY.__getitem__, default=PolicyMode.NORMAL)
    reasons = tuple(text for m, text in found if m is mode)
    return PolicyAssessment(mode, reasons, daily, total, streak)


def close_all_intents(
    account: AccountSnapshot, reason: str = "emergency stop", tag: str = "emergency"
) -> list[OrderIntent]:
    """Return one reduce-only market exit per open position, in symbol order."""
    return [
        OrderIntent(
            timestamp=account.timestamp,
            symbol=symbol,
            side=Side.SELL if position.quantity > 0 else Side.BUY,
            quantity=abs(position.quantity),
            reduce_only=True,
            tag=tag,
            reasons=(reason,),
        )
        for symbol, position in sorted(account.positions.items())
        if position.quantity != 0
    ]


class RiskPolicy:
    """The policy state: current mode, emergency latch, paused symbols, and their records."""

    def __init__(self, rules: PolicyRules) -> None:
        self.rules = rules
        self.mode = PolicyMode.NORMAL
        self.emergency_reason: str | None = None
        self._unhealthy: set[str] = set()
        self._paused: dict[str, datetime] = {}
        self._events: list[RiskEvent] = []

    @property
    def emergency(self) -> bool:
        """Whether the emergency stop is latched."""
        return self.emergency_reason is not None

    def observe(self, account: AccountSnapshot, market: MarketState | None) -> PolicyAssessment:
        """Update data health from ``market``, work out the mode, and record a change."""
        if market is not None:
            if market.data_healthy:
                self._unhealthy.discard(market.symbol)
            else:
                self._unhealthy.add(market.symbol)
        assessment = assess(account, frozenset(self._unhealthy), self.rules)
        if assessment.mode is not self.mode:
            reasons = assessment.reasons or ("every limit is back within its line",)
            self._events.append(
                PolicyModeChanged(account.timestamp, self.mode, assessment.mode, reasons)
            )
            self.mode = assessment.mode
        return assessment

    def symbol_verdict(self, symbol: str, account: AccountSnapshot) -> SymbolPerformance:
        """Judge ``symbol`` on its closed trades and record a pause or a resume."""
        verdict = judge_symbol(symbol, account.closed_trades, self.rules.symbols)
        now = account.timestamp
        until = verdict.paused_until
        if until is not None and now < until:
            if self._paused.get(symbol) != until:
                self._paused[symbol] = until
                self._events.append(SymbolPaused(now, symbol, until, verdict.reasons[-1]))
        elif symbol in self._paused:
            ended = self._paused.pop(symbol)
            self._events.append(
                SymbolResumed(now, symbol, f"pause of {symbol} ended at {ended.isoformat()}")
            )
        return verdict

    def emergency_stop(self, reason: str, timestamp: datetime | None = None) -> None:
        """Latch the emergency stop: deny every new trade until released."""
        if self.emergency_reason is None:
            self.emergency_reason = reason
            self._events.append(EmergencyStopped(timestamp, reason))

    def release_emergency_stop(self, reason: str, timestamp: datetime | None = None) -> None:
        """Release the latch (a human decision); new trades are reviewed normally again."""
        if self.emergency_reason is not None:
            self.emergency_reason = None
            self._events.append(EmergencyStopReleased(timestamp, reason))

    def drain_events(self) -> list[RiskEvent]:
        """Return the records since the last call, oldest first, and forget them."""
        events, self._events = self._events, []
        return events
