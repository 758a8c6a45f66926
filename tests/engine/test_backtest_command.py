"""``tradebrain backtest`` end to end on a small candle file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from builders import CandleMaker, make_candles
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.core.market import MarketType
from tradebrain.engine.backtest import BacktestConfig
from tradebrain.exceptions import UserInputError
from tradebrain.execution.costs import FlatCosts
from tradebrain.research.backtest_report import backtest_report
from tradebrain.strategies.builtin import make_strategy

SETTINGS_CANDLES = make_candles(400, seed=3)


@pytest.fixture
def candle_file(tmp_path: Path, candles: CandleMaker) -> Path:
    path = tmp_path / "BTC_USDT-1h.parquet"
    candles(600, seed=5).write_parquet(path)
    return path


def test_backtest_writes_metrics_benchmark_costs_and_trades(
    candle_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    out = tmp_path / "report.json"
    args = ["backtest", "--data", str(candle_file), "--strategy", "sma_cross", "--fast", "5",
            "--slow", "20", "--fee", "0.001", "--json", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"metrics", "benchmark", "cost_sensitivity", "trades"} <= set(report)
    assert set(report["cost_sensitivity"]) == {"0x", "1x", "2x"}
    assert report["metrics"]["n_trades"] == len(report["trades"]) > 0
    row = report["trades"][0]
    for key in ("entry_time", "exit_time", "side", "entry_price", "exit_price", "quantity",
                "pnl", "fees", "exit_reason"):  # fmt: skip
        assert key in row
    zero, two = report["cost_sensitivity"]["0x"], report["cost_sensitivity"]["2x"]
    assert zero["total_return"] > two["total_return"]
    assert (tmp_path / "home" / "trials.jsonl").exists()


def test_a_venue_charges_its_fees_plus_square_root_impact(
    candle_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    reports = {}
    for name, costs in (("flat", ["--fee", "0.001", "--slippage-bps", "0"]),
                        ("venue", ["--venue", "binance-spot"])):  # fmt: skip
        out = tmp_path / f"{name}.json"
        args = ["backtest", "--data", str(candle_file), "--strategy", "sma_cross", "--fast", "5",
                "--slow", "20", *costs, "--json", str(out)]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(out.read_text())
    assert "VenueCosts" in reports["venue"]["settings"]["costs"]
    flat, venue = reports["flat"]["trades"], reports["venue"]["trades"]
    assert [t["entry_time"] for t in flat] == [t["entry_time"] for t in venue]
    # Same fee rate (0.1 %), but the venue's buys fill higher: impact moves the price against us.
    assert venue[0]["entry_price"] > flat[0]["entry_price"]


def test_hybrid_says_when_the_history_is_too_short_to_train(
    candle_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    args = ["backtest", "--data", str(candle_file), "--strategy", "hybrid", "--json",
            str(tmp_path / "r.json")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "--min-train" in result.output and "longer history" in result.output


def test_perp_backtest_without_funding_stops_unless_allowed(
    candle_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    base = ["backtest", "--data", str(candle_file), "--market", "perp", "--json",
            str(tmp_path / "r.json")]  # fmt: skip
    refused = CliRunner().invoke(app, base)
    assert refused.exit_code == 1 and "--allow-no-funding" in refused.output
    allowed = CliRunner().invoke(app, [*base, "--allow-no-funding"])
    assert allowed.exit_code == 0, allowed.output


# --- settings: one check for backtests and serve (issue 12, items 1 and 2) ---------------------
REFUSED = [
    (["--market", "perp", "--allow-no-funding", "--leverage", "1000"], "--leverage", "125"),
    (["--leverage", "0"], "--leverage", "between 1 and 125"),
    (["--leverage", "-5"], "--leverage", "between 1 and 125"),
    (["--leverage", "3"], "--leverage", "spot is 1"),
    (["--fee", "2"], "--fee", "0 <= x <= 0.01"),
    (["--fee", "nan"], "--fee", "0 <= x <= 0.01"),
    (["--fee", "-0.001"], "--fee", "0 <= x <= 0.01"),
    (["--slippage-bps", "inf"], "--slippage-bps", "0 <= x <= 500"),
    (["--cash", "-100"], "--cash", "positive"),
    (["--cash", "0"], "--cash", "positive"),
    (["--cash", "nan"], "--cash", "positive"),
]


@pytest.mark.parametrize(("extra", "option", "words"), REFUSED)
def test_impossible_money_settings_exit_1_with_one_line_naming_the_option(
    candle_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    extra: list[str], option: str, words: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    out = tmp_path / "report.json"
    args = ["backtest", "--data", str(candle_file), "--json", str(out), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    # one message (the terminal may wrap it), then how to go on
    message = " ".join(result.output.split("Fix the input")[0].split())
    assert message.startswith("error:") and option in message and words in message, message
    assert "Traceback" not in result.output and not out.exists()


def test_a_report_path_that_is_a_folder_is_refused_before_the_run(
    candle_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "keep.txt").write_text("kept")
    args = ["backtest", "--data", str(candle_file), "--json", str(folder)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "is a folder" in output and "Traceback" not in output
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    under_a_file = folder / "keep.txt" / "report.json"
    result = CliRunner().invoke(
        app, ["backtest", "--data", str(candle_file), "--json", str(under_a_file)]
    )
    assert result.exit_code == 1 and "is a file, not a folder" in " ".join(result.output.split())


def test_a_report_into_a_folder_that_does_not_exist_makes_the_folder(
    candle_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    out = tmp_path / "new" / "deeper" / "report.json"
    result = CliRunner().invoke(app, ["backtest", "--data", str(candle_file), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["metrics"]


@settings(max_examples=12, deadline=None)
@given(
    cash=st.floats(1.0, 1e7),
    leverage=st.floats(1.0, 125.0),
    fee=st.floats(0.0, 0.01),
    slippage=st.floats(0.0, 500.0),
    perp=st.booleans(),
)
def test_any_accepted_backtest_settings_give_finite_metrics_and_equity_never_below_zero(
    cash: float, leverage: float, fee: float, slippage: float, perp: bool
) -> None:
    market = MarketType.PERP if perp else MarketType.SPOT
    config = BacktestConfig(
        cash=cash, costs=FlatCosts(fee, slippage), market=market,
        leverage=leverage if perp else 1.0,
    )  # fmt: skip
    report = backtest_report(
        SETTINGS_CANDLES, lambda: make_strategy("sma_cross", fast=5, slow=20), config,
        symbol="SYN", timeframe="1h",
    ).report  # fmt: skip
    metrics = report["metrics"]
    for key in ("total_return", "max_drawdown", "sharpe_per_period", "exposure"):
        value = metrics[key]
        assert value is None or math.isfinite(value), (key, value)
    assert metrics["total_return"] >= -1.0
    for run in report["cost_sensitivity"].values():
        assert run["total_return"] >= -1.0


def test_backtest_config_refuses_what_serve_refuses() -> None:
    for bad in ({"cash": 0.0}, {"cash": math.inf}, {"leverage": 126.0, "market": MarketType.PERP},
                {"leverage": 2.0}, {"maintenance_margin": 1.5}):  # fmt: skip
        with pytest.raises(UserInputError):
            BacktestConfig(**bad)  # type: ignore[arg-type]
