"""Full :class:`~tradebrain.brain.decision.Decision` objects from the compiled brain's arrays.

The compiled brain (:mod:`tradebrain.brain.compiled.brain`) keeps numbers, not sentences. On request
this module rebuilds one candle's Decision: its votes (cleaned again with ``clean_vote``), the
filters that fired, and its reasons in plain words. The reasons are *reconstructed* from the
stored numbers: where the brain words a step with a pure function (regime, order-flow vote,
volatility bar, trend depth, chop, volatility cut, risk block, forecast, bars) that very
function is called again, and the move from the position is made by the brain's own
``carry_out``; the sentences of the stateful steps (gap-safe mode, fusion, risk vote, Kalman,
panic, funding flip) are written here in the brain's words from the numbers the kernel kept.
``tests/brain/test_compiled.py`` compares them with the brain's own reasons.
"""

from __future__ import annotations

import math

import numpy as np

from tradebrain.brain.brain import (
    NO_FORECAST,
    ORDER_FLOW_FEATURE_VOTE,
    Move,
    bar_words,
    carry_out,
    forecast_words,
    plan_fields,
)
from tradebrain.brain.compiled import codes
from tradebrain.brain.compiled.brain import FAMILY_NAMES, FILTERS, REGIMES, DecisionArrays
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.filters import chop_filter, trend_depth, volatility_threshold
from tradebrain.brain.fusion import (
    ORDER_FLOW_SIGNALS,
    REGIME_TILTS,
    Vote,
    clean_vote,
    order_flow_vote,
)
from tradebrain.brain.guards import risk_block, volatility_cut
from tradebrain.brain.panic import HEADS
from tradebrain.brain.positioning import Forecast
from tradebrain.brain.regime import CYCLE_PERIOD, Regime, detect_regime, feature
from tradebrain.brain.tuning import BrainTuning

_EARLY_WORDS = ("volatility_threshold", "trend_depth", "chop", "volatility_cut")
_SORTED_FAMILIES = tuple(sorted(FAMILY_NAMES))
_ROW = (*codes.FEATURES, CYCLE_PERIOD, *(name for name, _ in ORDER_FLOW_SIGNALS))
"""The features the reasons read (a row of only these is enough, and quick to build)."""


def rebuild_decision(
    arrays: DecisionArrays,
    bar: int,
    symbol: str,
    exposure: float = 0.0,
    shorts: bool = True,
    liquidation: str | None = None,
) -> Decision:
    """Return the Decision of candle ``bar`` (see :meth:`DecisionArrays.decision`)."""
    if not arrays.asked[bar]:
        raise ValueError(f"the brain was not asked on candle {bar}: no vote and no forecast")
    t = arrays.tuning
    row = _row(arrays, bar)
    numbers = dict(zip(codes.NUMBERS, arrays.numbers[bar].tolist(), strict=True))
    regime = REGIMES[int(arrays.regime[bar])]
    reading = detect_regime(row, t.regime)
    reasons = list(reading.reasons)
    votes = _votes(arrays, bar, reasons)
    early = int(arrays.early_filters[bar])
    fired = {name for j, name in enumerate(FILTERS) if early >> j & 1}
    if "gap_safe" in fired:
        reasons.append(
            f"gap-safe mode: {int(numbers['gap_last'])} candle(s) missing; size "
            f"x{t.filters.gap_size_factor:g} for {int(numbers['gap_left'])} more candle(s)"
        )
    if "order_flow_vote" in fired:
        derived = order_flow_vote(row)
        if derived is not None:
            votes[ORDER_FLOW_FEATURE_VOTE] = derived[0]
            reasons.append(derived[1])
    reasons.append(_fusion_words(arrays, bar, regime, numbers))
    if "risk_vote" in fired:
        reasons.append(f"risk vote: danger {numbers['danger']:.2f}, the risk family votes flat")
    if "kalman" in fired:
        edge = numbers["fused_up"] - numbers["fused_down"]
        reasons.append(
            f"Kalman smoothed the up-minus-down edge {edge:+.2f} -> {numbers['smoothed_edge']:+.2f}"
        )
    plan = arrays.plan(bar)
    if plan.horizon:
        forecast = Forecast(numbers["beta"], numbers["sigma"], plan.horizon)
        reasons.append(
            forecast_words(
                numbers["z"], forecast, plan.expected, numbers["kelly_target"], t.positions
            )
        )
    else:
        reasons.append(NO_FORECAST)
    reasons.extend(_bar_words(arrays, row, numbers, fired))
    reasons.append(
        bar_words(plan.entry_bar, plan.exit_bar, numbers["raise_by"], plan.target, t.positions)
    )
    p_down, p_flat, p_up = (float(x) for x in arrays.proba[bar])
    filters = int(arrays.filters[bar])
    confidence = float(arrays.confidence[bar])
    fields = plan_fields(plan, 0.0)
    done = Move(Action.EXIT, 0.0)
    if arrays.panic[bar]:
        reasons.append("; ".join(_panic_words(arrays, bar)))
    elif liquidation is not None:
        reasons.append(liquidation)
        filters = early | 1 << FILTERS.index("liquidation_guard")
        confidence = 1.0
    else:
        reasons.extend(_override_words(numbers, filters, t))
        done = carry_out(
            plan, exposure, t, arrays.enabled,
            shorts=shorts, price=float(arrays.closes[bar]), atr_pct=numbers["atr_pct"],
            regime=regime, deep=bool(arrays.deep[bar]), trend_up=reading.direction > 0,
            spread_ratio=numbers["spread_ratio"],
        )  # fmt: skip
        reasons.extend(done.reasons)
        if done.maker_chosen:
            filters |= 1 << FILTERS.index("maker_taker")
        fields = plan_fields(plan, done.target_position)
    weights = arrays.family_weights[bar].tolist()
    return Decision(
        timestamp=arrays.timestamp(bar),
        symbol=symbol,
        action=done.action,
        confidence=confidence,
        size=done.size,
        stop=done.stop,
        target=done.target,
        regime=regime.value,
        votes=votes,
        filters=tuple(name for j, name in enumerate(FILTERS) if filters >> j & 1),
        reasons=tuple(reasons),
        maker=done.maker,
        proba=(p_down, p_flat, p_up),
        family_weights={
            family: weights[FAMILY_NAMES.index(family)]
            for family in _SORTED_FAMILIES
            if not math.isnan(weights[FAMILY_NAMES.index(family)])
        },
        target_position=fields["target_position"],
        expected_return=fields["expected_return"],
        horizon=fields["horizon"],
    )


