"""Do the RL agents earn their place? Walk-forward, after costs, seed by seed, beside plain rules.

:func:`compare_agents` takes one market (a :class:`HybridRequest`), computes the hybrid's
out-of-sample walk-forward signals once, and splits the bars those signals cover into
``blocks`` consecutive blocks. For each block after the first, every agent is trained on the
blocks before it only (a :class:`~tradebrain.rl.env.TradingEnv` over those bars) and
evaluated on the block, with a fresh account, on the same engine, broker and costs; so are
the two rules it must beat on the same candles:

- ``rule``: the brain's own target, unscaled (multiplier 1: the plain hybrid);
- ``fixed_fraction``: every entry sized to the same fraction of equity, whatever the forecast.

Each agent is trained with ``seeds`` seeds; the report gives every seed's after-cost log
return, Sharpe and trades, and per agent the median and the spread, never the best seed. The
deflated Sharpe counts every configuration evaluated (agents x seeds, and the two rules) as a
trial. An agent *earns its place* on a world when its median out-of-sample Sharpe beats the
rule's there and at least ``seeds - 1`` of its seeds do.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tradebrain.config import Settings
from tradebrain.evaluation.statistics import (
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    sharpe_statistics,
)
from tradebrain.exceptions import UserInputError
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.walk_forward_backtest import hybrid_signals
from tradebrain.rl.agents import DQNVeto, NothingToLearnError, PPOSizer, QTableSizer
from tradebrain.rl.env import TradingEnv
from tradebrain.strategies.agent_port import AgentView
from tradebrain.strategies.hybrid import HybridSignals

AGENTS = ("q_sizing", "dqn_veto", "ppo_sizing")
RULES = ("rule", "fixed_fraction")
FIXED_FRACTION = 0.5
"""The fixed-fraction rule's exposure per entry, as a share of ``brain.max_position``."""
Policy = Callable[[AgentView], float]


@dataclass(frozen=True)
class Score:
    """One policy's out-of-sample result over the evaluated blocks."""

    policy: str
    seed: int | None
    log_return: float
    sharpe: float
    trades: int
    entries: int
    vetoed: int
    returns: np.ndarray = field(repr=False, compare=False)
    train_seconds: float = 0.0
    untrained: int = 0
    """Blocks the agent met untrained (the brain never entered before them): it was the rule."""


@dataclass(frozen=True)
class Comparison:
    """Every score of one world, and which agents earned their place there."""

    world: str
    blocks: list[tuple[int, int]]
    scores: list[Score]
    trials: int

    def of(self, policy: str) -> list[Score]:
        return [s for s in self.scores if s.policy == policy]

    def median(self, policy: str, metric: str = "sharpe") -> float:
        return float(statistics.median(getattr(s, metric) for s in self.of(policy)))

    def earned(self, agent: str) -> bool:
        """Median OOS Sharpe above the rule's, and all seeds but one above it too."""
        rule = self.median("rule")
        seeds = self.of(agent)
        above = sum(s.sharpe > rule for s in seeds)
        return bool(seeds) and self.median(agent) > rule and above >= len(seeds) - 1

    def dsr(self, score: Score) -> float:
        """The deflated Sharpe of ``score``, every configuration evaluated a trial."""
        sharpes = [s.sharpe for s in self.scores if math.isfinite(s.sharpe)]
        variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0
        return _dsr(score.returns, self.trials, variance)


