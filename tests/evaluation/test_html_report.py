"""The offline HTML backtest report: charts, metrics, an honest header, no network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.backtest import BacktestConfig
from tradebrain.evaluation.html_report import MAX_POINTS, _thin, write_html_report
from tradebrain.execution.costs import FlatCosts
from tradebrain.research.backtest_report import BacktestReport, backtest_report
from tradebrain.strategies.builtin import make_strategy

BARS = 2_000


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return generate_market(SyntheticConfig(bars=BARS, seed=11)).candles


@pytest.fixture(scope="module")
def outcome(market: pl.DataFrame) -> BacktestReport:
    return backtest_report(
        market,
        lambda: make_strategy("sma_cross", fast=10, slow=50),
        BacktestConfig(costs=FlatCosts(0.001, 2.0)),
        symbol="SYN",
        timeframe="1h",
        settings={"strategy": "sma_cross", "costs": "0.1% fee, 2 bps slippage", "cash": 10_000},
    )


def decisions_of(candles: pl.DataFrame) -> pl.DataFrame:
    """Decisions like the hybrid strategy's: regimes in long runs and two models' votes."""
    rng = np.random.default_rng(3)
    n = candles.height
    regimes = np.array(["trend_up", "range", "trend_down", "high_vol"])[(np.arange(n) // 300) % 4]
    p_up = rng.uniform(0.2, 0.8, n)
    votes = [
        {"gbm": {"p_up": float(a), "p_down": float(1 - a)}, "tcn": {"p_up": 0.6, "p_down": 0.3}}
        for a in p_up
    ]
    return candles.select("timestamp").with_columns(
        pl.Series("action", np.where(p_up > 0.5, "long", "flat")),
        pl.Series("confidence", np.abs(p_up - 0.5) * 2),
        pl.Series("regime", regimes),
        pl.Series("votes", votes),
    )


def external_scripts(page: str) -> list[str]:
    return re.findall(r"<script[^>]*\bsrc\s*=\s*['\"]?(?:https?:)?//", page, flags=re.I)


def test_report_without_decisions_has_charts_metrics_and_no_network(
    tmp_path: Path, market: pl.DataFrame, outcome: BacktestReport
) -> None:
    path = write_html_report(
        tmp_path / "r.html", outcome.report, market, outcome.result.equity, title="SMA test"
    )
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>SMA test</title>" in page
    for div in ("chart-0", "chart-1", "chart-2"):
        assert f'id="{div}"' in page
    assert "chart-3" not in page and "Vote attribution" not in page
    for text in ("Equity vs buy-and-hold", "Drawdown", "Price, trades", "Cost sensitivity"):
        assert text in page
    assert "regimes" not in page.split("Price, trades")[1][:20]
    metrics, bench = outcome.report["metrics"], outcome.report["benchmark"]
    assert f"{metrics['total_return']:+.2%}" in page and f"{bench['total_return']:+.2%}" in page
    assert f"{metrics['psr']:.3f}" in page and f"{BARS:,} × 1h" in page
    beat = metrics["total_return"] > bench["total_return"]
    assert ("<b>beat</b>" in page) == beat and ("<b>did not beat</b>" in page) != beat
    assert "0x costs" in page and "2x costs" in page
    assert page.count("long entry") >= 1 and "exit (" in page
    assert external_scripts(page) == []
    assert page.count("plotly.js v") <= 2  # plotly.js embedded once (its banner)


def test_report_with_decisions_shades_regimes_and_attributes_votes(
    tmp_path: Path, market: pl.DataFrame, outcome: BacktestReport
) -> None:
    decisions = decisions_of(market)
    frame_page = write_html_report(
        tmp_path / "d.html", outcome.report, market, outcome.result.equity, decisions=decisions
    ).read_text(encoding="utf-8")
    assert 'id="chart-3"' in frame_page and "Vote attribution" in frame_page
    assert "Price, trades and regimes" in frame_page and "regime: high_vol" in frame_page
    assert frame_page.count('"type":"rect"') >= 4
    assert "Model agreement" in frame_page and "gbm" in frame_page and "tcn" in frame_page
    assert external_scripts(frame_page) == []
    rows = decisions.with_columns(pl.col("timestamp").dt.epoch("us")).to_dicts()
    list_page = write_html_report(
        tmp_path / "l.html", outcome.report, market, outcome.result.equity, decisions=rows
    ).read_text(encoding="utf-8")
    assert "Vote attribution" in list_page and "regime: trend_up" in list_page


def test_hybrid_style_decisions_with_json_votes_and_unknown_regime(
    tmp_path: Path, market: pl.DataFrame, outcome: BacktestReport
) -> None:
    """The hybrid's decisions table: votes as JSON of (p_down, p_flat, p_up), NaN when absent."""
    n = market.height
    votes = [
        json.dumps(
            {"gbm": [0.2, 0.3, 0.5], "tcn": [float("nan")] * 3 if i % 2 else [0.5, 0.2, 0.3]}
        )
        for i in range(n)
    ]
    decisions = market.select("timestamp").with_columns(
        pl.Series("action", np.where(np.arange(n) % 3 == 0, "buy", "hold")),
        pl.Series("regime", np.where(np.arange(n) < n // 2, "unknown", "trend_up")),
        pl.Series("votes", votes),
    )
    page = write_html_report(
        tmp_path / "h.html", outcome.report, market, outcome.result.equity, decisions=decisions
    ).read_text(encoding="utf-8")
    assert "Vote attribution" in page and "regime: trend_up" in page
    assert "regime: unknown" not in page
    assert "<td>gbm</td><td>100.0%</td>" in page  # p_up > p_down, as every buy
    assert "<td>tcn</td><td>0.0%</td>" in page  # p_up < p_down where it voted


def test_long_series_are_thinned_keeping_extremes() -> None:
    values = np.sin(np.linspace(0, 60, 100_000))
    values[54_321] = 5.0
    idx = _thin(values)
    assert idx.size <= MAX_POINTS + 1 and 54_321 in idx and idx[-1] == values.size - 1
    assert np.all(np.diff(idx) > 0)


def test_backtest_command_writes_html(
    tmp_path: Path, market: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    data = tmp_path / "SYN-1h.parquet"
    market.write_parquet(data)
    html = tmp_path / "report.html"
    args = ["backtest", "--data", str(data), "--strategy", "sma_cross", "--fee", "0.001",
            "--json", str(tmp_path / "r.json"), "--html", str(html)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = html.read_text(encoding="utf-8")
    assert "Backtest: sma_cross on SYN-1h" in page and 'id="chart-2"' in page
