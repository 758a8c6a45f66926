"""Backtest metrics: known values on hand-built equity curves and trades, and agreement with an
independent implementation (empyrical) and the PSR paper's formula on real equity curves."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import empyrical
import numpy as np
import pandas as pd
import polars as pl
import pytest
from builders import real_file

from tradebrain.evaluation.backtest_metrics import (
    METRIC_ROWS,
    backtest_metrics,
    format_metric,
    max_drawdown,
    period_returns,
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


# --- against an independent implementation, on real equity curves -------------------------

REAL_CURVES = [
    ("marketlab__BTC_USDT__1h.parquet", "1h"),
    ("marketlab__ETH_USDT-PERP__1h_futures.parquet", "1h"),
    ("freqtrade__ETH_BTC__5m.parquet", "5m"),
]


def _real_equity_curves(name: str) -> list[np.ndarray]:
    """Two equity curves on a real market, starting from 10,000: buy and hold, and a trend
    rule (long while the close is above its 48-candle mean, else flat: long flat stretches,
    so the downside deviation differs from the standard deviation)."""
    close = pl.read_parquet(real_file(name))["close"].to_numpy().astype(np.float64)
    hold = 10_000.0 * close / close[0]
    mean = np.convolve(close, np.ones(48) / 48, mode="full")[: close.size]
    long = np.concatenate([[False], (close > mean)[:-1]])  # decided on the previous close
    long[:48] = False
    moves = np.concatenate([[1.0], close[1:] / close[:-1]])
    trend = 10_000.0 * np.cumprod(np.where(long, moves, 1.0))
    return [hold, trend]


@pytest.mark.real_data
@pytest.mark.parametrize(("name", "timeframe"), REAL_CURVES)
def test_sharpe_sortino_cagr_calmar_and_drawdown_agree_with_empyrical_on_real_curves(
    name: str, timeframe: str
) -> None:
    per_year = periods_per_year(timeframe)
    for equity in _real_equity_curves(name):
        ours = backtest_metrics(equity, 10_000.0, [], timeframe)
        returns = pd.Series(np.concatenate([[10_000.0], equity])).pct_change().dropna()
        assert ours["sharpe"] == pytest.approx(
            empyrical.sharpe_ratio(returns, annualization=per_year), rel=1e-9
        )
        assert ours["sortino"] == pytest.approx(
            empyrical.sortino_ratio(returns, annualization=per_year), rel=1e-9
        )
        assert ours["cagr"] == pytest.approx(
            empyrical.cagr(returns, annualization=per_year), rel=1e-9
        )
        assert ours["max_drawdown"] == pytest.approx(-empyrical.max_drawdown(returns), rel=1e-9)
        assert ours["calmar"] == pytest.approx(
            empyrical.calmar_ratio(returns, annualization=per_year), rel=1e-9
        )


def _psr_from_scratch(returns: np.ndarray) -> float:
    """PSR(0) as Bailey and López de Prado (2012) write it, from plain sample moments."""
    n = returns.size
    mean = returns.mean()
    centred = returns - mean
    sharpe = mean / returns.std(ddof=1)
    m2 = np.mean(centred**2)
    skew = np.mean(centred**3) / m2**1.5
    kurt = np.mean(centred**4) / m2**2
    z = sharpe * math.sqrt(n - 1) / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


@pytest.mark.real_data
@pytest.mark.parametrize(("name", "timeframe"), REAL_CURVES)
def test_the_reported_psr_is_the_papers_formula_on_the_real_returns(
    name: str, timeframe: str
) -> None:
    for equity in _real_equity_curves(name):
        returns = period_returns(equity, 10_000.0)
        reported = backtest_metrics(equity, 10_000.0, [], timeframe)["psr"]
        assert reported == pytest.approx(_psr_from_scratch(returns), abs=1e-9)
        assert 0.0 < reported < 1.0
        sharpe = empyrical.sharpe_ratio(pd.Series(returns), annualization=1)
        assert backtest_metrics(equity, 10_000.0, [], timeframe)["sharpe_per_period"] == (
            pytest.approx(sharpe, rel=1e-9)
        )


def test_every_summary_row_names_a_metric_the_report_holds() -> None:
    metrics = backtest_metrics(np.array([100.0, 102.0, 101.0]), 100.0, [trade(2.0)], "1h")
    assert {row.key for row in METRIC_ROWS} <= set(metrics)
    assert len({row.label for row in METRIC_ROWS}) == len(METRIC_ROWS)


def test_a_metric_is_formatted_by_its_row_and_an_undefined_one_reads_n_a() -> None:
    pattern = {row.key: row.pattern for row in METRIC_ROWS}
    assert format_metric(0.1234, pattern["total_return"]) == "+12.34%"
    assert format_metric(7, pattern["n_trades"]) == "7"
    assert format_metric(None, pattern["sharpe"]) == "n/a"
