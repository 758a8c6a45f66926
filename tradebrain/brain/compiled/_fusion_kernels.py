"""Numba kernels of the compiled brain's fusion: the models' votes become one probability.

As ``fusion.py`` does: every usable vote is normalised and grouped by model family, weighted
by its own confidence; the brain adds an order-flow vote (when no order-flow model voted) and
a risk vote (when the market is dangerous); the families are weighted (tilted by regime) and
summed in the order of their sorted names; the Kalman smoother then smooths the edge
``p_up - p_down`` over the candles.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from tradebrain.brain.compiled._market_kernels import feature_value
from tradebrain.brain.compiled.codes import (
    B_ORDER_FLOW_VOTE,
    B_REGIME_WEIGHTS,
    B_RISK_VOTE,
    FAM_ORDER_FLOW,
    FAM_RISK,
    FAM_SEQUENCE,
    FAM_TABULAR,
    N_FAMILIES,
    P_KALMAN_Q,
    P_KALMAN_R,
    P_MIN_STRENGTH,
)


@numba.njit(cache=True)
def vote_confidence(v0, v1, v2):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """``fusion.vote_confidence``."""
    top = max(v0, v1, v2)
    return min(1.0, max(0.0, (top - 1.0 / 3.0) * 1.5))


@numba.njit(cache=True)
def fusion_scratch():  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Scratch arrays of one candle's fusion, allocated once per pass.

    Returns (strength_sum, vote_sum, order, present, family_vote, raw, clean): per family the
    summed strengths, the (family, 3) strength-weighted votes, the families in the order they
    came, which came, the (family, 3) family votes, the raw family weights; and one vote.
    """
    return (
        np.zeros(N_FAMILIES),
        np.zeros((N_FAMILIES, 3)),
        np.zeros(N_FAMILIES, dtype=np.int64),
        np.zeros(N_FAMILIES, dtype=np.bool_),
        np.zeros((N_FAMILIES, 3)),
        np.zeros(N_FAMILIES),
        np.zeros(3),
    )


@numba.njit(cache=True)
def _add_family_vote(  # type: ignore[no-untyped-def]
    f, clean, strength, present, order, n_present, strength_sum, vote_sum
):  # pragma: no cover - jitted
    """Add one vote of family ``f``; returns the number of families present."""
    if not present[f]:
        present[f] = True
        order[n_present] = f
        n_present += 1
    strength_sum[f] += strength
    for k in range(3):
        vote_sum[f, k] += strength * clean[k]
    return n_present


