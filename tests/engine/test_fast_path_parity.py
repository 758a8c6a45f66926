"""The array fast path and the event loop give the same trades and the same equity."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from builders import CandleMaker

from tradebrain.core.market import MarketType
from tradebrain.data.schemas import TIMESTAMP
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.engine import EngineResult
from tradebrain.engine.feed import ReplayFeed
from tradebrain.engine.strategy import Strategy
from tradebrain.execution.costs import FlatCosts
from tradebrain.strategies.builtin import BuyAndHold, PrecomputedSignals, SmaCross


def _both(candles: pl.DataFrame, make: type | object, config: BacktestConfig, **kw: object):
    results = []
    for path in ("fast", "events"):
        strategy = make() if callable(make) else make
        results.append(
            run_backtest(
                candles,
                strategy,  # type: ignore[arg-type]
                BacktestConfig(**{**config.__dict__, "path": path}),
                symbol="BTC/USDT",
                timeframe="1h",
                **kw,  # type: ignore[arg-type]
            )
        )
    return results


def _assert_same(fast: EngineResult, events: EngineResult) -> None:
    assert fast.path == "fast" and events.path == "events"
    assert len(fast.trades) == len(events.trades)
    for a, b in zip(fast.trades, events.trades, strict=True):
        assert (a.entry_time, a.exit_time, a.side, a.exit_reason) == (
            b.entry_time,
            b.exit_time,
            b.side,
            b.exit_reason,
        )
        for name in ("entry_price", "exit_price", "quantity", "pnl", "fees", "funding"):
            assert math.isclose(getattr(a, name), getattr(b, name), rel_tol=1e-12, abs_tol=1e-9)
    np.testing.assert_allclose(fast.equity, events.equity, rtol=1e-12)
    np.testing.assert_array_equal(fast.open_time, events.open_time)
    assert math.isclose(fast.fees, events.fees, rel_tol=1e-12)
    assert math.isclose(fast.funding, events.funding, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("slippage_bps", [0.0, 3.0])
def test_sma_cross_fast_path_equals_event_loop(candles: CandleMaker, slippage_bps: float) -> None:
    frame = candles(3000, seed=4)
    config = BacktestConfig(costs=FlatCosts(0.001, slippage_bps))
    fast, events = _both(frame, lambda: SmaCross(5, 20), config)
    assert len(fast.trades) > 20
    _assert_same(fast, events)


def test_buy_and_hold_fast_path_equals_event_loop(candles: CandleMaker) -> None:
    fast, events = _both(candles(500), BuyAndHold, BacktestConfig())
    _assert_same(fast, events)
    assert fast.open_positions and events.open_positions


def test_long_short_perp_with_funding_fast_path_equals_event_loop(candles: CandleMaker) -> None:
    frame = candles(2000, seed=9)
    rng = np.random.default_rng(3)
    targets = np.where(
        rng.random(2000) < 0.05, rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], 2000), np.nan
    )
    start = frame["timestamp"][0]
    funding = pl.DataFrame(
        {
            "timestamp": pl.Series(
                [start + timedelta(hours=8 * k) for k in range(2000 // 8)], dtype=TIMESTAMP
            ),
            "funding_rate": rng.normal(0.0001, 0.0003, 2000 // 8),
        }
    )
    config = BacktestConfig(costs=FlatCosts(0.0005, 2.0), market=MarketType.PERP, leverage=3.0)
    fast, events = _both(frame, lambda: PrecomputedSignals(targets), config, funding=funding)
    assert any(t.side < 0 for t in fast.trades)
    assert fast.funding != 0.0
    _assert_same(fast, events)


def test_high_leverage_liquidation_fast_path_equals_event_loop(candles: CandleMaker) -> None:
    frame = candles(1500, seed=2)
    targets = np.full(1500, np.nan)
    targets[::100] = 1.0
    targets[50::100] = -1.0
    config = BacktestConfig(costs=FlatCosts(0.0005), market=MarketType.PERP, leverage=50.0)
    fast, events = _both(frame, lambda: PrecomputedSignals(targets), config)
    assert any(t.exit_reason == "liquidation" for t in fast.trades)
    _assert_same(fast, events)


def test_incremental_sma_cross_decides_like_its_vectorised_targets(candles: CandleMaker) -> None:
    frame = candles(2000, seed=11)
    arrays = ReplayFeed(frame, "X", "1h").arrays()
    precomputed: Strategy = PrecomputedSignals(SmaCross(7, 30).targets(arrays))
    config = BacktestConfig(path="events")
    a = run_backtest(frame, SmaCross(7, 30), config, symbol="X", timeframe="1h")
    b = run_backtest(frame, precomputed, config, symbol="X", timeframe="1h")
    assert [t.entry_time for t in a.trades] == [t.entry_time for t in b.trades]
    np.testing.assert_array_equal(a.equity, b.equity)
