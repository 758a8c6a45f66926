"""Numba kernels of the compiled brain's panic model (``PanicExitModel``), one candle at a time.

Each panic feature keeps the non-NaN values of the last ``Q_PANIC_WINDOW`` candles sorted, so
its median and its median absolute deviation are read without sorting; every
``Q_PANIC_REFRESH`` candles they become the robust centre and scale of the z-scores. A head
scores the mean of its ``Q_PANIC_STRONGEST`` strongest points, summed as numpy's ``sum`` does
(sequentially, largest first), and the score weighs the heads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from tradebrain.brain.compiled._market_kernels import feature_value
from tradebrain.brain.compiled._window_kernels import (
    insert_sorted,
    remove_sorted,
    sorted_median,
    sorted_median_deviation,
)
from tradebrain.brain.compiled.codes import P_MAD_TO_SIGMA, P_Z_FULL, P_Z_START

_FLOAT_MAX = float(np.finfo(np.float64).max)  # what np.nan_to_num makes of +inf


@numba.njit(cache=True)
def read_panic_row(  # type: ignore[no-untyped-def]
    features, i, columns, log_scaled, row
):  # pragma: no cover - jitted
    """Write candle ``i``'s panic features to ``row``, ``log1p`` of those log-scaled."""
    for k in range(columns.shape[0]):
        x = feature_value(features, i, columns[k])
        if log_scaled[k] and not math.isnan(x):
            x = math.log1p(max(x, 0.0))
        row[k] = x


@numba.njit(cache=True)
def refresh_robust_scale(  # type: ignore[no-untyped-def]
    ordered, counts, p, median, scale
):  # pragma: no cover - jitted
    """Set each feature's ``median`` and ``scale`` (MAD as sigma; 0 when unknown)."""
    for k in range(counts.shape[0]):
        m = sorted_median(ordered[k], counts[k])
        s = p[P_MAD_TO_SIGMA] * sorted_median_deviation(ordered[k], counts[k], m)
        median[k] = 0.0 if math.isnan(m) else m
        scale[k] = 0.0 if math.isnan(s) else s


@numba.njit(cache=True)
def panic_points(  # type: ignore[no-untyped-def]
    values, median, scale, signs, p, z_out, points
):  # pragma: no cover - jitted
    """``PanicExitModel._score`` up to the points: z-scores to ``z_out``, points to ``points``."""
    span = p[P_Z_FULL] - p[P_Z_START]
    for k in range(values.shape[0]):
        z = signs[k] * (values[k] - median[k]) / scale[k] if scale[k] > 0 else 0.0
        if math.isnan(z):
            z = 0.0
        elif math.isinf(z):
            z = _FLOAT_MAX if z > 0 else -_FLOAT_MAX
        z_out[k] = z
        points[k] = min(1.0, max(0.0, (z - p[P_Z_START]) / span))


@numba.njit(cache=True)
def head_score(  # type: ignore[no-untyped-def]
    points, start, stop, strongest, top
):  # pragma: no cover - jitted
    """Mean of the ``strongest`` largest points of one head, summed largest first as numpy does.

    ``top`` is scratch room for the head's points, sorted here from the largest down.
    """
    size = stop - start
    for j in range(size):
        x = points[start + j]
        slot = j
        while slot > 0 and top[slot - 1] < x:
            top[slot] = top[slot - 1]
            slot -= 1
        top[slot] = x
    total = top[0]
    for j in range(1, min(strongest, size)):
        total += top[j]
    return total / strongest


@numba.njit(cache=True)
def panic_score(  # type: ignore[no-untyped-def]
    points, head_bounds, head_weights, strongest, top, heads_out
):  # pragma: no cover - jitted
    """The weighted sum of the head scores; each head's score goes to ``heads_out``.

    Head ``h`` owns ``points[head_bounds[h]:head_bounds[h + 1]]``.
    """
    score = 0.0
    for h in range(head_weights.shape[0]):
        head = head_score(points, head_bounds[h], head_bounds[h + 1], strongest, top)
        heads_out[h] = head
        score += head_weights[h] * head
    return score


@numba.njit(cache=True)
def remember_panic_row(  # type: ignore[no-untyped-def]
    row, seen, window, history, ordered, counts
):  # pragma: no cover - jitted
    """Keep ``row`` as the ``seen``-th candle of the window, dropping the one it replaces.

    ``history`` is a ring of the last ``window`` rows; ``ordered[k, :counts[k]]`` holds
    feature ``k``'s non-NaN values of the ring, sorted.
    """
    slot = seen % window
    if seen >= window:
        for k in range(row.shape[0]):
            old = history[slot, k]
            if not math.isnan(old):
                remove_sorted(ordered[k], counts[k], old)
                counts[k] -= 1
    for k in range(row.shape[0]):
        history[slot, k] = row[k]
        if not math.isnan(row[k]):
            insert_sorted(ordered[k], counts[k], row[k])
            counts[k] += 1
