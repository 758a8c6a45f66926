"""What the brain is told about the market beyond features, and the numbers it is tuned with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from tradebrain.brain.filters import FilterThresholds
from tradebrain.brain.guards import GuardThresholds
from tradebrain.brain.panic import PanicSettings
from tradebrain.brain.positioning import PositionRules
from tradebrain.brain.regime import Regime, RegimeThresholds

if TYPE_CHECKING:
    from tradebrain.config import Settings

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

TREND_REWARD_FACTOR = 1.5
RANGE_REWARD_FACTOR = 0.75


def reward_risk_by_regime(reward_risk: float) -> Mapping[Regime, float]:
    """Return take-profit distances by regime: ``reward_risk`` x1.5 in trends, x0.75 in ranges.

    The same factors as the risk manager's targets (:mod:`tradebrain.risk.stops`).
    """
    trend, ranging = reward_risk * TREND_REWARD_FACTOR, reward_risk * RANGE_REWARD_FACTOR
    return MappingProxyType(
        {
            Regime.TRENDING_UP: trend,
            Regime.TRENDING_DOWN: trend,
            Regime.BREAKOUT: trend,
            Regime.RANGING: ranging,
            Regime.CHOPPY: ranging,
        }
    )


REWARD_RISK = reward_risk_by_regime(2.0)
"""Target distance over stop distance by regime with the default reward:risk of 2."""


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
    exposure
        Signed position notional over equity (0.5 = half the equity long).
    shorts
        Whether the market allows shorts (a perpetual); on spot the target is never short.
    """

    price: float
    position: float = 0.0
    liquidation_distance: float | None = None
    gap_candles: int = 0
    exposure: float = 0.0
    shorts: bool = True


@dataclass(frozen=True, slots=True)
class BrainTuning:
    """Every threshold of the brain, grouped by the part that uses it.

    Build it from the settings with :meth:`from_settings` (one source for the brain, the
    compiled brain and risk); the defaults are the default settings'.

    Attributes
    ----------
    positions
        Kelly share, position cap, entry/exit bars in round trips of the costs, band and rate.
    stop_atr_multiple
        Protective stop distance of an entry, in ATR(14) (``risk.stop_atr_multiple``).
    take_profit
        Whether entries carry a take-profit target (``risk.take_profit``); off, a position is
        held while the forecast holds and closed when it decays or flips.
    reward_risk
        Regime -> target distance over stop distance; ``default_reward_risk`` otherwise.
    max_risk
        Most fraction of equity an entry may risk at its stop (``risk.risk_per_trade``).
    """

    regime: RegimeThresholds = field(default_factory=RegimeThresholds)
    guards: GuardThresholds = field(default_factory=GuardThresholds)
    filters: FilterThresholds = field(default_factory=FilterThresholds)
    panic: PanicSettings = field(default_factory=PanicSettings)
    positions: PositionRules = field(default_factory=PositionRules)
    stop_atr_multiple: float = 6.0
    take_profit: bool = False
    reward_risk: Mapping[Regime, float] = field(default_factory=lambda: REWARD_RISK)
    default_reward_risk: float = 2.0
    max_risk: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> BrainTuning:
        """Return the tuning the settings imply (brain, risk and execution sections)."""
        brain, risk, execution = settings.brain, settings.risk, settings.execution
        return cls(
            positions=PositionRules(
                kelly_fraction=brain.kelly_fraction,
                max_position=brain.max_position,
                entry_cost_multiple=brain.entry_cost_multiple,
                exit_cost_multiple=brain.exit_cost_multiple,
                rebalance_band=brain.rebalance_band,
                trade_rate=brain.trade_rate,
                cost_per_side=execution.taker_fee + execution.slippage_bps / 1e4,
            ),
            stop_atr_multiple=risk.stop_atr_multiple,
            take_profit=risk.take_profit,
            reward_risk=reward_risk_by_regime(risk.reward_risk),
            default_reward_risk=risk.reward_risk,
            max_risk=risk.risk_per_trade,
        )
