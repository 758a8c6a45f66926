"""No feature at time t reads candles after t: prefix invariance and future perturbation."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
from lookahead import cut_points, future_leaks, prefix_leaks

from tradebrain.features import compute_features, register_group, unregister_set
from tradebrain.features.registry import Bars

CUTS = 200


@pytest.fixture(scope="module")
def full_features(market: pl.DataFrame) -> pl.DataFrame:
    return compute_features(market, threads=1)


def test_features_up_to_a_cut_do_not_change_when_history_stops_there(
    market: pl.DataFrame, full_features: pl.DataFrame
) -> None:
    cuts = cut_points(market.height, CUTS, seed=1)
    assert prefix_leaks(market, full_features, cuts) == set()


def test_features_up_to_a_cut_do_not_change_when_later_candles_are_randomized(
    market: pl.DataFrame, full_features: pl.DataFrame
) -> None:
    cuts = cut_points(market.height, CUTS, seed=2)
    assert future_leaks(market, full_features, cuts) == set()


def _centered_mean(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    padded = np.concatenate(([np.nan], close, [np.nan]))
    centered = (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0
    return {"canary_centered_mean_3": (centered / close)[start:]}


def _next_close(bars: Bars, start: int) -> dict[str, np.ndarray]:
    close = bars["close"]
    following = np.append(close[1:], np.nan)
    return {"canary_next_return": (following / close - 1.0)[start:]}


@pytest.fixture
def canary_set() -> Iterator[str]:
    """A deliberately leaky feature set, registered only for the duration of one test."""
    register_group(
        "canary",
        "centered",
        ("close",),
        {"canary_centered_mean_3": (1, "LEAKS: mean of the previous, current and NEXT close")},
        _centered_mean,
    )
    register_group(
        "canary",
        "next",
        ("close",),
        {"canary_next_return": (0, "LEAKS: the next bar's return (shift -1)")},
        _next_close,
    )
    yield "canary"
    unregister_set("canary")


def test_the_leak_checks_catch_a_centered_window_and_a_shift_into_the_future(
    synthetic_candles: pl.DataFrame, canary_set: str
) -> None:
    candles = synthetic_candles.head(400)
    sets = [canary_set, "indicators"]
    full = compute_features(candles, sets, threads=1)
    cuts = cut_points(candles.height, 20, seed=3)
    expected = {"canary_centered_mean_3", "canary_next_return"}
    assert prefix_leaks(candles, full, cuts, sets) == expected
    assert future_leaks(candles, full, cuts, sets) == expected
