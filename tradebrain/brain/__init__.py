"""Decision intelligence: regimes, fusion of model votes, filters, and the Decision.

>>> from tradebrain.brain import Brain, PositionContext
>>> brain = Brain(disabled={"kalman"})  # doctest: +SKIP
>>> decision = brain.decide(timestamp, "BTC/USDT", features, votes, PositionContext(price=30_000.0))

Modules, one concept each: :mod:`~tradebrain.brain.regime` (regime detector),
:mod:`~tradebrain.brain.fusion` (the meta-reasoner's weighted vote),
:mod:`~tradebrain.brain.guards` (its risk guards), :mod:`~tradebrain.brain.filters` (Kalman,
chop, volatility bar, trend depth, funding flip, gap-safe, maker/taker),
:mod:`~tradebrain.brain.panic` (the panic-exit model) and :mod:`~tradebrain.brain.brain`
(the Brain that runs them in order).
"""

from tradebrain.brain.brain import ORDER_FLOW_FEATURE_VOTE, Brain
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.filters import FilterThresholds, KalmanSmoother
from tradebrain.brain.fusion import FAMILIES, Fusion, family_of, fuse, order_flow_vote
from tradebrain.brain.guards import GuardThresholds
from tradebrain.brain.panic import PanicExitModel, PanicReading, PanicSettings
from tradebrain.brain.regime import Regime, RegimeReading, RegimeThresholds, detect_regime
from tradebrain.brain.tuning import PARTS, BrainTuning, PositionContext

__all__ = [
    "FAMILIES",
    "ORDER_FLOW_FEATURE_VOTE",
    "PARTS",
    "Action",
    "Brain",
    "BrainTuning",
    "Decision",
    "FilterThresholds",
    "Fusion",
    "GuardThresholds",
    "KalmanSmoother",
    "PanicExitModel",
    "PanicReading",
    "PanicSettings",
    "PositionContext",
    "Regime",
    "RegimeReading",
    "RegimeThresholds",
    "detect_regime",
    "family_of",
    "fuse",
    "order_flow_vote",
]
