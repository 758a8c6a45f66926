"""``tradebrain backtest`` end to end on a small candle file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import CandleMaker
from typer.testing import CliRunner

from tradebrain.cli import app


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