def compare_agents(
    request: HybridRequest,
    settings: Settings,
    *,
    world: str,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    agents: Sequence[str] = AGENTS,
    blocks: int = 3,
    steps: int = 2_000,
    signals: HybridSignals | None = None,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Train and evaluate ``agents`` walk-forward on ``request``'s market (see the module).

    ``settings`` are the ones ``request`` was built from (the env builds its brain, risk and
    broker from them, as the request does).
    """
    say = progress or (lambda _: None)
    if signals is None:
        say(f"{world}: walk-forward signals for {request.candles.height:,} candles")
        signals, _ = hybrid_signals(request)
    spans = _blocks(signals, blocks)
    first = spans[0][0]
    scores: list[Score] = []
    for name in RULES:
        policy = _rule(name, settings)
        scores.append(_evaluate(request, settings, signals, spans[1:], _fixed(policy), name, None))
    for agent in agents:
        for seed in seeds:
            started = time.perf_counter()
            untrained: list[int] = []

            def trained(
                train_end: int,
                agent: str = agent,
                seed: int = seed,
                untrained: list[int] = untrained,
            ) -> Policy:
                try:
                    learned = _train(
                        request, settings, signals, agent, seed, first, train_end, steps
                    )
                except NothingToLearnError:
                    untrained.append(train_end)  # no entry before: the agent is the plain rule
                    return lambda _view: 1.0
                return learned.adjust  # type: ignore[no-any-return]

            score = _evaluate(request, settings, signals, spans[1:], trained, agent, seed)
            seconds = time.perf_counter() - started
            scores.append(replace(score, train_seconds=seconds, untrained=len(untrained)))
            say(f"{world}: {agent} seed {seed}: OOS log return {score.log_return:+.4f}")
    return Comparison(world, spans, scores, trials=len(scores))


def _blocks(signals: HybridSignals, blocks: int) -> list[tuple[int, int]]:
    """Split the bars the out-of-sample signals cover into ``blocks`` consecutive blocks."""
    forecast = signals.forecast
    covered = (
        np.flatnonzero(~np.isnan(forecast[:, 0]))
        if forecast is not None
        else np.flatnonzero(np.any([~np.isnan(v[:, 0]) for v in signals.votes.values()], axis=0))
    )
    if covered.size < blocks * 50:
        raise ValueError(
            f"the walk-forward signals cover {covered.size} candles; {blocks} blocks need at "
            "least 50 each: use a longer history or fewer blocks"
        )
    start, end = int(covered[0]), int(covered[-1]) + 1
    edges = np.linspace(start, end, blocks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _env(
    request: HybridRequest,
    settings: Settings,
    signals: HybridSignals,
    kind: Any,
    start: int,
    end: int,
) -> TradingEnv:
    return TradingEnv(
        request.candles, signals, symbol=request.symbol, timeframe=request.timeframe,
        settings=settings, backtest=request.backtest, kind=kind, start=start, end=end,
        funding=request.funding,
    )  # fmt: skip


def _train(
    request: HybridRequest,
    settings: Settings,
    signals: HybridSignals,
    agent: str,
    seed: int,
    start: int,
    end: int,
    steps: int,
) -> Any:
    """Train ``agent`` on bars ``[start, end)`` only."""
    kinds = {"q_sizing": "qsizing", "dqn_veto": "veto", "ppo_sizing": "sizing"}
    learner: Any = {"q_sizing": QTableSizer, "dqn_veto": DQNVeto, "ppo_sizing": PPOSizer}[agent]()
    return learner.train(
        lambda: _env(request, settings, signals, kinds[agent], start, end), seed=seed, steps=steps
    )


def _fixed(policy: Policy) -> Callable[[int], Policy]:
    """The same policy before every block (a rule learns nothing)."""
    return lambda _start: policy


def _rule(name: str, settings: Settings) -> Policy:
    if name == "rule":
        return lambda _view: 1.0
    fraction = FIXED_FRACTION * settings.brain.max_position

    def fixed(view: AgentView) -> float:
        held = abs(view.exposure) if view.exposure * view.target > 0 else 0.0
        wanted = abs(view.target) - held
        return max(0.0, fraction - held) / wanted if wanted > 1e-12 else 1.0

    return fixed


def _evaluate(
    request: HybridRequest,
    settings: Settings,
    signals: HybridSignals,
    spans: list[tuple[int, int]],
    policy_for: Callable[[int], Policy],
    name: str,
    seed: int | None,
) -> Score:
    """Run the policy trained before each span on the span, with a fresh account each."""
    returns: list[np.ndarray] = []
    trades = entries = vetoed = 0
    for start, end in spans:
        policy = policy_for(start)
        env = _env(request, settings, signals, "sizing", start, end)
        env.reset()
        done = env.view is None
        while not done:
            view = env.view
            assert view is not None
            multiplier = float(policy(view))
            vetoed += multiplier == 0.0
            _, _, done, _, _ = env.step(np.array([multiplier], dtype=np.float32))
        result = env.engine.result()
        equity = np.asarray(result.equity, dtype=np.float64)
        returns.append(np.diff(np.log(np.maximum(equity, 1e-12))))
        trades += len(result.trades)
        entries += env.entries
    joined = np.concatenate(returns) if returns else np.zeros(0)
    return Score(
        policy=name, seed=seed, log_return=float(joined.sum()), sharpe=_sharpe(joined),
        trades=trades, entries=entries, vetoed=vetoed, returns=joined,
    )  # fmt: skip


def _sharpe(returns: np.ndarray) -> float:
    """Per-bar Sharpe of log returns (0 for a flat book)."""
    if returns.size < 2:
        return 0.0
    spread = float(returns.std(ddof=1))
    return float(returns.mean() / spread) if spread > 0 else 0.0


def _dsr(returns: np.ndarray, trials: int, variance: float) -> float:
    moments = sharpe_statistics(returns)
    if not math.isfinite(moments.sharpe):
        return math.nan
    return deflated_sharpe_ratio(
        moments.sharpe, moments.n_observations, trials, variance, moments.skewness,
        moments.kurtosis,
    )  # fmt: skip


def psr(score: Score) -> float:
    """The probabilistic Sharpe ratio (against 0) of a score's per-bar returns."""
    moments = sharpe_statistics(score.returns)
    if not math.isfinite(moments.sharpe):
        return math.nan
    return probabilistic_sharpe_ratio(
        moments.sharpe, moments.n_observations, moments.skewness, moments.kurtosis
    )


def train_on_signals(
    request: HybridRequest,
    settings: Settings,
    signals: HybridSignals,
    agent: str,
    seed: int,
    steps: int,
    *,
    share: float = 1.0,
) -> Any:
    """Train ``agent`` on the out-of-sample bars the signals cover (``tradebrain rl train``).

    ``share`` (0 < share <= 1) keeps only the first part of those bars for training, so the
    later candles stay unseen for judging the agent (the agent records the last candle it
    trained on: ``training_["trained_until"]``); 1 trains on every covered bar.

    Raises
    ------
    UserInputError
        When ``share`` is not in (0, 1].
    """
    check_share(share)
    ((start, end),) = _blocks(signals, 1)
    end = start + max(1, round(share * (end - start)))
    return _train(request, settings, signals, agent, seed, start, end, steps)


def check_share(share: float) -> None:
    """Refuse a training share outside (0, 1] (see :func:`train_on_signals`)."""
    if not 0.0 < share <= 1.0:
        raise UserInputError(
            f"share must be in (0, 1]: the part of the out-of-sample candles to train on "
            f"(0.5: the first half); got {share}"
        )
