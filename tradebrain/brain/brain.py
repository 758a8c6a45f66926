"""The Brain: the hybrid strategy's decision on each candle, every step with its reason.

On each candle, in order: read the regime; fold the candle into the stateful parts (spread
history, gap tracker, funding cool-down, panic history); fuse the model votes with
regime-adaptive family weights and the risk family's flat vote; smooth the fused edge with the
Kalman filter. Then turn the fused vote into money terms (:mod:`tradebrain.brain.positioning`):
the **expected return** over the forecast's horizon (the models' calibration says how much a
unit of forecast score is worth), a **target position** (fractional Kelly, capped), scaled by the
volatility cut and gap-safe mode, and the **entry bar** in round trips of the trading costs,
raised by the volatility threshold and the chop filter (not in a deep trend). The overrides
speak next, strongest first: panic exit (EXIT), liquidation guard (EXIT), risk block (no trade),
funding-flip cool-down (no long opens or grows). Last, the position rules move the current
exposure toward the target only when the edge beats the costs: enter above the entry bar, hold
while the forecast stays above the exit bar, resize outside the band.

A move that opens or grows a position gets a protective stop (``k x ATR``), a take-profit
target only when ``take_profit`` is set, the fraction of equity it risks at the stop (risk
decides the final size) and a maker/taker choice.

``Decision.action`` names the move: BUY (exposure up), SELL (down), EXIT (to flat), HOLD
(none). ``Decision.confidence`` is the fused probability that the horizon's move goes the
forecast's way (``p_up / (p_up + p_down)`` or its complement); for a panic EXIT, the panic
score; for a liquidation EXIT, 1.

A part is listed in ``Decision.filters`` when its condition held on this candle, whether or not
it changed the action; its reason says what it did. Every part can be switched off for
ablations: ``Brain(settings, disabled={"kalman", "chop"})`` (names in :data:`PARTS`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypedDict

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
from tradebrain.brain.positioning import (
    FLAT,
    Forecast,
    Plan,
    PositionRules,
    kelly_target,
    step,
)
from tradebrain.brain.regime import ATR_PCT, Regime, detect_regime, feature
from tradebrain.brain.tuning import PARTS, BrainTuning, PositionContext
from tradebrain.config import BrainSettings, Settings
from tradebrain.exceptions import ConfigError
from tradebrain.models.forecast import probit_score

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
        Fusion weights, the on/off switches of Kalman, chop filter, panic exit and
        funding-flip filter, and ``disabled_parts``; the defaults when None.
    disabled
        Further parts to switch off (names in :data:`PARTS`), e.g. for ablations.
    tuning
        Every threshold (:meth:`BrainTuning.from_settings` builds it from the settings); the
        default settings' when None.
    """

    def __init__(
        self,
        settings: BrainSettings | None = None,
        *,
        disabled: Iterable[str] = (),
        tuning: BrainTuning | None = None,
    ) -> None:
        self.settings = settings or BrainSettings()
        if tuning is None:  # the position rules of these settings, the default costs and risk
            tuning = BrainTuning.from_settings(Settings(brain=self.settings))
        self.tuning = tuning
        off = set(disabled) | set(self.settings.disabled_parts)
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
        forecast: Forecast | None = None,
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
            Price, position, exposure, liquidation distance and data gaps; without it the
            brain assumes a flat book, suggests no stop and the liquidation guard is idle.
        forecast
            The votes' calibration (beta, sigma over the horizon, horizon); without a usable
            one the expected return is 0 and no position opens.

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
        plan, confidence, deep = self._plan(draft, features, forecast, size_factor)
        exposure = market.exposure if market is not None else 0.0

        if panic.fired:
            draft.fire("panic_exit", "; ".join(panic.reasons))
            return draft.finish(Action.EXIT, panic.score, **plan_fields(plan, 0.0))
        distance = market.liquidation_distance if market and market.position else None
        liquidation = liquidation_guard(distance, atr_pct, t.guards)
        if "liquidation_guard" in on and liquidation:
            draft.fire("liquidation_guard", liquidation)
            return draft.finish(Action.EXIT, 1.0, **plan_fields(plan, 0.0))
        block = risk_block(atr_ratio, spread_ratio, t.guards) if "risk_block" in on else None
        if block:
            draft.fire("risk_block", block)
        no_new_long = "funding_flip" in on and bool(cooling)
        if no_new_long:
            draft.fire("funding_flip", memory.funding.reason())
        plan = replace(plan, hold_only=bool(block), no_new_long=no_new_long)
        done = carry_out(
            plan, exposure, t, on,
            shorts=market.shorts if market is not None else True,
            price=market.price if market is not None else math.nan,
            atr_pct=atr_pct, regime=reading.regime, deep=deep, trend_up=reading.direction > 0,
            spread_ratio=spread_ratio,
        )  # fmt: skip
        draft.reasons.extend(done.reasons)
        if done.maker_chosen:
            draft.filters.append("maker_taker")
        return draft.finish(
            done.action, confidence, size=done.size, stop=done.stop, target=done.target,
            maker=done.maker, **plan_fields(plan, done.target_position),
        )  # fmt: skip

    def _plan(
        self,
        draft: Draft,
        features: Mapping[str, float],
        forecast: Forecast | None,
        size_factor: float,
    ) -> tuple[Plan, float, bool]:
        """Return the plan (expected return, target, bars), the confidence and trend depth."""
        on, t, reading = self.enabled, self.tuning, draft.reading
        rules = t.positions
        p_down, _, p_up = draft.proba
        z = probit_score(p_down, p_up)
        mass = p_down + p_up
        confidence = max(p_up, p_down) / mass if mass > 0 else 0.5
        expected, target, horizon = 0.0, 0.0, 0
        if forecast is not None and forecast.usable:
            expected = forecast.beta * z * forecast.sigma
            target = kelly_target(expected, forecast.sigma, rules)
            horizon = forecast.horizon
            draft.reasons.append(forecast_words(z, forecast, expected, target, rules))
        else:
            draft.reasons.append(NO_FORECAST)
        raise_by = 0.0
        if "volatility_threshold" in on:
            extra, reason = volatility_threshold(reading.atr_ratio, t.filters)
            if reason:
                raise_by += extra
                draft.fire("volatility_threshold", reason)
        deep_reason = trend_depth(
            reading.adx, reading.alignment, feature(features, "efficiency_ratio_20"), t.filters
        )
        deep = "trend_depth" in on and deep_reason is not None
        if deep and deep_reason:
            draft.fire("trend_depth", deep_reason)
        if "chop" in on and not deep:
            extra, reason = chop_filter(reading.atr_ratio, reading.cycle_power, t.filters)
            if reason:
                raise_by += extra
                draft.fire("chop", reason)
        if "volatility_cut" in on:
            factor, reason = volatility_cut(reading.atr_ratio, t.guards)
            if reason:
                target *= factor
                draft.fire("volatility_cut", reason)
        target *= size_factor
        entry_bar = rules.entry_cost_multiple * rules.round_trip * (1.0 + raise_by)
        exit_bar = rules.exit_cost_multiple * rules.round_trip
        draft.reasons.append(bar_words(entry_bar, exit_bar, raise_by, target, rules))
        plan = Plan(expected, target, entry_bar, exit_bar, horizon=horizon)
        return plan, confidence, deep

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


