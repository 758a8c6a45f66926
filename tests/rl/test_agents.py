"""The agents learn on the env, answer with numpy alone, save, load and trade as they trained."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import torch

# The planted world of the env's tests, built once per process.
from test_env import START, World, planted_world

from tradebrain.exceptions import UserInputError
from tradebrain.rl.agents import (
    DRAWDOWN_LABELS,
    EDGE_LABELS,
    MANIFEST_FILE,
    SB3_FILE,
    WEIGHTS_FILE,
    DQNVeto,
    PPOSizer,
    QTableSizer,
    state_index,
)
from tradebrain.rl.env import MULTIPLIERS, AgentKind, TradingEnv, observation, slice_signals
from tradebrain.strategies.agent_port import REGIMES, AgentView, PositionAgent

SEGMENT_END = 700  # agents train on bars [START, SEGMENT_END): about ten entries an episode


@pytest.fixture(scope="module")
def world() -> World:
    return planted_world()


def env_maker(world: World, kind: AgentKind) -> Callable[[], TradingEnv]:
    return lambda: world.env(kind, end=SEGMENT_END)


def random_views(count: int = 200, seed: int = 0) -> list[AgentView]:
    """Entries the agents may meet: flat or adding, any regime, edge and drawdown."""
    rng = np.random.default_rng(seed)
    return [
        AgentView(
            target=float(rng.uniform(-1.0, 1.0)),
            exposure=float(rng.choice([0.0, rng.uniform(0.0, 0.8)])),
            edge=float(rng.normal(0.0, 3.0)),
            confidence=float(rng.uniform()),
            drawdown=float(rng.uniform(0.0, 0.2)),
            regime_index=int(rng.integers(len(REGIMES))),
            entering=True,
        )
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def q_table(world: World) -> QTableSizer:
    return QTableSizer().train(env_maker(world, "qsizing"), seed=7, steps=100)


@pytest.fixture(scope="module")
def dqn(world: World) -> DQNVeto:
    return DQNVeto(learning_starts=30).train(env_maker(world, "veto"), seed=3, steps=120)


@pytest.fixture(scope="module")
def ppo(world: World) -> PPOSizer:
    return PPOSizer().train(env_maker(world, "sizing"), seed=3, steps=120)


def test_the_q_table_shows_each_visited_state_with_its_q_values_and_choice(
    q_table: QTableSizer,
) -> None:
    table = q_table.table()
    q_columns = [f"q_{m:g}" for m in MULTIPLIERS]
    assert table.columns == ["regime", "edge", "drawdown", "visits", *q_columns, "chosen"]
    assert table["visits"].sum() == 100 and (table["visits"] > 0).all()
    assert set(table["regime"]) <= set(REGIMES)
    assert set(table["edge"]) <= set(EDGE_LABELS)
    assert set(table["drawdown"]) <= set(DRAWDOWN_LABELS)
    for row in table.iter_rows(named=True):
        tried = {m: row[f"q_{m:g}"] for m in MULTIPLIERS if row[f"q_{m:g}"] is not None}
        assert tried, "a visited state has tried at least one multiplier"
        assert tried[row["chosen"]] == max(tried.values())


def test_the_q_table_answers_the_plain_rule_in_a_state_it_never_visited(
    q_table: QTableSizer,
) -> None:
    assert q_table.tries_ is not None
    unvisited = [v for v in random_views() if q_table.tries_[state_index(v.regime_index,
                 v.edge, v.drawdown)].sum() == 0]  # fmt: skip
    assert unvisited
    assert {q_table.adjust(view) for view in unvisited} == {1.0}


def test_the_q_table_is_the_same_for_the_same_seed_and_differs_for_another(
    world: World,
) -> None:
    make_env = env_maker(world, "qsizing")
    first = QTableSizer().train(make_env, seed=11, steps=40)
    again = QTableSizer().train(make_env, seed=11, steps=40)
    other = QTableSizer().train(make_env, seed=12, steps=40)
    assert first.q_ is not None and again.q_ is not None and other.q_ is not None
    np.testing.assert_array_equal(first.q_, again.q_)
    np.testing.assert_array_equal(first.tries_, again.tries_)
    assert not np.array_equal(first.tries_, other.tries_)


def test_a_saved_q_table_loads_with_the_same_answers_and_table(
    q_table: QTableSizer, tmp_path: Path
) -> None:
    q_table.save(tmp_path / "q")
    loaded = QTableSizer.load(tmp_path / "q")
    views = random_views()
    assert [loaded.adjust(v) for v in views] == [q_table.adjust(v) for v in views]
    assert loaded.table().equals(q_table.table())
    manifest = json.loads((tmp_path / "q" / MANIFEST_FILE).read_text())
    assert manifest["name"] == "q_sizing" and manifest["training"]["seed"] == 7
    assert not (tmp_path / "q" / SB3_FILE).exists()


def test_an_agent_trades_a_backtest_as_it_traded_its_env(
    world: World, q_table: QTableSizer
) -> None:
    env = world.env("qsizing", end=SEGMENT_END)
    env.reset()
    while env.view is not None:
        env.step(MULTIPLIERS.index(q_table.adjust(env.view)))
    request = world.request(START, SEGMENT_END)
    signals = slice_signals(world.signals, START, SEGMENT_END)
    strategy = request.strategy(signals, compiled=False)
    strategy.agent = q_table
    backtest = request.replay(strategy)
    np.testing.assert_allclose(env.engine.result().equity, backtest.equity, rtol=0, atol=1e-9)


def test_the_dqn_answers_with_numpy_what_stable_baselines3_predicts(dqn: DQNVeto) -> None:
    views = random_views()
    expected = []
    for view in views:
        action, _ = dqn.model_.predict(observation(view), deterministic=True)
        expected.append((1.0, 0.0)[int(action)])
    assert [dqn.adjust(view) for view in views] == expected
    with torch.no_grad():
        batch = torch.as_tensor(np.stack([observation(v) for v in views]))
        q_torch = dqn.model_.q_net(batch).numpy()
    q_numpy = np.stack([dqn.q_values(view) for view in views])
    np.testing.assert_allclose(q_numpy, q_torch, rtol=1e-5, atol=1e-6)


def test_the_ppo_sizer_answers_with_numpy_the_policys_deterministic_size(
    ppo: PPOSizer,
) -> None:
    views = random_views()
    expected = [float(ppo.model_.predict(observation(v), deterministic=True)[0][0]) for v in views]
    got = [ppo.adjust(view) for view in views]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert all(0.0 <= size <= 2.0 for size in got)
    assert len(set(np.round(got, 6))) > 10, "a constant answer would prove nothing"


@pytest.mark.parametrize("name", ["dqn", "ppo"])
def test_a_saved_network_loads_without_stable_baselines3_with_the_same_answers(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    agent: DQNVeto | PPOSizer = request.getfixturevalue(name)
    folder = agent.save(tmp_path / name)
    assert {p.name for p in folder.iterdir()} == {MANIFEST_FILE, WEIGHTS_FILE, SB3_FILE}
    loaded = type(agent).load(folder)
    assert loaded.model_ is None and loaded.params() == agent.params()
    views = random_views()
    assert [loaded.adjust(v) for v in views] == [agent.adjust(v) for v in views]
    with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as stored:
        assert all(stored[key].dtype == np.float32 for key in stored.files)


def test_a_loaded_network_answers_without_importing_stable_baselines3(
    dqn: DQNVeto, tmp_path: Path
) -> None:
    dqn.save(tmp_path / "dqn")
    (tmp_path / "dqn" / SB3_FILE).unlink()  # inference reads the numpy weights only
    view = random_views(1)[0]
    script = (
        "import sys\n"
        "from tradebrain.rl.agents import DQNVeto\n"
        "from tradebrain.strategies.agent_port import AgentView\n"
        f"agent = DQNVeto.load({str(tmp_path / 'dqn')!r})\n"
        f"print(agent.adjust(AgentView{astuple(view)!r}))\n"
        "print('stable_baselines3' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert run.stdout.split() == [str(dqn.adjust(view)), "False"]


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        (DQNVeto(learning_starts=20, batch_size=16, train_freq=2), "veto"),
        (PPOSizer(n_steps=8, n_epochs=2), "sizing"),
    ],
)
def test_a_network_trains_to_the_same_weights_for_the_same_seed(
    world: World, agent: DQNVeto | PPOSizer, kind: AgentKind
) -> None:
    # On CPU with one torch thread, stable-baselines3's seeded training is deterministic.
    make_env = env_maker(world, kind)
    first = type(agent)(**agent.params()).train(make_env, seed=5, steps=32).network_
    again = type(agent)(**agent.params()).train(make_env, seed=5, steps=32).network_
    assert first is not None and again is not None
    for a, b in zip(first.arrays().values(), again.arrays().values(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["q_table", "dqn", "ppo"])
def test_an_agent_answers_an_entry_far_under_a_fifth_of_a_millisecond(
    name: str, request: pytest.FixtureRequest
) -> None:
    agent: PositionAgent = request.getfixturevalue(name)
    views = random_views(1000, seed=1)
    timings = []
    for view in views:
        began = time.perf_counter_ns()
        agent.adjust(view)
        timings.append(time.perf_counter_ns() - began)
    assert np.percentile(timings, 99) < 200_000


def test_agents_refuse_to_answer_before_training_and_an_env_of_another_kind(
    world: World,
) -> None:
    view = random_views(1)[0]
    for agent in (QTableSizer(), DQNVeto(), PPOSizer()):
        with pytest.raises(RuntimeError, match="not trained yet"):
            agent.adjust(view)
    with pytest.raises(UserInputError, match="trains on a 'veto' env"):
        DQNVeto().train(env_maker(world, "sizing"), seed=0, steps=10)


def test_an_agent_refuses_to_train_on_a_segment_the_brain_never_enters(world: World) -> None:
    with pytest.raises(UserInputError, match="never enters"):
        QTableSizer().train(lambda: world.env("qsizing", start=0, end=150), seed=0, steps=10)


def test_loading_refuses_a_folder_of_another_agent_or_none(
    q_table: QTableSizer, tmp_path: Path
) -> None:
    q_table.save(tmp_path / "q")
    with pytest.raises(UserInputError, match="holds agent 'q_sizing', not 'dqn_veto'"):
        DQNVeto.load(tmp_path / "q")
    with pytest.raises(UserInputError, match="no saved agent"):
        PPOSizer.load(tmp_path / "missing")


@pytest.mark.parametrize("name", ["q_table", "dqn", "ppo"])
def test_an_agent_records_the_times_of_the_first_and_last_candle_it_trained_on(
    name: str, world: World, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    agent: QTableSizer | DQNVeto | PPOSizer = request.getfixturevalue(name)
    times = world.candles["timestamp"]
    assert agent.training_["segment"] == [START, SEGMENT_END]
    assert agent.training_["trained_from"] == times[START].isoformat()
    assert agent.training_["trained_until"] == times[SEGMENT_END - 1].isoformat()
    loaded = type(agent).load(agent.save(tmp_path / name))
    assert loaded.training_ == agent.training_


def test_an_agent_saved_before_training_times_were_recorded_still_loads(
    q_table: QTableSizer, tmp_path: Path
) -> None:
    folder = q_table.save(tmp_path / "old")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    for key in ("trained_from", "trained_until"):
        del manifest["training"][key]
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    loaded = QTableSizer.load(folder)
    assert "trained_until" not in loaded.training_
    views = random_views()
    assert [loaded.adjust(v) for v in views] == [q_table.adjust(v) for v in views]
