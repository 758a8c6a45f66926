"""The Brain: the hybrid strategy's decision on each candle, every step with its reason.

On each candle, in order: read the regime; fold the candle into the stateful parts (spread
history, gap tracker, funding cool-down, panic history); fuse the model votes with
regime-adaptive family weights and the risk family's flat vote; smooth the fused edge with the
Kalman filter; set the confidence bar (``min_confidence`` raised by volatility and chop, the
chop raise skipped in a deep trend); cut confidence in high volatility; pick BUY, SELL or HOLD;
then let the overrides speak, strongest first: panic exit (EXIT), liquidation guard (EXIT),
risk block (HOLD), funding-flip cool-down (no new long). A trade gets a suggested stop
(``k x ATR``), a target (reward:risk by regime), a size (fraction of equity to risk, cut in
gap-safe mode; risk decides the final size) and a maker/taker choice.

``Decision.confidence`` is the probability of the side bought or sold after every filter; for a
HOLD, that of the best side, which fell short of the bar or was blocked; for a panic EXIT, the
panic score; for a liquidation EXIT, 1.

A part is listed in ``Decision.filters`` when its condition held on this candle, whether or not
it changed the action; its reason says what it did. Every part can be switched off for
ablations: ``Brain(settings, disabled={"kalman", "chop"})`` (names in :data:`PARTS`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from tradebrain.brain._state import Draft, SymbolMemory
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.filters import (
    chop_filter,
    order_type,
    smooth_proba,
    trend_depth,
    volatility_threshold,
)
from tradebrain.brain.fusion import Vote, clean_vote, family_of, fuse, order_flow_vote
from tradebrain.brain.guards import danger_level, liquidation_guard, risk_block, volatility_cut
from tradebrain.brain.panic import PanicReading
from tradebrain.brain.regime import ATR_PCT, RegimeReading, detect_regime, feature
from tradebrain.brain.tuning import PARTS, BrainTuning, PositionContext
from tradebrain.config import BrainSettings
from tradebrain.exceptions import ConfigError

ORDER_FLOW_FEATURE_VOTE = "order_flow_features"
"""Name under which the vote derived from order-flow features appears in ``Decision.votes``."""
_SETTING_SWITCHES = {
    "kalman": "kalman",
    "chop_filter": "chop",
    "panic_exit": "panic_exit",
    "funding_flip_filter": "funding_flip",
}


class Brain:
    """Turn features and model votes into a Decision, candle after candle.

    Parameters
    ----------
    settings
        Fusion weights, ``min_confidence`` and the on/off switches of Kalman, chop filter,
        panic exit and funding-flip filter; the defaults when None.
    disabled
        Further parts to switch off (names in :data:`PARTS`), e.g. for ablations.
    tuning
        Every threshold; the documented defaults when None.
    """

    def __init__(
        self,
        settings: BrainSettings | None = None,
        *,
        disabled: Iterable[str] = (),
        tuning: BrainTuning | None = None,
    ) -> None:
        self.settings = settings or BrainSettings()
        self.tuning = tuning or BrainTuning()
        off = set(disabled)
        unknown = sorted(off - set(PARTS))
        if unknown:
            raise ConfigError(
                f"unknown brain part(s) to disable: {', '.join(unknown)}; "
                f"choose from {', '.join(PARTS)}"
            )
        off |= {part for key, part in _SETTING_SWITCHES.items() if not getattr(self.settings, key)}
        self.enabled = frozenset(PARTS) - off
        self._memory: dict[str, SymbolMemory] = {}

    def reset(self, symbol: str | None = None) -> None:
        """Forget what was learned across candles, for one symbol or all of them."""
        if symbol is None:
            self._memory.clear()
        else:
            self._memory.pop(symbol, None)

    def decide(
        self,
        timestamp: datetime,
        symbol: str,
        features: Mapping[str, float],
        votes: Mapping[str, Vote],
        market: PositionContext | None = None,
    ) -> Decision:
        """Decide what to do on one closed candle.

        Parameters
        ----------
        timestamp
            The candle's open time (UTC).
        symbol
            The market, e.g. ``"BTC/USDT"``; each symbol keeps its own memory.
        features
            Feature name -> value of this candle (see :func:`tradebrain.features.list_features`).
        votes
            Model name -> (p_down, p_flat, p_up); an unusable vote is ignored with a reason.
        market
            Price, position, liquidation distance and data gaps; without it no stop or target
            is suggested and the liquidation guard is idle.

        Returns
        -------
        Decision
            Frozen; its ``filters`` and ``reasons`` tell the story of every step.
        """
        on, t = self.enabled, self.tuning
        reading = detect_regime(features, t.regime)
        draft = Draft(timestamp, symbol, reading, reasons=list(reading.reasons))
        memory = self._remember(symbol)
        draft.votes = self._clean_votes(votes, draft)
        atr_ratio, atr_pct = reading.atr_ratio, feature(features, ATR_PCT)

        spread_ratio = memory.spread.update(feature(features, "spread_bps"))
        size_factor = self._watch_gaps(memory, timestamp, market, draft)
        cooling = memory.funding.update(feature(features, "funding_rate_bps"))
        panic = memory.panic.update(features) if "panic_exit" in on else PanicReading(0.0)
        danger = danger_level(atr_ratio, spread_ratio, t.guards) if "risk_vote" in on else 0.0
        self._fuse(memory, features, danger, draft)
        action, confidence, threshold, deep = self._direction(draft, features)

        if panic.fired:
            draft.fire("panic_exit", "; ".join(panic.reasons))
            return draft.finish(Action.EXIT, panic.score)
        distance = market.liquidation_distance if market and market.position else None
        liquidation = liquidation_guard(distance, atr_pct, t.guards)
        if "liquidation_guard" in on and liquidation:
            draft.fire("liquidation_guard", liquidation)
            return draft.finish(Action.EXIT, 1.0)
        block = risk_block(atr_ratio, spread_ratio, t.guards) if "risk_block" in on else None
        if block:
            draft.fire("risk_block", block)
            action = Action.HOLD
        if "funding_flip" in on and cooling:
            draft.fire("funding_flip", memory.funding.reason())
            if action is Action.BUY:
                action = Action.HOLD
        if action is Action.HOLD:
            return draft.finish(action, confidence)

        room = 1.0 - threshold
        strength = min(1.0, max(0.0, (confidence - threshold) / room)) if room > 0 else 1.0
        size = t.base_risk * (0.5 + 0.5 * strength) * size_factor
        draft.reasons.append(
            f"size: {size:.2%} of equity at risk (strength {strength:.2f}, x{size_factor:g})"
        )
        stop, target = self._levels(action, reading, atr_pct, market, draft)
        maker = False
        if "maker_taker" in on:
            with_trend = deep and (reading.direction > 0) == (action is Action.BUY)
            maker, order_reason = order_type(spread_ratio, with_trend, t.filters)
            draft.fire("maker_taker", order_reason)
        return draft.finish(action, confidence, size=size, stop=stop, target=target, maker=maker)

    def _fuse(
        self,
        memory: SymbolMemory,
        features: Mapping[str, float],
        danger: float,
        draft: Draft,
    ) -> None:
        """Fuse the votes (plus the order-flow and risk votes) and smooth the result."""
        on = self.enabled
        votes = draft.votes
        if "order_flow_vote" in on and not any(family_of(m) == "order_flow" for m in votes):
            derived = order_flow_vote(features)
            if derived is not None:
                votes[ORDER_FLOW_FEATURE_VOTE] = derived[0]
                draft.fire("order_flow_vote", derived[1])
        fusion = fuse(
            votes,
            draft.reading.regime,
            self.settings.fusion_weights,
            danger=danger,
            adapt_to_regime="regime_weights" in on,
        )
        if fusion.tilt:
            draft.filters.append("regime_weights")
        draft.reasons.extend(fusion.reasons)
        if danger > 0:
            draft.fire("risk_vote", f"risk vote: danger {danger:.2f}, the risk family votes flat")
        draft.proba, draft.family_weights = fusion.proba, fusion.family_weights
        if "kalman" in on and votes:
            smoothed = memory.kalman.update(fusion.edge)
            draft.proba = smooth_proba(fusion.proba, smoothed)
            draft.fire(
                "kalman",
                f"Kalman smoothed the up-minus-down edge {fusion.edge:+.2f} -> {smoothed:+.2f}",
            )

    def _direction(
        self, draft: Draft, features: Mapping[str, float]
    ) -> tuple[Action, float, float, bool]:
        """Return the candidate action, its confidence, the bar and whether the trend is deep."""
        on, t, reading = self.enabled, self.tuning, draft.reading
        threshold = self.settings.min_confidence
        if "volatility_threshold" in on:
            raise_by, reason = volatility_threshold(reading.atr_ratio, t.filters)
            if reason:
                threshold += raise_by
                draft.fire("volatility_threshold", reason)
        deep_reason = trend_depth(
            reading.adx, reading.alignment, feature(features, "efficiency_ratio_20"), t.filters
        )
        deep = "trend_depth" in on and deep_reason is not None
        if deep and deep_reason:
            draft.fire("trend_depth", deep_reason)
        if "chop" in on and not deep:
            raise_by, reason = chop_filter(reading.atr_ratio, reading.cycle_power, t.filters)
            if reason:
                threshold += raise_by
                draft.fire("chop", reason)
        threshold = min(threshold, max(t.max_threshold, self.settings.min_confidence))
        p_down, p_flat, p_up = draft.proba
        action = Action.BUY if p_up >= p_down else Action.SELL
        confidence = max(p_up, p_down)
        if "volatility_cut" in on:
            factor, reason = volatility_cut(reading.atr_ratio, t.guards)
            if reason:
                confidence *= factor
                draft.fire("volatility_cut", reason)
        if confidence < threshold:
            why = f"below the bar {threshold:.2f}"
        elif max(p_up, p_down) <= p_flat:
            why = f"not above flat ({p_flat:.2f})"
        else:
            why = ""
        if why:
            draft.reasons.append(f"hold: best side {action.value} at {confidence:.2f} is {why}")
            return Action.HOLD, confidence, threshold, deep
        draft.reasons.append(f"{action.value}: confidence {confidence:.2f} >= bar {threshold:.2f}")
        return action, confidence, threshold, deep

    def _remember(self, symbol: str) -> SymbolMemory:
        if symbol not in self._memory:
            self._memory[symbol] = SymbolMemory.fresh(self.tuning)
        return self._memory[symbol]

    @staticmethod
    def _clean_votes(votes: Mapping[str, Vote], draft: Draft) -> dict[str, Vote]:
        clean: dict[str, Vote] = {}
        for model, vote in votes.items():
            usable = clean_vote(vote)
            if usable is None:
                draft.reasons.append(f"vote of {model} ignored: {vote!r} is not 3 probabilities")
            else:
                clean[model] = usable
        if not clean:
            draft.reasons.append("no model voted: nothing to act on")
        return clean

    def _watch_gaps(
        self,
        memory: SymbolMemory,
        timestamp: datetime,
        market: PositionContext | None,
        draft: Draft,
    ) -> float:
        """Track data gaps; return the size factor of gap-safe mode (1 when not in force)."""
        gap = memory.gap_before(timestamp, market.gap_candles if market else 0)
        if gap and "kalman" in self.enabled:
            memory.kalman.skip(gap)
        if "gap_safe" not in self.enabled:
            return 1.0
        factor, reason = memory.gap.update(gap)
        if reason:
            draft.fire("gap_safe", reason)
        return factor

    def _levels(
        self,
        action: Action,
        reading: RegimeReading,
        atr_pct: float,
        market: PositionContext | None,
        draft: Draft,
    ) -> tuple[float | None, float | None]:
        """Return the suggested stop and target for a BUY or SELL (None without price or ATR)."""
        if market is None or not math.isfinite(market.price) or math.isnan(atr_pct):
            draft.reasons.append(
                "no stop or target suggested: price or ATR unknown; risk sets them"
            )
            return None, None
        t = self.tuning
        reward_risk = t.reward_risk.get(reading.regime, t.default_reward_risk)
        stop_distance = t.stop_atr_multiple * atr_pct * market.price
        side = 1.0 if action is Action.BUY else -1.0
        stop = market.price - side * stop_distance
        target = market.price + side * reward_risk * stop_distance
        draft.reasons.append(
            f"stop {stop:.2f} at {t.stop_atr_multiple:g} ATR ({stop_distance:.2f}), target "
            f"{target:.2f} at reward:risk {reward_risk:g} for {reading.regime.value}"
        )
        return stop, target
