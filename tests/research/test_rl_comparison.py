"""The RL comparison: walk-forward, every seed reported, agents trained only on the past."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.config import Settings
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.research import rl_comparison
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.rl_comparison import compare_agents
from tradebrain.research.walk_forward_backtest import hybrid_signals
from tradebrain.strategies.agent_port import AgentView
from tradebrain.strategies.hybrid import HybridSignals

SETTINGS = Settings.model_validate(
    {"learning": {"min_train_bars": 1500, "retrain_every_bars": 500}, "models": {"horizons": [12]}}
)


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    world = SyntheticConfig(bars=4500, signal=0.3, seed=12, edge="trend", half_life=24)
    return generate_market(world).candles


@pytest.fixture(scope="module")
def request_and_signals(candles: pl.DataFrame) -> tuple[HybridRequest, HybridSignals]:
    request = HybridRequest.from_settings(SETTINGS, candles, symbol="SYN/USDT", timeframe="1h")
    signals, _ = hybrid_signals(request)
    return request, signals


def test_every_seed_is_reported_beside_both_rules_and_each_counts_as_a_trial(
    request_and_signals: tuple[HybridRequest, HybridSignals],
) -> None:
    request, signals = request_and_signals
    comparison = compare_agents(
        request, SETTINGS, world="trend", seeds=(0, 1, 2), agents=("q_sizing",), blocks=3,
        steps=40, signals=signals,
    )  # fmt: skip
    assert [s.seed for s in comparison.of("q_sizing")] == [0, 1, 2]
    assert len(comparison.of("rule")) == len(comparison.of("fixed_fraction")) == 1
    assert comparison.trials == 5
    returns = sorted(s.log_return for s in comparison.of("q_sizing"))
    assert comparison.median("q_sizing", "log_return") == returns[1]  # the median, not the best
    assert comparison.of("rule")[0].trades > 0  # the world pays: the plain rule trades
    assert all(s.untrained == 0 for s in comparison.of("q_sizing"))  # each block had a past


def test_an_agent_is_trained_only_on_bars_before_the_block_it_is_judged_on(
    request_and_signals: tuple[HybridRequest, HybridSignals], monkeypatch: pytest.MonkeyPatch
) -> None:
    request, signals = request_and_signals
    trained: list[tuple[int, int]] = []
    judged: list[int] = []
    train, evaluate = rl_comparison._train, rl_comparison._env

    def recording_train(*args: Any) -> Any:
        trained.append((args[5], args[6]))
        return train(*args)

    def recording_env(*args: Any) -> Any:
        if args[3] == "sizing":
            judged.append(args[4])
        return evaluate(*args)

    monkeypatch.setattr(rl_comparison, "_train", recording_train)
    monkeypatch.setattr(rl_comparison, "_env", recording_env)
    comparison = compare_agents(
        request, SETTINGS, world="trend", seeds=(0,), agents=("q_sizing",), blocks=3, steps=20,
        signals=signals,
    )  # fmt: skip
    blocks = comparison.blocks
    assert [end for _, end in trained] == [blocks[1][0], blocks[2][0]]
    assert all(
        end <= block_start for (_, end), block_start in zip(trained, judged[-2:], strict=True)
    )


def test_the_fixed_fraction_rule_sizes_every_entry_to_the_same_exposure() -> None:
    fixed = rl_comparison._rule("fixed_fraction", SETTINGS)
    fraction = rl_comparison.FIXED_FRACTION * SETTINGS.brain.max_position
    for target in (0.2, 0.6, 1.0):
        view = AgentView(target, 0.0, 3.0, 0.7, 0.0, 0, True)
        assert target * fixed(view) == pytest.approx(fraction)
    assert rl_comparison._rule("rule", SETTINGS)(AgentView(0.6, 0.0, 3.0, 0.7, 0.0, 0, True)) == 1


def test_rl_evaluate_prints_every_policy_and_whether_the_agent_earned_its_place(
    candles: pl.DataFrame, tmp_path: Path
) -> None:
    data = tmp_path / "world.csv"
    candles.write_csv(data)
    config = tmp_path / "tb.yaml"
    config.write_text(
        "learning:\n  min_train_bars: 1500\n  retrain_every_bars: 500\nmodels:\n  horizons: [12]\n"
    )
    result = CliRunner().invoke(
        app,
        ["--config", str(config), "rl", "evaluate", "--data", str(data), "--agents", "q_sizing",
         "--seeds", "2", "--steps", "20", "--blocks", "2"],
        env={"TRADEBRAIN_HOME": str(tmp_path / "home"), "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for word in ("rule", "fixed_fraction", "q_sizing", "earned its place", "DSR"):
        assert word in result.output
