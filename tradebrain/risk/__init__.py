"""Risk has the last word: sizing, stops, policy modes and circuit breakers.

The engine calls one port, ``RiskManager(settings).review(intent, account, market)``, which
returns the intent sized with a stop and a target, or a :class:`Denial` naming the rule and
the numbers. What trading costs lives beside the brokers that charge it
(:mod:`tradebrain.execution.costs`).
"""

from tradebrain.core.market import MarketState, MarketType
from tradebrain.risk.manager import RiskManager
from tradebrain.risk.performance import SymbolPerformance, SymbolRules
from tradebrain.risk.policy import PolicyAssessment, PolicyRules, RiskPolicy, close_all_intents
from tradebrain.risk.sizing import KellyEstimate, PositionSize, SizingRules, kelly_estimate
from tradebrain.risk.verdicts import (
    Denial,
    EmergencyStopped,
    EmergencyStopReleased,
    PolicyMode,
    PolicyModeChanged,
    RiskEvent,
    RiskRule,
    SymbolPaused,
    SymbolResumed,
)

__all__ = [
    "Denial",
    "EmergencyStopReleased",
    "EmergencyStopped",
    "KellyEstimate",
    "MarketState",
    "MarketType",
    "PolicyAssessment",
    "PolicyMode",
    "PolicyModeChanged",
    "PolicyRules",
    "PositionSize",
    "RiskEvent",
    "RiskManager",
    "RiskPolicy",
    "RiskRule",
    "SizingRules",
    "SymbolPaused",
    "SymbolPerformance",
    "SymbolResumed",
    "SymbolRules",
    "close_all_intents",
    "kelly_estimate",
]
