"""The runner: the backtest engine, fed live, with every candle's effects saved atomically.

:meth:`Runner.prepare` opens the state, reads each symbol's warm-up history, gets the models
from the :class:`~tradebrain.service.models_provider.ModelProvider`, the broker from the broker
factory (:func:`~tradebrain.service.brokers.open_broker`: paper or live, restored and
reconciled), and builds one :class:`~tradebrain.engine.engine.Engine` per symbol around that
ONE broker and risk gate. Each engine publishes its events to the
:class:`~tradebrain.service.recorder.StepRecorder`'s collector.
:meth:`Runner.step` hands one closed candle to its symbol's engine (broker matching, equity,
hybrid decision, risk, orders: exactly the backtest's path) and records everything the candle
caused — candle, decision, orders, fills, trades, equity, positions, broker state — in one
transaction. A crash before the commit loses the whole candle, and the restarted runner,
restored to the state before it, handles it again with the same order ids: nothing is lost or
duplicated.

With ``learning.enabled`` the runner also drives the
:class:`~tradebrain.service.learning_loop.LearningLoop` on every candle (shadow decisions are
written in the candle's transaction), makes the registry change it decided once the candle is
saved (:meth:`~tradebrain.service.learning_loop.LearningLoop.settle`), and trades a new
production from the next candle.

An RL agent (:mod:`tradebrain.rl`) scales or vetoes the brain's entries when one is chosen
(:func:`~tradebrain.rl.saved.serving_agent`): ``--agent FOLDER`` always, else with
``brain.rl_agent: bundle`` the agent saved in the traded bundle's ``agent/`` folder, which
follows the bundle when the learning loop promotes or rolls back another one.

What a trader is told (:mod:`~tradebrain.service.notify`: fills, risk-mode changes, the daily
summary, registry changes, the operator's switch) is announced only once it is saved: a
candle's after its step is committed, the switch after the store holds it.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tradebrain.brain.decision import Decision
from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import Settings
from tradebrain.core.events import CandleClosed, Event, OrderFilled
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.engine.engine import Engine
from tradebrain.exceptions import StoreFullError, UserInputError
from tradebrain.risk.manager import RiskManager
from tradebrain.service.brokers import (
    KEEP_IN_MEMORY,
    ServiceBroker,
    TradeLedger,
    open_broker,
)
from tradebrain.service.control import EMERGENCY, PAUSED, ControlGate
from tradebrain.service.feeds import LiveFeed
from tradebrain.service.learning_loop import LearningLoop, LoopStep
from tradebrain.service.memory import SignedMemory
from tradebrain.service.models_provider import ModelProvider
from tradebrain.service.notify import Announcer, Notifier
from tradebrain.service.options import ServeOptions
from tradebrain.service.prometheus import ServiceMetrics
from tradebrain.service.recorder import RunnerState, StepRecorder
from tradebrain.service.recording_broker import RecordingBroker
from tradebrain.state import StateStore
from tradebrain.strategies.hybrid import HybridStrategy

if TYPE_CHECKING:
    from tradebrain.rl.saved import ServingAgent

log = logging.getLogger(__name__)
_FULL_DISK_FIRST_WAIT_S = 0.2
_FULL_DISK_MAX_WAIT_S = 30.0


@dataclass
class SymbolRun:
    """One symbol's engine, strategy and live inputs."""

    engine: Engine
    strategy: HybridStrategy
    signals: Any  # LiveSignals
    candles_loaded: int = 0


