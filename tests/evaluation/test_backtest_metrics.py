"""Backtest metrics: known values on hand-built equity curves and trades."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from tradebrain.evaluation.backtest_metrics import (
    backtest_metrics,
    max_drawdown,
    periods_per_year,
)
from tradebrain.execution.account import ClosedTrade

T = datetime(2024, 1, 1, tzinfo=UTC)


def trade(pnl: float, r: float = math.nan) -> ClosedTrade:
    return ClosedTrade("X", 1, T, T, 100.0, 101.0, 1.0, pnl, 0.1, 0.0, r, "exit")


def test_hourly_candles_annualise_by_365_25_days() -> None:
    assert periods_per_year("1h") == pytest.approx(8766.0)


def test_max_drawdown_is_the_largest_fall_from_a_peak() -> None:
    assert max_drawdown(np.array([110.0, 88.0, 120.0, 90.0]), 100.0) == pytest.approx(0.25)


def test_trade_statistics_from_known_trades() -> None:
    equity = np.array([100.0, 102.0, 101.0, 104.0])
    trades = [trade(3.0, 1.5), trade(-1.0, -0.5), trade(2.0, 1.0)]
    m = backtest_metrics(equity, 100.0, trades, "1d", exposure=np.array([0, 1, 1, 0.0]))
    assert m["total_return"] == pytest.approx(0.04)
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(5.0)
    assert m["expectancy"] == pytest.approx(4 / 3)
    assert m["average_r"] == pytest.approx(2 / 3)
    assert m["exposure"] == pytest.approx(0.5)
    assert m["n_trades"] == 3
    assert 0.0 <= m["psr"] <= 1.0 and m["dsr"] <= m["psr"] + 1e-12


def test_no_trades_and_flat_equity_give_nan_not_made_up_numbers() -> None:
    m = backtest_metrics(np.full(10, 100.0), 100.0, [], "1h")
    assert m["total_return"] == 0.0 and m["n_trades"] == 0
    assert math.isnan(m["sharpe"]) and math.isnan(m["win_rate"]) and math.isnan(m["psr"])


def test_more_trials_deflate_the_sharpe_ratio() -> None:
    rng = np.random.default_rng(0)
    equity = 100.0 * np.cumprod(1 + rng.normal(0.001, 0.01, 500))
    one = backtest_metrics(equity, 100.0, [], "1d", n_trials=1)
    many = backtest_metrics(equity, 100.0, [], "1d", n_trials=100, trials_variance=1e-3)
    assert one["dsr"] == pytest.approx(one["psr"])
    assert many["dsr"] < one["dsr"]