NO_FORECAST = "no usable forecast calibration: expected return 0, no entry"


def forecast_words(
    z: float, forecast: Forecast, expected: float, target: float, rules: PositionRules
) -> str:
    """Return the reason that states the forecast in money terms."""
    return (
        f"forecast: score {z:+.2f} over {forecast.horizon} candles -> expected "
        f"{expected:+.2%} (beta {forecast.beta:.2f}, sigma {forecast.sigma:.2%}); "
        f"Kelly x{rules.kelly_fraction:g} target {target:+.2f} of equity "
        f"(cap {rules.max_position:g})"
    )


def bar_words(
    entry_bar: float, exit_bar: float, raise_by: float, target: float, rules: PositionRules
) -> str:
    """Return the reason that states the bars and the target after the filters."""
    return (
        f"bars: enter above {entry_bar:.2%} ({rules.entry_cost_multiple:g} round trips of "
        f"{rules.round_trip:.2%} x{1.0 + raise_by:.2f}), hold above {exit_bar:+.2%}; "
        f"target {target:+.2f}"
    )


@dataclass(frozen=True, slots=True)
class Move:
    """What the brain does with its plan given the position: the move and its reasons."""

    action: Action
    target_position: float
    size: float = 0.0
    stop: float | None = None
    target: float | None = None
    maker: bool = False
    maker_chosen: bool = False
    reasons: tuple[str, ...] = ()


