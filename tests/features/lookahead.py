"""Checks that feature values at time t depend on candles up to t only, and agree across paths."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import polars as pl

from tradebrain.features import compute_features

RELATIVE_TOLERANCE = 1e-9


def as_matrix(features: pl.DataFrame) -> np.ndarray:
    """Return the feature columns as a float matrix, null as NaN, shape (rows, features)."""
    return features.drop("timestamp").fill_null(np.nan).to_numpy().astype(np.float64)


def column_scales(matrix: np.ndarray) -> np.ndarray:
    """Return a typical magnitude per column, the floor of the relative comparisons."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = np.nanmedian(np.abs(matrix), axis=0)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def mismatched(
    got: np.ndarray, expected: np.ndarray, scale: np.ndarray, tolerance: float = RELATIVE_TOLERANCE
) -> np.ndarray:
    """Return per column whether any row differs: null-ness, or value beyond the tolerance."""
    null_differs = np.isnan(got) != np.isnan(expected)
    with np.errstate(invalid="ignore"):
        bound = tolerance * np.maximum(np.abs(expected), scale)
        value_differs = np.abs(got - expected) > bound
    return (null_differs | np.nan_to_num(value_differs, nan=False)).any(axis=0)


def cut_points(rows: int, count: int, seed: int, first: int = 2) -> list[int]:
    """Return ``count`` distinct random cut rows in ``first .. rows-2``, sorted."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.arange(first, rows - 1), size=count, replace=False).tolist())


def prefix_leaks(
    candles: pl.DataFrame, full: pl.DataFrame, cuts: Iterable[int], sets: list[str] | None = None
) -> set[str]:
    """Return features whose values up to a cut change when the history stops at the cut."""
    names = np.array(full.columns[1:])
    reference = as_matrix(full)
    scale = column_scales(reference)
    leaks: set[str] = set()
    for cut in cuts:
        prefix = as_matrix(compute_features(candles.head(cut + 1), sets, threads=1))
        leaks.update(names[mismatched(prefix, reference[: cut + 1], scale)].tolist())
    return leaks


def randomized_future(candles: pl.DataFrame, cut: int, seed: int) -> pl.DataFrame:
    """Return ``candles`` with every candle after row ``cut`` replaced by random values."""
    rng = np.random.default_rng(seed)
    later = candles.height - cut - 1
    level = float(candles["close"][cut])
    close = level * np.exp(np.cumsum(rng.normal(0.0, 0.05, later)))
    open_ = close * np.exp(rng.normal(0.0, 0.02, later))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.02, later)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.02, later)))
    volume = rng.lognormal(3.0, 1.5, later)
    future = pl.DataFrame(
        {
            "timestamp": candles["timestamp"][cut + 1 :],
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )
    return pl.concat([candles.head(cut + 1).select(future.columns), future])


def future_leaks(
    candles: pl.DataFrame,
    full: pl.DataFrame,
    cuts: Iterable[int],
    sets: list[str] | None = None,
) -> set[str]:
    """Return features whose values up to a cut change when the candles after it are replaced."""
    names = np.array(full.columns[1:])
    reference = as_matrix(full)
    scale = column_scales(reference)
    leaks: set[str] = set()
    for number, cut in enumerate(cuts):
        changed = compute_features(randomized_future(candles, cut, seed=number), sets, threads=1)
        got = as_matrix(changed)[: cut + 1]
        leaks.update(names[mismatched(got, reference[: cut + 1], scale)].tolist())
    return leaks
