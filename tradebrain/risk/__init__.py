"""Risk has the last word: sizing, stops, policy modes, circuit breakers and costs.

The engine calls one port, ``RiskManager(settings).review(intent, account, market)``, which
returns the intent sized with a stop and a target, or a :class:`Denial` naming the rule and
the numbers. Brokers charge costs through a :class:`CostModel` (``VenueCosts`` presets or
``tradebrain.execution.costs.FlatCosts``).
"""

from tradebrain.core.market import MarketState, MarketType
from tradebrain.risk.costs import (
    FEE_SCHEDULES,
    VENUE_ALIASES,
    CostModel,
    FeeSchedule,
    VenueCosts,
    slippage_fraction,
)
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
    "FEE_SCHEDULES",
    "VENUE_ALIASES",
    "CostModel",
    "Denial",
    "EmergencyStopReleased",
    "EmergencyStopped",
    "FeeSchedule",
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
    "VenueCosts",
    "close_all_intents",
    "kelly_estimate",
    "slippage_fraction",
]
