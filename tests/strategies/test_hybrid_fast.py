"""The fast hybrid strategy trades exactly as the hybrid strategy, through the same engine."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from builders import FLOAT_TOLERANCE, assert_same_decision, real_file

from tradebrain.brain.guards import GuardThresholds
from tradebrain.brain.tuning import BrainTuning
from tradebrain.core.events import CandleClosed
from tradebrain.core.market import MarketType
from tradebrain.data.importing import read_market_file
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.engine import EngineResult
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.features import compute_features
from tradebrain.risk.manager import RiskManager
from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy, decisions_summary
from tradebrain.strategies.hybrid_fast import FastHybridStrategy

FEATURE_SETS = ["atomic", "indicators", "regime"]
HORIZON = 24
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


def calibration(features: pl.DataFrame, beta: float = 0.5) -> np.ndarray:
    """A forecast calibration per candle: ``beta``, the 60-candle volatility over 24 candles."""
    sigma = features["rv_std_60"].to_numpy() * np.sqrt(HORIZON)
    return np.column_stack((np.full(sigma.size, beta), sigma, np.full(sigma.size, HORIZON)))


@pytest.fixture(scope="module")
def planted() -> tuple[pl.DataFrame, HybridSignals]:
    market = generate_market(SyntheticConfig(bars=3000, signal=0.1, seed=11, edge="trend"))
    features = compute_features(market.candles, FEATURE_SETS)
    expected = market.regimes["oracle_expected_return"].to_numpy()
    votes = oracle_votes(expected, seed=5)
    return market.candles, HybridSignals.from_tables(features, votes, calibration(features))


def run_both(
    candles: pl.DataFrame,
    signals: HybridSignals,
    market: MarketType,
    leverage: float = 1.0,
    disabled: tuple[str, ...] = (),
    tuning: BrainTuning | None = None,
) -> tuple[EngineResult, EngineResult, HybridStrategy, FastHybridStrategy]:
    config = BacktestConfig(market=market, leverage=leverage, path="events")
    python = HybridStrategy(signals, market=market, disabled=disabled, tuning=tuning)
    fast = FastHybridStrategy(signals, market=market, disabled=disabled, tuning=tuning)
    results = [
        run_backtest(candles, strategy, config, symbol="SYN", timeframe="1h", risk=RiskManager())
        for strategy in (python, fast)
    ]
    return results[0], results[1], python, fast


def assert_same_run(python: EngineResult, fast: EngineResult) -> None:
    """The same trades, fills and denials; money within the brains' float tolerance."""

    def trades(result: EngineResult) -> list[tuple[object, ...]]:
        return [(t.side, t.entry_time, t.exit_time, t.exit_reason) for t in result.trades]

    def money(result: EngineResult) -> np.ndarray:
        return np.array(
            [(t.entry_price, t.exit_price, t.quantity, t.pnl, t.fees) for t in result.trades]
        )

    assert trades(fast) == trades(python)
    tolerance = {"rtol": FLOAT_TOLERANCE, "atol": 1e-9}
    np.testing.assert_allclose(money(fast), money(python), **tolerance)
    np.testing.assert_allclose(fast.equity, python.equity, **tolerance)
    np.testing.assert_allclose(fast.exposure, python.exposure, **tolerance)
    np.testing.assert_allclose(
        [f.quantity for f in fast.fills], [f.quantity for f in python.fills], **tolerance
    )
    assert [(d.rule, d.timestamp) for d in fast.denials] == [
        (d.rule, d.timestamp) for d in python.denials
    ]


def assert_same_decisions(python: HybridStrategy, fast: FastHybridStrategy) -> None:
    assert len(fast.decisions) == len(python.decisions)
    for expected, got in zip(python.decisions, fast.decisions, strict=True):
        assert_same_decision(expected, got, expected.timestamp)


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
    assert_same_decisions(python_strategy, fast_strategy)
    summary, expected = (
        fast_strategy.decisions_summary(),
        decisions_summary(python_strategy.decisions),
    )
    assert summary["mean_confidence"] == pytest.approx(expected.pop("mean_confidence"))
    assert {k: v for k, v in summary.items() if k != "mean_confidence"} == expected
    if tuning is CLOSE_GUARD:
        assert any("liquidation_guard" in d.filters for d in fast_strategy.decisions)


@pytest.mark.parametrize(("market", "leverage"), [(MarketType.SPOT, 1.0), (MarketType.PERP, 3.0)])
def test_fast_hybrid_makes_the_same_trades_on_real_btc(market: MarketType, leverage: float) -> None:
    path = real_file("marketlab__BTC_USDT__1h.parquet")
    candles = read_market_file(path, "candles").frame.drop("_row").head(2500)
    features = compute_features(candles, FEATURE_SETS)
    votes = momentum_votes(candles["close"].to_numpy())
    signals = HybridSignals.from_tables(features, votes, calibration(features, beta=1.0))
    tuning = CLOSE_GUARD if market is MarketType.PERP else None
    python, fast, python_strategy, fast_strategy = run_both(
        candles, signals, market, leverage, tuning=tuning
    )
    assert python.trades
    assert_same_run(python, fast)
    assert_same_decisions(python_strategy, fast_strategy)


def test_entries_carry_the_decisions_stop_size_confidence_and_a_reason(
    planted: tuple[pl.DataFrame, HybridSignals],
) -> None:
    candles, signals = planted
    fast = FastHybridStrategy(signals)
    run_backtest(candles, fast, BacktestConfig(path="events"), symbol="SYN", timeframe="1h")
    arrays = fast.arrays
    assert arrays is not None
    first = next(d for d in fast.decisions if d.action.value == "buy")
    bar = int(np.flatnonzero(arrays.open_times == int(first.timestamp.timestamp() * 1e6))[0])
    t = datetime(2024, 1, 1, tzinfo=UTC)
    candle = CandleClosed("SYN", t, t, 1.0, 1.0, 1.0, float(arrays.closes[bar]), 1.0)
    context = StrategyContext("SYN", "1h", bar=bar, equity=10_000.0)
    (intent,) = fast.on_candle(context, candle)
    assert (intent.stop_price, intent.target_price) == (first.stop, first.target)
    assert intent.confidence == first.confidence and intent.reasons
    assert intent.risk_fraction == first.size
    assert intent.quantity == pytest.approx(first.target_position * 10_000.0 / candle.close)
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
