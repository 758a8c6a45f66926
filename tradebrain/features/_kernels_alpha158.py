"""One numba call for Alpha158's 29 rolling operators over one window.

The operators are those of :func:`tradebrain.features.alpha158` (Qlib conventions); this
kernel only fuses them, so that one window costs one call from Python (the live path asks for
a single row, where per-call overhead dominates) and no numpy temporaries are built for the
ratios. Rows of the result follow :data:`OPERATOR_ORDER`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tradebrain.features.rolling import (
    mean_std_into,
    rolling_corr,
    rolling_extremes,
    rolling_linear_fit,
    rolling_quantiles_rank,
    rolling_sum,
)

OPERATOR_ORDER = (
    "ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK", "RSV",
    "IMAX", "IMIN", "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN", "SUMD",
    "VMA", "VSTD", "WVMA", "VSUMP", "VSUMN", "VSUMD",
)  # fmt: skip
"""Operator of each row of :func:`window_operators`' result."""


@njit(cache=True, nogil=True)
def _positive(x: float) -> float:
    """``max(x, 0)`` with NaN kept (``np.maximum``)."""
    return x if (x > 0.0 or x != x) else 0.0


@njit(cache=True, nogil=True)
def _mean_std(values: np.ndarray, window: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the rolling mean and sample standard deviation (compiled callers)."""
    mean = np.empty(values.shape[0] - start)
    std = np.empty(values.shape[0] - start)
    mean_std_into(values, window, 1, start, mean, std)
    return mean, std


@njit(cache=True, nogil=True)
def _bar_inputs(
    close: np.ndarray, volume: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Return log(volume + 1), close ratio, log volume ratio, |ratio - 1| * volume, and 8
    series: up/down counts and moves of the close and the volume (NaN on the first bar)."""
    n = close.shape[0]
    log_volume = np.log(volume + 1.0)
    ratio = np.empty(n)
    volume_ratio = np.empty(n)
    weighted = np.empty(n)
    moves = [np.empty(n) for _ in range(8)]  # separate arrays: the allocator reuses them
    for i in range(n):
        if i == 0:
            ratio[0] = volume_ratio[0] = weighted[0] = math.nan
            for k in range(8):
                moves[k][0] = math.nan
            continue
        ratio[i] = close[i] / close[i - 1]
        volume_ratio[i] = math.log(volume[i] / volume[i - 1] + 1.0)
        weighted[i] = abs(ratio[i] - 1.0) * volume[i]
        change = close[i] - close[i - 1]
        volume_change = volume[i] - volume[i - 1]
        moves[0][i] = 1.0 if change > 0.0 else 0.0
        moves[1][i] = 1.0 if change < 0.0 else 0.0
        moves[2][i] = _positive(change)
        moves[3][i] = _positive(-change)
        moves[4][i] = abs(change)
        moves[5][i] = _positive(volume_change)
        moves[6][i] = _positive(-volume_change)
        moves[7][i] = abs(volume_change)
    return log_volume, ratio, volume_ratio, weighted, moves


@njit(cache=True, nogil=True)
def window_operators(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    d: int,
    start: int,
    out: np.ndarray,
) -> None:
    """Fill ``out``, shape ``(29, n - start)``, with the 29 operators over window ``d``.

    ``out`` comes from numpy, which advises the kernel to back it with huge pages (numba's
    own allocations do not get that, and their page faults cost more than the loop here).
    """
    eps = 1e-12
    n = close.shape[0]
    rows = n - start
    log_volume, ratio, volume_ratio, weighted, moves = _bar_inputs(close, volume)
    mean, std = _mean_std(close, d, start)
    slope, rsquare, residual = rolling_linear_fit(close, d, start)
    highest, lowest, high_at, low_at = rolling_extremes(high, low, d, start)
    q_low, q_high, rank = rolling_quantiles_rank(close, d, 0.2, 0.8, start)
    corr = rolling_corr(close, log_volume, d, start)
    cord = rolling_corr(ratio, volume_ratio, d, start)
    sums = [rolling_sum(move, d, start) for move in moves]
    volume_mean, volume_std = _mean_std(volume, d, start)
    weighted_mean, weighted_std = _mean_std(weighted, d, start)
    for r in range(rows):
        i = start + r
        now = close[i]
        out[0, r] = (close[i - d] if i >= d else math.nan) / now
        out[1, r] = mean[r] / now
        out[2, r] = std[r] / now
        out[3, r] = slope[r] / now
        out[4, r] = rsquare[r]
        out[5, r] = residual[r] / now
        out[6, r] = highest[r] / now
        out[7, r] = lowest[r] / now
        out[8, r] = q_high[r] / now
        out[9, r] = q_low[r] / now
        out[10, r] = rank[r]
        out[11, r] = (now - lowest[r]) / (highest[r] - lowest[r] + eps)
        out[12, r] = high_at[r] / d
        out[13, r] = low_at[r] / d
        out[14, r] = (high_at[r] - low_at[r]) / d
        out[15, r] = corr[r]
        out[16, r] = cord[r]
        out[17, r] = sums[0][r] / d
        out[18, r] = sums[1][r] / d
        out[19, r] = (sums[0][r] - sums[1][r]) / d
        out[20, r] = sums[2][r] / (sums[4][r] + eps)
        out[21, r] = sums[3][r] / (sums[4][r] + eps)
        out[22, r] = (sums[2][r] - sums[3][r]) / (sums[4][r] + eps)
        out[23, r] = volume_mean[r] / (volume[i] + eps)
        out[24, r] = volume_std[r] / (volume[i] + eps)
        out[25, r] = weighted_std[r] / (weighted_mean[r] + eps)
        out[26, r] = sums[5][r] / (sums[7][r] + eps)
        out[27, r] = sums[6][r] / (sums[7][r] + eps)
        out[28, r] = (sums[5][r] - sums[6][r]) / (sums[7][r] + eps)
