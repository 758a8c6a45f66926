"""The RL env replays a segment on the real engine and asks the agent only at the entries."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tradebrain.config import Settings
from tradebrain.core.events import CandleClosed
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.backtest import BacktestConfig
from tradebrain.engine.engine import EngineResult
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.features import compute_features
from tradebrain.research.hybrid_request import HybridRequest, backtest_config
from tradebrain.rl.env import KINDS, MULTIPLIERS, AgentKind, TradingEnv, slice_signals
from tradebrain.strategies.agent_port import VIEW_SIZE
from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy

SYMBOL, TIMEFRAME = "SYN", "1h"
SETTINGS = Settings()
WARM_UP = 200  # candles without a vote: no decision before
START, END = 250, 900
CHECKER_WARNINGS = pytest.mark.filterwarnings(
    "ignore:.*(render modes|symmetric and normalized).*:UserWarning"
)


@dataclass(frozen=True)
class World:
    """A planted-trend market, its out-of-sample signals and the settings' simulation."""

    candles: pl.DataFrame
    signals: HybridSignals
    funding: pl.DataFrame
    backtest: BacktestConfig

    def env(
        self,
        kind: AgentKind,
        start: int = START,
        end: int = END,
        drawdown_penalty: float = 0.0,
    ) -> TradingEnv:
        return TradingEnv(
            self.candles, self.signals, symbol=SYMBOL, timeframe=TIMEFRAME, settings=SETTINGS,
            backtest=self.backtest, kind=kind, start=start, end=end, funding=self.funding,
            drawdown_penalty=drawdown_penalty,
        )  # fmt: skip

    def request(self, start: int = START, end: int = END) -> HybridRequest:
        """A hybrid backtest of bars [start, end), built from the settings as research does."""
        return HybridRequest.from_settings(
            SETTINGS, self.candles.slice(start, end - start), symbol=SYMBOL,
            timeframe=TIMEFRAME, funding=self.funding, backtest=self.backtest,
        )  # fmt: skip

    def plain(self, start: int = START, end: int = END) -> EngineResult:
        """The plain hybrid strategy (Python brain, no agent) backtested on bars [start, end)."""
        request = self.request(start, end)
        signals = slice_signals(self.signals, start, end)
        return request.replay(request.strategy(signals, compiled=False))


