"""Ablation: one engine rerun per layer switched off, over votes trained once."""

from __future__ import annotations

import math

import polars as pl
import pytest

from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.ablation import ABLATION_METRICS, ablation_layers, run_ablation
from tradebrain.engine.backtest import BacktestConfig
from tradebrain.engine.walk_forward_backtest import HybridConfig, hybrid_backtest_report

CONFIG = HybridConfig(
    retrain_every=500,
    min_train=1500,
    model_params={"lightgbm": {"n_estimators": 30, "n_jobs": 1}},
)


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return generate_market(SyntheticConfig(bars=2500, signal=0.3, seed=11)).candles


def test_one_row_per_layer_with_finite_deltas_and_full_row_equals_a_plain_run(
    candles: pl.DataFrame,
) -> None:
    config = BacktestConfig()
    ablation = run_ablation(candles, config, CONFIG, symbol="SYN", timeframe="1h")
    assert [row.layer for row in ablation.rows] == ablation_layers(CONFIG.models)
    assert [row.layer for row in ablation.rows][-5:] == [
        "kalman", "chop", "trend_depth", "panic_exit", "kelly",
    ]  # fmt: skip
    for row in ablation.rows:
        assert set(row.deltas) == set(ABLATION_METRICS)
        for key in ("total_return", "max_drawdown", "n_trades"):
            assert row.deltas[key] is not None
        assert all(math.isfinite(v) for v in row.deltas.values() if v is not None)
    plain = hybrid_backtest_report(candles, config, CONFIG, symbol="SYN", timeframe="1h")
    for key in ABLATION_METRICS:
        assert ablation.full[key] == pytest.approx(plain.report["metrics"][key])
    assert ablation.to_dict()["segments"] == plain.report["segments"]
