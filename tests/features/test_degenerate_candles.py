"""Candles without a trade or without volume give defined features, never a crash or infinity."""

from __future__ import annotations

import numpy as np
import polars as pl

from tests.builders import make_candles
from tradebrain.features import compute_features


def test_a_history_that_starts_without_any_movement_gets_adx_instead_of_a_crash() -> None:
    candles = make_candles(1200, seed=5)
    price = candles["open"][0]
    flat = pl.Series([price, price] + [None] * 1198)
    candles = candles.with_columns(
        [pl.when(pl.int_range(pl.len()) < 2).then(flat).otherwise(pl.col(c)).alias(c)
         for c in ("open", "high", "low", "close")]
    )  # fmt: skip
    features = compute_features(candles, ["indicators"])
    adx = features["adx_14"].to_numpy()
    assert np.isfinite(adx[-100:]).all()


def test_a_window_without_volume_has_no_vwap_distance_rather_than_an_infinite_one() -> None:
    candles = make_candles(200, seed=6)
    candles = candles.with_columns(
        pl.when(pl.int_range(pl.len()) >= 170).then(0.0).otherwise(pl.col("volume")).alias("volume")
    )
    features = compute_features(candles, ["atomic"])
    for column in ("vwap_dist_20", "vwap_z_20"):
        values = features[column].to_numpy()
        assert not np.isinf(values).any()
        assert np.isnan(values[-1])  # the last 20 candles traded nothing
        assert np.isfinite(values[150])  # before that, a normal value
