"""The runner: the backtest engine, fed live, with every candle's effects saved atomically.

:meth:`Runner.prepare` opens the state, reads each symbol's warm-up history, loads (or trains
once) the models, builds one :class:`~tradebrain.engine.engine.Engine` per symbol around ONE
shared broker and risk gate, and restores the paper account of an earlier run.
:meth:`Runner.step` hands one closed candle to its symbol's engine (broker matching, equity,
hybrid decision, risk, orders: exactly the backtest's path) and records everything the candle
caused — candle, decision, orders, fills, trades, equity, positions, broker state — in one
transaction. A crash before the commit loses the whole candle, and the restarted runner,
restored to the state before it, handles it again with the same order ids: nothing is lost or
duplicated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from tradebrain.brain.decision import Decision
from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import Settings
from tradebrain.core.events import (
    CandleClosed,
    Event,
    OrderFilled,
)
from tradebrain.core.market import MarketType
from tradebrain.core.orders import Fill, OrderIntent
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.engine.engine import Engine
from tradebrain.exceptions import UserInputError
from tradebrain.execution.account import ClosedTrade
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import settings_costs
from tradebrain.execution.monitor import MonitorRules, PositionMonitor
from tradebrain.execution.portfolio import Portfolio
from tradebrain.execution.snapshot import broker_state, decode, encode, restore_broker
from tradebrain.risk.manager import RiskManager
from tradebrain.service.control import EMERGENCY, PAUSED, ControlGate
from tradebrain.service.feeds import LiveFeed
from tradebrain.service.memory import SignedMemory
from tradebrain.service.options import ServeOptions
from tradebrain.service.prometheus import ServiceMetrics
from tradebrain.service.recording import (
    OrderBook,
    fill_record,
    micros,
    order_record,
    position_record,
    trade_record,
)
from tradebrain.service.venue import DUST_NOTIONAL, RecordingBroker, intent_of, open_orders_of
from tradebrain.state import CandleRecord, EquityPoint, StateStore, Step
from tradebrain.strategies.hybrid import HybridStrategy

log = logging.getLogger(__name__)

KEEP_IN_MEMORY = 500
"""Newest decisions, fills, closed trades... kept in memory per engine (the store keeps all)."""


@dataclass
class SymbolRun:
    """One symbol's engine, strategy and live inputs."""

    engine: Engine
    strategy: HybridStrategy
    signals: Any  # LiveSignals
    candles_loaded: int = 0


