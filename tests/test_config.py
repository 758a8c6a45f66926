"""Settings: defaults from the seed system, file and environment layers, errors that explain."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tradebrain.config import Settings, load_settings, write_default_config
from tradebrain.exceptions import ConfigError


def test_defaults_follow_the_seed_system() -> None:
    settings = load_settings(env={})
    weights = settings.brain.fusion_weights
    assert (weights.order_flow, weights.sequence, weights.cnn, weights.rl, weights.risk) == (
        0.30,
        0.25,
        0.20,
        0.15,
        0.10,
    )
    risk = settings.risk
    assert risk.risk_per_trade == 0.02
    assert risk.stop_atr_multiple == 1.5
    assert risk.reward_risk == 2.0
    assert risk.max_daily_drawdown == 0.03
    assert risk.max_drawdown == 0.10
    assert risk.margin_cap == 0.10
    assert risk.leverage_cap == 3
    assert settings.home == Path("./tradebrain_data")


def test_the_file_overrides_defaults_and_the_environment_overrides_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tb.yaml"
    path.write_text(yaml.safe_dump({"risk": {"risk_per_trade": 0.01, "leverage_cap": 2}}))
    settings = load_settings(path, env={"TRADEBRAIN_RISK__LEVERAGE_CAP": "5"})
    assert settings.risk.risk_per_trade == 0.01
    assert settings.risk.leverage_cap == 5
    assert settings.risk.reward_risk == 2.0


def test_tradebrain_home_comes_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(env={"TRADEBRAIN_HOME": str(tmp_path / "home")})
    assert settings.home == tmp_path / "home"


def test_nested_environment_lists_are_read_as_json() -> None:
    settings = load_settings(env={"TRADEBRAIN_MODELS__ENABLED": '["lightgbm", "cnn"]'})
    assert settings.models.enabled == ["lightgbm", "cnn"]


def test_an_out_of_range_value_names_the_key_the_value_the_range_and_the_source() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env={"TRADEBRAIN_RISK__RISK_PER_TRADE": "0.5"})
    message = str(error.value)
    assert "risk.risk_per_trade = '0.5'" in message
    assert "0 < x <= 0.1" in message
    assert "TRADEBRAIN_RISK__RISK_PER_TRADE" in message


def test_a_bad_value_in_the_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tb.yaml"
    path.write_text("risk:\n  leverage_cap: 500\n")
    with pytest.raises(ConfigError, match=r"risk.leverage_cap = 500 \(from file .*tb.yaml\)"):
        load_settings(path, env={})


def test_fusion_weights_must_sum_to_one() -> None:
    with pytest.raises(ConfigError, match=r"sum to 1\.0"):
        load_settings(env={"TRADEBRAIN_BRAIN__FUSION_WEIGHTS__RL": "0.5"})


def test_an_unknown_setting_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "tb.yaml"
    path.write_text("risk:\n  risk_per_trad: 0.01\n")
    with pytest.raises(ConfigError, match=r"risk\.risk_per_trad: unknown setting"):
        load_settings(path, env={})


def test_a_missing_or_malformed_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("risk: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken, env={})


def test_init_writes_a_file_that_loads_back_to_the_defaults(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "tradebrain.yaml")
    assert load_settings(path, env={}) == Settings()
    with pytest.raises(ConfigError, match="already exists"):
        write_default_config(path)


def test_the_api_token_is_masked_when_shown() -> None:
    settings = load_settings(env={"TRADEBRAIN_API__TOKEN": "s3cret-token"})
    assert "s3cret-token" not in settings.to_yaml()
    assert "s3cret-token" in settings.to_yaml(reveal_secrets=True)
    assert "s3cret-token" not in repr(settings)


def test_a_token_given_as_a_yaml_list_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "tradebrain.yaml"
    path.write_text("api:\n  token: [hunter2-secret, second-part]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert (
        f"api.token = <hidden list> (from file {path}): Input should be a valid string" in message
    )
    assert "hunter2" not in message and "second-part" not in message


def test_a_token_variable_is_read_as_text_even_when_it_looks_like_json() -> None:
    for token in ('["hunter3"]', "[not-json", '{"a": "hunter4"}'):
        settings = load_settings(env={"TRADEBRAIN_API__TOKEN": token})
        assert settings.api.token is not None
        assert settings.api.token.get_secret_value() == token


def test_the_test_suites_own_variables_are_not_settings() -> None:
    env = {"TRADEBRAIN_REAL_DATA_REQUIRED": "1", "TRADEBRAIN_BROWSER_REQUIRED": "1"}
    assert load_settings(env=env) == Settings()
