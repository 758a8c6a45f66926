"""Portfolio marks: the peak only rises; the first mark of a UTC day sets that day's start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.core.market import MarketType
from tradebrain.core.orders import Fill, Side
from tradebrain.execution.portfolio import Portfolio

T0 = datetime(2024, 1, 1, 22, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _holding_ten(market: MarketType = MarketType.SPOT) -> Portfolio:
    """A portfolio of 10 000 that bought 10 X at 100 (no fee)."""
    portfolio = Portfolio(cash=10_000.0, market=market)
    portfolio.apply_fill(Fill(T0, "o1", "X", Side.BUY, 10.0, 100.0, 0.0))
    return portfolio


def test_a_new_portfolio_starts_with_its_cash_as_the_peak_and_the_days_start() -> None:
    portfolio = Portfolio(cash=5_000.0)
    assert portfolio.peak_equity == portfolio.day_start_equity == 5_000.0
    assert portfolio.day == ""
    snapshot = portfolio.snapshot(T0, {})
    assert (snapshot.peak_equity, snapshot.day_start_equity) == (5_000.0, 5_000.0)


def test_the_first_mark_of_a_utc_day_sets_the_days_starting_equity() -> None:
    portfolio = _holding_ten()
    assert portfolio.mark(T0, {"X": 90.0}) == pytest.approx(9_900.0)
    assert (portfolio.day, portfolio.day_start_equity) == ("2024-01-01", 9_900.0)
    portfolio.mark(T0 + HOUR, {"X": 80.0})  # 23:00, the same day: the start stays
    assert portfolio.day_start_equity == 9_900.0
    portfolio.mark(T0 + 2 * HOUR, {"X": 70.0})  # midnight: a new UTC day starts at 9 700
    assert (portfolio.day, portfolio.day_start_equity) == ("2024-01-02", 9_700.0)
    portfolio.mark(T0 + 3 * HOUR, {"X": 120.0})
    assert portfolio.day_start_equity == 9_700.0
    snapshot = portfolio.snapshot(T0 + 3 * HOUR, {"X": 120.0})
    assert snapshot.day_start_equity == 9_700.0
    assert snapshot.equity == pytest.approx(10_200.0)


def test_the_peak_only_rises() -> None:
    portfolio = _holding_ten(MarketType.PERP)
    portfolio.mark(T0, {"X": 130.0})
    assert portfolio.peak_equity == pytest.approx(10_300.0)
    portfolio.mark(T0 + HOUR, {"X": 60.0})
    assert portfolio.peak_equity == pytest.approx(10_300.0)
    portfolio.mark(T0 + 30 * HOUR, {"X": 140.0})
    assert portfolio.peak_equity == pytest.approx(10_400.0)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 30), st.floats(1.0, 1_000.0)), min_size=1, max_size=60),
    market=st.sampled_from(MarketType),
)
def test_marks_keep_the_running_peak_and_the_first_equity_of_each_day(
    steps: list[tuple[int, float]], market: MarketType
) -> None:
    portfolio = _holding_ten(market)
    when = T0
    peak = 10_000.0  # the starting cash
    day_start: dict[str, float] = {}
    for hours, price in steps:
        when += hours * HOUR
        equity = portfolio.mark(when, {"X": price})
        peak = max(peak, equity)
        day_start.setdefault(when.date().isoformat(), equity)
        assert portfolio.peak_equity == pytest.approx(peak)
        assert portfolio.day == when.date().isoformat()
        assert portfolio.day_start_equity == day_start[portfolio.day]