@dataclass
class RunnerState:
    """What the runner keeps between candles and across restarts (``runner_state`` in the store)."""

    trades_total: int = 0
    benchmark_symbol: str = ""
    benchmark_price: float = 0.0
    started_at: str = ""
    candles_since_training: int = 0
    descriptor: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory": self.extra.get("memory"),
            "descriptor": self.descriptor,
            "trades_total": self.trades_total,
            "benchmark_symbol": self.benchmark_symbol,
            "benchmark_price": self.benchmark_price,
            "started_at": self.started_at,
            "candles_since_training": self.candles_since_training,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RunnerState:
        data = data or {}
        return cls(
            trades_total=int(data.get("trades_total", 0)),
            benchmark_symbol=str(data.get("benchmark_symbol", "")),
            benchmark_price=float(data.get("benchmark_price", 0.0)),
            started_at=str(data.get("started_at", "")),
            candles_since_training=int(data.get("candles_since_training", 0)),
            descriptor=dict(data.get("descriptor") or {}),
            extra={"memory": data.get("memory"), "shadow": data.get("shadow")},
        )


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
        self.bundle: Any = None
        self.bundle_dir: Path | None = None  # where the bundle is saved (workers load it)
        self.broker: Any = None  # SimulatedBroker (paper) or ExchangeBroker (live)
        self.venue: RecordingBroker | None = None
        self._exchange_broker = exchange_broker
        self._pending_events: list[Event] = []
        # Live mode: the venue knows balances, not round trips; this book pairs the recorded
        # fills into closed trades (for the trades table and risk's trade-based rules).
        self.shadow = Portfolio(cash=0.0, market=options.market)
        self.risk = RiskManager(settings.risk)
        self.gate = ControlGate(self.risk)
        self.orders = OrderBook()
        self.state = RunnerState()
        self.after: dict[str, datetime | None] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.trained_at: str | None = None
        self.restored = False
        self.signed = SignedMemory(model_dir.parent / f".{model_dir.name}.key")

    # --- start-up -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Read history, load or train the models, build the engines, restore the account."""
        options = self.options
        self.state = RunnerState.from_dict(self.store.runner_state(self.run))
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
        self.bundle = self._models(histories[options.symbols[0]])
        self.broker = self._live_broker() if options.mode == "live" else self._paper_broker()
        self.venue = RecordingBroker(self.broker, self.feed.timeframe, self._before_send)
        if options.mode == "live":
            self._restore_shadow(self.state.extra.get("shadow"))
            self.venue.trades = self.shadow.closed_trades
        from tradebrain.strategies.live_signals import LiveSignals

        for symbol in options.symbols:
            signals = LiveSignals(self.bundle, self.feed.timeframe)
            signals.warm_up(histories[symbol])
            strategy = HybridStrategy(
                live=signals, brain_settings=self.settings.brain, market=options.market,
                tuning=BrainTuning.from_settings(self.settings),
            )  # fmt: skip
            engine = Engine(
                strategy, self.venue, self.gate, symbol=symbol, timeframe=self.feed.timeframe,
                market_type=options.market, leverage=options.leverage,
            )  # fmt: skip
            strategy.init(engine.context)
            self.runs[symbol] = SymbolRun(engine, strategy, signals, histories[symbol].height)
        if isinstance(self.broker, SimulatedBroker):
            held = self.broker.account(datetime.now(UTC)).positions
            for symbol, run in self.runs.items():
                run.engine.context.position = held[symbol].quantity if symbol in held else 0.0
            self.broker._market_source = lambda s: self.runs[s].engine.market_state()
        else:
            for run in self.runs.values():
                run.engine.position_source = self._venue_position
        if self.state.extra.get("memory"):
            self._restore_memory(self.state.extra["memory"])
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
                "bar": run.engine.context.bar,
                "atr": run.engine._atr,
                "previous_close": run.engine._previous_close,
                "funding_rate": run.engine._funding_rate,
                "last": run.engine._last,
                "brain": run.strategy.brain._memory,
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
            engine = run.engine
            engine.context.bar = memory["bar"]
            engine._atr = memory["atr"]
            engine._previous_close = memory["previous_close"]
            engine._funding_rate = memory["funding_rate"]
            engine._last = memory["last"]
            run.strategy.brain._memory = memory["brain"]
        self.risk.policy = saved["policy"]

    def _models(self, history: pl.DataFrame) -> Any:
        from tradebrain.models.bundle import ModelBundle

        if self.options.models is not None:
            self.progress(f"loading models from {self.options.models}")
            bundle = ModelBundle.load(self.options.models)
            self.trained_at = str(bundle.manifest.get("data_end"))
            self.bundle_dir = self.options.models
            return bundle
        if (self.model_dir / "manifest.json").exists():
            self.progress(f"loading the service's models from {self.model_dir}")
            bundle = ModelBundle.load(self.model_dir)
            self.trained_at = str(bundle.manifest.get("data_end"))
            self.bundle_dir = self.model_dir
            return bundle
        return self._train(history)

    def _train(self, history: pl.DataFrame) -> Any:
        from tradebrain.features import compute_features
        from tradebrain.learning.forecaster import train_forecaster
        from tradebrain.strategies.hybrid_config import HybridConfig

        config = HybridConfig.from_settings(self.settings)
        self.progress(f"training {', '.join(config.models)} on {history.height} warm-up candles")
        features = compute_features(history, list(config.feature_sets))
        bundle = train_forecaster(
            history, features, config.evaluation_settings(), config.forecast,
            feature_sets=list(config.feature_sets), source=f"{self.feed.name} warm-up",
        )  # fmt: skip
        bundle.save(self.model_dir)
        self.trained_at = str(bundle.manifest.get("data_end"))
        self.bundle_dir = self.model_dir
        return bundle

    def _live_broker(self) -> Any:
        """The venue itself, through ccxt; reconcile what the database thinks is open."""
        broker = self._exchange_broker
        if broker is None:
            from tradebrain.execution.exchange_broker import ExchangeBroker
            from tradebrain.service.exchange_feed import live_exchange

            broker = ExchangeBroker(
                live_exchange(self.options), market=self.options.market,
                leverage=self.options.leverage, client_prefix="tb",
            )  # fmt: skip
        broker.on_place = self._before_send_now
        counts = self.store.counts(self.run)
        fresh = counts.get("candles", 0) == 0 and counts.get("orders", 0) == 0
        if fresh and self.options.market is MarketType.SPOT:
            self._check_spot_holdings(broker)
        known = self.store.open_orders(self.run)
        self.orders = OrderBook(known)
        self._pending_events = broker.reconcile(
            [(o.client_id, intent_of(o)) for o in known],
            already_filled={o.client_id: o.filled_quantity for o in known},
        )
        self.restored = bool(known)
        message = (
            f"reconciled {len(known)} open order(s) with the venue: "
            f"{len(self._pending_events)} event(s) happened while the service was down"
        )
        self.store.record_event(self.run, "reconcile", message, datetime.now(UTC))
        log.info(message)
        return broker

    def _check_spot_holdings(self, broker: Any) -> None:
        """A new live spot run trades only what it buys: coins already held are not its own.

        Refuse to start when a traded coin is held above dust, so an exit can never sell the
        owner's coins.
        """
        account = broker.account(datetime.now(UTC))
        for symbol in self.options.symbols:
            held = account.positions.get(symbol)
            if held is None:
                continue
            worth = abs(held.quantity) * held.entry_price  # the venue's last price on spot
            if worth >= DUST_NOTIONAL:
                raise UserInputError(
                    f"the account already holds {held.quantity:g} {symbol.split('/')[0]} "
                    f"(about {worth:.2f} {symbol.split('/')[1]}); a live spot run would treat "
                    "them as its own position and could sell them. Move them to another "
                    "account (or sub-account) before starting"
                )

    def _before_send_now(self, client_id: str, intent: OrderIntent) -> None:
        """Record an order the broker places by itself (a protective stop or target)."""
        self._before_send(client_id, intent, datetime.now(UTC))

    def _before_send(self, client_id: str, intent: OrderIntent, at: datetime) -> None:
        """Record a live order as open BEFORE it is sent (see :meth:`StateStore.record_orders`)."""
        record = order_record(client_id, intent, "open", at)
        self.store.record_orders(self.run, [record])
        self.orders.orders[client_id] = record  # its fills and cancellation update this record

    def _paper_broker(self) -> SimulatedBroker:
        options = self.options
        broker = SimulatedBroker(
            cash=options.cash,
            costs=settings_costs(self.settings.execution),
            market=options.market,
            leverage=options.leverage,
            monitor=PositionMonitor(MonitorRules.from_settings(self.settings.risk)),
        )
        saved = self.store.broker_state(self.run)
        if saved is not None:
            restore_broker(broker, saved)
            self.restored = True
            self.orders = OrderBook(self.store.open_orders(self.run))
            self._reconcile(broker)
        return broker

    def _reconcile(self, broker: SimulatedBroker) -> None:
        """Check the restored paper account against the recorded positions and open orders."""
        recorded = {p.symbol: p.quantity for p in self.store.positions(self.run)}
        held = {s: h.quantity for s, h in broker.portfolio.holdings.items()}
        live_ids = {order_id for order_id, _ in broker.open_orders()}
        stale = [o for o in self.orders.open_orders() if o.client_id not in live_ids]
        now = datetime.now(UTC)
        for order in stale:  # recorded as open, but the saved account never had it
            self.orders.lost(order, now)
        message = (
            f"restored {len(held)} position(s) and {len(live_ids)} open order(s); "
            f"recorded positions {'match' if recorded == held else 'DIFFER: ' + repr(recorded)}"
        )
        self.store.record_event(self.run, "reconcile", message, now)
        log.info(message)

    # --- one candle -----------------------------------------------------------------------
    def step(self, candle: CandleClosed) -> Decision | None:
        """Run ``candle`` through its engine and record everything it caused."""
        run = self.runs.get(candle.symbol)
        broker, venue = self.broker, self.venue
        if run is None or broker is None or venue is None:
            return None
        engine, strategy = run.engine, run.strategy
        paper = isinstance(broker, SimulatedBroker)
        closed = broker.portfolio.closed_trades if paper else []
        n_decisions, n_closed = len(strategy.decisions), len(closed)
        # Order events can reach any symbol's engine (a venue poll answers for every symbol):
        # the tails of every engine are recorded.
        marks = {
            symbol: (len(r.engine.fills), len(r.engine.denials), len(r.engine.cancellations))
            for symbol, r in self.runs.items()
        }
        if self._pending_events:  # what happened between candles (restart, operator)
            events, self._pending_events = self._pending_events, []
            for event in events:
                self._engine_of(event, engine).on_event(event)
        venue.begin(candle)
        self.gate.stale = self._stale(candle)
        started = time.perf_counter()
        engine.on_candle_closed(candle)
        latency = time.perf_counter() - started
        if not paper:  # learn at once what the venue did with the orders just sent
            for event in broker.poll():
                self._engine_of(event, engine).on_event(event)
        run.candles_loaded += 1
        if candle.symbol == self.options.symbols[0]:  # counted in bars, not in symbol-candles
            self.state.candles_since_training += 1
        decision = strategy.decisions[-1] if len(strategy.decisions) > n_decisions else None
        for order_id, intent in venue.drain():
            self.orders.submitted(order_id, intent, candle.close_time)
        fills: list[Any] = []
        stamp = micros(candle.close_time)
        for symbol, r in self.runs.items():
            n_fills, n_denials, n_cancellations = marks[symbol]
            for fill in r.engine.fills[n_fills:]:
                self.orders.filled(fill)
                fills.append(fill)
            for number, denial in enumerate(r.engine.denials[n_denials:]):
                synthetic = f"denied|{symbol}|{stamp}|{number}"
                self.orders.denied(denial, denial.order_id or synthetic)
            for cancellation in r.engine.cancellations[n_cancellations:]:
                self.orders.cancelled(cancellation)
        self.orders.settle({order_id for order_id, _ in open_orders_of(broker)}, candle.close_time)
        if not paper:
            closed, n_closed = self._pair(fills)
        trades = []
        for trade in closed[n_closed:]:
            self.state.trades_total += 1
            trades.append(trade_record(trade, self.state.trades_total))
        for risk_event in self.risk.drain_events():
            self.store.record_event(self.run, "risk", str(risk_event), candle.close_time)
        self._record(candle, decision, fills, trades)
        self._trim(run)
        if decision is not None:
            self.metrics.observe_decision(candle.symbol, decision.action.value, latency)
            self.latest[candle.symbol] = {
                **decision.to_dict(), "price": candle.close, "timeframe": self.feed.timeframe,
            }  # fmt: skip
        return decision

    def _pair(self, fills: list[Fill]) -> tuple[list[ClosedTrade], int]:
        """Book live fills in the shadow book; return its closed trades and how many were old.

        A remainder too small to trade (fees taken in the coin, lot rounding) is dropped, so
        the next entry starts a new round trip.
        """
        book = self.shadow
        before = len(book.closed_trades)
        for fill in sorted(fills, key=lambda f: f.timestamp):
            book.apply_fill(fill)
        for symbol, holding in list(book.holdings.items()):
            run = self.runs.get(symbol)
            price = run.engine._last.close if run and run.engine._last else holding.entry_price
            if abs(holding.quantity) * price < DUST_NOTIONAL:
                del book.holdings[symbol]
        if len(book.closed_trades) > 2 * KEEP_IN_MEMORY:
            drop = len(book.closed_trades) - KEEP_IN_MEMORY
            del book.closed_trades[:drop]
            before -= drop
        return book.closed_trades, before

    def _shadow_state(self) -> dict[str, Any] | None:
        if isinstance(self.broker, SimulatedBroker):
            return None  # the paper broker's own state holds its trades and watermarks
        venue: Any = getattr(self.broker, "venue", None)
        return {
            "holdings": encode(self.shadow.holdings),
            "closed_trades": encode(self.shadow.closed_trades[-KEEP_IN_MEMORY:]),
            "watermarks": venue.watermarks() if hasattr(venue, "watermarks") else None,
        }

    def _restore_shadow(self, saved: dict[str, Any] | None) -> None:
        if saved:
            self.shadow.holdings = decode(saved["holdings"])
            self.shadow.closed_trades = decode(saved["closed_trades"])
            venue: Any = getattr(self.broker, "venue", None)
            if saved.get("watermarks") and hasattr(venue, "restore_watermarks"):
                venue.restore_watermarks(saved["watermarks"])

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

    def _venue_position(self, symbol: str) -> float:
        """Return the bot's position in ``symbol`` as the venue holds it (dust counts as 0)."""
        broker = self.broker
        held = broker.account(datetime.now(UTC)).positions.get(symbol)
        if held is None:
            return 0.0
        quantity = float(held.quantity)
        run = self.runs.get(symbol)
        price = run.engine._last.close if run is not None and run.engine._last else 0.0
        return 0.0 if abs(quantity) * price < DUST_NOTIONAL else quantity

    def _record(
        self,
        candle: CandleClosed,
        decision: Decision | None,
        fills: list[Any],
        trades: list[Any],
    ) -> None:
        broker = self.broker
        assert broker is not None
        account = broker.account(candle.close_time)
        if not self.state.benchmark_symbol:
            self.state.benchmark_symbol = candle.symbol
            self.state.benchmark_price = candle.close
        benchmark = self.runs[self.state.benchmark_symbol].engine
        bench_price = benchmark._last.close if benchmark._last is not None else candle.close
        buy_and_hold = self.options.cash * bench_price / self.state.benchmark_price
        step = Step(
            run=self.run,
            symbol=candle.symbol,
            timeframe=self.feed.timeframe,
            candle=CandleRecord(
                candle.symbol,
                self.feed.timeframe,
                candle.open_time,
                candle.open,
                candle.high,
                candle.low,
                candle.close,
                candle.volume,
            ),
            decision=None if decision is None else self.latest_shape(decision, candle),
            orders=self.orders.drain(),
            fills=[fill_record(f, n) for n, f in enumerate(fills)],
            trades=trades,
            equity=EquityPoint(candle.close_time, account.equity, account.cash, buy_and_hold),
            positions=[position_record(p) for p in account.positions.values()],
            broker_state=broker_state(broker) if isinstance(broker, SimulatedBroker) else None,
            runner_state={
                **self.state.to_dict(),
                "memory": self._memory(),
                "shadow": self._shadow_state(),
            },
        )
        self.store.record_step(step)
        self.metrics.equity.set(account.equity)
        self.metrics.open_positions.set(len(account.positions))

    def latest_shape(self, decision: Decision, candle: CandleClosed) -> dict[str, Any]:
        """Return the decision as the API shows it."""
        return {**decision.to_dict(), "price": candle.close, "timeframe": self.feed.timeframe}

    def _trim(self, run: SymbolRun) -> None:
        """Keep the in-memory records of a long-running service short; the store has them all.

        Risk's Kelly and losing-streak rules read the recent closed trades, so the newest
        ``KEEP_IN_MEMORY`` of every list stay.
        """
        engine = run.engine
        lists: list[list[Any]] = [
            run.strategy.decisions, engine.fills, engine.denials, engine.cancellations,
            engine._open_times, engine._equity, engine._exposure,
        ]  # fmt: skip
        for records in lists:
            if len(records) > 2 * KEEP_IN_MEMORY:
                del records[:-KEEP_IN_MEMORY]
        if isinstance(self.broker, SimulatedBroker):
            portfolio = self.broker.portfolio
            if len(portfolio.closed_trades) > 2 * KEEP_IN_MEMORY:
                del portfolio.closed_trades[:-KEEP_IN_MEMORY]
                portfolio._closed_view = None  # its cached view counted the trimmed trades

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
        return {"state": state, "since": now.isoformat(), "reason": reason}

    def _cancel_entries(self, now: datetime) -> None:
        """Cancel the entry orders not yet filled (a pause means no new position, at once)."""
        broker = self.broker
        if broker is None:
            return
        for order_id, intent in open_orders_of(broker):
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
