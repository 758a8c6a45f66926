"""What risk decided, as immutable records: denials and policy changes, each with its reasons.

The engine turns a :class:`Denial` into an ``OrderDenied`` event and logs the policy records
(:class:`PolicyModeChanged`, :class:`SymbolPaused`, ...) as they come from
``RiskManager.drain_events()``. Every record carries its event time and plain-language reasons
with the numbers that triggered it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tradebrain.core.orders import OrderIntent


class PolicyMode(StrEnum):
    NORMAL = "normal"  # trade as sized
    DEFENSIVE = "defensive"  # higher minimum confidence, smaller size
    CRITICAL = "critical"  # no new trades; exits only


class RiskRule(StrEnum):
    """The rule that denied an order; a denial names exactly one."""

    INVALID_ORDER = "invalid_order"
    INVALID_MARKET = "invalid_market"
    EMERGENCY_STOP = "emergency_stop"
    POLICY_MODE = "policy_mode"
    SYMBOL_PAUSED = "symbol_paused"
    MIN_CONFIDENCE = "min_confidence"
    SPOT_SHORT = "spot_short"
    OPPOSITE_POSITION = "opposite_position"
    STOP = "stop"
    TARGET = "target"
    KELLY = "kelly"
    SIZE = "size"
    MIN_NOTIONAL = "min_notional"
    REDUCE_ONLY = "reduce_only"


@dataclass(frozen=True, slots=True)
class Denial:
    """An order risk refused, with the rule and the numbers.

    Attributes
    ----------
    intent
        The order as the strategy sent it.
    reason
        One sentence with the numbers, e.g. ``"denied: daily drawdown 3.4% exceeds the 3.0%
        limit; mode CRITICAL"``.
    rule
        The :class:`RiskRule` value that denied it.
    """

    intent: OrderIntent
    reason: str
    rule: str


def deny(intent: OrderIntent, rule: RiskRule, reason: str) -> Denial:
    """Return a denial of ``intent`` by ``rule``; ``reason`` is the sentence after "denied: "."""
    return Denial(intent=intent, reason=f"denied: {reason}", rule=rule.value)


@dataclass(frozen=True, slots=True)
class PolicyModeChanged:
    """The policy mode moved, e.g. NORMAL -> DEFENSIVE after a 1.6 % daily drawdown."""

    timestamp: datetime
    previous: PolicyMode
    mode: PolicyMode
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SymbolPaused:
    """A symbol stopped taking new trades after a losing run, until ``until``."""

    timestamp: datetime
    symbol: str
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SymbolResumed:
    """A paused symbol takes new trades again."""

    timestamp: datetime
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class EmergencyStopped:
    """The emergency stop latched: every new trade is denied and every position closed."""

    timestamp: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class EmergencyStopReleased:
    """A human released the emergency stop latch."""

    timestamp: datetime | None
    reason: str


RiskEvent = (
    PolicyModeChanged | SymbolPaused | SymbolResumed | EmergencyStopped | EmergencyStopReleased
)
"""Every policy record risk emits."""
