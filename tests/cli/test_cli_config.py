"""``tradebrain config init|show|validate`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradebrain.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("TRADEBRAIN_CONFIG", "TRADEBRAIN_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_init_then_validate_succeeds(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tradebrain.yaml").exists()
    result = runner.invoke(app, ["config", "validate"])
    assert result.exit_code == 0, result.output
    assert "settings are valid" in result.output


def test_validate_names_the_bad_key_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("risk:\n  max_drawdown: 2.0\n")
    result = runner.invoke(app, ["config", "validate", "bad.yaml"])
    assert result.exit_code == 1
    assert "risk.max_drawdown = 2.0" in result.output
    assert "0 < x <= 0.9" in result.output


def test_show_applies_environment_overrides_and_masks_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEBRAIN_RISK__REWARD_RISK", "3.5")
    monkeypatch.setenv("TRADEBRAIN_API__TOKEN", "very-secret")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "reward_risk: 3.5" in result.output
    assert "very-secret" not in result.output


def test_the_config_option_before_the_command_picks_the_file(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text("risk:\n  reward_risk: 4.0\n")
    result = runner.invoke(app, ["--config", "other.yaml", "config", "show"])
    assert result.exit_code == 0, result.output
    assert "reward_risk: 4.0" in result.output
