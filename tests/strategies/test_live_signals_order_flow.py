"""Live signals of a bundle trained on order flow read each candle's streamed inputs."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from tradebrain.core.events import CandleClosed
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.walk_forward import EvaluationSettings
from tradebrain.features import compute_features
from tradebrain.features.orderflow_inputs import ORDERFLOW_COLUMNS, orderflow_columns
from tradebrain.labels import LabelSettings
from tradebrain.learning.bundle_training import train_bundle
from tradebrain.strategies.live_signals import LiveSignals

SETS = ["atomic", "orderflow", "sentiment"]
LIVE = 30
HOUR = timedelta(hours=1)
FLOW_FEATURES = ["volume_delta_share", "cvd_ratio_20", "pressure_imbalance_300s", "funding_z_72"]


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    made = generate_market(
        SyntheticConfig(bars=900, timeframe="1h", seed=4, orderflow=True, trades_per_candle=20)
    )
    return orderflow_columns(
        made.candles, "1h", trades=made.trades, book=made.book, funding=made.funding
    )


def _event(row: dict[str, object], flow: bool) -> CandleClosed:
    stamp = row["timestamp"]
    values = tuple(float(row[name]) for name in ORDERFLOW_COLUMNS)  # type: ignore[arg-type]
    return CandleClosed(
        "SYN", stamp, stamp + HOUR,  # type: ignore[arg-type, operator]
        *(float(row[k]) for k in ("open", "high", "low", "close", "volume")),  # type: ignore[arg-type]
        flow=values if flow else None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def features(market: pl.DataFrame) -> pl.DataFrame:
    return compute_features(market, SETS, threads=1)


@pytest.fixture(scope="module")
def signals(market: pl.DataFrame, features: pl.DataFrame) -> LiveSignals:
    settings = EvaluationSettings(
        label=LabelSettings("direction", horizon=1, parameters={"dead_zone": 0.0}),
        models=("logistic",), calibrate=False, model_params={"logistic": {"n_jobs": 1}},
    )  # fmt: skip
    bundle = train_bundle(market, features, settings, feature_sets=SETS, source="test")
    return LiveSignals(bundle, "1h")


def test_a_bundle_trained_on_order_flow_gets_the_candles_streamed_inputs_live(
    market: pl.DataFrame, features: pl.DataFrame, signals: LiveSignals
) -> None:
    assert signals.reads_flow
    signals.warm_up(market.head(market.height - LIVE))
    rows = []
    for row in market.tail(LIVE).iter_rows(named=True):
        found = signals.update(_event(row, flow=True))
        assert found is not None
        rows.append([found[0][name] for name in FLOW_FEATURES])
    live = np.array(rows, dtype=np.float64)
    batch = features.tail(LIVE).select(FLOW_FEATURES).to_numpy().astype(np.float64)
    assert np.isfinite(batch).all()  # warmed up: the comparison is of real values
    assert np.max(np.abs(live - batch) / np.maximum(1.0, np.abs(batch))) <= 1e-9


def test_a_candle_without_streamed_inputs_leaves_the_order_flow_features_missing(
    market: pl.DataFrame, signals: LiveSignals
) -> None:
    signals.warm_up(market.head(market.height - 1))
    found = signals.update(_event(market.row(-1, named=True), flow=False))
    assert found is not None
    assert all(np.isnan(found[0][name]) for name in ("volume_delta_share", "funding_rate_bps"))
    assert np.isfinite(found[0]["ret_1"])
