"""The oracle strategy: the most a policy could have kept of a planted edge, after costs.

On a synthetic world the generator knows ``m[t]``, the expected log return of candle ``t + 1``
as known at the close of candle ``t`` (the ``oracle_expected_return`` column). The oracle
strategy trades on ``m`` itself, with the same costs, market and position limit as a backtest:
all of the equity long (and, on a perpetual, short) or flat, decided at each close and held
over the next candle, paying ``fee + slippage`` on every unit of equity it turns over.

Its rule is a hysteresis on ``m`` in units of the one-way cost ``c``: enter long when
``m > enter * c`` (short when ``m < -enter * c``), leave when the expected return falls below
``exit * c`` (a short when it rises above ``-exit * c``). Trading every sign change would pay
the round trip on noise; holding while the edge lasts is what earns it. The thresholds are the
best of a small grid **chosen with hindsight** on the same candles, so the result is a ceiling
for any strategy of that policy class, not a strategy one could have run. The capture ratio of
a backtest is its after-cost log return divided by the oracle's on the same candles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from tradebrain.evaluation.backtest_metrics import periods_per_year
from tradebrain.exceptions import UserInputError

ENTER_GRID = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0, 5.0)
"""Entry thresholds tried, as multiples of the one-way cost (on ``m``, per candle)."""
EXIT_SHARES = (-0.5, 0.0, 0.5)
"""Exit thresholds tried, as shares of the entry threshold (negative: hold through a flip)."""


@dataclass(frozen=True)
class OracleResult:
    """The oracle strategy on one span of candles.

    Attributes
    ----------
    long_short
        False on spot (long or flat), True on a perpetual (long, short or flat).
    log_return
        After-cost log growth of the equity over the span.
    sharpe
        Annualised Sharpe ratio of the per-candle log growth.
    trades
        Positions opened (a flip from long to short counts as one).
    exposure
        Share of candles with a position.
    enter, exit
        The chosen thresholds, in multiples of the one-way cost.
    cost_per_side
        Fee plus slippage paid on each unit of equity traded (0.0011 = 0.11 %).
    candles
        Candles in the span (decisions made).
    """

    long_short: bool
    log_return: float
    sharpe: float
    trades: int
    exposure: float
    enter: float
    exit: float
    cost_per_side: float
    candles: int

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return {
            "market": "perp (long-short)" if self.long_short else "spot (long-only)",
            "log_return": self.log_return,
            "total_return": math.expm1(self.log_return),
            "sharpe": self.sharpe,
            "trades": self.trades,
            "exposure": self.exposure,
            "enter_cost_multiple": self.enter,
            "exit_cost_multiple": self.exit,
            "cost_per_side": self.cost_per_side,
            "candles": self.candles,
            "note": "thresholds chosen with hindsight on these candles: a ceiling, not a strategy",
        }


def oracle_strategy(
    close: np.ndarray,
    expected: np.ndarray,
    *,
    fee: float,
    slippage_bps: float,
    long_short: bool,
    timeframe: str,
    start: int = 0,
) -> OracleResult:
    """Return the best hysteresis rule on the known expected returns, after costs.

    Parameters
    ----------
    close
        ``(n,)`` closes; the position decided at ``t``'s close earns ``close[t+1] / close[t]``.
    expected
        ``(n,)`` expected log return of the next candle, known at each close.
    fee, slippage_bps
        Fee rate per side (0.001 = 0.1 %) and slippage in basis points per side.
    long_short
        Allow shorts (a perpetual); False for spot.
    timeframe
        Candle length, for the annualised Sharpe ratio.
    start
        First candle the oracle may decide on (e.g. the first candle a backtest trades).
    """
    close = np.asarray(close, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if close.shape != expected.shape or close.ndim != 1:
        raise UserInputError(
            f"close {close.shape} and expected returns {expected.shape} must be equal 1-D arrays"
        )
    if not (math.isfinite(fee) and fee >= 0 and math.isfinite(slippage_bps) and slippage_bps >= 0):
        raise UserInputError(f"fee {fee} and slippage {slippage_bps} bps must be finite and >= 0")
    cost = fee + slippage_bps / 1e4
    if cost >= 1.0:
        raise UserInputError(f"a cost of {cost:.0%} per side leaves nothing to trade with")
    start = max(0, int(start))
    growth = np.zeros(0)
    best: tuple[float, float, float] | None = None
    for enter in ENTER_GRID:
        for share in EXIT_SHARES:
            run = _hysteresis(close, expected, cost, long_short, enter, share * enter, start)
            total = float(run[0].sum())
            if best is None or total > best[0]:
                best, growth = (total, enter, share * enter), run[0]
    assert best is not None
    growth, trades, held = _hysteresis(close, expected, cost, long_short, best[1], best[2], start)
    spread = float(growth.std())
    per_year = periods_per_year(timeframe)
    sharpe = float(growth.mean() / spread * math.sqrt(per_year)) if spread > 0 else 0.0
    candles = int(growth.size)
    return OracleResult(
        long_short=long_short,
        log_return=best[0],
        sharpe=sharpe,
        trades=int(trades),
        exposure=float(held) / candles if candles else 0.0,
        enter=best[1],
        exit=best[2],
        cost_per_side=cost,
        candles=candles,
    )


@numba.njit(cache=True)
def _hysteresis(close, expected, cost, long_short, enter, leave, start):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Return (per-candle log growth, positions opened, candles held) of one threshold pair."""
    n = close.shape[0]
    size = max(n - 1 - start, 0)
    growth = np.zeros(size)
    position = 0
    trades = 0
    held = 0
    for t in range(start, n - 1):
        m = expected[t] / cost if cost > 0 else expected[t] * 1e12
        if m != m:
            m = 0.0
        new = position
        if position == 0:
            if m > enter:
                new = 1
            elif long_short and m < -enter:
                new = -1
        elif position == 1:
            if m < leave:
                new = 0
            if long_short and m < -enter:
                new = -1
        else:
            if m > -leave:
                new = 0
            if m > enter:
                new = 1
        step = 0.0
        if new != position:
            step += math.log(1.0 - abs(new - position) * cost)
            if new != 0:
                trades += 1
            position = new
        if position != 0:
            held += 1
            step += math.log(1.0 + position * (close[t + 1] / close[t] - 1.0))
        growth[t - start] = step
    return growth, trades, held
