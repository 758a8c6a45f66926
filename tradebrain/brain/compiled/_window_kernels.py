"""Numba kernels of the compiled brain that copy numpy's and Python's arithmetic exactly.

Sorted windows kept up to date one value at a time (insert, remove) and their medians, as
numpy computes a median (``(low + high) / 2`` for an even count), and Python's ``round``.
The spread regime, the gap tracker and the panic model of
:mod:`tradebrain.brain.compiled.kernels` build on them.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def insert_sorted(values, count, x):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Insert ``x`` into the sorted ``values[:count]`` (room for one more)."""
    k = count
    while k > 0 and values[k - 1] > x:
        values[k] = values[k - 1]
        k -= 1
    values[k] = x


@numba.njit(cache=True)
def remove_sorted(values, count, x):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Remove one copy of ``x`` from the sorted ``values[:count]``."""
    k = np.searchsorted(values[:count], x)
    for j in range(k, count - 1):
        values[j] = values[j + 1]


@numba.njit(cache=True)
def sorted_median(values, count):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """numpy's median of the sorted ``values[:count]`` (NaN when empty)."""
    if count == 0:
        return np.nan
    h = count // 2
    if count % 2 == 1:
        return values[h]
    return (values[h - 1] + values[h]) / 2.0


@numba.njit(cache=True)
def sorted_median_deviation(values, count, m):  # type: ignore[no-untyped-def]  # pragma: no cover
    """numpy's median of ``|values[:count] - m|`` with ``m`` their median (sorted input)."""
    if count == 0:
        return np.nan
    right = np.searchsorted(values[:count], m, side="right")
    left = right - 1
    h = count // 2
    previous = 0.0
    current = 0.0
    for _ in range(h + 1):
        if left >= 0 and (right >= count or m - values[left] <= values[right] - m):
            deviation = m - values[left]  # == abs(values[left] - m), exactly
            left -= 1
        else:
            deviation = values[right] - m
            right += 1
        previous = current
        current = deviation
    if count % 2 == 1:
        return current
    return (previous + current) / 2.0


@numba.njit(cache=True)
def round_half_even(x):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Python's ``round(x)`` of a finite float."""
    floor = math.floor(x)
    rest = x - floor
    if rest > 0.5:
        return int(floor) + 1
    if rest < 0.5:
        return int(floor)
    return int(floor) + (int(floor) % 2)
