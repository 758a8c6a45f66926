"""Numba kernels of the compiled brain that read the market before any model is heard.

One step per candle of each piece of the brain's memory: the regime
(``regime.detect_regime``), the spread regime (the spread over the median of past spreads),
the gap tracker (``SymbolMemory.gap_before``) with its gap-safe mode, and the funding-flip
cool-down. Each step takes the state it carries from candle to candle and returns it updated;
:func:`tradebrain.brain.compiled.kernels.decide_all` threads it through the pass.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from tradebrain.brain.compiled._window_kernels import (
    insert_sorted,
    remove_sorted,
    round_half_even,
    sorted_median,
)
from tradebrain.brain.compiled.codes import (
    C_ADX,
    C_ALIGNMENT,
    C_ATR_PCT,
    C_ATR_RATIO,
    C_CYCLE_POWER,
    C_RANGE_LONG,
    C_RANGE_SHORT,
    P_BOX_ATR,
    P_BREAKOUT_ATR,
    P_BREAKOUT_SHARE,
    P_CYCLE_POWER,
    P_GAP_FACTOR,
    P_HIGH_VOL,
    P_LOW_VOL,
    P_STACKED,
    P_TREND_ADX,
    Q_FUNDING_COOLDOWN,
    Q_GAP_BARS,
    Q_GAP_DENOMINATOR,
    Q_GAP_NUMERATOR,
    Q_SPREAD_MIN,
    Q_SPREAD_WINDOW,
    R_BREAKOUT,
    R_CHOPPY,
    R_DOWN,
    R_HIGH_VOL,
    R_LOW_VOL,
    R_RANGING,
    R_UNKNOWN,
    R_UP,
)


@numba.njit(cache=True)
def feature_value(features, i, column):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``regime.feature``: the value, or NaN when absent or not finite."""
    if column < 0:
        return np.nan
    x = features[i, column]
    return x if math.isfinite(x) else np.nan


@numba.njit(cache=True)
def regime_code(features, i, columns, p):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``regime.detect_regime``: (code, adx, atr_ratio, alignment, cycle power)."""
    adx = feature_value(features, i, columns[C_ADX])
    atr_ratio = feature_value(features, i, columns[C_ATR_RATIO])
    alignment = feature_value(features, i, columns[C_ALIGNMENT])
    if math.isnan(adx) or math.isnan(atr_ratio) or math.isnan(alignment):
        return R_UNKNOWN, np.nan, np.nan, 0.0, 0.0
    power = feature_value(features, i, columns[C_CYCLE_POWER])
    if math.isnan(power):
        power = 0.0
    stacked = abs(alignment) >= p[P_STACKED]
    short_range = feature_value(features, i, columns[C_RANGE_SHORT])
    long_range = feature_value(features, i, columns[C_RANGE_LONG])
    share = short_range / long_range if long_range > 0 else np.nan
    trend_adx = p[P_TREND_ADX]
    if (
        atr_ratio >= p[P_BREAKOUT_ATR]
        and stacked
        and adx < trend_adx
        and share >= p[P_BREAKOUT_SHARE]
    ):
        code = R_BREAKOUT
    elif adx >= trend_adx and stacked:
        code = R_UP if alignment > 0 else R_DOWN
    elif atr_ratio >= p[P_HIGH_VOL]:
        code = R_HIGH_VOL
    elif atr_ratio <= p[P_LOW_VOL]:
        code = R_LOW_VOL
    else:
        atr_pct = feature_value(features, i, columns[C_ATR_PCT])
        box = short_range / atr_pct if atr_pct > 0 else np.nan
        if adx < trend_adx and (power >= p[P_CYCLE_POWER] or box <= p[P_BOX_ATR]):
            code = R_RANGING
        else:
            code = R_CHOPPY
    return code, adx, atr_ratio, alignment, power


@numba.njit(cache=True)
def spread_ratio_step(  # type: ignore[no-untyped-def]
    spread, ring, ordered, count, next_slot, q
):  # pragma: no cover - jitted
    """``SpreadRegime``: this spread over the median of the past ones, then remember it.

    ``ring`` holds the last spreads in arrival order and ``ordered[:count]`` the same values
    sorted; ``next_slot`` is where the ring writes next. Returns (ratio, count, next_slot),
    the ratio NaN while the history is short or the spread unknown.
    """
    window = q[Q_SPREAD_WINDOW]
    median = 0.0
    if count >= q[Q_SPREAD_MIN]:
        median = sorted_median(ordered, count)
    ratio = np.nan
    if median > 0 and math.isfinite(spread):
        ratio = spread / median
    if math.isfinite(spread) and window > 0:
        if count == window:
            remove_sorted(ordered, count, ring[next_slot])
            count -= 1
        ring[next_slot] = spread
        next_slot = (next_slot + 1) % window
        insert_sorted(ordered, count, spread)
        count += 1
    return ratio, count, next_slot


@numba.njit(cache=True)
def missing_candles(  # type: ignore[no-untyped-def]
    stamp, last_time, seen_any, usual, q
):  # pragma: no cover - jitted
    """``SymbolMemory.gap_before``: the candles missing before the candle opening at ``stamp``.

    ``usual`` is the shortest step seen so far (microseconds, -1 before the second candle);
    a step longer than ``GAP_STEP_RATIO`` usual steps (rounded as Python rounds) is a gap.
    Returns (missing candles, usual step updated).
    """
    gap = 0
    if seen_any:
        step = stamp - last_time
        if usual >= 0:
            scaled = usual * q[Q_GAP_NUMERATOR]
            bound = scaled // q[Q_GAP_DENOMINATOR]
            rest = scaled - bound * q[Q_GAP_DENOMINATOR]
            if 2 * rest > q[Q_GAP_DENOMINATOR] or (
                2 * rest == q[Q_GAP_DENOMINATOR] and bound % 2 == 1
            ):
                bound += 1
            if step > bound:
                gap = round_half_even(float(step) / float(usual)) - 1
        if step > 0 and (usual < 0 or step < usual):
            usual = step
    return max(0, gap), usual


@numba.njit(cache=True)
def gap_safe_step(gap, left, last, p, q):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``guards.gap_safe``: the size factor after a data gap, for ``Q_GAP_BARS`` candles.

    Returns (size factor, candles left in gap-safe mode, size of the last gap).
    """
    if gap > 0:
        left = q[Q_GAP_BARS]
        last = gap
    elif left:
        left -= 1
    size_factor = p[P_GAP_FACTOR] if left else 1.0
    return size_factor, left, last


@numba.njit(cache=True)
def funding_flip_step(  # type: ignore[no-untyped-def]
    funding, sign, left, rate, q
):  # pragma: no cover - jitted
    """The funding-flip cool-down: ``Q_FUNDING_COOLDOWN`` candles after the funding rate flips.

    Returns (sign of the last non-zero rate, candles of cool-down left, rate at the last flip).
    """
    left = max(0, left - 1)
    if not (math.isnan(funding) or funding == 0):
        now = 1 if funding > 0 else -1
        if sign and now != sign:
            left = q[Q_FUNDING_COOLDOWN]
            rate = funding
        sign = now
    return sign, left, rate
