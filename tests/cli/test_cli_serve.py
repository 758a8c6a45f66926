"""`tradebrain serve --mode live` refuses to start unless switched on, keyed and locked."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradebrain.cli import app

runner = CliRunner()
KEY = "AKIA-very-secret-key-123"
SECRET = "super-secret-value-456"
STRONG_TOKEN = "Vq3xK8pZ2mT7wR4yN9bL6cH1dF5gJ0sA"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "TRADEBRAIN_GO_LIVE", "TRADEBRAIN_EXCHANGE_API_KEY", "TRADEBRAIN_EXCHANGE_SECRET",
        "TRADEBRAIN_API__TOKEN",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path))


class Outcome:
    """Exit code and output with rich's line wrapping undone."""

    def __init__(self, *args: str) -> None:
        result = runner.invoke(app, list(args))
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())


def _live() -> Outcome:
    return Outcome("serve", "--mode", "live", "--feed", "exchange:binance")


def test_live_mode_without_go_live_refuses_and_says_how_to_paper_trade() -> None:
    result = _live()
    assert result.exit_code == 1
    assert "TRADEBRAIN_GO_LIVE=true" in result.output
    assert "--mode paper" in result.output


def test_live_mode_without_keys_names_the_missing_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEBRAIN_GO_LIVE", "true")
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_API_KEY", KEY)
    result = _live()
    assert result.exit_code == 1
    assert "TRADEBRAIN_EXCHANGE_SECRET" in result.output
    assert KEY not in result.output


def test_live_mode_without_an_api_token_refuses_and_never_prints_the_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEBRAIN_GO_LIVE", "true")
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_SECRET", SECRET)
    result = _live()
    assert result.exit_code == 1
    assert "TRADEBRAIN_API__TOKEN" in result.output
    assert KEY not in result.output and SECRET not in result.output


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("Zq", "has 2 characters; at least 24 are needed"),
        ("a" * 40, "uses only 1 different characters"),
        ("abcdefghij" * 4, "repeats a chunk of 10 characters"),
    ],
)
def test_live_mode_with_a_weak_api_token_refuses_saying_why_without_printing_it(
    monkeypatch: pytest.MonkeyPatch, token: str, why: str
) -> None:
    monkeypatch.setenv("TRADEBRAIN_GO_LIVE", "true")
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_SECRET", SECRET)
    monkeypatch.setenv("TRADEBRAIN_API__TOKEN", token)
    result = _live()
    assert result.exit_code == 1
    assert f"live mode needs a strong API token, and the configured one {why}" in result.output
    assert "secrets.token_urlsafe(32)" in result.output
    assert token not in result.output


def test_live_mode_with_a_replay_feed_is_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEBRAIN_GO_LIVE", "true")
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_SECRET", SECRET)
    monkeypatch.setenv("TRADEBRAIN_API__TOKEN", STRONG_TOKEN)
    result = Outcome("serve", "--mode", "live", "--feed", "replay:x.parquet")
    assert result.exit_code == 1
    assert "needs --feed exchange:NAME" in result.output


def test_an_unknown_feed_is_refused_with_the_choices() -> None:
    result = Outcome("serve", "--feed", "carrier-pigeon")
    assert result.exit_code == 1
    assert "synthetic, replay:PATH, exchange:NAME" in result.output


@pytest.mark.parametrize("port", ["99999", "0", "-1", "65536"])
def test_a_port_outside_1_to_65535_is_refused_naming_the_range(port: str) -> None:
    result = Outcome("serve", "--port", port)
    assert result.exit_code == 1
    assert f"--port must be between 1 and 65535, got {port}" in result.output


@pytest.mark.parametrize("speed", ["nan", "inf", "-1"])
def test_a_speed_that_is_not_a_finite_number_of_0_or_more_is_refused(speed: str) -> None:
    result = Outcome("serve", "--speed", speed)
    assert result.exit_code == 1
    assert "--speed must be a finite number of candles per second, 0 or more" in result.output


def test_serve_over_an_empty_state_file_refuses_instead_of_starting_a_fresh_run(
    tmp_path: Path,
) -> None:
    state = tmp_path / "paper.db"
    state.touch()
    result = Outcome("serve", "--state", str(state))
    assert result.exit_code == 1
    assert "is an empty file (0 bytes)" in result.output
    assert "--state NEW.db" in result.output
    assert state.stat().st_size == 0
