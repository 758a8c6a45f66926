"""``tradebrain evaluate`` and ``tradebrain train`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.data.synthetic import SyntheticConfig, generate_market, write_market

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEBRAIN_CONFIG", raising=False)
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    market = generate_market(SyntheticConfig(bars=3_000, seed=8, signal=0.3))
    write_market(market, tmp_path / "planted.parquet")


def test_evaluate_writes_a_strict_json_report_and_predictions(tmp_path: Path) -> None:
    args = ["evaluate", "--data", "planted.parquet", "--models", "logistic,lightgbm"]
    args += ["--sets", "atomic", "--folds", "2", "--out", "ev"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "oracle found" in result.output
    report = json.loads((tmp_path / "ev" / "report.json").read_text())  # strict: no NaN
    assert {"logistic", "lightgbm", "ensemble", "baseline_majority"} <= set(report["models"])
    assert report["trials_in_ledger"] == 2
    assert report["oracle"]["accuracy"] > 0.5
    predictions = pl.read_parquet(tmp_path / "ev" / "predictions.parquet")
    assert predictions.columns == ["timestamp", "model", "fold", "p_down", "p_flat", "p_up"]


def test_train_saves_a_calibrated_forecast_that_loads(tmp_path: Path) -> None:
    from tradebrain.models.bundle import ModelBundle

    args = ["train", "--data", "planted.parquet", "--models", "logistic"]
    args += ["--sets", "atomic", "--horizon", "4", "--out", "models"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "forecast over 4 candles" in result.output
    bundle = ModelBundle.load(tmp_path / "models")
    assert list(bundle.models) == ["logistic"]
    # the serve command trades only a calibrated forecast: the folder must carry one
    assert bundle.calibration is not None and bundle.calibration.horizon == 4
    assert bundle.manifest["feature_sets"] == ["atomic"]


def test_an_unknown_model_is_named_with_the_choices() -> None:
    args = ["evaluate", "--data", "planted.parquet", "--models", "crystal_ball", "--out", "x"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "crystal_ball" in result.output and "lightgbm" in result.output
