"""`tradebrain rl train --bundle`: the agent is saved inside a model bundle, replaced at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.walk_forward import EvaluationSettings
from tradebrain.features import compute_features
from tradebrain.learning.bundle_training import train_bundle
from tradebrain.models.bundle import ModelBundle
from tradebrain.rl.agents import MANIFEST_FILE
from tradebrain.rl.saved import AGENT_FOLDER, bundle_agent
from tradebrain.strategies.agent_port import REGIMES, AgentView

# The market and settings of the `rl evaluate` and backtest `--agent` tests: the walk-forward
# forecast enters often enough on it for an agent to learn in a few steps.
CONFIG = "learning:\n  min_train_bars: 1500\n  retrain_every_bars: 500\nmodels:\n  horizons: [12]\n"


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    world = SyntheticConfig(bars=3000, signal=0.3, seed=12, edge="trend", half_life=24)
    return generate_market(world).candles


@pytest.fixture(scope="module")
def saved_bundle(candles: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real bundle (one logistic model on the atomic features), saved once."""
    features = compute_features(candles, ["atomic"])
    settings = EvaluationSettings(models=("logistic",), window=4)
    bundle = train_bundle(candles, features, settings, feature_sets=["atomic"], source="test")
    return bundle.save(tmp_path_factory.mktemp("bundle") / "models")


@pytest.fixture
def workspace(candles: pl.DataFrame, saved_bundle: Path, tmp_path: Path) -> Path:
    """A folder with the market (world.csv), the settings (tb.yaml) and a bundle (models/)."""
    candles.write_csv(tmp_path / "world.csv")
    (tmp_path / "tb.yaml").write_text(CONFIG)
    shutil.copytree(saved_bundle, tmp_path / "models")
    return tmp_path


def rl_train(workspace: Path, *arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["--config", str(workspace / "tb.yaml"), "rl", "train",
         "--data", str(workspace / "world.csv"), *arguments],
        env={"TRADEBRAIN_HOME": str(workspace / "home"), "COLUMNS": "200"},
    )  # fmt: skip
    return result.exit_code, result.output


def views() -> list[AgentView]:
    """One strong and one weak entry in every regime, flat and in drawdown."""
    return [
        AgentView(0.8, 0.0, edge, 0.7, drawdown, regime, True)
        for regime in range(len(REGIMES))
        for edge in (0.5, 5.0)
        for drawdown in (0.0, 0.08)
    ]


def test_rl_train_with_bundle_saves_a_loadable_agent_and_a_second_train_replaces_it(
    workspace: Path,
) -> None:
    bundle = workspace / "models"
    files_before = {p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file()}

    code, output = rl_train(workspace, "--bundle", str(bundle), "--steps", "20", "--seed", "1")
    assert code == 0, output
    assert "saved q_sizing" in output
    first = bundle_agent(bundle)
    assert first is not None and first.name == "q_sizing" and first.training_["seed"] == 1

    code, output = rl_train(workspace, "--bundle", str(bundle), "--steps", "30", "--seed", "2")
    assert code == 0, output
    second = bundle_agent(bundle)
    assert second is not None
    assert (second.training_["seed"], second.training_["steps"]) == (2, 30)
    assert all(0.0 <= second.adjust(view) <= 1.5 for view in views())

    # the models are untouched; the agent's folder is the only addition, nothing is left over
    files_after = {p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file()}
    added = files_after - files_before
    assert files_before <= files_after
    assert {p.parts[0] for p in added} == {AGENT_FOLDER}
    assert Path(AGENT_FOLDER, MANIFEST_FILE) in added
    assert sorted(p.name for p in bundle.iterdir() if p.name.startswith(".")) == []
    manifest = json.loads((bundle / AGENT_FOLDER / MANIFEST_FILE).read_text())
    assert manifest["training"]["seed"] == 2
    assert set(ModelBundle.load(bundle).models) == {"logistic"}


@pytest.mark.parametrize("options", [(), ("--out", "--bundle")], ids=["neither", "both"])
def test_rl_train_needs_exactly_one_of_out_and_bundle(
    workspace: Path, options: tuple[str, ...]
) -> None:
    folders = {"--out": workspace / "agent", "--bundle": workspace / "models"}
    code, output = rl_train(workspace, *(f"{o}={folders[o]}" for o in options))
    assert code != 0
    assert "exactly one of --out" in output and "--bundle" in output
    assert not (workspace / "agent").exists() and not (workspace / "models" / AGENT_FOLDER).exists()


def test_rl_train_refuses_a_bundle_folder_without_a_bundle_before_training(
    workspace: Path,
) -> None:
    empty = workspace / "not-a-bundle"
    empty.mkdir()
    code, output = rl_train(workspace, "--bundle", str(empty))
    assert code != 0
    assert "not a saved model bundle" in output and "manifest.json" in output
    assert list(empty.iterdir()) == []


def test_rl_train_with_a_share_keeps_the_later_candles_out_of_its_training(
    workspace: Path,
) -> None:
    out = workspace / "agent_half"
    code, output = rl_train(workspace, "--out", str(out), "--steps", "20", "--share", "0.5")
    assert code == 0, output
    half = json.loads((out / MANIFEST_FILE).read_text())["training"]
    code, output = rl_train(workspace, "--out", str(workspace / "agent_all"), "--steps", "20")
    assert code == 0, output
    whole = json.loads((workspace / "agent_all" / MANIFEST_FILE).read_text())["training"]
    assert half["trained_from"] == whole["trained_from"]
    assert half["trained_until"] < whole["trained_until"]
    start, end = whole["segment"]
    assert half["segment"] == [start, start + round(0.5 * (end - start))]


def test_rl_train_refuses_a_share_outside_zero_to_one(workspace: Path) -> None:
    code, output = rl_train(workspace, "--out", str(workspace / "a"), "--share", "1.5")
    assert code != 0
    assert "share must be in (0, 1]" in output
