"""An RL agent in a hybrid backtest: the same engine; a neutral agent changes nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.config import Settings
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.rl_comparison import train_on_signals
from tradebrain.research.walk_forward_backtest import hybrid_backtest_report, hybrid_signals
from tradebrain.strategies.agent_port import AgentView

SETTINGS = Settings.model_validate(
    {"learning": {"min_train_bars": 1500, "retrain_every_bars": 500}, "models": {"horizons": [12]}}
)


class Neutral:
    """Keeps the brain's target: the plain rule, through the agent port."""

    name = "neutral"

    def adjust(self, view: AgentView) -> float:
        return 1.0


class VetoAll:
    """Vetoes every entry."""

    name = "veto_all"

    def adjust(self, view: AgentView) -> float:
        return 0.0


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    world = SyntheticConfig(bars=3000, signal=0.3, seed=12, edge="trend", half_life=24)
    return generate_market(world).candles


@pytest.fixture(scope="module")
def request_(candles: pl.DataFrame) -> HybridRequest:
    return HybridRequest.from_settings(SETTINGS, candles, symbol="SYN/USDT", timeframe="1h")


def test_a_neutral_agent_trades_exactly_as_the_compiled_brain_alone(
    request_: HybridRequest,
) -> None:
    plain = hybrid_backtest_report(request_)
    agent = hybrid_backtest_report(dataclasses.replace(request_, agent=Neutral()))
    assert len(plain.result.trades) > 0
    assert np.allclose(agent.result.equity, plain.result.equity, rtol=0, atol=1e-9)
    assert len(agent.result.trades) == len(plain.result.trades)


def test_an_agent_that_vetoes_every_entry_never_opens_a_position(
    request_: HybridRequest,
) -> None:
    vetoed = hybrid_backtest_report(dataclasses.replace(request_, agent=VetoAll()))
    assert len(vetoed.result.trades) == 0
    assert not vetoed.result.fills
    frame = vetoed.result.decisions
    assert frame is not None and frame.height > 0


def test_backtest_runs_a_trained_agent_from_its_folder(
    request_: HybridRequest, candles: pl.DataFrame, tmp_path: Path
) -> None:
    signals, _ = hybrid_signals(request_)
    agent = train_on_signals(request_, SETTINGS, signals, "q_sizing", seed=0, steps=40)
    folder = agent.save(tmp_path / "agent")
    data = tmp_path / "world.csv"
    candles.write_csv(data)
    config = tmp_path / "tb.yaml"
    config.write_text(
        "learning:\n  min_train_bars: 1500\n  retrain_every_bars: 500\nmodels:\n  horizons: [12]\n"
    )
    out = tmp_path / "bt.json"
    result = CliRunner().invoke(
        app,
        ["--config", str(config), "backtest", "--data", str(data), "--strategy", "hybrid",
         "--json", str(out), "--agent", str(folder)],
        env={"TRADEBRAIN_HOME": str(tmp_path / "home"), "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "q_sizing" in out.read_text()
