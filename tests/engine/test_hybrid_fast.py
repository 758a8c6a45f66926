"""The fast hybrid strategy trades exactly as the hybrid strategy, through the same engine."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from builders import real_file

from tradebrain.brain.guards import GuardThresholds
from tradebrain.brain.tuning import BrainTuning
from tradebrain.data.importing import read_market_file
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.engine import EngineResult
from tradebrain.engine.events import CandleClosed
from tradebrain.engine.hybrid import HybridSignals, HybridStrategy, decisions_summary
from tradebrain.engine.hybrid_fast import FastHybridStrategy
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.features import compute_features
from tradebrain.risk.manager import RiskManager
from tradebrain.risk.market import MarketType

FEATURE_SETS = ["atomic", "indicators", "regime"]
CLOSE_GUARD = BrainTuning(guards=GuardThresholds(liquidation_atr_multiple=40.0))
"""Liquidation within 40 ATR: at leverage 3 (about 33 % away) the guard fires now and then."""


def oracle_votes(expected: np.ndarray, seed: int, warm_up: int = 300) -> dict[str, np.ndarray]:
    """Votes of two noisy oracles of the planted signal (known at each close: causal)."""
    rng = np.random.default_rng(seed)
    votes = {}
    for name, noise in (("logistic", 1.0), ("lightgbm", 1.5)):
        score = expected / np.std(expected) + rng.normal(0.0, noise, expected.size)
        up = 1.0 / (1.0 + np.exp(-1.5 * score))
        proba = np.stack([0.8 * (1 - up), np.full_like(up, 0.2), 0.8 * up], axis=1)
        proba[:warm_up] = np.nan
        votes[name] = proba
    return votes


def momentum_votes(close: np.ndarray, warm_up: int = 300) -> dict[str, np.ndarray]:
    """Votes from the past 12- and 48-candle returns (causal), for markets with no oracle."""
    votes = {}
    for name, lookback in (("logistic", 12), ("lstm", 48)):
        past = np.full(close.size, np.nan)
        past[lookback:] = np.log(close[lookback:] / close[:-lookback])
        up = 1.0 / (1.0 + np.exp(-past / np.nanstd(past) * 1.5))
        proba = np.stack([0.85 * (1 - up), np.full_like(up, 0.15), 0.85 * up], axis=1)
        proba[:warm_up] = np.nan
        votes[name] = proba
    return votes


@pytest.fixture(scope="module")
def planted() -> tuple[pl.DataFrame, HybridSignals]:
    market = generate_market(SyntheticConfig(bars=3000, signal=0.3, seed=11))
    features = compute_features(market.candles, FEATURE_SETS)
    expected = market.regimes["oracle_expected_return"].to_numpy()
    return market.candles, HybridSignals.from_tables(features, oracle_votes(expected, seed=5))


def run_both(
    candles: pl.DataFrame,
    signals: HybridSignals,
    market: MarketType,
    leverage: float = 1.0,
    disabled: tuple[str, ...] = (),
    tuning: BrainTuning | None = None,
) -> tuple[EngineResult, EngineResult, HybridStrategy, FastHybridStrategy]:
    config = BacktestConfig(market=market, leverage=leverage, path="events")
    python = HybridStrategy(signals, market=market, disabled=disabled)
    if tuning is not None:
        python.brain.tuning = tuning  # HybridStrategy takes no tuning; its brain does
    fast = FastHybridStrategy(signals, market=market, disabled=disabled, tuning=tuning)
    results = [
        run_backtest(candles, strategy, config, symbol="SYN", timeframe="1h", risk=RiskManager())
        for strategy in (python, fast)
    ]
    return results[0], results[1], python, fast


def assert_same_run(python: EngineResult, fast: EngineResult) -> None:
    def trades(result: EngineResult) -> list[tuple[object, ...]]:
        return [
            (t.side, t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.quantity,
             t.pnl, t.fees, t.exit_reason)
            for t in result.trades
        ]  # fmt: skip

    assert trades(fast) == trades(python)
    np.testing.assert_array_equal(fast.equity, python.equity)
    np.testing.assert_array_equal(fast.exposure, python.exposure)
    assert [f.quantity for f in fast.fills] == [f.quantity for f in python.fills]
    assert [(d.rule, d.timestamp) for d in fast.denials] == [
        (d.rule, d.timestamp) for d in python.denials
    ]


@pytest.mark.parametrize(
    ("market", "leverage", "disabled", "tuning"),
    [
        (MarketType.SPOT, 1.0, (), None),
        (MarketType.SPOT, 1.0, ("kalman",), None),
        (MarketType.SPOT, 1.0, ("chop", "panic_exit", "trend_depth"), None),
        (MarketType.PERP, 3.0, (), CLOSE_GUARD),
        (MarketType.PERP, 3.0, ("kalman", "risk_block"), CLOSE_GUARD),
    ],
)
def test_fast_hybrid_makes_the_same_trades_and_equity_on_a_planted_signal(
    planted: tuple[pl.DataFrame, HybridSignals],
    market: MarketType,
    leverage: float,
    disabled: tuple[str, ...],
    tuning: BrainTuning | None,
) -> None:
    candles, signals = planted
    python, fast, python_strategy, fast_strategy = run_both(
        candles, signals, market, leverage, disabled, tuning
    )
    assert len(python.trades) >= 10
    assert_same_run(python, fast)
    assert fast_strategy.decisions == python_strategy.decisions
    assert fast_strategy.decisions_summary() == decisions_summary(python_strategy.decisions)
    if tuning is CLOSE_GUARD:
        assert any("liquidation_guard" in d.filters for d in fast_strategy.decisions)


@pytest.mark.parametrize(("market", "leverage"), [(MarketType.SPOT, 1.0), (MarketType.PERP, 3.0)])
def test_fast_hybrid_makes_the_same_trades_on_real_btc(market: MarketType, leverage: float) -> None:
    path = real_file("marketlab__BTC_USDT__1h.parquet")
    candles = read_market_file(path, "candles").frame.drop("_row").head(2500)
    features = compute_features(candles, FEATURE_SETS)
    signals = HybridSignals.from_tables(features, momentum_votes(candles["close"].to_numpy()))
    tuning = CLOSE_GUARD if market is MarketType.PERP else None
    python, fast, python_strategy, fast_strategy = run_both(
        candles, signals, market, leverage, tuning=tuning
    )
    assert python.trades
    assert_same_run(python, fast)
    assert fast_strategy.decisions == python_strategy.decisions


def test_entries_carry_the_decisions_stop_target_confidence_and_a_reason(
    planted: tuple[pl.DataFrame, HybridSignals],
) -> None:
    candles, signals = planted
    fast = FastHybridStrategy(signals)
    run_backtest(candles, fast, BacktestConfig(path="events"), symbol="SYN", timeframe="1h")
    arrays = fast.arrays
    assert arrays is not None
    bar = int(np.flatnonzero(arrays.action == 1)[0])  # the first BUY
    t = datetime(2024, 1, 1, tzinfo=UTC)
    candle = CandleClosed("SYN", t, t, 1.0, 1.0, 1.0, float(arrays.closes[bar]), 1.0)
    (intent,) = fast.on_candle(StrategyContext("SYN", "1h", bar=bar), candle)
    decision = next(d for d in fast.decisions if d.timestamp == arrays.timestamp(bar))
    assert (intent.stop_price, intent.target_price) == (decision.stop, decision.target)
    assert intent.confidence == decision.confidence and intent.reasons
    other = CandleClosed("SYN", t, t, 1.0, 1.0, 1.0, float(arrays.closes[bar]) + 1.0, 1.0)
    with pytest.raises(UserInputError, match="replay the same candles"):
        fast.on_candle(StrategyContext("SYN", "1h", bar=bar), other)


def test_fast_hybrid_without_signals_or_with_other_candles_says_what_to_do(
    planted: tuple[pl.DataFrame, HybridSignals],
) -> None:
    candles, signals = planted
    with pytest.raises(UserInputError, match="use HybridStrategy"):
        FastHybridStrategy()
    with pytest.raises(UserInputError, match="the feed has 100"):
        run_backtest(candles.head(100), FastHybridStrategy(signals), BacktestConfig(),
                     symbol="SYN", timeframe="1h")  # fmt: skip
