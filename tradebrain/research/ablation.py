"""Ablation of the hybrid strategy: what each part is worth in money after costs, out of sample.

The walk-forward forecasts are trained once
(:func:`~tradebrain.research.walk_forward_backtest.hybrid_signals`); every variant then reruns
only the engine over the same out-of-sample votes, so a difference is the part's own effect and
never a retraining accident. Each part is *toggled* from the configured system: a part that is
on is switched off, a part that is off is switched on. The parts:

- each model (its votes dropped);
- every brain part (:data:`~tradebrain.brain.tuning.PARTS`: regime weights, the risk vote and
  block, the volatility cut and bar, Kalman, chop, trend depth, panic exit, funding flip,
  gap-safe mode, maker/taker, the order-flow vote, the liquidation guard);
- risk's trade-record parts (``risk.kelly_from_trades``, ``risk.trade_record_rules``) and the
  position monitor's exits (``risk.manage_exits``: break-even, trailing stop, partial exit);
- RL agents (``rl:<name>``): each agent given, switched on (off when it is the request's own
  agent, :attr:`HybridRequest.agent`).

The value of a part is the after-cost log return of the system with it minus the system
without it, so a part that is off by default shows what switching it on would cost or earn.

An agent is never judged on candles it was trained on: it runs as :class:`DormantUntil` its
``training_["trained_until"]`` (the brain's own target before, exactly), so its row's
difference comes from later candles only; the row says from which candle and on how many. An
agent that trained past the last candle cannot be judged (its row's metrics are None); one
that does not say when its training ended is judged from the first traded candle, and its
row says so. A run with an agent decides with the Python brain (the compiled one has no agent
port); without one, with the compiled brain, which makes the same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tradebrain.brain.tuning import PARTS
from tradebrain.config import BrainSettings
from tradebrain.core.events import CandleClosed, to_datetime
from tradebrain.core.orders import OrderIntent
from tradebrain.engine.engine import EngineResult
from tradebrain.engine.strategy import StrategyContext
from tradebrain.evaluation.backtest_metrics import backtest_metrics
from tradebrain.exceptions import UserInputError
from tradebrain.execution.monitor import MonitorRules
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.walk_forward_backtest import Progress, hybrid_signals, run_hybrid
from tradebrain.state.records import to_micros
from tradebrain.strategies.agent_port import AgentView, PositionAgent
from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy

ABLATION_METRICS = ("log_return", "total_return", "sharpe", "max_drawdown", "n_trades", "psr")
"""Metrics compared with the configured system (``log_return``: after costs, from the first
candle the hybrid could trade)."""
RISK_PARTS = ("kelly_from_trades", "trade_record_rules", "manage_exits")
"""Risk settings toggled as parts."""
UNKNOWN_SPAN = "training span unknown: may include candles it trained on"
"""The note of an agent's row when the agent does not say when its training ended."""


