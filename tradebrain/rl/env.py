"""A gymnasium environment over the real engine: an agent scales or vetoes the brain's entries.

:class:`TradingEnv` replays one walk-forward segment — bars ``[start, end)`` of the candles —
through the engine, the simulated broker (the backtest's costs, market and leverage) and a
:class:`~tradebrain.risk.manager.RiskManager` from the settings, with the hybrid strategy
deciding on precomputed, out-of-sample :class:`~tradebrain.strategies.hybrid.HybridSignals`.
The agent never invents a trade: it is asked only where the brain's decision *enters* (opens
or adds exposure, :attr:`AgentView.entering`), the one place
:func:`~tradebrain.strategies.agent_port.adjusted_target` lets a multiplier matter. Every other
decision is carried out as the plain strategy carries it out, and the engine moves on.

One step is one entry:

- the observation is the waiting decision's :meth:`AgentView.features` (float32, clipped to
  :data:`OBSERVATION_LOW`, :data:`OBSERVATION_HIGH`: see :func:`observation`);
- the action becomes a multiplier (:meth:`TradingEnv.multiplier`): ``veto`` — Discrete(2),
  0 approves (x1), 1 vetoes (x0); ``sizing`` — Box([0], [2]), the value; ``qsizing`` —
  Discrete(4), an index into :data:`MULTIPLIERS`;
- the decision with the agent's multiplier (:meth:`HybridStrategy.with_agent`) is carried out
  and its intents go through risk to the broker (:meth:`Engine.submit`), to fill at the next
  candle's open exactly as in a backtest; candles are then fed until the next entry waits or
  the segment ends;
- the reward is the log growth of equity over those candles, after fees, slippage and funding
  (``log(equity_after / equity_before)``, both marked at a candle's close), minus
  ``drawdown_penalty`` times the increase of the episode's maximum drawdown from its equity
  peak (so an episode's penalties add up to ``drawdown_penalty`` x its maximum drawdown);
- the episode terminates when the segment's last candle has been handled or equity reaches 0
  (the log growth is then floored at ``log(1e-6)``).

``reset`` builds a fresh engine, broker, risk manager and brain and runs to the first entry.
A segment in which the brain never enters still answers ``reset`` with an observation, as
gymnasium requires: zeros, with ``info["waiting"] = False``; the next ``step`` (any action)
terminates with the equity change of the whole segment, which is 0 since nothing was opened.
Stepped with the neutral action (:meth:`TradingEnv.neutral_action`) the env trades exactly as
the plain hybrid strategy does in :func:`~tradebrain.engine.backtest.run_backtest` on the same
bars (``tests/rl/test_env.py`` proves the equity curves equal).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
import polars as pl
from gymnasium import spaces

from tradebrain.brain.decision import Decision
from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import Settings
from tradebrain.core.events import CandleClosed, Event
from tradebrain.core.orders import OrderIntent
from tradebrain.engine.backtest import BacktestConfig, event_engine
from tradebrain.engine.engine import Engine
from tradebrain.engine.feed import ReplayFeed
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.risk.manager import RiskManager
from tradebrain.strategies.agent_port import REGIMES, VIEW_SIZE, AgentView
from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy

AgentKind = Literal["veto", "sizing", "qsizing"]
"""What the agent answers: approve or veto, a size in [0, 2], or one of :data:`MULTIPLIERS`."""

KINDS: tuple[AgentKind, ...] = ("veto", "sizing", "qsizing")

MULTIPLIERS = (0.0, 0.5, 1.0, 1.5)
"""The multipliers a ``qsizing`` agent picks from (index = action)."""

MAX_MULTIPLIER = 2.0
"""The largest multiplier a ``sizing`` agent may answer."""

EXPOSURE_BOUND = 10.0
"""Target and exposure are clipped to +-this in the observation (10x equity: never reached)."""

OBSERVATION_LOW = np.array(
    [-EXPOSURE_BOUND, -EXPOSURE_BOUND, -10.0, 0.0, 0.0, 0.0] + [0.0] * len(REGIMES),
    dtype=np.float32,
)
"""Lower bounds of :func:`observation`, in :meth:`AgentView.features` order."""

OBSERVATION_HIGH = np.array(
    [EXPOSURE_BOUND, EXPOSURE_BOUND, 10.0, 1.0, 1.0, 1.0] + [1.0] * len(REGIMES),
    dtype=np.float32,
)
"""Upper bounds of :func:`observation`."""

RUIN_GROWTH_FLOOR = 1e-6
"""The smallest equity ratio a step's log growth reads (equity at 0 would give -inf)."""


def observation(view: AgentView) -> np.ndarray:
    """Return what an agent's network reads of ``view``: (VIEW_SIZE,) float32, clipped."""
    features = np.asarray(view.features(), dtype=np.float32)
    return np.clip(features, OBSERVATION_LOW, OBSERVATION_HIGH)


