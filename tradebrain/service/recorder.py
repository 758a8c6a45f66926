"""The recorder: turns what one candle caused into the :class:`~tradebrain.state.Step` saved.

Every engine of a run publishes its events (:meth:`~tradebrain.engine.engine.Engine.subscribe`);
:class:`StepEvents` collects the decisions and order events of one step, per symbol, and
:class:`StepRecorder` books them into the order book and writes the candle, the decision, the
orders, fills, trades, equity, positions, the broker's state and the runner's memory in ONE
transaction of the state store. :class:`RunnerState` is what the runner keeps between candles
and across restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, cast

from tradebrain.brain.decision import Decision
from tradebrain.core.events import (
    CandleClosed,
    DecisionMade,
    Event,
    OrderCancelled,
    OrderDenied,
    OrderFilled,
)
from tradebrain.core.orders import Fill, OrderIntent
from tradebrain.execution.account import AccountSnapshot, ClosedTrade
from tradebrain.service.recording import (
    OrderBook,
    fill_record,
    micros,
    order_record,
    position_record,
    trade_record,
)
from tradebrain.state import CandleRecord, EquityPoint, StateStore, Step


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
            "learning": self.extra.get("learning"),
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
            extra={
                "memory": data.get("memory"),
                "shadow": data.get("shadow"),
                "learning": data.get("learning"),
            },
        )


@dataclass
class SymbolEvents:
    """One engine's events of one step, each kind in the order it was handled."""

    decisions: list[DecisionMade] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    denials: list[OrderDenied] = field(default_factory=list)
    cancellations: list[OrderCancelled] = field(default_factory=list)


class StepEvents:
    """Collects the events the engines publish during one step, per symbol.

    Subscribe :meth:`listener` of each symbol to its engine once; :meth:`drain` returns what
    came in since the last drain, in the order the symbols were registered.
    """

    def __init__(self) -> None:
        self._by_symbol: dict[str, SymbolEvents] = {}

    def listener(self, symbol: str) -> Callable[[Event], None]:
        """Return the listener to subscribe to ``symbol``'s engine."""
        self._by_symbol.setdefault(symbol, SymbolEvents())
        by_symbol = self._by_symbol

        def collect(event: Event) -> None:
            events = by_symbol[symbol]
            if type(event) is OrderFilled:
                events.fills.append(event.fill)
            elif type(event) is OrderDenied:
                events.denials.append(event)
            elif type(event) is OrderCancelled:
                events.cancellations.append(event)
            elif type(event) is DecisionMade:
                events.decisions.append(event)

        return collect

    def decision(self, symbol: str) -> Decision | None:
        """Return the newest decision ``symbol``'s strategy announced this step, or None.

        The service runs the hybrid strategy, whose announcements carry a brain ``Decision``.
        """
        events = self._by_symbol.get(symbol)
        if events is None or not events.decisions:
            return None
        return cast(Decision, events.decisions[-1].decision)

    def drain(self) -> dict[str, SymbolEvents]:
        """Return the events collected since the last call, per symbol, and start afresh."""
        drained = dict(self._by_symbol)
        for symbol in drained:  # the listeners look their symbol's events up when called
            self._by_symbol[symbol] = SymbolEvents()
        return drained


class StepRecorder:
    """Books a step's events into the order book and writes the step to the state store.

    Parameters
    ----------
    store, run
        Where to write, and the run's name.
    timeframe
        The candles' timeframe.
    cash
        The starting cash, for the buy-and-hold benchmark.
    state
        The runner's state (trade numbering and benchmark live in it).
    persist
        Runs the step's write: by default at once; the runner's holds it while the disk is
        full (:meth:`~tradebrain.service.runner.Runner.until_written`).
    """

    def __init__(
        self,
        store: StateStore,
        run: str,
        timeframe: str,
        cash: float,
        state: RunnerState,
        *,
        persist: Callable[[Callable[[], None]], None] = lambda write: write(),
    ) -> None:
        self.store = store
        self.persist = persist
        self.run = run
        self.timeframe = timeframe
        self.cash = cash
        self.state = state
        self.orders = OrderBook()
        self.events = StepEvents()

    def before_send(self, client_id: str, intent: OrderIntent, at: datetime) -> None:
        """Record a live order as open BEFORE it is sent (see :meth:`StateStore.record_orders`)."""
        record = order_record(client_id, intent, "open", at)
        self.store.record_orders(self.run, [record])
        self.orders.orders[client_id] = record  # its fills and cancellation update this record

    def book(
        self,
        candle: CandleClosed,
        submitted: list[tuple[str, OrderIntent]],
        working: set[str],
    ) -> list[Fill]:
        """Book the orders ``submitted`` and the events collected during the step; return the
        fills (per symbol, in the order the engines handled them).

        ``working`` are the ids of the orders the broker still works on.
        """
        for order_id, intent in submitted:
            self.orders.submitted(order_id, intent, candle.close_time)
        fills: list[Fill] = []
        stamp = micros(candle.close_time)
        for symbol, events in self.events.drain().items():
            for fill in events.fills:
                self.orders.filled(fill)
                fills.append(fill)
            for number, denial in enumerate(events.denials):
                synthetic = f"denied|{symbol}|{stamp}|{number}"
                self.orders.denied(denial, denial.order_id or synthetic)
            for cancellation in events.cancellations:
                self.orders.cancelled(cancellation)
        self.orders.settle(working, candle.close_time)
        return fills

    def record(
        self,
        candle: CandleClosed,
        decision: dict[str, Any] | None,
        fills: list[Fill],
        trades: list[ClosedTrade],
        account: AccountSnapshot,
        benchmark_price: Callable[[str], float | None],
        *,
        broker_state: dict[str, Any] | None,
        memory: str,
        ledger_state: dict[str, Any] | None,
        shadow_decisions: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        """Write the step of ``candle`` in one transaction.

        ``decision`` is the decision as the API shows it; ``benchmark_price`` returns a
        symbol's last close, for buy-and-hold; ``shadow_decisions`` are the candidates'
        decisions on the candle, as ``(shadow run, document)``.
        """
        state = self.state
        if not state.benchmark_symbol:
            state.benchmark_symbol = candle.symbol
            state.benchmark_price = candle.close
        bench_price = benchmark_price(state.benchmark_symbol) or candle.close
        buy_and_hold = self.cash * bench_price / state.benchmark_price
        records = []
        for trade in trades:
            state.trades_total += 1
            records.append(trade_record(trade, state.trades_total))
        step = Step(
            run=self.run,
            symbol=candle.symbol,
            timeframe=self.timeframe,
            candle=CandleRecord(
                candle.symbol,
                self.timeframe,
                candle.open_time,
                candle.open,
                candle.high,
                candle.low,
                candle.close,
                candle.volume,
            ),
            decision=decision,
            orders=self.orders.drain(),
            fills=[fill_record(f, n) for n, f in enumerate(fills)],
            trades=records,
            equity=EquityPoint(candle.close_time, account.equity, account.cash, buy_and_hold),
            positions=[position_record(p) for p in account.positions.values()],
            broker_state=broker_state,
            runner_state={**state.to_dict(), "memory": memory, "shadow": ledger_state},
            shadow_decisions=shadow_decisions or [],
        )
        self.persist(partial(self.store.record_step, step))
