"""What the brain is told about the market beyond features, and the numbers it is tuned with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tradebrain.brain.filters import FilterThresholds
from tradebrain.brain.guards import GuardThresholds
from tradebrain.brain.panic import PanicSettings
from tradebrain.brain.regime import Regime, RegimeThresholds

PARTS = (
    "regime_weights",
    "order_flow_vote",
    "risk_vote",
    "risk_block",
    "volatility_cut",
    "liquidation_guard",
    "kalman",
    "volatility_threshold",
    "chop",
    "trend_depth",
    "panic_exit",
    "funding_flip",
    "gap_safe",
    "maker_taker",
)
"""Every switchable part of the brain; each is also the filter name it adds when it fires."""

REWARD_RISK: Mapping[Regime, float] = MappingProxyType(
    {
        Regime.TRENDING_UP: 3.0,
        Regime.TRENDING_DOWN: 3.0,
        Regime.BREAKOUT: 2.5,
        Regime.RANGING: 1.5,
        Regime.CHOPPY: 1.5,
    }
)
"""Target distance over stop distance by regime: let trends run, bank ranges early (else 2)."""


@dataclass(frozen=True, slots=True)
class PositionContext:
    """What the engine knows about the market and the book on this candle.

    Attributes
    ----------
    price
        The reference price for stops and targets (the candle's close), quote currency.
    position
        Signed quantity held: > 0 long, < 0 short, 0 flat.
    liquidation_distance
        Distance from ``price`` to the position's liquidation price as a fraction of
        ``price`` (0.05 = 5 %); None without a leveraged position.
    gap_candles
        Candles missing right before this one (0 = none). The brain also spots gaps itself
        from the timestamps once it has seen the usual step between candles.
    """

    price: float
    position: float = 0.0
    liquidation_distance: float | None = None
    gap_candles: int = 0


@dataclass(frozen=True, slots=True)
class BrainTuning:
    """Every threshold of the brain, grouped by the part that uses it.

    Attributes
    ----------
    stop_atr_multiple
        Suggested stop distance, in ATR(14).
    reward_risk
        Regime -> target distance over stop distance; ``default_reward_risk`` otherwise.
    base_risk
        Fraction of equity a fully confident trade risks; a trade just over the confidence
        bar risks half of it (``base_risk * (0.5 + 0.5 * strength)``, strength in [0, 1]).
    max_threshold
        Ceiling of the confidence bar after every raise (a higher ``min_confidence`` wins).
    """

    regime: RegimeThresholds = field(default_factory=RegimeThresholds)
    guards: GuardThresholds = field(default_factory=GuardThresholds)
    filters: FilterThresholds = field(default_factory=FilterThresholds)
    panic: PanicSettings = field(default_factory=PanicSettings)
    stop_atr_multiple: float = 1.5
    reward_risk: Mapping[Regime, float] = field(default_factory=lambda: REWARD_RISK)
    default_reward_risk: float = 2.0
    base_risk: float = 0.02
    max_threshold: float = 0.95