def oracle_votes(expected: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Votes of two noisy oracles of the planted drift (known at each close: causal)."""
    rng = np.random.default_rng(seed)
    votes = {}
    for name, noise in (("logistic", 1.0), ("lightgbm", 1.5)):
        score = expected / np.std(expected) + rng.normal(0.0, noise, expected.size)
        up = 1.0 / (1.0 + np.exp(-1.5 * score))
        proba = np.stack([0.8 * (1 - up), np.full_like(up, 0.2), 0.8 * up], axis=1)
        proba[:WARM_UP] = np.nan
        votes[name] = proba
    return votes


@cache
def planted_world(market: MarketType = MarketType.SPOT) -> World:
    """The test world (built once per process; ``tests/rl/test_agents.py`` shares it)."""
    synthetic = generate_market(
        SyntheticConfig(bars=END, signal=0.08, seed=3, edge="trend", orderflow=True)
    )
    features = compute_features(synthetic.candles, ["atomic", "indicators", "regime"])
    expected = synthetic.regimes["oracle_expected_return"].to_numpy()
    horizon = 24
    sigma = features["rv_std_60"].to_numpy() * np.sqrt(horizon)
    forecast = np.column_stack((np.full(sigma.size, 0.5), sigma, np.full(sigma.size, horizon)))
    forecast[:WARM_UP] = np.nan
    signals = HybridSignals.from_tables(features, oracle_votes(expected, seed=5), forecast)
    leverage = 2.0 if market is MarketType.PERP else 1.0
    backtest = backtest_config(SETTINGS, market=market, leverage=leverage)
    assert synthetic.funding is not None
    return World(synthetic.candles, signals, synthetic.funding, backtest)


@pytest.fixture(scope="module")
def world() -> World:
    return planted_world()


@dataclass
class Episode:
    observations: list[np.ndarray]
    rewards: list[float]
    infos: list[dict[str, Any]]
    result: EngineResult
    env: TradingEnv


def run_episode(env: TradingEnv, action: Any = None) -> Episode:
    """Step ``env`` through one episode with ``action`` (the neutral one when None)."""
    observation, info = env.reset(seed=0)
    observations, rewards, infos = [observation], [], [info]
    terminated = False
    while not terminated:
        observation, reward, terminated, truncated, info = env.step(
            env.neutral_action() if action is None else action
        )
        assert not truncated
        observations.append(observation)
        rewards.append(float(reward))
        infos.append(info)
    return Episode(observations, rewards, infos, env.engine.result(), env)


class EntryRecorder:
    """The plain hybrid strategy, noting the bars at which the brain's view enters."""

    name = "hybrid"

    def __init__(self, hybrid: HybridStrategy) -> None:
        self.hybrid = hybrid
        self.entry_bars: list[int] = []

    def init(self, context: StrategyContext) -> None:
        self.hybrid.init(context)

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        decision = self.hybrid.decide(context, candle)
        if decision is None:
            return []
        if self.hybrid.view(decision, context, candle).entering:
            self.entry_bars.append(context.bar)
        return self.hybrid.carry(decision, context, candle)


@CHECKER_WARNINGS
@pytest.mark.parametrize("kind", KINDS)
def test_the_env_passes_gymnasiums_and_stable_baselines3s_checkers(
    world: World, kind: AgentKind
) -> None:
    gymnasium_check_env(world.env(kind, end=500), skip_render_check=True)
    sb3_check_env(world.env(kind, end=500))


@pytest.mark.parametrize("kind", KINDS)
def test_neutral_actions_trade_exactly_as_the_plain_hybrid_strategy(
    world: World, kind: AgentKind
) -> None:
    episode = run_episode(world.env(kind))
    plain = world.plain()
    assert plain.trades, "the plain strategy never traded: the invariant would prove nothing"
    assert len(episode.rewards) > 3
    np.testing.assert_allclose(episode.result.equity, plain.equity, rtol=0, atol=1e-9)
    np.testing.assert_allclose(episode.result.exposure, plain.exposure, rtol=0, atol=1e-12)
    assert [(t.entry_time, t.exit_time, t.exit_reason) for t in episode.result.trades] == [
        (t.entry_time, t.exit_time, t.exit_reason) for t in plain.trades
    ]


def test_neutral_actions_trade_as_the_plain_strategy_on_a_leveraged_perp_with_funding() -> None:
    world = planted_world(MarketType.PERP)
    episode = run_episode(world.env("sizing"))
    plain = world.plain()
    assert plain.trades and plain.funding != 0.0
    assert episode.result.funding == pytest.approx(plain.funding, abs=1e-9)
    np.testing.assert_allclose(episode.result.equity, plain.equity, rtol=0, atol=1e-9)


def test_the_env_steps_only_where_the_brain_enters(world: World) -> None:
    request = world.request()
    recorder = EntryRecorder(
        request.strategy(slice_signals(world.signals, START, END), compiled=False)
    )
    request.replay(recorder)
    episode = run_episode(world.env("veto"))
    stepped = [info["bar"] - START for info in episode.infos[:-1]]
    assert stepped == recorder.entry_bars
    assert len(episode.rewards) == len(recorder.entry_bars) == episode.env.entries
    for observation in episode.observations[:-1]:
        assert observation.shape == (VIEW_SIZE,) and observation.dtype == np.float32
        assert observation[5] == 1.0  # the view's "entering" flag
    assert not episode.infos[-1]["waiting"]
    assert not episode.observations[-1].any()


def test_each_reward_is_the_log_growth_of_equity_from_one_entry_to_the_next(
    world: World,
) -> None:
    episode = run_episode(world.env("qsizing"))
    curve = episode.result.equity
    bars = [info["bar"] - START for info in episode.infos]
    assert bars[-1] == len(curve) - 1  # the last step runs to the segment's last candle
    expected = [math.log(curve[b] / curve[a]) for a, b in itertools.pairwise(bars)]
    np.testing.assert_allclose(episode.rewards, expected, rtol=0, atol=1e-12)
    assert sum(episode.rewards) == pytest.approx(math.log(curve[-1] / curve[bars[0]]))


def test_a_drawdown_penalty_subtracts_the_growth_of_the_maximum_drawdown(world: World) -> None:
    plain = run_episode(world.env("veto"))
    penalised = run_episode(world.env("veto", drawdown_penalty=2.0))
    curve = penalised.result.equity
    drawdown = np.maximum.accumulate(1.0 - curve / np.maximum.accumulate(curve))
    bars = [info["bar"] - START for info in penalised.infos]
    growth = np.diff(drawdown[bars])
    assert growth.max() > 0, "no step deepened the drawdown: the test would prove nothing"
    np.testing.assert_allclose(
        penalised.rewards, np.array(plain.rewards) - 2.0 * growth, rtol=0, atol=1e-12
    )
    assert penalised.infos[-1]["max_drawdown"] == pytest.approx(drawdown[-1])


def test_vetoing_every_entry_never_opens_a_position(world: World) -> None:
    episode = run_episode(world.env("veto"), action=1)
    assert len(episode.rewards) > 3  # the brain kept asking
    assert episode.result.fills == [] and episode.result.trades == []
    assert not episode.result.exposure.any()
    assert (episode.result.equity == world.backtest.cash).all()
    assert episode.rewards == [0.0] * len(episode.rewards)


def test_an_entry_is_carried_out_with_the_agents_multiplier_and_says_so(world: World) -> None:
    env = world.env("qsizing")
    env.reset()
    scaled = []
    while env.view is not None:
        view = env.view
        multiplier = 1.5 if 1.5 * view.target < SETTINGS.brain.max_position else 0.5
        carried = len(env.strategy.decisions)  # the entry's decision is the next one kept
        env.step(MULTIPLIERS.index(multiplier))
        decision = env.strategy.decisions[carried]
        assert "rl_agent" in decision.filters
        if view.exposure == 0.0:
            assert decision.target_position == pytest.approx(multiplier * view.target)
            assert any(f"rl qsizing: new exposure x{multiplier:.2f}" in r for r in decision.reasons)
            scaled.append(multiplier)
    assert {0.5, 1.5} <= set(scaled)


def test_the_env_never_reads_a_bar_outside_its_segment(world: World) -> None:
    outside = np.ones(world.candles.height)
    outside[:START] = outside[END - 100 :] = 0.5  # halve every price outside [START, END - 100)
    altered = world.candles.with_columns(pl.col(c) * outside for c in ("open", "high", "low",
                                                                       "close"))  # fmt: skip
    rows = np.r_[0:START, END - 100 : END]
    votes = {name: proba.copy() for name, proba in world.signals.votes.items()}
    for proba in votes.values():
        proba[rows] = np.nan
    signals = HybridSignals(world.signals.feature_names, world.signals.features, votes,
                            world.signals.forecast)  # fmt: skip
    moved = World(altered, signals, world.funding, world.backtest)
    original = run_episode(world.env("veto", end=END - 100))
    changed = run_episode(moved.env("veto", end=END - 100))
    assert original.rewards == changed.rewards
    np.testing.assert_array_equal(original.result.equity, changed.result.equity)


def test_a_segment_the_brain_never_enters_resets_to_zeros_and_ends_at_the_first_step(
    world: World,
) -> None:
    env = world.env("veto", start=0, end=WARM_UP)  # no vote yet: no decision at all
    observation, info = env.reset()
    assert not info["waiting"] and not observation.any()
    observation, reward, terminated, truncated, info = env.step(0)
    assert terminated and not truncated and reward == 0.0 and not observation.any()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_actions_become_multipliers_of_the_new_exposure(world: World) -> None:
    veto, sizing, qsizing = (world.env(kind, end=400) for kind in KINDS)
    assert [veto.multiplier(a) for a in (0, 1)] == [1.0, 0.0]
    assert [sizing.multiplier(np.array([a])) for a in (-1.0, 0.25, 1.0, 3.0)] == [
        0.0, 0.25, 1.0, 2.0,
    ]  # fmt: skip
    assert [qsizing.multiplier(a) for a in range(4)] == list(MULTIPLIERS)
    with pytest.raises(UserInputError, match="action 4"):
        qsizing.multiplier(4)
    for env in (veto, sizing, qsizing):
        assert env.multiplier(env.neutral_action()) == 1.0
        assert env.action_space.contains(env.neutral_action())


def test_a_segment_outside_the_candles_or_signals_of_other_candles_are_refused(
    world: World,
) -> None:
    with pytest.raises(UserInputError, match="segment"):
        world.env("veto", start=500, end=500)
    with pytest.raises(UserInputError, match="segment"):
        world.env("veto", start=0, end=END + 1)
    short = slice_signals(world.signals, 0, 100)
    with pytest.raises(UserInputError, match="same candles"):
        TradingEnv(world.candles, short, symbol=SYMBOL, timeframe=TIMEFRAME, settings=SETTINGS,
                   backtest=world.backtest, kind="veto", start=0, end=100)  # fmt: skip
    with pytest.raises(UserInputError, match="unknown agent kind"):
        world.env("bold")  # type: ignore[arg-type]
