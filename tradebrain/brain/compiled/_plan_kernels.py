"""Numba kernels of the compiled brain's plan: from the fused view to a target and its bars.

The guards' danger (``guards.market_danger``), the expected return and Kelly target of
``positioning.py``, the filters that raise the entry bar or cut the target (volatility
threshold, trend depth, chop, volatility cut) and the overrides that do not depend on the
position (risk block, funding flip).
"""

from __future__ import annotations

import math

import numba

from tradebrain.brain.compiled._market_kernels import feature_value
from tradebrain.brain.compiled.codes import (
    B_CHOP,
    B_FUNDING_FLIP,
    B_RISK_BLOCK,
    B_TREND_DEPTH,
    B_VOLATILITY_CUT,
    B_VOLATILITY_THRESHOLD,
    C_EFFICIENCY,
    N_BETA,
    N_HORIZON,
    N_KELLY_TARGET,
    N_SIGMA,
    N_Z,
    P_BLOCK_ATR,
    P_BLOCK_SPREAD,
    P_CHOP_ATR,
    P_CHOP_POWER,
    P_CHOP_RAISE,
    P_CUT_ATR,
    P_CUT_FLOOR,
    P_DANGER_ATR_FULL,
    P_DANGER_ATR_START,
    P_DANGER_SPREAD_FULL,
    P_DANGER_SPREAD_START,
    P_DEEP_ADX,
    P_DEEP_ALIGNMENT,
    P_DEEP_EFFICIENCY,
    P_KELLY,
    P_MAX_POSITION,
    P_VOL_MAX,
    P_VOL_SLOPE,
    P_VOL_START,
)
from tradebrain.models.forecast import score_of


@numba.njit(cache=True)
def _ramp(value, start, full):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """``guards._ramp``."""
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, (value - start) / (full - start)))


@numba.njit(cache=True)
def market_danger(atr_ratio, spread_ratio, p):  # type: ignore[no-untyped-def]  # pragma: no cover
    """How dangerous the market is, in [0, 1]: the larger of the ATR and spread ramps."""
    return max(
        _ramp(atr_ratio, p[P_DANGER_ATR_START], p[P_DANGER_ATR_FULL]),
        _ramp(spread_ratio, p[P_DANGER_SPREAD_START], p[P_DANGER_SPREAD_FULL]),
    )


@numba.njit(cache=True)
def kelly_plan(p_down, p_up, forecast, i, p, numbers):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The expected return over the horizon and the Kelly target, before the filters.

    ``forecast[i]`` is the candle's (beta, sigma, horizon); the numbers the reasons quote go to
    the candle's row ``numbers``. Returns (confidence, expected return, target position).
    """
    mass = p_down + p_up
    confidence = 0.5
    if mass > 0:
        confidence = max(p_up, p_down) / mass
    z = score_of(p_down, p_up)
    beta = forecast[i, 0]
    sigma = forecast[i, 1]
    horizon = forecast[i, 2]
    expected = 0.0
    target = 0.0
    numbers[N_BETA] = beta
    numbers[N_SIGMA] = sigma
    numbers[N_HORIZON] = horizon
    if (
        math.isfinite(beta) and beta >= 0 and math.isfinite(sigma) and sigma > 0
        and horizon >= 1
    ):  # fmt: skip
        expected = beta * z * sigma
        if sigma > 0 and math.isfinite(expected):
            kelly_raw = p[P_KELLY] * expected / (sigma * sigma)
            target = min(p[P_MAX_POSITION], max(-p[P_MAX_POSITION], kelly_raw))
    else:
        numbers[N_HORIZON] = 0.0
    numbers[N_Z] = z
    numbers[N_KELLY_TARGET] = target
    return confidence, expected, target


@numba.njit(cache=True)
def filter_plan(  # type: ignore[no-untyped-def]
    features, i, columns, enabled, p, adx, atr_ratio, alignment, power, target
):  # pragma: no cover - jitted
    """The filters of ``filters.py`` and ``guards.volatility_cut`` on candle ``i``'s plan.

    Returns (target cut by volatility, raise of the entry bar, deep trend, filter bits).
    """
    early = 0
    raise_by = 0.0
    if enabled[B_VOLATILITY_THRESHOLD] and not (
        math.isnan(atr_ratio) or atr_ratio <= p[P_VOL_START]
    ):
        raise_by += min(p[P_VOL_MAX], p[P_VOL_SLOPE] * (atr_ratio - p[P_VOL_START]))
        early |= 1 << B_VOLATILITY_THRESHOLD
    efficiency = feature_value(features, i, columns[C_EFFICIENCY])
    deep = not (
        math.isnan(adx) or adx < p[P_DEEP_ADX] or abs(alignment) < p[P_DEEP_ALIGNMENT]
    ) and (math.isnan(efficiency) or not efficiency < p[P_DEEP_EFFICIENCY])
    deep = deep and enabled[B_TREND_DEPTH]
    if deep:
        early |= 1 << B_TREND_DEPTH
    if (
        enabled[B_CHOP]
        and not deep
        and not (math.isnan(atr_ratio) or atr_ratio > p[P_CHOP_ATR] or power >= p[P_CHOP_POWER])
    ):
        raise_by += p[P_CHOP_RAISE]
        early |= 1 << B_CHOP
    if enabled[B_VOLATILITY_CUT] and not (math.isnan(atr_ratio) or atr_ratio <= p[P_CUT_ATR]):
        factor = max(p[P_CUT_FLOOR], p[P_CUT_ATR] / atr_ratio)
        target *= factor
        early |= 1 << B_VOLATILITY_CUT
    return target, raise_by, deep, early


@numba.njit(cache=True)
def overrides(  # type: ignore[no-untyped-def]
    enabled, p, atr_ratio, spread_ratio, funding_left
):  # pragma: no cover - jitted
    """The overrides that do not read the position (the panic exit is the caller's).

    Returns (hold only: the risk block, no new long: the funding flip, filter bits).
    """
    late = 0
    hold_only = False
    if enabled[B_RISK_BLOCK] and (atr_ratio >= p[P_BLOCK_ATR] or spread_ratio >= p[P_BLOCK_SPREAD]):
        late |= 1 << B_RISK_BLOCK
        hold_only = True
    no_new_long = False
    if enabled[B_FUNDING_FLIP] and funding_left:
        late |= 1 << B_FUNDING_FLIP
        no_new_long = True
    return hold_only, no_new_long, late
