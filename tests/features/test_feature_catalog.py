"""The catalog of features and the shape of the output frame."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pytest

from tradebrain.exceptions import DataFormatError, UserInputError
from tradebrain.features import CANDLE_SETS, compute_features, list_features, register_group


def test_every_feature_is_listed_with_name_set_warmup_inputs_and_description() -> None:
    rows = list_features()
    assert rows
    for row in rows:
        assert set(row) == {"name", "set", "warmup", "inputs", "description"}
        assert row["name"] and row["set"] and row["inputs"] and row["description"]
        assert isinstance(row["warmup"], int) and row["warmup"] >= 0
    assert len({row["name"] for row in rows}) == len(rows)


def test_candles_alone_give_at_least_150_features() -> None:
    per_set = Counter(row["set"] for row in list_features(CANDLE_SETS))
    assert sum(per_set.values()) >= 150
    assert per_set["alpha158"] == 158
    assert set(per_set) == set(CANDLE_SETS)


def test_output_has_timestamp_first_then_one_float64_column_per_feature(
    synthetic_candles: pl.DataFrame,
) -> None:
    features = compute_features(synthetic_candles)
    assert features.columns[0] == "timestamp"
    assert features["timestamp"].equals(synthetic_candles["timestamp"])
    assert features.columns[1:] == [row["name"] for row in list_features(CANDLE_SETS)]
    assert all(dtype == pl.Float64 for dtype in features.drop("timestamp").dtypes)


def test_values_are_null_exactly_before_warmup_on_clean_candles(market: pl.DataFrame) -> None:
    features = compute_features(market)
    nulls = {name: features[name].null_count() for name in features.columns[1:]}
    warmups = {row["name"]: row["warmup"] for row in list_features()}
    assert {name: count for name, count in nulls.items() if count != warmups[name]} == {}
    assert all(np.isfinite(features.drop("timestamp").fill_null(0.0).to_numpy()).all(axis=0))


def test_sets_can_be_chosen_by_name(synthetic_candles: pl.DataFrame) -> None:
    features = compute_features(synthetic_candles, ["patterns", "regime"])
    expected = [row["name"] for row in list_features(["patterns", "regime"])]
    assert features.columns == ["timestamp", *expected]


def test_an_unknown_set_is_refused_with_the_known_ones(synthetic_candles: pl.DataFrame) -> None:
    with pytest.raises(UserInputError, match=r"known sets: .*atomic"):
        compute_features(synthetic_candles, ["astrology"])


def test_missing_columns_are_named(synthetic_candles: pl.DataFrame) -> None:
    with pytest.raises(UserInputError, match=r"needs columns \['volume'\]"):
        compute_features(synthetic_candles.drop("volume"), ["atomic"])


def test_unsorted_candles_are_refused(synthetic_candles: pl.DataFrame) -> None:
    with pytest.raises(DataFormatError, match="strictly increasing"):
        compute_features(synthetic_candles.reverse(), ["atomic"])


def test_a_feature_name_cannot_be_registered_twice() -> None:
    with pytest.raises(UserInputError, match="already registered"):
        register_group("dupes", "again", ("close",), {"rsi_14": (0, "again")}, lambda b, s: {})


def test_multi_timeframe_values_come_from_the_last_closed_higher_candle(
    synthetic_candles: pl.DataFrame,
) -> None:
    features = compute_features(synthetic_candles, ["multi_timeframe"])
    close = synthetic_candles["close"].to_numpy()
    hours = synthetic_candles["timestamp"].dt.hour().to_numpy()
    got = features["htf4_logret_1"].to_numpy()
    for row in range(40, 80):
        # The 4h candle containing this row closes on the row whose hour is 3 mod 4.
        closed = row if hours[row] % 4 == 3 else row - (hours[row] % 4) - 1
        expected = np.log(close[closed] / close[closed - 4])
        assert got[row] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scale", [1e-3, 7.5, 1e4])
def test_features_do_not_depend_on_the_price_level(
    synthetic_candles: pl.DataFrame, scale: float
) -> None:
    candles = synthetic_candles.head(800)
    base = compute_features(candles).drop("timestamp").fill_null(np.nan).to_numpy()
    prices = [pl.col(c) * scale for c in ("open", "high", "low", "close")]
    scaled = compute_features(candles.with_columns(prices)).drop("timestamp")
    got = scaled.fill_null(np.nan).to_numpy()
    close = np.isclose(got, base, rtol=1e-6, atol=1e-9) | (np.isnan(got) & np.isnan(base))
    assert [
        name for name, ok in zip(scaled.columns, close.all(axis=0), strict=True) if not ok
    ] == []
