"""RL agents in the ablation: judged in money after costs, only on candles they never trained on."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.cli import app
from tradebrain.config import Settings
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.exceptions import UserInputError
from tradebrain.research.ablation import (
    ABLATION_METRICS,
    UNKNOWN_SPAN,
    Ablation,
    AblationRow,
    DormantUntil,
    ablation_metrics,
    replay_hybrid,
    run_ablation,
)
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.rl_comparison import train_on_signals
from tradebrain.research.walk_forward_backtest import hybrid_signals
from tradebrain.rl.agents import QTableSizer
from tradebrain.strategies.agent_port import AgentView
from tradebrain.strategies.hybrid import HybridSignals

SETTINGS = Settings.model_validate(
    {
        "learning": {"min_train_bars": 1500, "retrain_every_bars": 500},
        "models": {"enabled": ["logistic"], "horizons": [12]},
    }
)
FIRST_TRADED = 1500  # min_train_bars: the first out-of-sample candle
CUT = 2250  # the vetoing agent "trained" until this candle; it trades after it


class VetoAll:
    """Vetoes every entry; says it trained until ``until`` (ISO 8601), or nothing."""

    def __init__(self, name: str, until: str | None) -> None:
        self.name = name
        self.training_: dict[str, Any] = {} if until is None else {"trained_until": until}

    def adjust(self, view: AgentView) -> float:
        return 0.0


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    world = SyntheticConfig(bars=3000, signal=0.3, seed=12, edge="trend", half_life=24)
    return generate_market(world).candles


@pytest.fixture(scope="module")
def times(candles: pl.DataFrame) -> list[datetime]:
    return candles["timestamp"].to_list()


@pytest.fixture(scope="module")
def request_(candles: pl.DataFrame) -> HybridRequest:
    return HybridRequest.from_settings(SETTINGS, candles, symbol="SYN/USDT", timeframe="1h")


@pytest.fixture(scope="module")
def signals(request_: HybridRequest) -> HybridSignals:
    signals, _ = hybrid_signals(request_)
    return signals


@pytest.fixture(scope="module")
def q_sizer(request_: HybridRequest, signals: HybridSignals) -> QTableSizer:
    agent: QTableSizer = train_on_signals(
        request_, SETTINGS, signals, "q_sizing", seed=0, steps=40, share=0.5
    )
    return agent


@pytest.fixture(scope="module")
def vetoing(times: list[datetime]) -> VetoAll:
    return VetoAll("veto_all", times[CUT].isoformat())


@pytest.fixture(scope="module")
def ablation(
    request_: HybridRequest, times: list[datetime], vetoing: VetoAll, q_sizer: QTableSizer
) -> Ablation:
    never_awake = VetoAll("never_awake", (times[-1] + timedelta(hours=1)).isoformat())
    unknown = VetoAll("unknown_span", None)
    return run_ablation(request_, agents=[vetoing, never_awake, unknown, q_sizer])


def rows_of(ablation: Ablation) -> dict[str, AblationRow]:
    return {row.layer: row for row in ablation.rows}


def test_an_agent_that_vetoes_every_entry_is_worth_the_log_return_it_changes_after_training(
    ablation: Ablation, times: list[datetime]
) -> None:
    row = rows_of(ablation)["rl:veto_all"]
    assert not row.default_on
    assert row.judged_from == times[CUT + 1].isoformat()
    assert row.judged_candles == len(times) - CUT - 1
    assert row.note is None
    with_agent, configured = row.metrics["log_return"], ablation.full["log_return"]
    assert with_agent is not None and configured is not None
    assert row.worth == row.deltas["log_return"] == with_agent - configured
    assert row.worth != 0.0, "the brain trades after the cut: vetoing it must show"
    assert row.to_dict()["judged_candles"] == row.judged_candles


def test_an_agent_that_vetoes_every_entry_changes_the_equity_only_after_its_training(
    ablation: Ablation, request_: HybridRequest, signals: HybridSignals, vetoing: VetoAll
) -> None:
    plain = replay_hybrid(request_, signals)
    dormant = DormantUntil(vetoing, datetime.fromisoformat(vetoing.training_["trained_until"]))
    vetoed = replay_hybrid(dataclasses.replace(request_, agent=dormant), signals)
    # a decision at the cut's next candle fills at the open after it: equity moves from there
    assert np.array_equal(vetoed.equity[: CUT + 2], plain.equity[: CUT + 2])
    assert not np.array_equal(vetoed.equity, plain.equity)
    row = rows_of(ablation)["rl:veto_all"]
    assert ablation_metrics(request_, vetoed, FIRST_TRADED) == row.metrics


def test_an_agent_that_never_wakes_trades_exactly_as_the_configured_system(
    ablation: Ablation, request_: HybridRequest, signals: HybridSignals, times: list[datetime]
) -> None:
    # The Python brain (an agent's) against the compiled one (the configured system's).
    plain = replay_hybrid(request_, signals)
    asleep = DormantUntil(VetoAll("asleep", None), times[-1])
    dormant = replay_hybrid(dataclasses.replace(request_, agent=asleep), signals)
    assert len(plain.trades) > 0
    assert np.array_equal(dormant.equity, plain.equity)
    assert len(dormant.trades) == len(plain.trades)
    assert ablation_metrics(request_, dormant, FIRST_TRADED) == ablation.full


def test_an_agent_that_trained_past_the_last_candle_cannot_be_judged(ablation: Ablation) -> None:
    row = rows_of(ablation)["rl:never_awake"]
    assert row.note is not None and row.note.startswith("cannot be judged")
    assert all(value is None for value in row.metrics.values())
    assert all(value is None for value in row.deltas.values())
    assert row.worth is None and row.judged_from is None and row.judged_candles == 0
    assert set(row.metrics) == set(ABLATION_METRICS)


def test_an_agent_that_does_not_say_when_it_trained_is_judged_from_the_first_traded_candle(
    ablation: Ablation, times: list[datetime]
) -> None:
    row = rows_of(ablation)["rl:unknown_span"]
    assert row.note == UNKNOWN_SPAN
    assert row.judged_from == times[FIRST_TRADED].isoformat()
    assert row.judged_candles == len(times) - FIRST_TRADED
    after_cut = rows_of(ablation)["rl:veto_all"].worth
    assert row.worth is not None and after_cut is not None
    assert row.worth < after_cut  # vetoing from the first traded candle forgoes more


def test_a_q_sizer_trained_on_half_the_candles_is_judged_only_on_the_other_half(
    ablation: Ablation,
    q_sizer: QTableSizer,
    request_: HybridRequest,
    signals: HybridSignals,
    times: list[datetime],
) -> None:
    assert q_sizer.training_["segment"] == [FIRST_TRADED, CUT]
    assert q_sizer.training_["trained_from"] == times[FIRST_TRADED].isoformat()
    assert q_sizer.training_["trained_until"] == times[CUT - 1].isoformat()
    row = rows_of(ablation)["rl:q_sizing"]
    assert row.judged_from == times[CUT].isoformat()
    assert row.judged_candles == len(times) - CUT
    assert row.worth is not None and math.isfinite(row.worth) and row.note is None
    until = datetime.fromisoformat(q_sizer.training_["trained_until"])
    judged = replay_hybrid(
        dataclasses.replace(request_, agent=DormantUntil(q_sizer, until)), signals
    )
    plain = replay_hybrid(request_, signals)
    assert np.array_equal(judged.equity[: CUT + 1], plain.equity[: CUT + 1])


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5, math.nan])
def test_training_refuses_a_share_of_the_candles_outside_zero_to_one(
    share: float, request_: HybridRequest, signals: HybridSignals
) -> None:
    with pytest.raises(UserInputError, match=r"share must be in \(0, 1\]"):
        train_on_signals(request_, SETTINGS, signals, "q_sizing", seed=0, steps=10, share=share)


def test_the_requests_own_agent_is_on_by_default_and_toggling_switches_it_off(
    ablation: Ablation, request_: HybridRequest, vetoing: VetoAll
) -> None:
    configured = run_ablation(dataclasses.replace(request_, agent=vetoing))
    row = rows_of(configured)["rl:veto_all"]
    assert row.default_on
    assert row.metrics == ablation.full  # switched off: the system without the agent
    assert row.judged_from == rows_of(ablation)["rl:veto_all"].judged_from
    assert row.worth == pytest.approx(rows_of(ablation)["rl:veto_all"].worth, abs=1e-12)
    assert configured.full == rows_of(ablation)["rl:veto_all"].metrics


def test_two_agents_of_one_name_need_labels(request_: HybridRequest) -> None:
    twins = [VetoAll("twin", None), VetoAll("twin", None)]
    with pytest.raises(UserInputError, match="rl:twin"):
        run_ablation(request_, agents=twins)


def test_the_ablation_command_judges_a_saved_agent_on_the_candles_after_its_training(
    candles: pl.DataFrame, q_sizer: QTableSizer, tmp_path: Path, times: list[datetime]
) -> None:
    folder = q_sizer.save(tmp_path / "q_agent")
    data, out = tmp_path / "SYN_USDT-1h.parquet", tmp_path / "ablation.json"
    candles.write_parquet(data)
    args = ["ablation", "--data", str(data), "--retrain-every", "500", "--min-train", "1500",
            "--models", "logistic", "--agent", str(folder), "--json", str(out)]  # fmt: skip
    env = {
        "TRADEBRAIN_HOME": str(tmp_path / "home"),
        "TRADEBRAIN_MODELS__HORIZONS": "[12]",
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "rl:q_sizing" in result.output
    assert f"judged on {len(times) - CUT:,} candles" in result.output
    report = json.loads(out.read_text())
    (row,) = [row for row in report["rows"] if row["layer"] == "rl:q_sizing"]
    assert row["default"] == "off" and row["judged_from"] == times[CUT].isoformat()
    assert row["worth_log_return"] is not None
