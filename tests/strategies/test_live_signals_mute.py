"""Muting voters: the supervisor weighs failing models to zero, and gives their votes back."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.config import Settings
from tradebrain.core.atomic_write import write_parquet_atomic
from tradebrain.core.events import CandleClosed, make_candle
from tradebrain.core.market import MarketType
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.engine import Engine
from tradebrain.engine.feed import ReplayFeed
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.learning.fan_out import TrainJob, train_job
from tradebrain.models.bundle import ModelBundle
from tradebrain.risk.manager import RiskManager
from tradebrain.strategies.hybrid import HybridStrategy
from tradebrain.strategies.live_signals import LiveSignals

SYMBOL = "BTC/USDT:USDT"
HOUR = timedelta(hours=1)
TRAINED = 1_500  # candles the bundle learns from, then the signals' warm-up
LIVE = 200  # candles fed one at a time after it
NOBODY: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    config = SyntheticConfig(bars=TRAINED + LIVE, seed=1, signal=0.4, edge="trend")
    return generate_market(config).candles


@pytest.fixture(scope="module")
def bundle(market: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    """One logistic model with skill: it is the bundle's only voter."""
    folder: Path = tmp_path_factory.mktemp("bundle")
    write_parquet_atomic(market.head(TRAINED), folder / "candles.parquet")
    dump = Settings.model_validate({"models": {"enabled": ["logistic"]}}).model_dump(mode="json")
    result = train_job(TrainJob(SYMBOL, folder / "candles.parquet", dump, folder / "bundle"))
    trained = ModelBundle.load(result.bundle_dir)
    assert trained.voters() == ("logistic",)
    return trained


@pytest.fixture(scope="module")
def pair(bundle: ModelBundle) -> ModelBundle:
    """The same model twice, as two voters of equal weight (``logistic`` and ``twin``)."""
    assert bundle.calibration is not None
    models = {"logistic": bundle.models["logistic"], "twin": bundle.models["logistic"]}
    calibration = dataclasses.replace(bundle.calibration, weights=dict.fromkeys(models, 1.0))
    return dataclasses.replace(bundle, models=models, calibration=calibration)


def live_candles(market: pl.DataFrame, count: int = LIVE) -> list[CandleClosed]:
    rows = market.slice(TRAINED, count)
    prices = rows.select("timestamp", "open", "high", "low", "close", "volume").rows()
    return [make_candle(SYMBOL, opened, opened + HOUR, *ohlcv) for opened, *ohlcv in prices]


def warmed(bundle: ModelBundle, market: pl.DataFrame) -> LiveSignals:
    signals = LiveSignals(bundle, "1h")
    signals.warm_up(market.head(TRAINED))
    return signals


def test_muting_every_voter_makes_the_signals_stand_aside(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    signals = warmed(bundle, market)
    signals.mute(frozenset({"logistic"}))
    assert signals.muted == frozenset({"logistic"})
    for candle in live_candles(market, 5):
        inputs = signals.update(candle)
        assert inputs is not None, "the brain is still asked, to say why it stands aside"
        features, votes, forecast = inputs
        assert votes == {}
        assert forecast is not None and forecast.beta == 0.0
        assert features and set(features) == set(signals.feature_names)


def test_unmuting_gives_the_votes_and_the_forecast_back(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    assert bundle.calibration is not None
    never_muted = warmed(bundle, market)
    signals = warmed(bundle, market)
    first, second = live_candles(market, 2)
    signals.mute(frozenset({"logistic"}))
    never_muted.update(first)
    signals.update(first)
    signals.mute(NOBODY)
    assert signals.muted == NOBODY
    assert signals.update(second) == never_muted.update(second)
    inputs = signals.update(live_candles(market, 3)[2])
    assert inputs is not None and set(inputs[1]) == {"logistic"}
    assert inputs[2] is not None and inputs[2].beta == bundle.calibration.beta


def test_muting_one_of_two_voters_keeps_the_other_and_the_forecast(
    pair: ModelBundle, market: pl.DataFrame
) -> None:
    assert pair.calibration is not None
    signals = warmed(pair, market)
    signals.mute(frozenset({"twin"}))
    inputs = signals.update(live_candles(market, 1)[0])
    assert inputs is not None
    _, votes, forecast = inputs
    assert set(votes) == {"logistic"}
    assert forecast is not None and forecast.beta == pair.calibration.beta


def test_muting_a_model_that_is_not_a_voter_changes_nothing(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    signals = warmed(bundle, market)
    plain = warmed(bundle, market)
    signals.mute(frozenset({"retired_model"}))
    assert signals.muted == NOBODY
    candle = live_candles(market, 1)[0]
    assert signals.update(candle) == plain.update(candle)


def test_a_bundle_trained_without_skill_still_stands_aside_after_unmuting(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    assert bundle.calibration is not None
    calibration = dataclasses.replace(bundle.calibration, beta=0.0, weights={})
    signals = warmed(dataclasses.replace(bundle, calibration=calibration), market)
    signals.mute(NOBODY)
    inputs = signals.update(live_candles(market, 1)[0])
    assert inputs is not None
    _, votes, forecast = inputs
    assert votes == {} and forecast is not None and forecast.beta == 0.0


def test_an_uncalibrated_bundle_with_every_model_muted_gives_features_only(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    signals = warmed(dataclasses.replace(bundle, calibration=None), market)
    signals.mute(frozenset({"logistic"}))
    inputs = signals.update(live_candles(market, 1)[0])
    assert inputs is not None
    features, votes, forecast = inputs
    assert features and votes == {} and forecast is None


@settings(max_examples=25)
@given(calls=st.lists(st.sets(st.sampled_from(["logistic", "twin", "retired"])), min_size=1))
def test_each_mute_replaces_the_last_one(calls: list[set[str]], pair: ModelBundle) -> None:
    signals = LiveSignals(pair, "1h")  # no candle needed: muting is bookkeeping until one comes
    for call in calls:
        signals.mute(frozenset(call))
    assert signals.muted == frozenset(calls[-1]) & {"logistic", "twin"}


def test_a_strategy_on_muted_signals_decides_to_stand_aside_on_every_candle(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    def trade(muted: frozenset[str]) -> tuple[HybridStrategy, Engine]:
        signals = warmed(bundle, market)
        signals.mute(muted)
        strategy = HybridStrategy(live=signals, market=MarketType.PERP)
        broker = SimulatedBroker(cash=10_000.0, market=MarketType.PERP)
        engine = Engine(
            strategy,
            broker,
            RiskManager(),
            symbol=SYMBOL,
            timeframe="1h",
            market_type=MarketType.PERP,
        )
        engine.run(ReplayFeed(market.slice(TRAINED), SYMBOL, "1h"))
        return strategy, engine

    _, voting = trade(NOBODY)
    assert voting.fills, "unmuted, the model trades: muting it must be what stops it"
    strategy, muted = trade(frozenset({"logistic"}))
    assert len(strategy.decisions) == LIVE
    assert not muted.fills
    for decision in strategy.decisions:
        assert decision.votes == {} and decision.expected_return == 0.0
        assert decision.target_position == 0.0
        assert "no model voted: nothing to act on" in decision.reasons