class Runner:
    """Builds the engines and steps them candle by candle, recording each step."""

    def __init__(
        self,
        options: ServeOptions,
        settings: Settings,
        feed: LiveFeed,
        store: StateStore,
        metrics: ServiceMetrics,
        *,
        model_dir: Path,
        progress: Callable[[str], None] = lambda _: None,
        exchange_broker: Any = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.options = options
        self.settings = settings
        self.feed = feed
        self.store = store
        self.metrics = metrics
        self.model_dir = model_dir
        self.progress = progress
        self.run = options.run
        self.runs: dict[str, SymbolRun] = {}
        self.models = ModelProvider(
            options.models, model_dir, settings, source=feed.name, progress=progress
        )
        self.bundle: Any = None
        self.broker: ServiceBroker | None = None  # the simulated (paper) or exchange broker
        self.venue: RecordingBroker | None = None  # the same, remembering the orders' ids
        self.ledger: TradeLedger | None = None
        self._exchange_broker = exchange_broker
        self._pending_events: list[Event] = []
        self.risk = RiskManager(settings.risk)
        self.gate = ControlGate(self.risk)
        self.state = RunnerState()
        self.halt = threading.Event()  # set when the service stops: a held write gives up
        self.recorder = StepRecorder(
            store, self.run, feed.timeframe, options.cash, self.state, persist=self.until_written
        )
        self.announce = Announcer(notifier or Notifier(), store, self.run)
        self.after: dict[str, datetime | None] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.restored = False
        self.signed = SignedMemory(model_dir.parent / f".{model_dir.name}.key")
        self.agent: ServingAgent | None = None  # the RL agent traded with, and its source
        self.learning: LearningLoop | None = None
        if settings.learning.enabled:
            self.learning = LearningLoop(
                settings, options, store, timeframe=feed.timeframe, source=feed.name,
                progress=progress,
            )  # fmt: skip

    @property
    def bundle_dir(self) -> Path | None:
        """Return where the bundle is saved (prediction workers load it), None before."""
        return self.models.bundle_dir

    @property
    def trained_at(self) -> str | None:
        """Return the end of the bundle's training data (ISO text), None before."""
        return self.models.trained_at

    # --- start-up -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Read history, load or train the models, build the engines, restore the account."""
        options = self.options
        self.state = self.recorder.state = RunnerState.from_dict(self.store.runner_state(self.run))
        if not self.state.started_at:
            self.state.started_at = datetime.now(UTC).isoformat()
        self._check_descriptor()
        histories: dict[str, pl.DataFrame] = {}
        for symbol in options.symbols:
            last = self.store.last_candle(self.run, symbol, self.feed.timeframe)
            self.after[symbol] = last.open_time if last is not None else None
            self.progress(f"reading {options.warmup} candles of {symbol} history")
            histories[symbol] = self.feed.history(symbol, options.warmup, self.after[symbol])
            if histories[symbol].height < 300:
                raise UserInputError(
                    f"the feed gave only {histories[symbol].height} candles of {symbol} history; "
                    "the features need at least 300"
                )
        self.announce.resume(max((t for t in self.after.values() if t), default=None))
        self.bundle = self.models.provide(histories[options.symbols[0]])
        _one_torch_thread()
        if self.learning is not None and self.models.bundle_dir is not None:
            self.bundle, version = self.learning.adopt(
                self.bundle, self.models.bundle_dir, histories[options.symbols[0]]
            )
            self.models.bundle_dir = self.learning.registry.bundle_dir(version)
            self.models.trained_at = str(self.bundle.manifest.get("data_end"))
        setup = open_broker(
            options, self.settings, self.store, self.feed.timeframe,
            orders=self.recorder.orders, before_send=self.recorder.before_send,
            saved_ledger=self.state.extra.get("shadow"), exchange_broker=self._exchange_broker,
        )  # fmt: skip
        self.broker, self.venue, self.ledger = setup.broker, setup.venue, setup.ledger
        self._pending_events, self.restored = setup.pending_events, setup.restored
        from tradebrain.strategies.live_signals import LiveSignals

        agent = self._choose_agent()
        for symbol in options.symbols:
            signals = LiveSignals(self.bundle, self.feed.timeframe)
            signals.warm_up(histories[symbol])
            strategy = HybridStrategy(
                live=signals, brain_settings=self.settings.brain, market=options.market,
                tuning=BrainTuning.from_settings(self.settings), agent=agent,
            )  # fmt: skip
            engine = Engine(
                strategy, setup.venue, self.gate, symbol=symbol, timeframe=self.feed.timeframe,
                market_type=options.market, leverage=options.leverage,
            )  # fmt: skip
            strategy.init(engine.context)
            engine.context.position = setup.positions.get(symbol, 0.0)
            source = setup.position_source
            if source is not None:
                engine.position_source = lambda s, read=source: read(s, self.last_price(s))
            engine.subscribe(self.recorder.events.listener(symbol))
            self.runs[symbol] = SymbolRun(engine, strategy, signals, histories[symbol].height)
        if self.state.extra.get("memory"):
            self._restore_memory(self.state.extra["memory"])
        if self.learning is not None:
            self.learning.restore(self.state.extra.get("learning"), histories)
            now = datetime.now(UTC)
            for run in self.runs.values():
                run.signals.mute(self.learning.muted)
            self._after_learning(self.learning.settle(), now)
            self._after_learning(self.learning.resume_retraining(), now)
        control = self.store.control(self.run)
        if control is not None:
            self.gate.state = control["state"]
            if control["state"] == EMERGENCY:
                # Exits sent before a restart may not have reached the saved account: send
                # them again (a second reduce-only exit of a flat position is just cancelled).
                self.risk.emergency_stop(control.get("reason") or "emergency stop (restored)")
                self._close_everything(datetime.now(UTC))
            elif control["state"] == PAUSED:  # entries restored with the account stay unsent
                self._cancel_entries(datetime.now(UTC))

    def _choose_agent(self) -> Any:
        """Return the RL agent to trade with: ``--agent``, else the bundle's when
        ``brain.rl_agent`` is ``bundle``, else None (logged with where it came from)."""
        from tradebrain.rl.saved import serving_agent

        self.agent = serving_agent(
            self.settings.brain.rl_agent, self.options.agent, self.models.bundle_dir
        )
        log.info("%s", self.agent.describe())
        return self.agent.agent

    def _follow_bundle_agent(self, at: datetime) -> None:
        """Give every strategy the agent of the bundle now traded, if the agent follows it.

        An agent given with ``--agent`` stays. A broken agent folder in the new bundle is
        logged and recorded, and the brain's targets are traded as they are: a bad agent must
        not stop a running service.
        """
        from tradebrain.rl.saved import ServingAgent, serving_agent

        if self.agent is None or not self.agent.follows_bundle:
            return
        try:
            self.agent = serving_agent("bundle", None, self.models.bundle_dir)
        except Exception as error:  # a broken agent folder: trading goes on, and says why
            self.agent = ServingAgent(None, "bundle", None)
            message = f"the new bundle's RL agent cannot be loaded ({error}); trading without one"
            log.error("%s", message)
            self.store.record_event(self.run, "learning", message, at)
        else:
            log.info("%s", self.agent.describe())
        for run in self.runs.values():
            run.strategy.agent = self.agent.agent

    def _check_descriptor(self) -> None:
        """Refuse to continue a run that was started with other markets or settings."""
        options = self.options
        now = {
            "mode": options.mode, "market": options.market.value,
            "symbols": list(options.symbols), "timeframe": self.feed.timeframe,
            "cash": options.cash, "leverage": options.leverage,
        }  # fmt: skip
        saved = self.state.descriptor
        if saved and saved != now:
            changed = ", ".join(
                f"{key} {saved.get(key)!r} -> {value!r}"
                for key, value in now.items()
                if saved.get(key) != value
            )
            raise UserInputError(
                f"the state {self.store.url} belongs to a run with other settings ({changed}); "
                "start it again as it was, or give this run its own --state file"
            )
        self.state.descriptor = now

    def _memory(self) -> str:
        """Return what the engines, brains and risk policy remember between candles, packed.

        Saved with every step, so a restarted runner decides exactly as an uninterrupted one
        would: the brain's smoothers and panic history, each engine's ATR and last candle, and
        risk's policy (mode, paused symbols, emergency latch), signed with this installation's
        key (:class:`~tradebrain.service.memory.SignedMemory`).
        """
        engines = {
            symbol: {
                **run.engine.memory(),
                "brain": run.strategy.brain._memory,
                "equity_peak": run.strategy.equity_peak,  # an RL agent's drawdown
            }
            for symbol, run in self.runs.items()
        }
        return self.signed.pack({"engines": engines, "policy": self.risk.policy})

    def _restore_memory(self, text: str) -> None:
        """Put back what :meth:`_memory` saved (symbols no longer served are ignored).

        Without this installation's signature the run goes on with fresh memory (smoothers
        re-warm within a few candles): see :class:`~tradebrain.service.memory.SignedMemory`.
        """
        saved = self.signed.unpack(text)
        if saved is None:
            message = "the saved memory is not signed by this installation; starting it afresh"
            log.warning(message)
            self.store.record_event(self.run, "restore", message, datetime.now(UTC))
            return
        for symbol, memory in saved["engines"].items():
            run = self.runs.get(symbol)
            if run is None:
                continue
            run.engine.restore_memory(memory)
            run.strategy.brain._memory = memory["brain"]
            run.strategy.equity_peak = memory.get("equity_peak", math.nan)
        self.risk.policy = saved["policy"]

    # --- one candle -----------------------------------------------------------------------
    def step(self, candle: CandleClosed) -> Decision | None:
        """Run ``candle`` through its engine and record everything it caused."""
        run = self.runs.get(candle.symbol)
        broker, venue, ledger = self.broker, self.venue, self.ledger
        if run is None or broker is None or venue is None or ledger is None:
            return None
        engine = run.engine
        # Order events can reach any symbol's engine (a venue poll answers for every symbol):
        # each engine publishes what it handled to the recorder.
        if self._pending_events:  # what happened between candles (restart, operator)
            events, self._pending_events = self._pending_events, []
            for event in events:
                self._engine_of(event, engine).on_event(event)
        venue.begin(candle)
        self.gate.stale = self._stale(candle)
        started = time.perf_counter()
        engine.on_candle_closed(candle)
        latency = time.perf_counter() - started
        for event in broker.poll():  # what the venue did with the orders just sent
            self._engine_of(event, engine).on_event(event)
        run.candles_loaded += 1
        if candle.symbol == self.options.symbols[0]:  # counted in bars, not in symbol-candles
            self.state.candles_since_training += 1
        decision = self.recorder.events.decision(candle.symbol)
        working = {order_id for order_id, _ in broker.open_orders()}
        fills = self.recorder.book(candle, venue.drain(), working)
        trades = ledger.new_trades(fills, self.last_price)
        risk_events = self.risk.drain_events()
        for risk_event in risk_events:
            text = str(risk_event)
            self.until_written(
                partial(self.store.record_event, self.run, "risk", text, candle.close_time)
            )
        shown = None if decision is None else self.latest_shape(decision, candle)
        account = broker.account(candle.close_time)
        learned = LoopStep()
        if self.learning is not None:
            learned = self.learning.on_candle(candle, account.equity)
            self.state.extra["learning"] = self.learning.state()
        self.recorder.record(
            candle, shown, fills, trades, account, self.last_price,
            broker_state=broker.snapshot(), memory=self._memory(), ledger_state=ledger.state(),
            shadow_decisions=learned.shadow_decisions,
        )  # fmt: skip
        self.announce.step_saved(candle, fills, risk_events)  # committed: now it may be told
        self._after_learning(learned, candle.close_time)
        if self.learning is not None:  # what the loop decided, now that the candle is saved
            self._after_learning(self.learning.settle(), candle.close_time)
        self.metrics.equity.set(account.equity)
        self.metrics.open_positions.set(len(account.positions))
        self._trim(run, ledger)
        if decision is not None and shown is not None:
            self.metrics.observe_decision(candle.symbol, decision.action.value, latency)
            self.latest[candle.symbol] = shown
        return decision

    def until_written(self, write: Callable[[], None]) -> None:
        """Run the state store ``write``; while the disk is full, hold it and try again.

        The candle in hand waits (nothing after it is decided before it is saved), the
        failures are logged and counted (``tradebrain_state_write_failures_total``), and the
        write goes through as soon as space is back: no restart, nothing lost or doubled.
        Gives up (raises) only when the service stops; a restart then redoes the candle.
        """
        failures = 0
        while True:
            try:
                write()
            except StoreFullError as error:
                failures += 1
                self.metrics.state_write_failures.inc()
                wait = min(_FULL_DISK_MAX_WAIT_S, _FULL_DISK_FIRST_WAIT_S * 2 ** (failures - 1))
                report = log.error if failures == 1 else log.warning
                report(
                    "the disk is full: the state store could not save the step (try %d); "
                    "holding the candle and trying again in %.1f s (%s)",
                    failures, wait, error,
                )  # fmt: skip
                if self.halt.wait(wait):
                    raise
                continue
            if failures:
                log.warning("the state store saved the held step after %d tries", failures)
            return

    def _after_learning(self, learned: LoopStep, at: datetime) -> None:
        """Record what the learning loop did; trade a new production from the next candle."""
        for message in learned.events:
            log.info("learning: %s", message)
            self.store.record_event(self.run, "learning", message, at)
        if learned.swap is not None:
            self._trade_with(*learned.swap)
            self._follow_bundle_agent(at)
        if learned.mute is not None:
            for run in self.runs.values():
                run.signals.mute(learned.mute)
        self.announce.registry(learned.registry)

    def _trade_with(self, version: int, bundle: Any) -> None:
        """Swap every symbol's signals to ``bundle`` (warmed up on the candles held)."""
        from tradebrain.strategies.live_signals import LiveSignals

        loop = self.learning
        for symbol, run in self.runs.items():
            signals = LiveSignals(bundle, self.feed.timeframe)
            if loop is not None and symbol in loop.windows:
                signals.warm_up(loop.windows[symbol].frame(self.options.warmup))
            run.strategy.live = signals
            run.signals = signals
        self.bundle = bundle
        self.models.trained_at = str(bundle.manifest.get("data_end"))
        if loop is not None:
            self.models.bundle_dir = loop.registry.bundle_dir(version)

    def learning_command(
        self, command: str, *, version: int | None = None, reason: str = ""
    ) -> dict[str, Any]:
        """Run an operator's learning command: ``promote`` (a version), ``rollback`` or
        ``retrain``; return the learning status after it."""
        loop = self.learning
        if loop is None:
            raise UserInputError(
                "the learning loop is off; start the service with learning.enabled: true "
                "(or `tradebrain serve --learn`)"
            )
        if not loop.windows or not self.runs:
            raise UserInputError(
                "the service is still warming up (no engine yet); send the command again "
                "once /api/ai/status says it runs"
            )
        last = self.runs[self.options.symbols[0]].engine.last_candle
        now = datetime.now(UTC) if last is None else last.close_time  # the market's clock
        step = LoopStep()
        reason = reason or f"operator: {command}"
        if command == "promote":
            if version is None:
                raise UserInputError("promote needs the version to promote")
            loop.promote(version, reason, {}, step)
        elif command == "rollback":
            loop.rollback(reason, step)
        elif command == "retrain":
            if loop.worker.busy:
                raise UserInputError("a retraining is already running; wait for it")
            loop.request_retrain_now(now, reason)
            step.events.append(f"retraining started ({reason})")
        else:
            raise UserInputError(
                f"unknown learning command {command!r}: promote, rollback, retrain"
            )
        self._after_learning(step, now)
        return loop.status()

    def last_price(self, symbol: str) -> float | None:
        """Return the last close of ``symbol`` (None before its first candle)."""
        run = self.runs.get(symbol)
        last = run.engine.last_candle if run is not None else None
        return last.close if last is not None else None

    def _stale(self, candle: CandleClosed) -> str:
        """In live mode, say why entries must wait when ``candle`` is old (a backfill)."""
        if self.options.mode != "live":
            return ""
        age = (datetime.now(UTC) - candle.close_time).total_seconds()
        limit = self.options.max_candle_age or 2 * timeframe_seconds(self.feed.timeframe)
        if age <= limit:
            return ""
        return (
            f"the candle closed {age:.0f} s ago (backfill after an outage or a restart): "
            "no new position is opened on old prices"
        )

    def latest_shape(self, decision: Decision, candle: CandleClosed) -> dict[str, Any]:
        """Return the decision as the API shows it."""
        return {**decision.to_dict(), "price": candle.close, "timeframe": self.feed.timeframe}

    def _trim(self, run: SymbolRun, ledger: TradeLedger) -> None:
        """Keep the in-memory records of a long-running service short; the store has them all.

        Risk's Kelly and losing-streak rules read the recent closed trades, so the newest
        ``KEEP_IN_MEMORY`` of every list stay.
        """
        decisions = run.strategy.decisions
        if len(decisions) > 2 * KEEP_IN_MEMORY:
            del decisions[:-KEEP_IN_MEMORY]
        run.engine.trim(KEEP_IN_MEMORY)
        ledger.trim(KEEP_IN_MEMORY)

    def _engine_of(self, event: Event, default: Engine) -> Engine:
        """Return the engine of the symbol an order event is about."""
        symbol = event.fill.symbol if isinstance(event, OrderFilled) else event.intent.symbol  # type: ignore[union-attr]
        run = self.runs.get(symbol)
        return run.engine if run is not None else default

    # --- operator commands (called on the runner's thread) ----------------------------------
    def set_control(self, state: str, reason: str) -> dict[str, Any]:
        """Switch to running, paused or emergency-stopped, record it, and return the control
        this call produced (``state``, ``since`` as ISO text, ``reason``)."""
        now = datetime.now(UTC)
        self.gate.state = state
        if state == EMERGENCY:
            self.risk.emergency_stop(reason, now)
            self._close_everything(now)
        elif state == PAUSED:
            self._cancel_entries(now)
        elif self.risk.emergency:
            self.risk.release_emergency_stop(reason, now)
        self.store.set_control(self.run, state, reason, now)
        self.store.record_event(self.run, "control", f"{state}: {reason}", now)
        self.announce.control(state, reason, now)
        return {"state": state, "since": now.isoformat(), "reason": reason}

    def _cancel_entries(self, now: datetime) -> None:
        """Cancel the entry orders not yet filled (a pause means no new position, at once)."""
        broker = self.broker
        if broker is None:
            return
        for order_id, intent in broker.open_orders():
            if not intent.reduce_only:
                # A live cancel may also report fills that came first: every event is handled
                # (and recorded) with the next candle.
                self._pending_events.extend(broker.cancel(order_id, now))

    def _close_everything(self, now: datetime) -> None:
        """Cancel open entry orders and send reduce-only exits for every position."""
        broker, venue = self.broker, self.venue
        if broker is None or venue is None:
            return
        self._cancel_entries(now)
        account = broker.account(now)
        for intent in self.risk.close_all_intents(account):
            run = self.runs.get(intent.symbol)
            if run is not None:
                venue.submit(intent)


def _one_torch_thread() -> None:
    """Run the nets' live votes on one torch thread.

    A live vote is one window: a second intra-op thread only waits for the other core, which
    the retraining worker and the API use, and those waits cost up to ~100 ms a decision
    (benchmarks/bench_latency_while_retraining.py). Training sets its own count and restores it.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