def slice_signals(signals: HybridSignals, start: int, end: int) -> HybridSignals:
    """Return the rows ``[start, end)`` of ``signals`` (a segment's own signals)."""
    forecast = None if signals.forecast is None else signals.forecast[start:end]
    votes = {name: proba[start:end] for name, proba in signals.votes.items()}
    return HybridSignals(signals.feature_names, signals.features[start:end], votes, forecast)


@dataclass(frozen=True, slots=True)
class _Entry:
    """An entering decision waiting for the agent, with what carrying it out needs."""

    decision: Decision
    view: AgentView
    context: StrategyContext
    candle: CandleClosed


class _EntryGate:
    """The hybrid strategy with its entries held back for the agent (the env's strategy).

    Decisions that do not enter are carried out at once, as the plain strategy does (an
    agent's multiplier leaves them unchanged); an entering one is kept in :attr:`waiting` and
    no intent is returned, so the env can carry it out with the agent's answer.
    """

    name = "hybrid"

    def __init__(self, hybrid: HybridStrategy) -> None:
        self.hybrid = hybrid
        self.waiting: _Entry | None = None

    def init(self, context: StrategyContext) -> None:
        self.hybrid.init(context)
        self.waiting = None

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        hybrid = self.hybrid
        decision = hybrid.decide(context, candle)
        if decision is None:
            return []
        view = hybrid.view(decision, context, candle)
        if view.entering:
            self.waiting = _Entry(decision, view, context, candle)
            return []
        return hybrid.carry(decision, context, candle)


