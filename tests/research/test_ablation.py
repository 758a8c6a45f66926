"""Ablation: one engine rerun per part toggled, over forecasts trained once, in money."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.brain.tuning import PARTS
from tradebrain.cli import app
from tradebrain.config import BrainSettings
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.models.forecast import ForecastSettings
from tradebrain.research.ablation import ABLATION_METRICS, RISK_PARTS, ablation_layers, run_ablation
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.walk_forward_backtest import hybrid_backtest_report
from tradebrain.strategies.hybrid_config import HybridConfig

CONFIG = HybridConfig(
    retrain_every=500,
    min_train=1500,
    model_params={"lightgbm": {"n_estimators": 30, "n_jobs": 1}},
    forecast=ForecastSettings(horizons=(6, 12)),
)


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    world = SyntheticConfig(bars=2500, signal=0.3, seed=12, edge="trend", half_life=24)
    return generate_market(world).candles


@pytest.fixture(scope="module")
def hybrid_request(candles: pl.DataFrame) -> HybridRequest:
    brain = BrainSettings(disabled_parts=["maker_taker"])
    return HybridRequest(candles, "SYN", "1h", hybrid=CONFIG, brain=brain)


@pytest.fixture(scope="module")
def ablation(hybrid_request: HybridRequest):  # type: ignore[no-untyped-def]
    return run_ablation(hybrid_request)


def test_every_part_is_toggled_once_with_finite_metrics(ablation) -> None:  # type: ignore[no-untyped-def]
    layers = [row.layer for row in ablation.rows]
    assert layers == ablation_layers(tuple(CONFIG.models))
    assert layers[-len(PARTS) - len(RISK_PARTS) :] == [*PARTS, *(f"risk:{p}" for p in RISK_PARTS)]
    for row in ablation.rows:
        assert set(row.deltas) == set(ABLATION_METRICS)
        assert all(math.isfinite(v) for v in row.deltas.values() if v is not None)
        assert row.deltas["log_return"] is not None


def test_parts_that_act_on_this_market_change_the_money(ablation) -> None:  # type: ignore[no-untyped-def]
    rows = {row.layer: row for row in ablation.rows}
    for layer in ("kalman", "volatility_cut", "risk:manage_exits"):
        assert rows[layer].deltas["log_return"] != 0.0, layer
        assert rows[layer].deltas["n_trades"] != 0 or rows[layer].deltas["max_drawdown"] != 0
    # a part off by default is switched on, and its worth has the sign of the change
    maker = rows["maker_taker"]
    assert not maker.default_on
    assert maker.worth == pytest.approx(maker.deltas["log_return"])
    kalman = rows["kalman"]
    assert kalman.default_on and kalman.worth == pytest.approx(-kalman.deltas["log_return"])
    assert not rows["risk:kelly_from_trades"].default_on


def test_the_configured_row_is_a_plain_hybrid_backtest(
    ablation,  # type: ignore[no-untyped-def]
    hybrid_request: HybridRequest,
) -> None:
    plain = hybrid_backtest_report(hybrid_request)
    for key in ABLATION_METRICS:
        if key == "log_return":
            continue
        assert ablation.full[key] == pytest.approx(plain.report["metrics"][key]), key
    assert ablation.to_dict()["segments"] == plain.report["segments"]


def test_the_ablation_command_prints_and_writes_the_worth_of_each_part(
    candles: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    data, out = tmp_path / "SYN_USDT-1h.parquet", tmp_path / "ablation.json"
    candles.write_parquet(data)
    args = ["ablation", "--data", str(data), "--retrain-every", "500", "--min-train", "1500",
            "--models", "logistic", "--json", str(out)]  # fmt: skip
    monkeypatch.setenv("TRADEBRAIN_MODELS__HORIZONS", "[6, 12]")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "worth" in result.output and "kalman" in result.output
    report = json.loads(out.read_text())
    assert {row["layer"] for row in report["rows"]} >= {"model:logistic", *PARTS}
    assert all("worth_log_return" in row for row in report["rows"])
