"""Tests of resampling candles to higher timeframes (tradebrain.data.resample)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from builders import skip_without_real_data
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tradebrain.data.resample import (
    candles_per_bucket,
    resample_candles,
    resample_with_report,
)
from tradebrain.data.schemas import SCHEMAS, Kind
from tradebrain.exceptions import UserInputError

REAL_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
CANDLE_SCHEMA = SCHEMAS[Kind.CANDLES].columns

T0 = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)


def candles(rows: list[tuple[datetime, float, float, float, float, float]]) -> pl.DataFrame:
    """Build a candle frame from ``(timestamp, open, high, low, close, volume)`` rows."""
    return pl.DataFrame(rows, schema=CANDLE_SCHEMA, orient="row")


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def hourly(start: datetime, hours: int) -> pl.DataFrame:
    """Return ``hours`` flat 1h candles from ``start``; volume 1 each, close = hour index."""
    return candles(
        [(start + timedelta(hours=i), 100.0, 101.0, 99.0, float(i), 1.0) for i in range(hours)]
    )


@pytest.fixture
def ten_minutes() -> pl.DataFrame:
    """Ten hand-written 1m candles, 00:00 to 00:09, making exactly two 5m candles."""
    return candles(
        [
            (minute(0), 100.0, 102.0, 99.0, 101.0, 1.5),
            (minute(1), 101.0, 103.0, 100.5, 102.5, 2.0),
            (minute(2), 102.5, 102.5, 98.0, 98.5, 0.25),
            (minute(3), 98.5, 99.0, 97.5, 98.0, 4.0),
            (minute(4), 98.0, 100.0, 97.0, 99.5, 1.25),
            (minute(5), 99.5, 99.75, 96.0, 96.5, 3.0),
            (minute(6), 96.5, 97.0, 95.5, 96.0, 0.5),
            (minute(7), 96.0, 104.0, 96.0, 103.0, 6.0),
            (minute(8), 103.0, 103.5, 101.0, 101.5, 2.5),
            (minute(9), 101.5, 102.0, 100.0, 100.25, 1.0),
        ]
    )


def test_resample_matches_hand_computed_five_minute_candles(ten_minutes: pl.DataFrame) -> None:
    expected = candles(
        [
            (minute(0), 100.0, 103.0, 97.0, 99.5, 9.0),
            (minute(5), 99.5, 104.0, 95.5, 100.25, 13.0),
        ]
    )
    assert_frame_equal(resample_candles(ten_minutes, "1m", "5m"), expected, check_exact=True)


def test_resample_ignores_the_order_of_the_input_rows(ten_minutes: pl.DataFrame) -> None:
    shuffled = ten_minutes.sample(fraction=1.0, shuffle=True, seed=7)
    assert_frame_equal(
        resample_candles(shuffled, "1m", "5m"),
        resample_candles(ten_minutes, "1m", "5m"),
        check_exact=True,
    )


def test_resample_drops_a_bucket_with_a_missing_minute(ten_minutes: pl.DataFrame) -> None:
    without_minute_seven = ten_minutes.filter(pl.col("timestamp") != minute(7))
    result, report = resample_with_report(without_minute_seven, "1m", "5m")
    assert result["timestamp"].to_list() == [minute(0)]
    assert report.dropped == (minute(5),)
    assert report.buckets_dropped == 1
    assert report.buckets_emitted == 1
    assert report.source_rows == 9


def test_resample_drops_the_still_forming_last_bucket(ten_minutes: pl.DataFrame) -> None:
    forming = candles([(minute(10), 100.25, 101.0, 100.0, 100.5, 1.0)])
    result, report = resample_with_report(pl.concat([ten_minutes, forming]), "1m", "5m")
    assert result["timestamp"].to_list() == [minute(0), minute(5)]
    assert report.dropped == (minute(10),)


def test_resample_drops_a_leading_bucket_that_starts_mid_way() -> None:
    result = resample_candles(hourly(T0 + timedelta(hours=1), 11), "1h", "4h")
    assert result["timestamp"].to_list() == [T0 + timedelta(hours=4), T0 + timedelta(hours=8)]


def test_four_hour_buckets_open_at_multiples_of_four_hours_utc() -> None:
    result = resample_candles(hourly(T0, 24), "1h", "4h")
    assert [t.hour for t in result["timestamp"]] == [0, 4, 8, 12, 16, 20]
    assert result["close"].to_list() == [3.0, 7.0, 11.0, 15.0, 19.0, 23.0]
    assert result["volume"].to_list() == [4.0] * 6


def test_daily_buckets_open_at_midnight_utc_and_drop_the_partial_day() -> None:
    start = datetime(2024, 3, 10, 0, tzinfo=UTC)
    result = resample_candles(hourly(start, 48 + 5), "1h", "1d")
    assert result["timestamp"].to_list() == [start, start + timedelta(days=1)]
    assert result["open"].to_list() == [100.0, 100.0]
    assert result["close"].to_list() == [23.0, 47.0]
    assert result["volume"].to_list() == [24.0, 24.0]


def test_weekly_buckets_open_on_monday_utc() -> None:
    monday = datetime(2024, 1, 1, tzinfo=UTC)
    days = candles([(monday + timedelta(days=i), 1.0, 2.0, 0.5, 1.5, 1.0) for i in range(22)])
    result = resample_candles(days, "1d", "1w")
    assert result["timestamp"].to_list() == [monday + timedelta(weeks=w) for w in range(3)]
    assert all(t.weekday() == 0 for t in result["timestamp"])


def test_resample_returns_exactly_the_candle_schema_for_naive_nanosecond_input(
    ten_minutes: pl.DataFrame,
) -> None:
    naive_ns = ten_minutes.with_columns(
        pl.col("timestamp").dt.replace_time_zone(None).cast(pl.Datetime("ns")),
        pl.col("volume").cast(pl.Float32),
    )
    result = resample_candles(naive_ns, "1m", "5m")
    assert result.schema == pl.Schema(CANDLE_SCHEMA)
    assert result["timestamp"].to_list() == [minute(0), minute(5)]


def test_resample_of_no_candles_is_an_empty_candle_frame() -> None:
    result = resample_candles(candles([]), "1m", "5m")
    assert result.height == 0
    assert result.schema == pl.Schema(CANDLE_SCHEMA)


def test_mark_price_candles_resample_like_trade_candles(ten_minutes: pl.DataFrame) -> None:
    mark = ten_minutes.with_columns(pl.lit(0.0).alias("volume"))
    result = resample_candles(mark, "1m", "5m", kind="mark")
    assert result.schema == pl.Schema(SCHEMAS[Kind.MARK].columns)
    assert result["close"].to_list() == [99.5, 100.25]
    assert result["volume"].to_list() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("source", "target", "ratio"),
    [("1m", "5m", 5), ("5m", "15m", 3), ("15m", "1h", 4), ("1h", "4h", 4), ("4h", "1d", 6)],
)
def test_candles_per_bucket_climbs_the_standard_ladder(
    source: str, target: str, ratio: int
) -> None:
    assert candles_per_bucket(source, target) == ratio


@pytest.mark.parametrize(
    ("source", "target", "says"),
    [
        ("5m", "1m", "must be larger"),
        ("5m", "5m", "must be larger"),
        ("5m", "7m", "not a whole multiple"),
        ("1h", "90m", "not a whole multiple"),
        ("7h", "1w", "Monday"),
        ("1m", "soon", "not understood"),
    ],
)
def test_resample_refuses_a_target_that_is_not_a_larger_whole_multiple(
    ten_minutes: pl.DataFrame, source: str, target: str, says: str
) -> None:
    with pytest.raises(UserInputError, match=says):
        resample_candles(ten_minutes, source, target)


def test_resample_refuses_a_candle_off_the_source_grid(ten_minutes: pl.DataFrame) -> None:
    off_grid = candles([(minute(10) + timedelta(seconds=30), 1.0, 1.0, 1.0, 1.0, 1.0)])
    with pytest.raises(UserInputError, match="off the 1m grid"):
        resample_candles(pl.concat([ten_minutes, off_grid]), "1m", "5m")


def test_resample_refuses_one_minute_candles_declared_as_five_minute(
    ten_minutes: pl.DataFrame,
) -> None:
    with pytest.raises(UserInputError, match="off the 5m grid"):
        resample_candles(ten_minutes, "5m", "15m")


def test_resample_refuses_repeated_timestamps(ten_minutes: pl.DataFrame) -> None:
    with pytest.raises(UserInputError, match="share a timestamp"):
        resample_candles(pl.concat([ten_minutes, ten_minutes.head(1)]), "1m", "5m")


def test_resample_refuses_missing_values(ten_minutes: pl.DataFrame) -> None:
    holed = ten_minutes.with_columns(
        pl.when(pl.col("timestamp") == minute(3)).then(None).otherwise(pl.col("high")).alias("high")
    )
    with pytest.raises(UserInputError, match="missing values"):
        resample_candles(holed, "1m", "5m")


def test_resample_refuses_kinds_that_are_not_candles() -> None:
    with pytest.raises(UserInputError, match="cannot resample trades"):
        resample_candles(candles([]), "1m", "5m", kind="trades")


@st.composite
def minute_candles(draw: st.DrawFn, volume: st.SearchStrategy[float]) -> pl.DataFrame:
    """Random valid 1m OHLCV, shuffled, with no, rare or frequent gaps, from a random minute."""
    start = draw(st.integers(min_value=0, max_value=60 * 24 * 3))
    length = draw(st.integers(min_value=0, max_value=150))
    one_gap_in = draw(st.sampled_from([0, 4, 40]))  # 0: no gaps
    rows = []
    for offset in range(length):
        if one_gap_in and draw(st.integers(min_value=1, max_value=one_gap_in)) == 1:
            continue
        prices = sorted(draw(st.lists(st.integers(1, 100_000), min_size=4, max_size=4)))
        low, high = prices[0] / 4, prices[3] / 4
        open_, close = prices[1] / 4, prices[2] / 4
        if draw(st.booleans()):
            open_, close = close, open_
        rows.append((minute(start + offset), open_, high, low, close, draw(volume)))
    return candles(rows).sample(fraction=1.0, shuffle=True, seed=0)


# Multiples of 1/1024 below 2**20 add up exactly in float64, so chained and direct sums match.
exact_volumes = st.integers(0, 2**30).map(lambda k: k / 1024)
any_volumes = st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(minute_candles(exact_volumes))
def test_chained_one_to_five_to_fifteen_minutes_equals_one_to_fifteen_directly(
    one_minute: pl.DataFrame,
) -> None:
    chained = resample_candles(resample_candles(one_minute, "1m", "5m"), "5m", "15m")
    direct = resample_candles(one_minute, "1m", "15m")
    assert_frame_equal(chained, direct, check_exact=True)


@settings(max_examples=150, deadline=None)
@given(minute_candles(any_volumes))
def test_resample_conserves_volume_and_price_range_over_complete_buckets(
    one_minute: pl.DataFrame,
) -> None:
    result = resample_candles(one_minute, "1m", "15m")
    emitted = set(result["timestamp"].to_list())
    inside = one_minute.filter(pl.col("timestamp").dt.truncate("15m").is_in(list(emitted)))
    assert inside.height == 15 * result.height
    assert result["volume"].sum() == pytest.approx(inside["volume"].sum(), rel=1e-12, abs=1e-9)
    if result.height:
        assert result["high"].max() == inside["high"].max()
        assert result["low"].min() == inside["low"].min()
    consistent = result.select(
        (pl.col("high") >= pl.max_horizontal("open", "close"))
        & (pl.col("low") <= pl.min_horizontal("open", "close"))
    )
    assert consistent.to_series().all()


def _read_real(name: str) -> pl.DataFrame:
    path = REAL_DATA / name
    if not path.exists():
        skip_without_real_data(
            f"real data file {path} is absent (see ../shared/data/real/SOURCES.md)"
        )
    frame = pl.read_parquet(path).rename({"date": "timestamp"})
    return frame.with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))


@pytest.mark.real_data
def test_real_btc_five_minute_candles_resample_to_the_real_hourly_candles() -> None:
    five_minute = _read_real("marketlab__BTC_USDT__5m.parquet")
    hourly_reference = _read_real("marketlab__BTC_USDT__1h.parquet")

    resampled, report = resample_with_report(five_minute, "5m", "1h")
    joined = resampled.join(hourly_reference, on="timestamp", suffix="_reference")

    # 2024-12-31 00:00 to 2026-02-19 03:00: 9,964 hours in both files, all complete.
    assert report.buckets_dropped == 0
    assert joined.height == 9_964
    for column in ("open", "high", "low", "close"):
        assert (joined[column] == joined[f"{column}_reference"]).all(), column
    # Volume: summing twelve 5m volumes can differ from the exchange's hourly total by an ulp.
    relative = (joined["volume"] - joined["volume_reference"]).abs() / joined["volume_reference"]
    assert (relative < 1e-14).all(), f"largest relative volume difference {relative.max()!r}"
