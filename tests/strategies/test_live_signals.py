"""Live signals: one candle at a time, the same features, votes and decisions as the batch path."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl
import pytest

from tradebrain.core.events import CandleClosed
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.engine import Engine
from tradebrain.engine.feed import ReplayFeed
from tradebrain.evaluation.walk_forward import EvaluationSettings
from tradebrain.exceptions import DataFormatError, UserInputError
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.features import compute_features
from tradebrain.labels import LabelSettings
from tradebrain.learning.bundle_training import train_bundle
from tradebrain.models.base import Model
from tradebrain.models.bundle import ModelBundle
from tradebrain.models.forecast import ForecastCalibration
from tradebrain.risk.manager import RiskManager
from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy
from tradebrain.strategies.live_signals import LiveSignals

SETS = ["atomic", "indicators", "regime"]
TRAINED = 1_000  # candles the bundle learns from
LIVE = 50  # candles fed one at a time at the end
HOUR = timedelta(hours=1)
# Temperatures away from 1 so that the calibration step is checked too.
TEMPERATURES = {"logistic": 1.0, "lightgbm": 0.8, "xgboost": 1.3, "cnn": 1.7}


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return generate_market(SyntheticConfig(bars=1_500, timeframe="1h", seed=11, signal=0.3)).candles


@pytest.fixture(scope="module")
def batch_features(market: pl.DataFrame) -> pl.DataFrame:
    return compute_features(market, SETS, threads=1)


@pytest.fixture(scope="module")
def bundle(market: pl.DataFrame, batch_features: pl.DataFrame) -> ModelBundle:
    settings = EvaluationSettings(
        label=LabelSettings("direction", horizon=1, parameters={"dead_zone": 0.0}),
        models=("logistic", "lightgbm", "xgboost", "cnn"),
        window=16,
        calibrate=False,
        model_params={
            "logistic": {"n_jobs": 1},
            "lightgbm": {"n_estimators": 30, "n_jobs": 1},
            "xgboost": {"n_estimators": 30, "n_jobs": 1},
            "cnn": {"max_epochs": 2, "threads": 1, "batch_size": 64},
        },
    )
    trained = train_bundle(
        market.head(TRAINED), batch_features.head(TRAINED), settings,
        feature_sets=SETS, source="test",
    )  # fmt: skip
    # A calibration as the forecaster would give: every model votes, one unit of score is
    # worth one sigma over 24 candles.
    calibration = ForecastCalibration(
        horizon=24, beta=3.0, slope=3.0, t_stat=3.0, rows=500,
        weights=dict.fromkeys(TEMPERATURES, 1.0),
    )  # fmt: skip
    return dataclasses.replace(trained, temperatures=dict(TEMPERATURES), calibration=calibration)


@pytest.fixture(scope="module")
def batch_votes(bundle: ModelBundle, batch_features: pl.DataFrame) -> dict[str, np.ndarray]:
    return bundle.predict_proba(batch_features)


def candle_events(candles: pl.DataFrame) -> list[CandleClosed]:
    return [
        CandleClosed(
            "SYN",
            r["timestamp"],
            r["timestamp"] + HOUR,
            r["open"],
            r["high"],
            r["low"],
            r["close"],
            r["volume"],
        )
        for r in candles.iter_rows(named=True)
    ]


@pytest.fixture(scope="module")
def live_run(
    bundle: ModelBundle, market: pl.DataFrame
) -> tuple[LiveSignals, list[tuple[dict[str, float], dict[str, tuple[float, float, float]]]]]:
    signals = LiveSignals(bundle, "1h")
    signals.warm_up(market.head(market.height - LIVE))
    outputs = []
    for candle in candle_events(market.tail(LIVE)):
        inputs = signals.update(candle)
        assert inputs is not None
        outputs.append(inputs)
    return signals, outputs


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)))


def test_live_votes_equal_the_batch_votes_of_every_new_candle(
    live_run: Any, batch_votes: dict[str, np.ndarray], market: pl.DataFrame
) -> None:
    _, outputs = live_run
    first = market.height - LIVE
    for offset, (_, votes, _) in enumerate(outputs):
        assert set(votes) == set(TEMPERATURES)
        for name, vote in votes.items():
            tolerance = 1e-6 if name == "cnn" else 1e-9
            expected = batch_votes[name][first + offset]
            assert relative_error(np.array(vote), expected) <= tolerance, (name, offset)
            assert sum(vote) == pytest.approx(1.0)


def test_live_features_equal_the_batch_features_of_every_new_candle(
    live_run: Any, batch_features: pl.DataFrame
) -> None:
    signals, outputs = live_run
    expected = batch_features.tail(LIVE).drop("timestamp")
    assert list(signals.feature_names) == expected.columns
    got = np.array([list(features.values()) for features, _, _ in outputs])
    want = expected.fill_null(np.nan).to_numpy()
    assert list(outputs[0][0]) == expected.columns
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    scale = np.maximum(np.nanmedian(np.abs(want), axis=0), 1e-12)
    assert np.nanmax(np.abs(got - want) / np.maximum(np.abs(want), scale)) < 1e-7


def test_the_service_reads_progress_timings_and_model_names(
    live_run: Any, bundle: ModelBundle, market: pl.DataFrame
) -> None:
    signals, _ = live_run
    assert signals.candles_loaded == market.height
    assert signals.sequence_length == bundle.window == 16
    assert signals.model_names == list(bundle.models)
    assert signals.ready
    timings = signals.last_timings
    assert list(timings) == ["features", *bundle.models]
    assert all(seconds >= 0.0 for seconds in timings.values())


def test_a_sequence_model_votes_once_its_window_is_full_and_not_before(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    only_cnn = dataclasses.replace(bundle, models={"cnn": bundle.models["cnn"]})
    window = bundle.window
    head = compute_features(market.head(window), SETS, threads=1)
    expected = only_cnn.predict_proba(head)["cnn"][-1]
    events = candle_events(market.head(window))

    fresh = LiveSignals(only_cnn, "1h")  # no warm-up at all
    answers = [fresh.update(candle) for candle in events]
    assert answers[:-1] == [None] * (window - 1)
    assert answers[-1] is not None
    assert relative_error(np.array(answers[-1][1]["cnn"]), expected) <= 1e-6

    warmed = LiveSignals(only_cnn, "1h")
    warmed.warm_up(market.head(window - 1))  # one row short of a full window
    assert not warmed.ready
    answer = warmed.update(events[-1])
    assert warmed.ready and answer is not None
    assert relative_error(np.array(answer[1]["cnn"]), expected) <= 1e-6


def test_tabular_models_vote_from_the_first_candle_like_the_batch_path(
    bundle: ModelBundle, market: pl.DataFrame, batch_votes: dict[str, np.ndarray]
) -> None:
    tabular = dataclasses.replace(
        bundle, models={k: m for k, m in bundle.models.items() if m.input_kind == "tabular"}
    )
    signals = LiveSignals(tabular, "1h")
    assert signals.ready
    for index, candle in enumerate(candle_events(market.head(5))):
        inputs = signals.update(candle)
        assert inputs is not None
        for name, vote in inputs[1].items():
            assert relative_error(np.array(vote), batch_votes[name][index]) <= 1e-9, name


def test_hybrid_with_live_signals_decides_like_hybrid_with_precomputed_signals(
    bundle: ModelBundle,
    market: pl.DataFrame,
    batch_features: pl.DataFrame,
    batch_votes: dict[str, np.ndarray],
) -> None:
    start = market.height - LIVE
    replayed = market.tail(LIVE)

    def run(strategy: HybridStrategy) -> Engine:
        engine = Engine(
            strategy, SimulatedBroker(cash=10_000.0), RiskManager(), symbol="SYN", timeframe="1h"
        )
        engine.run(ReplayFeed(replayed, "SYN", "1h"))
        return engine

    signals = LiveSignals(bundle, "1h")
    signals.warm_up(market.head(start))
    live = HybridStrategy(live=signals)
    tail_votes = {name: proba[start:] for name, proba in batch_votes.items()}
    tail = batch_features.tail(LIVE)
    precomputed = HybridStrategy(
        HybridSignals.from_tables(tail, tail_votes, bundle.forecast_inputs(tail))
    )
    live_engine, batch_engine = run(live), run(precomputed)
    assert len(live.decisions) == len(precomputed.decisions) == LIVE
    assert [d.action for d in live.decisions] == [d.action for d in precomputed.decisions]
    for field in ("confidence", "expected_return", "target_position"):
        np.testing.assert_allclose(
            [getattr(d, field) for d in live.decisions],
            [getattr(d, field) for d in precomputed.decisions],
            rtol=1e-6,
            atol=1e-9,  # the CNN's votes agree to 1e-6; an expected return near 0 inherits it
        )
    assert live_engine.fills, "no trade: the comparison would not reach the broker"
    assert [f.quantity for f in live_engine.fills] == pytest.approx(
        [f.quantity for f in batch_engine.fills]
    )


class _BrokenModel(Model):
    """A tabular model that fails on every prediction."""

    name = "broken"

    def fit(self, X: np.ndarray, y: np.ndarray, *, feature_names: Any = None,
            info: Any = None) -> Self:  # fmt: skip
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raise RuntimeError("out of cheese")

    def _save_state(self, folder: Path) -> None:
        return None

    def _load_state(self, folder: Path) -> None:
        return None


def test_a_failing_model_gives_no_vote_and_the_others_still_vote(
    bundle: ModelBundle, market: pl.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    models = {"logistic": bundle.models["logistic"], "broken": _BrokenModel()}
    signals = LiveSignals(dataclasses.replace(bundle, models=models), "1h")
    signals.warm_up(market.head(400))
    inputs = signals.update(candle_events(market.slice(400, 1))[0])
    assert inputs is not None
    assert set(inputs[1]) == {"logistic"}
    assert "broken" in caplog.text and "out of cheese" in caplog.text


def test_a_candle_of_another_timeframe_or_out_of_order_is_refused(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    signals = LiveSignals(bundle, "1h")
    signals.warm_up(market.head(400))
    candle = candle_events(market.slice(400, 1))[0]
    with pytest.raises(DataFormatError, match="spans"):
        signals.update(dataclasses.replace(candle, close_time=candle.open_time + 2 * HOUR))
    old = candle_events(market.slice(399, 1))[0]
    with pytest.raises(DataFormatError, match="not newer"):
        signals.update(old)


def test_warm_up_refuses_a_history_without_candle_columns(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    signals = LiveSignals(bundle, "1h")
    with pytest.raises(DataFormatError, match="volume"):
        signals.warm_up(market.head(400).drop("volume"))


def test_feature_sets_without_the_bundles_features_are_refused(bundle: ModelBundle) -> None:
    with pytest.raises(UserInputError, match="lack"):
        LiveSignals(bundle, "1h", feature_sets=["momentum"])


def test_the_forecast_comes_from_the_bundles_calibration_and_only_voters_vote(
    bundle: ModelBundle, market: pl.DataFrame, live_run: Any
) -> None:
    _, outputs = live_run
    features, _, forecast = outputs[-1]
    assert forecast is not None and forecast.horizon == 24 and forecast.beta == 3.0
    assert forecast.sigma == pytest.approx(features["rv_std_60"] * np.sqrt(24))
    calibration = dataclasses.replace(
        bundle.calibration, weights={"logistic": 1.0, "lightgbm": 0.0}
    )
    quiet = LiveSignals(dataclasses.replace(bundle, calibration=calibration), "1h")
    quiet.warm_up(market.head(400))
    inputs = quiet.update(candle_events(market.slice(400, 1))[0])
    assert inputs is not None and set(inputs[1]) == {"logistic"}