@dataclass(frozen=True)
class AblationRow:
    """One variant: the part toggled, whether it is on by default, metrics and deltas.

    ``deltas`` are the toggled system minus the configured one; ``worth`` is what the part
    adds to the after-cost log return (the configured system's minus the toggled one's when
    the part is on by default, the other way round when it is off).

    An agent's row (``rl:<name>``) also says from which candle the agent was judged
    (``judged_from``, its open time, ISO 8601) and on how many candles (``judged_candles``,
    up to the last); ``note`` says why it cannot be judged (metrics, deltas and worth are then
    None) or what to beware of.
    """

    layer: str
    default_on: bool
    metrics: dict[str, float | None]
    deltas: dict[str, float | None]
    worth: float | None
    judged_from: str | None = None
    judged_candles: int | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict (with the judged span for an agent's row)."""
        row: dict[str, Any] = {
            "layer": self.layer,
            "default": "on" if self.default_on else "off",
            "metrics": self.metrics,
            "deltas": self.deltas,
            "worth_log_return": self.worth,
        }
        if self.layer.startswith("rl:"):
            row |= {
                "judged_from": self.judged_from,
                "judged_candles": self.judged_candles,
                "note": self.note,
            }
        return row


@dataclass(frozen=True)
class Ablation:
    """The configured system's metrics and one row per part toggled."""

    full: dict[str, float | None]
    rows: list[AblationRow]
    segments: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Return the ablation as a JSON-ready dict."""
        return {
            "full": self.full,
            "rows": [row.to_dict() for row in self.rows],
            "segments": self.segments,
        }


class DormantUntil:
    """An agent asked only on decisions after ``until``: before, the brain's own target (x1).

    It follows the :class:`~tradebrain.strategies.agent_port.PositionAgent` port; the strategy
    that runs it (:func:`replay_hybrid`) tells it the open time of each candle it decides on
    (:attr:`now`, the candles' ``timestamp``) and does not ask it at all while it sleeps, so
    that a sleeping agent's decisions are the brain's exactly. Until it is told a time it
    sleeps.

    Parameters
    ----------
    agent
        The agent to wake.
    until
        The open time of the last candle it sleeps through (the last it trained on:
        :func:`trained_until`); a time without a zone is UTC. None: awake on every candle.
    """

    def __init__(self, agent: PositionAgent, until: datetime | None) -> None:
        self.agent = agent
        self.until = (
            until if until is None or until.tzinfo is not None else until.replace(tzinfo=UTC)
        )
        self.name = agent.name
        self.now: datetime | None = None

    def awake(self) -> bool:
        """Whether the agent is asked on the candle :attr:`now`."""
        return self.now is not None and (self.until is None or self.now > self.until)

    def adjust(self, view: AgentView) -> float:
        """Return the agent's multiplier when awake; 1 (the brain's own target) before."""
        return self.agent.adjust(view) if self.awake() else 1.0


def trained_until(agent: PositionAgent) -> datetime | None:
    """Return the open time of the last candle ``agent`` trained on, or None when unknown.

    Read from ``agent.training_["trained_until"]`` (ISO 8601, as :mod:`tradebrain.rl.agents`
    records it); agents saved before it was recorded, and agents that record no training,
    give None.

    Raises
    ------
    UserInputError
        When the agent records a time that is not ISO 8601.
    """
    training = getattr(agent, "training_", None)
    value = training.get("trained_until") if isinstance(training, Mapping) else None
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as error:
        raise UserInputError(
            f"agent {agent.name!r} says it trained until {value!r}, not an ISO 8601 time "
            "(2024-03-01T12:00:00+00:00); retrain it with `tradebrain rl train`"
        ) from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _ClockedHybrid(HybridStrategy):
    """The Python hybrid strategy telling its :class:`DormantUntil` agent each candle's time.

    While the agent sleeps it is not asked: the brain's decision is carried out as it is.
    """

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        agent = self.agent
        if isinstance(agent, DormantUntil):
            agent.now = candle.open_time
            if not agent.awake():
                decision = self.decide(context, candle)
                return [] if decision is None else self.carry(decision, context, candle)
        return super().on_candle(context, candle)


def replay_hybrid(
    request: HybridRequest, signals: HybridSignals, *, disabled: tuple[str, ...] = ()
) -> EngineResult:
    """Run the hybrid strategy on ``signals`` once through the engine; return the result.

    Without an agent the compiled brain decides (:func:`run_hybrid`); with one, the Python
    brain, which tells a :class:`DormantUntil` agent the time of each candle. ``disabled``
    switches brain parts off.
    """
    if request.agent is None:
        result, _ = run_hybrid(request, signals, disabled=disabled)
        return result
    strategy = _ClockedHybrid(
        signals, brain_settings=request.brain, disabled=disabled, market=request.backtest.market,
        tuning=request.tuning, agent=request.agent,
    )  # fmt: skip
    return request.replay(strategy)


def ablation_metrics(
    request: HybridRequest, result: EngineResult, start: int
) -> dict[str, float | None]:
    """Return :data:`ABLATION_METRICS` of a run of ``request`` (None where undefined).

    ``log_return`` is the after-cost log growth of equity from before candle ``start`` (the
    first candle the hybrid could trade) to the last candle.
    """
    config = request.backtest
    values = backtest_metrics(
        result.equity, config.cash, result.trades, request.timeframe,
        exposure=result.exposure, fees=result.fees, funding=result.funding,
    )  # fmt: skip
    before = float(result.equity[start - 1]) if start > 0 else config.cash
    values["log_return"] = math.log(float(result.equity[-1]) / before)
    return {key: _finite(values.get(key)) for key in ABLATION_METRICS}


def ablation_layers(models: tuple[str, ...]) -> list[str]:
    """Return the part names in table order: ``model:<name>``, brain parts, risk parts.

    Agents' rows (``rl:<label>``) follow them, in the order the agents were given.
    """
    return [f"model:{m}" for m in models] + list(PARTS) + [f"risk:{p}" for p in RISK_PARTS]


def run_ablation(
    request: HybridRequest,
    *,
    agents: Mapping[str, PositionAgent] | Sequence[PositionAgent] = (),
    progress: Progress | None = None,
) -> Ablation:
    """Train walk-forward once, run the configured system, then each part toggled.

    The position monitor's exits count as on when ``request.backtest.monitor`` has any rule
    switched on (``HybridRequest.from_settings`` builds it from ``risk.manage_exits``).
    ``agents`` are RL agents to judge as parts (rows ``rl:<label>``; a sequence labels each
    by its ``name``, a mapping by its key); the request's own agent, if any, is a part too,
    on by default, and every run keeps it asleep through its training (see the module).
    ``progress`` is called with a line of text at each step.

    Raises
    ------
    UserInputError
        When two agents would share a label.
    """
    given = _labelled(agents, request.agent)
    configured = request.agent
    if configured is not None and not isinstance(configured, DormantUntil):
        configured = DormantUntil(configured, trained_until(configured))
        request = replace(request, agent=configured)
    signals, plan = hybrid_signals(request, progress=progress)
    config, risk, brain = request.backtest, request.risk, request.brain
    start = plan.segments[0].start if plan.segments else 0
    off_by_default = set(_off_parts(brain))

    def measure(
        variant: HybridSignals, disabled: tuple[str, ...] = (), **changes: Any
    ) -> dict[str, float | None]:
        changed = replace(request, **changes)
        return ablation_metrics(changed, replay_hybrid(changed, variant, disabled=disabled), start)

    if progress is not None:
        progress("running the configured system")
    full = measure(signals)
    rows = []
    for layer in ablation_layers(tuple(signals.votes)):
        if progress is not None:
            progress(f"toggling {layer}")
        default_on = True
        if layer.startswith("model:"):
            name = layer.removeprefix("model:")
            votes = {k: v for k, v in signals.votes.items() if k != name}
            metrics = measure(replace(signals, votes=votes))
        elif layer == "risk:manage_exits":
            default_on = config.monitor != MonitorRules.off()
            toggled = MonitorRules.off() if default_on else MonitorRules()
            metrics = measure(signals, backtest=replace(config, monitor=toggled))
        elif layer.startswith("risk:"):
            name = layer.removeprefix("risk:")
            default_on = bool(getattr(risk, name))
            metrics = measure(signals, risk=risk.model_copy(update={name: not default_on}))
        else:
            default_on = layer not in off_by_default
            if default_on:
                metrics = measure(signals, disabled=(layer,))
            else:
                switched = brain.model_copy(
                    update={
                        "disabled_parts": [p for p in brain.disabled_parts if p != layer],
                        **{k: True for k, part in _SWITCHES.items() if part == layer},
                    }
                )
                metrics = measure(signals, brain=switched)
        rows.append(_row(layer, default_on, metrics, full))
    times = request.candles["timestamp"].dt.epoch("us").to_numpy().astype(np.int64)
    for label, agent in given:
        layer = f"rl:{label}"
        if progress is not None:
            progress(f"toggling {layer}")
        inner = _awake_agent(agent)
        default_on = configured is not None and inner is configured.agent
        if configured is not None and default_on:
            until = configured.until  # the configured system sleeps it until then
        else:
            until = agent.until if isinstance(agent, DormantUntil) else trained_until(agent)
        judged, note = _judged_from(times, start, until)
        if judged is None:
            none = dict.fromkeys(ABLATION_METRICS)
            rows.append(AblationRow(layer, default_on, none, dict(none), None, None, 0, note))
            continue
        if default_on:
            metrics = measure(signals, agent=None)
        else:
            metrics = measure(signals, agent=DormantUntil(inner, until))
            if configured is not None:
                instead = f"in place of the configured agent {configured.name!r}"
                note = instead if note is None else f"{note}; {instead}"
        judged_from = to_datetime(int(times[judged])).isoformat()
        row = _row(layer, default_on, metrics, full)
        rows.append(replace(row, judged_from=judged_from, judged_candles=len(times) - judged,
                            note=note))  # fmt: skip
    return Ablation(full, rows, [segment.to_dict() for segment in plan.segments])


def _row(
    layer: str,
    default_on: bool,
    metrics: dict[str, float | None],
    full: dict[str, float | None],
) -> AblationRow:
    """The row of a part toggled: its deltas from the configured system and its worth."""
    deltas = {key: _delta(metrics[key], full[key]) for key in ABLATION_METRICS}
    gain = deltas["log_return"]
    worth = None if gain is None else (-gain if default_on else gain)
    return AblationRow(layer, default_on, metrics, deltas, worth)


def _awake_agent(agent: PositionAgent) -> PositionAgent:
    """The agent itself, out of its :class:`DormantUntil` wrapper if it has one."""
    return agent.agent if isinstance(agent, DormantUntil) else agent


def _labelled(
    agents: Mapping[str, PositionAgent] | Sequence[PositionAgent],
    configured: PositionAgent | None,
) -> list[tuple[str, PositionAgent]]:
    """Return the agents to judge with their labels, the configured one included."""
    given = list(agents.items()) if isinstance(agents, Mapping) else [(a.name, a) for a in agents]
    if configured is not None:
        inner = _awake_agent(configured)
        if not any(_awake_agent(agent) is inner for _, agent in given):
            given.append((configured.name, configured))
    labels = [label for label, _ in given]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise UserInputError(
            f"two agents would both be row rl:{twice[0]}; pass the agents as a mapping "
            "{label: agent} with a label each"
        )
    return given


def _judged_from(
    times: np.ndarray, start: int, until: datetime | None
) -> tuple[int | None, str | None]:
    """The first candle an agent trained until ``until`` is judged on, and the row's note.

    ``times`` are the (n,) candle open times in epoch microseconds; ``start`` is the first
    traded candle. None: no candle after ``until`` is left to judge it on.
    """
    if until is None:
        return start, UNKNOWN_SPAN
    last = to_datetime(int(times[-1]))
    first_after = int(np.searchsorted(times, to_micros(until), side="right"))
    judged = max(start, first_after)
    if judged >= len(times):
        return None, (
            f"cannot be judged: it trained until {until.isoformat()}, and no candle after "
            f"that is left (the last opens at {last.isoformat()}); give it later candles"
        )
    return judged, None


_SWITCHES = {
    "kalman": "kalman",
    "chop_filter": "chop",
    "panic_exit": "panic_exit",
    "funding_flip_filter": "funding_flip",
}


def _off_parts(brain: BrainSettings) -> list[str]:
    """Return the brain parts the settings switch off."""
    off = list(brain.disabled_parts)
    off += [part for key, part in _SWITCHES.items() if not getattr(brain, key)]
    return off


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _delta(value: float | None, base: float | None) -> float | None:
    if value is None or base is None:
        return None
    return value - base