def _row(arrays: DecisionArrays, bar: int) -> dict[str, float]:
    names = arrays.signals.feature_names
    values = arrays.signals.features[bar]
    return {name: float(values[names.index(name)]) for name in _ROW if name in names}


def _votes(arrays: DecisionArrays, bar: int, reasons: list[str]) -> dict[str, Vote]:
    """Return the cleaned votes of ``bar``, adding a reason for each unusable one."""
    clean: dict[str, Vote] = {}
    for model, proba in arrays.signals.votes.items():
        values = proba[bar]
        if np.isnan(values[0]):
            continue
        vote = (float(values[0]), float(values[1]), float(values[2]))
        usable = clean_vote(vote)
        if usable is None:
            reasons.append(f"vote of {model} ignored: {vote!r} is not 3 probabilities")
        else:
            clean[model] = usable
    if not clean:
        reasons.append("no model voted: nothing to act on")
    return clean


def _fusion_words(
    arrays: DecisionArrays, bar: int, regime: Regime, numbers: dict[str, float]
) -> str:
    weights = arrays.family_weights[bar].tolist()
    used = {
        family: weights[FAMILY_NAMES.index(family)]
        for family in _SORTED_FAMILIES
        if not math.isnan(weights[FAMILY_NAMES.index(family)])
    }
    if not used:
        return "fusion: no family with weight voted; uniform view"
    tilt: dict[str, float] = {}
    if "regime_weights" in arrays.enabled:
        tilt = {f: m for f, m in REGIME_TILTS.get(regime, {}).items() if f in used}
    tilt_words = ", ".join(f"{family} x{m:g}" for family, m in tilt.items()) if tilt else "none"
    p_flat = float(arrays.proba[bar, 1])
    return (
        f"fusion ({regime.value} tilt: {tilt_words}): weights "
        + ", ".join(f"{family} {w:.2f}" for family, w in used.items())
        + f" -> p_down {numbers['fused_down']:.2f}, p_flat {p_flat:.2f}, "
        f"p_up {numbers['fused_up']:.2f}"
    )


def _bar_words(
    arrays: DecisionArrays, row: dict[str, float], numbers: dict[str, float], fired: set[str]
) -> list[str]:
    """Return the reasons of the volatility bar, trend depth, chop filter and volatility cut."""
    t = arrays.tuning
    atr_ratio, adx = numbers["atr_ratio"], numbers["adx"]
    words = {
        "volatility_threshold": volatility_threshold(atr_ratio, t.filters)[1],
        "trend_depth": trend_depth(
            adx, numbers["alignment"], feature(row, "efficiency_ratio_20"), t.filters
        ),
        "chop": chop_filter(atr_ratio, numbers["cycle_power"], t.filters)[1],
        "volatility_cut": volatility_cut(atr_ratio, t.guards)[1],
    }
    return [text for name in _EARLY_WORDS if name in fired and (text := words[name])]


def _panic_words(arrays: DecisionArrays, bar: int) -> list[str]:
    s = arrays.tuning.panic
    score = float(arrays.panic_score[bar])
    fired = score >= s.threshold
    verdict = "exit everything" if fired else "no panic"
    words = [f"panic score {score:.2f} {'>=' if fired else '<'} {s.threshold:g}: {verdict}"]
    z = arrays.panic_z[bar]
    start = 0
    for h, (head, members) in enumerate(HEADS.items()):
        value = float(arrays.panic_heads[bar, h])
        if value > 0:
            listed = ", ".join(
                f"{name} z {sign * z[start + i]:+.1f}"
                for i, (name, sign) in enumerate(members)
                if (z[start + i] - s.z_start) / (s.z_full - s.z_start) > 0
            )
            words.append(f"{head} head {value:.2f} ({listed})")
        start += len(members)
    return words


def _override_words(numbers: dict[str, float], filters: int, t: BrainTuning) -> list[str]:
    """Return the reasons of the risk block and the funding flip."""
    words: list[str] = []
    bit = {name: filters >> j & 1 for j, name in enumerate(FILTERS)}
    if bit["risk_block"]:
        block = risk_block(numbers["atr_ratio"], numbers["spread_ratio"], t.guards)
        if block:
            words.append(block)
    if bit["funding_flip"]:
        rate = numbers["funding_flip_rate"]
        turned = "positive to negative" if rate < 0 else "negative to positive"
        words.append(
            f"funding flip: funding turned {turned} ({rate:+.2f} bps); new longs cool down, "
            f"{int(numbers['funding_left'])} of {t.filters.funding_cooldown_bars} candles left"
        )
    return words
