"""A fast replay of targets decided once gives what a fresh strategy gives at each cost."""

from __future__ import annotations

import numpy as np
import pytest
from builders import CandleMaker

from tradebrain.engine.backtest import BacktestConfig, FastReplay, run_backtest
from tradebrain.evaluation.backtest_metrics import backtest_metrics, metrics_of_arrays
from tradebrain.execution.costs import FlatCosts, VenueCosts
from tradebrain.strategies.builtin import SmaCross


@pytest.mark.parametrize("factor", [0.0, 1.0, 2.0])
def test_a_replay_at_scaled_costs_equals_a_fresh_run_and_its_metrics(
    candles: CandleMaker, factor: float
) -> None:
    frame = candles(3000, seed=7)
    config = BacktestConfig(costs=FlatCosts(0.001, 2.0)).with_costs_scaled(factor)
    replay = FastReplay.of(frame, SmaCross(5, 20), config, symbol="BTC/USDT", timeframe="1h")
    assert replay is not None
    run = replay.run(config)
    fresh = run_backtest(frame, SmaCross(5, 20), config, symbol="BTC/USDT", timeframe="1h")
    replayed = run.engine_result()
    assert len(replayed.trades) == len(fresh.trades) > 0
    for ours, theirs in zip(replayed.trades, fresh.trades, strict=True):
        assert (ours.entry_time, ours.exit_time, ours.pnl, ours.fees) == (
            theirs.entry_time,
            theirs.exit_time,
            theirs.pnl,
            theirs.fees,
        )
    np.testing.assert_array_equal(replayed.equity, fresh.equity)
    assert (replayed.fees, replayed.funding, replayed.path) == (fresh.fees, fresh.funding, "fast")
    expected = backtest_metrics(
        fresh.equity, config.cash, fresh.trades, "1h", exposure=fresh.exposure, fees=fresh.fees
    )
    fast = run.result
    from_arrays = metrics_of_arrays(
        fast.equity,
        config.cash,
        fast.pnl,
        np.full(fast.pnl.shape, np.nan),
        "1h",
        exposure=fast.exposure,
        fees=fast.fees_paid,
    )
    assert from_arrays.keys() == expected.keys()
    for key, value in expected.items():
        assert from_arrays[key] == value or (
            value != value and from_arrays[key] != from_arrays[key]
        )


def test_no_replay_is_offered_when_the_event_loop_would_run(candles: CandleMaker) -> None:
    frame = candles(100)
    venue = BacktestConfig(costs=VenueCosts.preset("binance-spot"))
    events = BacktestConfig(path="events")
    for config in (venue, events):
        strategy = SmaCross(5, 20)
        assert FastReplay.of(frame, strategy, config, symbol="X/Y", timeframe="1h") is None
