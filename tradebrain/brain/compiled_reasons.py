"""Full :class:`~tradebrain.brain.decision.Decision` objects from the compiled brain's arrays.

The compiled brain (:mod:`tradebrain.brain.compiled`) keeps numbers, not sentences. On request
this module rebuilds one candle's Decision: its votes (cleaned again with ``clean_vote``), the
filters that fired, and its reasons in plain words. The reasons are *reconstructed* from the
stored numbers: where the brain words a step with a pure function (regime, order-flow vote,
volatility bar, trend depth, chop, volatility cut, risk block, order type) that very function
is called again; the sentences of the stateful steps (gap-safe mode, fusion, risk vote, Kalman,
direction, panic, funding flip, size, stop and target) are written here in the brain's words
from the numbers the kernel kept. ``tests/brain/test_compiled.py`` compares them with the
brain's own reasons.
"""

from __future__ import annotations

import math

import numpy as np

from tradebrain.brain import compiled_kernels as k
from tradebrain.brain.brain import ORDER_FLOW_FEATURE_VOTE
from tradebrain.brain.compiled import ACTIONS, FAMILY_NAMES, FILTERS, REGIMES, DecisionArrays
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.filters import chop_filter, order_type, trend_depth, volatility_threshold
from tradebrain.brain.fusion import (
    ORDER_FLOW_SIGNALS,
    REGIME_TILTS,
    Vote,
    clean_vote,
    order_flow_vote,
)
from tradebrain.brain.guards import risk_block, volatility_cut
from tradebrain.brain.panic import HEADS
from tradebrain.brain.regime import CYCLE_PERIOD, Regime, detect_regime, feature

_EARLY_WORDS = ("volatility_threshold", "trend_depth", "chop", "volatility_cut")
_SORTED_FAMILIES = tuple(sorted(FAMILY_NAMES))
_ROW = (*k.FEATURES, CYCLE_PERIOD, *(name for name, _ in ORDER_FLOW_SIGNALS))
"""The features the reasons read (a row of only these is enough, and quick to build)."""


def rebuild_decision(
    arrays: DecisionArrays, bar: int, symbol: str, liquidation: str | None = None
) -> Decision:
    """Return the Decision of candle ``bar`` (see :meth:`DecisionArrays.decision`)."""
    code = int(arrays.action[bar])
    if code < 0:
        raise ValueError(f"no model voted on candle {bar}: the brain made no decision there")
    t = arrays.tuning
    row = _row(arrays, bar)
    numbers = dict(zip(k.NUMBERS, arrays.numbers[bar].tolist(), strict=True))
    regime = REGIMES[int(arrays.regime[bar])]
    reasons = list(detect_regime(row, t.regime).reasons)
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
    reasons.extend(_bar_words(arrays, row, numbers, fired))
    p_down, p_flat, p_up = (float(x) for x in arrays.proba[bar])
    side = Action.BUY if p_up >= p_down else Action.SELL
    confidence, threshold = numbers["confidence"], numbers["threshold"]
    if confidence < threshold:
        reasons.append(
            f"hold: best side {side.value} at {confidence:.2f} is below the bar {threshold:.2f}"
        )
    elif max(p_up, p_down) <= p_flat:
        reasons.append(
            f"hold: best side {side.value} at {confidence:.2f} is not above flat ({p_flat:.2f})"
        )
    else:
        reasons.append(f"{side.value}: confidence {confidence:.2f} >= bar {threshold:.2f}")
    action = ACTIONS[code]
    filters = int(arrays.filters[bar])
    if liquidation is not None and not filters >> FILTERS.index("panic_exit") & 1:
        reasons.append(liquidation)
        filters = early | 1 << FILTERS.index("liquidation_guard")
        action = Action.EXIT
    elif filters >> FILTERS.index("panic_exit") & 1:
        reasons.append("; ".join(_panic_words(arrays, bar)))
    else:
        reasons.extend(_override_words(arrays, bar, numbers, filters, regime))
    if action is Action.EXIT and liquidation is not None:
        confidence_out, size, stop, target, maker = 1.0, 0.0, None, None, False
    else:
        confidence_out = float(arrays.confidence[bar])
        size = float(arrays.size[bar])
        stop = _maybe(float(arrays.stop[bar]))
        target = _maybe(float(arrays.target[bar]))
        maker = bool(arrays.maker[bar])
    weights = arrays.family_weights[bar].tolist()
    return Decision(
        timestamp=arrays.timestamp(bar),
        symbol=symbol,
        action=action,
        confidence=confidence_out,
        size=size,
        stop=stop,
        target=target,
        regime=regime.value,
        votes=votes,
        filters=tuple(name for j, name in enumerate(FILTERS) if filters >> j & 1),
        reasons=tuple(reasons),
        maker=maker,
        proba=(p_down, p_flat, p_up),
        family_weights={
            family: weights[FAMILY_NAMES.index(family)]
            for family in _SORTED_FAMILIES
            if not math.isnan(weights[FAMILY_NAMES.index(family)])
        },
    )


def _row(arrays: DecisionArrays, bar: int) -> dict[str, float]:
    names = arrays.signals.feature_names
    values = arrays.signals.features[bar]
    return {name: float(values[names.index(name)]) for name in _ROW if name in names}


def _maybe(value: float) -> float | None:
    return None if math.isnan(value) else value


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


def _override_words(
    arrays: DecisionArrays, bar: int, numbers: dict[str, float], filters: int, regime: Regime
) -> list[str]:
    """Return the reasons of the risk block, funding flip, size, levels and order type."""
    t = arrays.tuning
    words: list[str] = []
    bit = {name: filters >> j & 1 for j, name in enumerate(FILTERS)}
    spread_ratio = numbers["spread_ratio"]
    if bit["risk_block"]:
        block = risk_block(numbers["atr_ratio"], spread_ratio, t.guards)
        if block:
            words.append(block)
    if bit["funding_flip"]:
        rate = numbers["funding_flip_rate"]
        turned = "positive to negative" if rate < 0 else "negative to positive"
        words.append(
            f"funding flip: funding turned {turned} ({rate:+.2f} bps); new longs cool down, "
            f"{int(numbers['funding_left'])} of {t.filters.funding_cooldown_bars} candles left"
        )
    action = ACTIONS[int(arrays.action[bar])]
    if action is Action.HOLD:
        return words
    size_factor = numbers["size_factor"]
    words.append(
        f"size: {float(arrays.size[bar]):.2%} of equity at risk "
        f"(strength {numbers['strength']:.2f}, x{size_factor:g})"
    )
    stop, target = float(arrays.stop[bar]), float(arrays.target[bar])
    if math.isnan(stop):
        words.append("no stop or target suggested: price or ATR unknown; risk sets them")
    else:
        reward_risk = t.reward_risk.get(regime, t.default_reward_risk)
        distance = t.stop_atr_multiple * numbers["atr_pct"] * float(arrays.closes[bar])
        words.append(
            f"stop {stop:.2f} at {t.stop_atr_multiple:g} ATR ({distance:.2f}), target "
            f"{target:.2f} at reward:risk {reward_risk:g} for {regime.value}"
        )
    if bit["maker_taker"]:
        deep = bool(filters >> FILTERS.index("trend_depth") & 1)
        with_trend = deep and (numbers["alignment"] > 0) == (action is Action.BUY)
        words.append(order_type(spread_ratio, with_trend, t.filters)[1])
    return words
