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
def _planted_world(cli_home: Path, tmp_path: Path) -> None:
    """Write a planted synthetic world into the run folder."""
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


def test_evaluate_explain_prints_features_skill_and_calibration_and_writes_a_page(
    tmp_path: Path,
) -> None:
    args = ["evaluate", "--data", "planted.parquet", "--models", "logistic,lightgbm"]
    args += ["--sets", "atomic", "--folds", "2", "--max-features", "5", "--explain", "--out", "ev"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "features kept per fold" in result.output
    assert "directional accuracy per fold" in result.output
    assert "calibration: accuracy of the rows at each confidence" in result.output
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["settings"]["max_features"] == 5
    for fold in report["selection"]["per_fold"]:
        assert len(fold["kept"]) <= 5
    first = report["selection"]["features"][0]["feature"]
    assert first in result.output
    page = (tmp_path / "ev" / "explain.html").read_text()
    assert first in page and "Calibration" in page and "Ensemble weights" in page
    assert "<script src=" not in page  # offline: plotly is inline


def test_evaluate_with_max_features_zero_offers_every_feature(tmp_path: Path) -> None:
    args = ["evaluate", "--data", "planted.parquet", "--models", "logistic", "--sets", "atomic"]
    args += ["--folds", "2", "--max-features", "0", "--out", "ev"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["selection"]["all_features_used"] is True
    assert report["settings"]["max_features"] is None


def test_evaluate_on_a_persistent_world_reports_the_share_of_the_drift_ic_kept(
    tmp_path: Path,
) -> None:
    market = generate_market(SyntheticConfig(bars=4_000, seed=3, signal=0.4, edge="trend"))
    write_market(market, tmp_path / "trend.parquet")
    args = ["evaluate", "--data", "trend.parquet", "--models", "logistic", "--sets", "atomic"]
    args += ["--folds", "2", "--horizon", "12", "--out", "ev"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "known drift's IC at this horizon" in result.output
    drift = json.loads((tmp_path / "ev" / "report.json").read_text())["oracle"]["drift"]
    assert drift["drift_ic"] > 0.1
