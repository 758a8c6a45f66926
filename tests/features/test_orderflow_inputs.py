"""Trades, book snapshots and funding land on the candle that had closed when they were known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.data.schemas import TIMESTAMP, Kind, conform
from tradebrain.features.orderflow_inputs import ORDERFLOW_COLUMNS, orderflow_columns

START = datetime(2024, 1, 1, tzinfo=UTC)


def _candles(bars: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": pl.Series(
                [START + timedelta(minutes=i) for i in range(bars)], dtype=TIMESTAMP
            )
        }
        | {c: np.full(bars, 100.0) for c in ("open", "high", "low", "close", "volume")}
    )


def _trades(seconds: list[float], amounts: list[float], sides: list[str]) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "timestamp": [START + timedelta(seconds=s) for s in seconds],
            "id": [str(i) for i in range(len(seconds))],
            "price": 100.0,
            "amount": amounts,
            "side": sides,
        }
    )
    return conform(frame.with_columns(pl.col("timestamp").cast(TIMESTAMP)), Kind.TRADES)


def test_every_column_is_float64_and_nan_when_its_source_is_absent() -> None:
    frame = orderflow_columns(_candles(5), "1m")
    assert frame.columns == [*_candles(5).columns, *ORDERFLOW_COLUMNS]
    assert all(frame[c].dtype == pl.Float64 for c in ORDERFLOW_COLUMNS)
    assert all(frame[c].is_nan().all() for c in ORDERFLOW_COLUMNS)


def test_a_trade_at_the_close_belongs_to_the_next_candle() -> None:
    trades = _trades([0.0, 59.999999, 60.0], [1.0, 2.0, 4.0], ["buy", "sell", "buy"])
    frame = orderflow_columns(_candles(2), "1m", trades=trades)
    assert frame["buy_volume"].to_list() == [1.0, 4.0]
    assert frame["sell_volume"].to_list() == [2.0, 0.0]
    assert frame["trade_count"].to_list() == [2.0, 1.0]


def test_a_book_snapshot_at_the_close_is_not_seen_by_that_candle() -> None:
    rows = [(0, 99.0, 100.0), (60, 98.0, 101.0)]
    book = conform(
        pl.DataFrame(
            {
                "timestamp": [START + timedelta(seconds=s) for s, *_ in rows for _ in (0, 1)],
                "side": ["bid", "ask"] * len(rows),
                "price": [p for _, bid, ask in rows for p in (bid, ask)],
                "amount": 1.0,
                "is_snapshot": True,
                "update_id": [s for s, *_ in rows for _ in (0, 1)],
            }
        ).with_columns(pl.col("timestamp").cast(TIMESTAMP)),
        Kind.BOOK,
    )
    frame = orderflow_columns(_candles(2), "1m", book=book)
    assert frame["best_bid"].to_list() == [99.0, 98.0]
    assert frame["best_ask"].to_list() == [100.0, 101.0]


def test_a_funding_settlement_at_the_close_is_known_to_that_candle() -> None:
    funding = pl.DataFrame(
        {"timestamp": [START + timedelta(minutes=2), START + timedelta(minutes=3, microseconds=1)]}
        | {"funding_rate": [1e-4, -2e-4]}
    ).with_columns(pl.col("timestamp").cast(TIMESTAMP))
    frame = orderflow_columns(_candles(4), "1m", funding=funding)
    assert frame["funding_rate"].to_list()[1:] == [1e-4, 1e-4, -2e-4]
    assert np.isnan(frame["funding_rate"][0])  # candle 0 closed before the first settlement


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 719_000_000), st.floats(0.01, 10.0), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_decayed_pressure_equals_the_direct_sum_over_past_trades(
    trades: list[tuple[int, float, bool]],
) -> None:
    micros, amounts, buys = zip(*sorted(trades), strict=True)
    seconds = [m / 1e6 for m in micros]
    frame = orderflow_columns(
        _candles(12),
        "1m",
        trades=_trades(list(seconds), list(amounts), ["buy" if b else "sell" for b in buys]),
    )
    close = 60.0 * np.arange(1, 13)
    age = close[:, None] - np.array(seconds)[None, :]
    weight = np.where(age > 0, np.exp(-np.maximum(age, 0) / 30.0), 0.0)
    expected = weight @ (np.array(amounts) * np.array(buys))
    got = frame["buy_pressure_30s"].to_numpy()
    known = ~np.isnan(got)
    assert known[close >= 30.0 * 23.03].all()
    assert got[known] == pytest.approx(expected[known], rel=1e-12, abs=1e-300)


def test_a_large_trade_is_judged_against_earlier_candles_only() -> None:
    bars = 60
    seconds = [60.0 * i + 1.0 for i in range(bars)] + [60.0 * 55 + 2.0, 60.0 * 55 + 3.0]
    amounts = [1.0] * bars + [100.0, 2.0]
    order = np.argsort(seconds, kind="stable")
    trades = _trades([seconds[i] for i in order], [amounts[i] for i in order], ["buy"] * (bars + 2))
    frame = orderflow_columns(_candles(bars), "1m", trades=trades)
    assert frame["large_buy_volume"][55] == 102.0  # 2 is large against the past sizes of 1
    assert frame["large_trade_count"][56] == 0.0  # an ordinary trade later is not
    assert frame["clustered_large_trades"][55] == 1.0
    assert frame["large_buy_volume"][:50].is_nan().all()