class TradingEnv(gym.Env[np.ndarray, Any]):
    """One walk-forward segment on the real engine; one step per entry (see the module).

    Parameters
    ----------
    candles
        The candles (candle schema, oldest first); only rows ``[start, end)`` are replayed.
    signals
        Out-of-sample features, votes and forecasts, one row per candle of ``candles`` (row
        ``t`` decided at candle ``t``'s close).
    symbol, timeframe
        The market the candles are of.
    settings
        The brain, its tuning (:meth:`BrainTuning.from_settings`) and risk's rules, as a
        hybrid backtest builds them from the same settings.
    backtest
        Cash, costs, market, leverage and exit management of the simulated broker.
    kind
        The action space: ``"veto"``, ``"sizing"`` or ``"qsizing"``.
    start, end
        The segment: bars ``[start, end)``; the env never sees a bar outside it.
    funding
        Funding-rate history charged on perp positions (settlements after the segment's last
        close are not replayed); None: none.
    drawdown_penalty
        Weight (>= 0) of the increase of the maximum drawdown subtracted from each reward.

    Attributes
    ----------
    engine
        The engine of the current episode (its :meth:`Engine.result` is the equity curve).
    view
        The entry waiting for an action (None when none waits).
    strategy
        The episode's hybrid strategy (its ``decisions``, with the agent's reasons).
    entries
        Entries stepped so far in the episode.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own attribute)

    def __init__(
        self,
        candles: pl.DataFrame,
        signals: HybridSignals,
        *,
        symbol: str,
        timeframe: str,
        settings: Settings,
        backtest: BacktestConfig,
        kind: AgentKind,
        start: int,
        end: int,
        funding: pl.DataFrame | None = None,
        drawdown_penalty: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise UserInputError(f"unknown agent kind {kind!r}; use one of: {', '.join(KINDS)}")
        if len(signals) != candles.height:
            raise UserInputError(
                f"the signals cover {len(signals)} candles; the candle frame has "
                f"{candles.height}: build them from the same candles"
            )
        if not 0 <= start < end <= candles.height:
            raise UserInputError(
                f"the segment [{start}, {end}) is not within the {candles.height} candles; "
                "pick 0 <= start < end <= the number of candles"
            )
        if not (math.isfinite(drawdown_penalty) and drawdown_penalty >= 0):
            raise UserInputError(f"drawdown_penalty must be >= 0, got {drawdown_penalty}")
        self.symbol = symbol
        self.timeframe = timeframe
        self.settings = settings
        self.backtest = backtest
        self.kind: AgentKind = kind
        self.start = start
        self.end = end
        self.drawdown_penalty = drawdown_penalty
        self._feed = ReplayFeed(candles.slice(start, end - start), symbol, timeframe, funding)
        self._signals = slice_signals(signals, start, end)
        self._tuning = BrainTuning.from_settings(settings)
        self.observation_space = spaces.Box(OBSERVATION_LOW, OBSERVATION_HIGH, dtype=np.float32)
        self.action_space = _action_space(kind)
        self.engine, self._gate = self._build()
        self._events: Iterator[Event] = iter(())
        self._bar = -1  # index of the last candle handled, within the segment
        self._peak = math.nan
        self._drawdown = 0.0  # the episode's maximum drawdown so far
        self._equity = math.nan  # equity when the waiting entry was decided
        self._started = False
        self._over = True
        self.entries = 0

    @property
    def view(self) -> AgentView | None:
        """Return the entry waiting for an action, or None."""
        waiting = self._gate.waiting
        return None if waiting is None else waiting.view

    @property
    def strategy(self) -> HybridStrategy:
        """Return the episode's hybrid strategy (its ``decisions`` say what was carried out)."""
        return self._gate.hybrid

    def neutral_action(self) -> Any:
        """Return the action that keeps the brain's target (multiplier 1: the plain rule)."""
        if self.kind == "veto":
            return 0
        if self.kind == "sizing":
            return np.array([1.0], dtype=np.float32)
        return MULTIPLIERS.index(1.0)

    def multiplier(self, action: Any) -> float:
        """Return the multiplier of the brain's new exposure that ``action`` asks for."""
        if self.kind == "sizing":
            value = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
            return min(max(value, 0.0), MAX_MULTIPLIER) if math.isfinite(value) else 1.0
        index = int(action)
        choices = (1.0, 0.0) if self.kind == "veto" else MULTIPLIERS
        if not 0 <= index < len(choices):
            raise UserInputError(f"action {index} is not in the {self.kind} env's action space")
        return choices[index]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a fresh engine, broker, risk manager and brain; run to the first entry.

        ``options`` is accepted and ignored: an episode is always the whole segment (the
        engine is deterministic, so ``seed`` changes nothing but gymnasium's generator).
        """
        super().reset(seed=seed)
        self.engine, self._gate = self._build()
        self._events = iter(self._feed)
        self._bar = -1
        self._peak = math.nan
        self._drawdown = 0.0
        self.entries = 0
        self._started = True
        self._over = False
        waiting = self._advance()
        self._equity = self.engine.context.equity
        return self._observation(), self._info(waiting, 0.0, math.nan)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Carry out the waiting entry with ``action``'s multiplier; run to the next one."""
        if self._over:
            raise RuntimeError(
                "the episode is over; call reset()"
                if self._started
                else "the env has not started; call reset() first"
            )
        multiplier = self.multiplier(action)
        before, drawdown = self._equity, self._drawdown
        waiting = False
        entry = self._gate.waiting
        if entry is not None:
            self._gate.waiting = None
            self.entries += 1
            hybrid = self._gate.hybrid
            decision = hybrid.with_agent(entry.decision, entry.view, multiplier, self.kind)
            for intent in hybrid.carry(decision, entry.context, entry.candle):
                self.engine.submit(intent)
            waiting = self._advance()
        after = self.engine.context.equity
        growth = after / before if before > 0 and after == after else 1.0
        log_return = math.log(max(growth, RUIN_GROWTH_FLOOR))
        reward = log_return - self.drawdown_penalty * (self._drawdown - drawdown)
        self._equity = after
        self._over = not waiting
        info = self._info(waiting, log_return, multiplier)
        return self._observation(), reward, not waiting, False, info

    def _build(self) -> tuple[Engine, _EntryGate]:
        """Return a fresh engine around a fresh broker, risk manager and gated hybrid strategy.

        Built as :func:`~tradebrain.engine.backtest.run_backtest` builds its engine, with the
        strategy and risk manager a hybrid request builds from the same settings.
        """
        config, settings = self.backtest, self.settings
        hybrid = HybridStrategy(
            self._signals, brain_settings=settings.brain, market=config.market,
            tuning=self._tuning,
        )  # fmt: skip
        gate = _EntryGate(hybrid)
        engine = event_engine(
            gate, config, RiskManager(settings.risk), feed=self._feed, symbol=self.symbol,
            timeframe=self.timeframe,
        )  # fmt: skip
        gate.init(engine.context)  # what Engine.run does before the first event
        return engine, gate

    def _advance(self) -> bool:
        """Feed events until an entry waits (True) or the segment or the money ends (False)."""
        engine, gate = self.engine, self._gate
        context = engine.context
        for event in self._events:
            if type(event) is not CandleClosed:
                engine.on_event(event)
                continue
            engine.on_candle_closed(event)
            self._bar += 1
            equity = context.equity
            if not equity > 0:
                gate.waiting = None
                self._drawdown = 1.0
                return False
            if not self._peak >= equity:
                self._peak = equity
            self._drawdown = max(self._drawdown, 1.0 - equity / self._peak)
            if gate.waiting is not None:
                return True
        return False

    def _observation(self) -> np.ndarray:
        view = self.view
        if view is None:
            return np.zeros(VIEW_SIZE, dtype=np.float32)
        return observation(view)

    def _info(self, waiting: bool, log_return: float, multiplier: float) -> dict[str, Any]:
        return {
            "waiting": waiting,
            "bar": self.start + self._bar,
            "equity": self.engine.context.equity,
            "log_return": log_return,
            "multiplier": multiplier,
            "max_drawdown": self._drawdown,
            "entries": self.entries,
        }


def _action_space(kind: AgentKind) -> spaces.Space[Any]:
    if kind == "veto":
        return spaces.Discrete(2)
    if kind == "sizing":
        return spaces.Box(
            np.array([0.0], dtype=np.float32),
            np.array([MAX_MULTIPLIER], dtype=np.float32),
            dtype=np.float32,
        )
    return spaces.Discrete(len(MULTIPLIERS))
