"""Protective levels of an entry: the stop (always) and the target.

The stop is the strategy's when it gives one, else ``stop_atr_multiple`` ATRs (6) against
the position: a catastrophe stop, wide enough that the forecast, not noise, ends a position
(on the planted trend world, seed 1, a 3-ATR stop closed 16 of 107 spot trades, and 6 ATR
raised the capture from 35 % to 47 %).
The target is the strategy's; without one, and only when ``take_profit`` is set,
risk puts it ``reward_risk`` stop-distances (2R) beyond the entry — ×1.5 (3R) in trending
regimes to let winners run, ×0.75 (1.5R) in ranging or choppy ones to take profit before the
range turns. Without a target the position is closed by the strategy or its stop. A stop on
the wrong side of the entry, a stop at or below zero, or a target at or below zero (a short
with a stop wider than half the price) denies the entry.
"""

from __future__ import annotations

import math

from tradebrain.core.market import MarketState
from tradebrain.core.orders import OrderIntent
from tradebrain.risk.sizing import SizingRules
from tradebrain.risk.verdicts import Denial, RiskRule, deny


def atr_stop(entry_price: float, atr: float, side: int, multiple: float) -> float:
    """Return the stop ``multiple`` ATRs against a position of ``side`` (+1 long, -1 short)."""
    return entry_price - side * multiple * atr


def regime_reward_risk(regime_is_trend: bool, regime_is_range: bool, rules: SizingRules) -> float:
    """Return the reward:risk for targets: stretched in trends, pulled in in ranges."""
    if regime_is_trend:
        return rules.reward_risk * rules.trend_reward_factor
    if regime_is_range:
        return rules.reward_risk * rules.range_reward_factor
    return rules.reward_risk


def target_from_stop(entry_price: float, stop_price: float, reward_risk: float) -> float:
    """Return the target ``reward_risk`` stop-distances beyond the entry, away from the stop."""
    return entry_price + reward_risk * (entry_price - stop_price)


def protective_levels(
    intent: OrderIntent, market: MarketState, entry: float, rules: SizingRules
) -> tuple[float, float | None, list[str]] | Denial:
    """Return ``(stop, target, reasons)`` for an entry expected at ``entry``, or the denial.

    Parameters
    ----------
    entry
        Expected entry price, quote per base unit, > 0.
    """
    side = intent.side.sign
    reasons: list[str] = []
    stop = intent.stop_price
    if stop is None:
        if not (math.isfinite(market.atr) and market.atr > 0):
            return deny(
                intent,
                RiskRule.STOP,
                f"entry without a stop and no usable ATR ({market.atr}) to set one",
            )
        stop = atr_stop(entry, market.atr, side, rules.stop_atr_multiple)
        reasons.append(
            f"stop {stop:.6g} = entry {entry:.6g} {'-' if side > 0 else '+'} "
            f"{rules.stop_atr_multiple:g} x ATR {market.atr:.6g}"
        )
    if not (math.isfinite(stop) and stop > 0 and (entry - stop) * side > 0):
        where = "below" if side > 0 else "above"
        return deny(
            intent,
            RiskRule.STOP,
            f"stop {stop:.6g} must be a positive price {where} the entry {entry:.6g} "
            f"for a {intent.side.value}",
        )
    target = intent.target_price
    if target is None and not rules.take_profit:
        return stop, None, reasons
    if target is None:
        reward_risk = regime_reward_risk(market.is_trend, market.is_range, rules)
        target = target_from_stop(entry, stop, reward_risk)
        reasons.append(f"target {target:.6g} at {reward_risk:g}R (regime {market.regime})")
    if not (math.isfinite(target) and target > 0 and (target - entry) * side > 0):
        where = "above" if side > 0 else "below"
        return deny(
            intent,
            RiskRule.TARGET,
            f"target {target:.6g} must be a positive price {where} the entry {entry:.6g} "
            f"for a {intent.side.value}",
        )
    return stop, target, reasons