def carry_out(
    plan: Plan,
    exposure: float,
    tuning: BrainTuning,
    enabled: frozenset[str],
    *,
    shorts: bool,
    price: float,
    atr_pct: float,
    regime: Regime,
    deep: bool,
    trend_up: bool,
    spread_ratio: float,
) -> Move:
    """Return the move from ``exposure`` that the plan asks for, after the position rules.

    Shared by :class:`Brain` and the compiled brain's strategy (which decides the rest of the
    candle up front): the step toward the target (:func:`~tradebrain.brain.positioning.step`),
    the action it amounts to and, for a move that opens or grows a position, its stop, its
    take-profit target (only with ``take_profit``), the equity it risks and the order type.
    """
    new, why = step(plan, exposure, tuning.positions, shorts)
    action = move(exposure, new)
    reasons = [why]
    opens = new * exposure < 0 or abs(exposure) < FLAT
    grows = opens or abs(new) > abs(exposure) + FLAT
    if action is Action.HOLD or action is Action.EXIT or not grows:
        return Move(action, new, reasons=tuple(reasons))
    added = abs(new) if opens else abs(new) - abs(exposure)
    long = new > 0
    stop, target = None, None
    risked = tuning.max_risk
    if not math.isfinite(price) or math.isnan(atr_pct):
        reasons.append("no stop suggested: price or ATR unknown; risk sets the protective levels")
    else:
        stop_fraction = tuning.stop_atr_multiple * atr_pct
        risked = min(tuning.max_risk, added * stop_fraction)
        side = 1.0 if long else -1.0
        stop = price * (1.0 - side * stop_fraction)
        words = "no take-profit: held while the forecast holds"
        if tuning.take_profit:
            reward_risk = tuning.reward_risk.get(regime, tuning.default_reward_risk)
            target = price * (1.0 + side * reward_risk * stop_fraction)
            words = f"target {target:.2f} at reward:risk {reward_risk:g} for {regime.value}"
        reasons.append(
            f"stop {stop:.2f} at {tuning.stop_atr_multiple:g} ATR ({stop_fraction:.2%}); "
            f"{words}; risks {risked:.2%} of equity"
        )
    maker = chosen = False
    if "maker_taker" in enabled:
        maker, order_reason = order_type(spread_ratio, deep and trend_up == long, tuning.filters)
        reasons.append(order_reason)
        chosen = True
    return Move(action, new, risked, stop, target, maker, chosen, tuple(reasons))


def move(exposure: float, new: float) -> Action:
    """Return the action that takes the exposure from ``exposure`` to ``new``."""
    if abs(new - exposure) < FLAT:
        return Action.HOLD
    if abs(new) < FLAT:
        return Action.EXIT
    return Action.BUY if new > exposure else Action.SELL


class PlanFields(TypedDict):
    """The Decision fields that report the plan and the resulting target position."""

    expected_return: float
    target_position: float
    horizon: int


def plan_fields(plan: Plan, new: float) -> PlanFields:
    """Return the Decision fields that report the plan and the resulting target position."""
    return {"expected_return": plan.expected, "target_position": new, "horizon": plan.horizon}