@numba.njit(cache=True)
def fuse(  # type: ignore[no-untyped-def]
    features, i, votes, families, flow_columns, flow_scales, danger, regime, enabled, p,
    tilt, tilted, weights, sorted_families, scratch, weights_out,
):  # fmt: skip  # pragma: no cover - jitted
    """``fusion.fuse`` of candle ``i``: the fused (p_down, p_flat, p_up) before smoothing.

    Writes each family's weight to ``weights_out[i]`` (NaN when absent). Returns
    (p_down, p_flat, p_up, number of votes, filter bits that fired).
    """
    strength_sum, vote_sum, order, present, family_vote, raw, clean = scratch
    early = 0
    n_present = 0
    for f in range(N_FAMILIES):
        present[f] = False
        strength_sum[f] = 0.0
        vote_sum[f, 0] = 0.0
        vote_sum[f, 1] = 0.0
        vote_sum[f, 2] = 0.0
    n_votes = 0
    for m in range(votes.shape[0]):
        if math.isnan(votes[m, i, 0]):
            continue
        usable = True
        for k in range(3):
            x = votes[m, i, k]
            if not (math.isfinite(x) and x >= 0):
                usable = False
        if not usable:
            continue
        total = votes[m, i, 0] + votes[m, i, 1] + votes[m, i, 2]
        if total <= 0:
            continue
        for k in range(3):
            clean[k] = votes[m, i, k] / total
        n_votes += 1
        strength = vote_confidence(clean[0], clean[1], clean[2]) + p[P_MIN_STRENGTH]
        n_present = _add_family_vote(
            families[m], clean, strength, present, order, n_present, strength_sum, vote_sum
        )
    if enabled[B_ORDER_FLOW_VOTE] and not present[FAM_ORDER_FLOW]:
        parts = 0
        flow = 0.0
        for k in range(flow_columns.shape[0]):
            x = feature_value(features, i, flow_columns[k])
            if not math.isnan(x):
                flow += math.tanh(x / flow_scales[k])
                parts += 1
        if parts:
            flow_score = flow / parts
            buying = max(flow_score, 0.0)
            selling = max(-flow_score, 0.0)
            clean[0] = 1.0 / 3.0 + selling / 3.0 - buying / 6.0
            clean[1] = 1.0 / 3.0 - abs(flow_score) / 6.0
            clean[2] = 1.0 / 3.0 + buying / 3.0 - selling / 6.0
            early |= 1 << B_ORDER_FLOW_VOTE
            n_votes += 1
            strength = vote_confidence(clean[0], clean[1], clean[2]) + p[P_MIN_STRENGTH]
            n_present = _add_family_vote(
                FAM_ORDER_FLOW, clean, strength, present, order, n_present, strength_sum, vote_sum
            )
    danger = min(1.0, max(0.0, danger))
    if danger > 0:
        clean[0] = (1.0 - danger) / 3.0
        clean[1] = (1.0 + 2.0 * danger) / 3.0
        clean[2] = (1.0 - danger) / 3.0
        n_present = _add_family_vote(
            FAM_RISK, clean, danger + p[P_MIN_STRENGTH], present, order, n_present,
            strength_sum, vote_sum,
        )  # fmt: skip
        early |= 1 << B_RISK_VOTE
    for j in range(n_present):
        f = order[j]
        for k in range(3):
            family_vote[f, k] = vote_sum[f, k] / strength_sum[f]
    shared = weights[FAM_SEQUENCE]
    if present[FAM_SEQUENCE] and present[FAM_TABULAR]:
        shared = shared / 2
    total = 0.0
    any_tilt = False
    for j in range(n_present):
        f = order[j]
        base = shared if f in (FAM_SEQUENCE, FAM_TABULAR) else weights[f]
        factor = 1.0
        if enabled[B_REGIME_WEIGHTS] and tilted[regime, f]:
            factor = tilt[regime, f]
            any_tilt = True
        confidence = vote_confidence(family_vote[f, 0], family_vote[f, 1], family_vote[f, 2])
        raw[f] = base * factor * (confidence + p[P_MIN_STRENGTH])
        total += raw[f]
    for f in range(N_FAMILIES):
        weights_out[i, f] = np.nan
    p_down = 1.0 / 3.0
    p_flat = 1.0 / 3.0
    p_up = 1.0 / 3.0
    if total > 0:
        if any_tilt:
            early |= 1 << B_REGIME_WEIGHTS
        p_down = 0.0
        p_flat = 0.0
        p_up = 0.0
        for f in sorted_families:
            if not present[f]:
                continue
            used = raw[f] / total
            weights_out[i, f] = used
            p_down += used * family_vote[f, 0]
            p_flat += used * family_vote[f, 1]
            p_up += used * family_vote[f, 2]
    return p_down, p_flat, p_up, n_votes, early


@numba.njit(cache=True)
def kalman_step(edge, level, variance, p):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``filters.KalmanEdge``: the smoothed edge; returns (level, variance) updated."""
    if math.isnan(level):
        level = edge
        variance = p[P_KALMAN_R]
    else:
        predicted = variance + p[P_KALMAN_Q]
        gain = predicted / (predicted + p[P_KALMAN_R])
        level += gain * (edge - level)
        variance = (1.0 - gain) * predicted
    return level, variance
