"""Performance metrics of a backtest, annualised by the candle timeframe.

Inputs are the equity curve marked at each candle's close, the starting cash and the closed
trades. Crypto trades around the clock: a year is 365.25 days of candles. Returns are simple
period returns, including the first candle against the starting cash. Where a metric is
undefined (no trades, no losses, flat equity) it is NaN, never a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.evaluation.statistics import (
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    sharpe_statistics,
)
from tradebrain.execution.account import ClosedTrade

SECONDS_PER_YEAR = 365.25 * 86400


class MetricRow(NamedTuple):
    """One row of a backtest's metrics table: the report's key, its label, its format."""

    key: str
    label: str
    pattern: str
    """A ``str.format`` pattern for the value, e.g. ``"{:+.2%}"``."""


METRIC_ROWS = (
    MetricRow("total_return", "total return", "{:+.2%}"),
    MetricRow("cagr", "CAGR", "{:+.2%}"),
    MetricRow("sharpe", "Sharpe", "{:.2f}"),
    MetricRow("sortino", "Sortino", "{:.2f}"),
    MetricRow("calmar", "Calmar", "{:.2f}"),
    MetricRow("max_drawdown", "max drawdown", "{:.2%}"),
    MetricRow("n_trades", "trades", "{:d}"),
    MetricRow("win_rate", "win rate", "{:.1%}"),
    MetricRow("profit_factor", "profit factor", "{:.2f}"),
    MetricRow("expectancy", "expectancy", "{:,.2f}"),
    MetricRow("average_r", "average R", "{:.2f}"),
    MetricRow("exposure", "exposure", "{:.1%}"),
    MetricRow("fees", "fees", "{:,.2f}"),
    MetricRow("funding", "funding", "{:,.2f}"),
    MetricRow("psr", "PSR", "{:.3f}"),
    MetricRow("dsr", "DSR", "{:.3f}"),
)
"""The metrics a backtest's summary shows, in order: the terminal's and the HTML page's."""


def format_metric(value: Any, pattern: str) -> str:
    """Return ``value`` formatted with ``pattern``; ``n/a`` for None (an undefined metric)."""
    return "n/a" if value is None else pattern.format(value)


def periods_per_year(timeframe: str) -> float:
    """Return how many candles of ``timeframe`` fit in a year (8766 for ``"1h"``)."""
    return SECONDS_PER_YEAR / timeframe_seconds(timeframe)


def period_returns(equity: np.ndarray, initial_cash: float) -> np.ndarray:
    """Return the (n,) simple returns of ``equity`` (n,), the first one against the cash."""
    curve = np.concatenate([[initial_cash], np.asarray(equity, dtype=np.float64)])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(curve[1:] / curve[:-1] - 1.0)


def max_drawdown(equity: np.ndarray, initial_cash: float) -> float:
    """Return the largest fall from a running peak, as a fraction in [0, 1]."""
    curve = np.concatenate([[initial_cash], np.asarray(equity, dtype=np.float64)])
    peaks = np.maximum.accumulate(curve)
    return float(np.max(1.0 - curve / peaks))


def backtest_metrics(
    equity: np.ndarray,
    initial_cash: float,
    trades: Sequence[ClosedTrade],
    timeframe: str,
    *,
    exposure: np.ndarray | None = None,
    fees: float = 0.0,
    funding: float = 0.0,
    n_trials: int = 1,
    trials_variance: float | None = None,
) -> dict[str, Any]:
    """Return the report's metrics (floats; NaN where undefined).

    Parameters
    ----------
    equity
        (n,) equity at each candle's close, quote currency.
    exposure
        (n,) signed position notional / equity at each close; exposure is the share of
        candles with a position.
    fees, funding
        Totals paid in quote currency (funding > 0 costs the account).
    n_trials, trials_variance
        For DSR: configurations tried (from the trial ledger) and the variance of their
        per-period Sharpe ratios; None uses the sampling variance of this Sharpe ratio.
    """
    return metrics_of_arrays(
        equity,
        initial_cash,
        np.array([t.pnl for t in trades], dtype=np.float64),
        np.array([t.r_multiple for t in trades], dtype=np.float64),
        timeframe,
        exposure=exposure,
        fees=fees,
        funding=funding,
        n_trials=n_trials,
        trials_variance=trials_variance,
    )


def metrics_of_arrays(
    equity: np.ndarray,
    initial_cash: float,
    pnl: np.ndarray,
    r_multiple: np.ndarray,
    timeframe: str,
    *,
    exposure: np.ndarray | None = None,
    fees: float = 0.0,
    funding: float = 0.0,
    n_trials: int = 1,
    trials_variance: float | None = None,
) -> dict[str, Any]:
    """Return :func:`backtest_metrics` from the trades' (k,) ``pnl`` and ``r_multiple`` arrays.

    For runs whose trades are arrays (the fast path): no trade record needs to be built.
    """
    equity = np.asarray(equity, dtype=np.float64)
    per_year = periods_per_year(timeframe)
    returns = period_returns(equity, initial_cash)
    n = returns.shape[0]
    final = float(equity[-1]) if n else initial_cash
    total_return = final / initial_cash - 1.0
    years = n / per_year
    cagr = (final / initial_cash) ** (1.0 / years) - 1.0 if years > 0 and final > 0 else math.nan
    stats = sharpe_statistics(returns)
    sharpe = stats.sharpe * math.sqrt(per_year)
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if n else math.nan
    mean = float(np.mean(returns)) if n else math.nan
    sortino = mean / downside * math.sqrt(per_year) if downside > 0 else math.nan
    drawdown = max_drawdown(equity, initial_cash) if n else math.nan
    calmar = cagr / drawdown if drawdown > 0 else math.nan
    pnl = np.asarray(pnl, dtype=np.float64)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    r_values = np.asarray(r_multiple, dtype=np.float64)
    r_values = r_values[np.isfinite(r_values)]
    psr = dsr = math.nan
    if math.isfinite(stats.sharpe) and stats.n_observations >= 2:
        psr = probabilistic_sharpe_ratio(
            stats.sharpe, stats.n_observations, stats.skewness, stats.kurtosis
        )
        variance = trials_variance
        if variance is None:
            variance = (
                1.0 - stats.skewness * stats.sharpe + (stats.kurtosis - 1) / 4 * stats.sharpe**2
            ) / (stats.n_observations - 1)
        dsr = deflated_sharpe_ratio(
            stats.sharpe,
            stats.n_observations,
            max(n_trials, 1),
            max(variance, 0.0),
            stats.skewness,
            stats.kurtosis,
        )
    return {
        "total_return": total_return,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "max_drawdown": drawdown,
        "win_rate": float(wins.size / pnl.size) if pnl.size else math.nan,
        "profit_factor": float(wins.sum() / -losses.sum()) if losses.size else math.nan,
        "expectancy": float(pnl.mean()) if pnl.size else math.nan,
        "average_r": float(r_values.mean()) if r_values.size else math.nan,
        "exposure": float(np.mean(exposure != 0.0)) if exposure is not None and n else math.nan,
        "n_trades": int(pnl.size),
        "fees": float(fees),
        "funding": float(funding),
        "final_equity": final,
        "sharpe_per_period": stats.sharpe,
        "psr": psr,
        "dsr": dsr,
        "n_trials": int(max(n_trials, 1)),
        "years": years,
    }
