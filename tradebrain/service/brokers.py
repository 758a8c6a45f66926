"""The broker factory: the one place that knows which broker a run trades through.

:func:`open_broker` builds the simulated broker (paper mode: restored from the state store
and checked against the recorded positions) or the exchange broker (live mode: reconciled with
the venue), wraps it in the :class:`~tradebrain.service.recording_broker.RecordingBroker` the
engines trade through, and hands the runner a :class:`BrokerSetup`. From then on the runner talks to
the :class:`ServiceBroker` port and a :class:`TradeLedger` only; it never asks which broker it
has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tradebrain.config import Settings
from tradebrain.core.events import Event
from tradebrain.core.market import MarketType
from tradebrain.core.orders import Fill, OrderIntent
from tradebrain.engine.ports import Broker
from tradebrain.exceptions import UserInputError
from tradebrain.execution.account import ClosedTrade
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import settings_costs
from tradebrain.execution.monitor import MonitorRules, PositionMonitor
from tradebrain.execution.portfolio import Portfolio
from tradebrain.execution.snapshot import decode, encode, restore_broker
from tradebrain.service.options import ServeOptions
from tradebrain.service.recording import OrderBook
from tradebrain.service.recording_broker import DUST_NOTIONAL, RecordingBroker, intent_of
from tradebrain.state import StateStore

log = logging.getLogger(__name__)

KEEP_IN_MEMORY = 500
"""Newest decisions, fills, closed trades... kept in memory (the store keeps them all)."""

BeforeSend = Callable[[str, OrderIntent, datetime], None]
"""Records an order as open before it is sent: (client id, intent, time)."""
LastPrice = Callable[[str], float | None]
"""Returns a symbol's last close (None before its first candle)."""


class ServiceBroker(Broker, Protocol):
    """What the runner needs of a broker beyond the engine's port."""

    def poll(self) -> list[Event]:
        """Return what the venue did since the last call (a simulated broker: nothing)."""
        ...

    def open_orders(self) -> list[tuple[str, OrderIntent]]:
        """Return the orders still working, as (order id, intent)."""
        ...

    def snapshot(self) -> dict[str, Any] | None:
        """Return the state to save with every candle (None: the venue keeps its own)."""
        ...


class TradeLedger(Protocol):
    """Pairs a run's fills into closed trades (for the trades table and risk's trade rules)."""

    closed_trades: list[ClosedTrade]

    def new_trades(self, fills: list[Fill], last_price: LastPrice) -> list[ClosedTrade]:
        """Book ``fills`` (those of one candle) and return the trades they closed."""
        ...

    def state(self) -> dict[str, Any] | None:
        """Return what to save with every candle (None: nothing of its own)."""
        ...

    def trim(self, keep: int) -> None:
        """Forget all but the newest ``keep`` closed trades once twice as many are held."""
        ...


class PaperTrades:
    """The simulated broker's own round trips (its portfolio pairs every fill)."""

    def __init__(self, portfolio: Portfolio) -> None:
        self.portfolio = portfolio
        self.closed_trades = portfolio.closed_trades
        self._reported = len(portfolio.closed_trades)

    def new_trades(self, fills: list[Fill], last_price: LastPrice) -> list[ClosedTrade]:
        """Return the trades the broker closed since the last call (``fills`` are booked)."""
        trades = self.portfolio.closed_trades
        new = trades[self._reported :]
        self._reported = len(trades)
        return new

    def state(self) -> None:
        """Return None: the paper account's saved state holds its trades and watermarks."""
        return None

    def trim(self, keep: int) -> None:
        """Trim the portfolio's closed trades (risk reads the newest ``keep``)."""
        portfolio = self.portfolio
        if len(portfolio.closed_trades) > 2 * keep:
            del portfolio.closed_trades[:-keep]
            portfolio._closed_view = None  # its cached view counted the trimmed trades
        self._reported = len(portfolio.closed_trades)


class ShadowTrades:
    """Live mode: the venue knows balances, not round trips; this book pairs the fills.

    A remainder too small to trade (fees taken in the coin, lot rounding) is dropped, so the
    next entry starts a new round trip. Its state carries the venue account's drawdown
    watermarks too, so risk's limits survive a restart.
    """

    def __init__(self, market: MarketType, venue: Any, saved: dict[str, Any] | None) -> None:
        self.book = Portfolio(cash=0.0, market=market)
        self.venue = venue
        if saved:
            self.book.holdings = decode(saved["holdings"])
            self.book.closed_trades = decode(saved["closed_trades"])
            if saved.get("watermarks") and venue is not None:
                venue.restore_watermarks(saved["watermarks"])
        self.closed_trades = self.book.closed_trades

    def new_trades(self, fills: list[Fill], last_price: LastPrice) -> list[ClosedTrade]:
        """Book ``fills`` in time order; return the round trips they closed."""
        book = self.book
        before = len(book.closed_trades)
        for fill in sorted(fills, key=lambda f: f.timestamp):
            book.apply_fill(fill)
        for symbol, holding in list(book.holdings.items()):
            price = last_price(symbol) or holding.entry_price
            if abs(holding.quantity) * price < DUST_NOTIONAL:
                del book.holdings[symbol]
        if len(book.closed_trades) > 2 * KEEP_IN_MEMORY:
            drop = len(book.closed_trades) - KEEP_IN_MEMORY
            del book.closed_trades[:drop]
            before -= drop
        return book.closed_trades[before:]

    def state(self) -> dict[str, Any]:
        """Return the open round trips, the newest closed ones and the venue's watermarks."""
        return {
            "holdings": encode(self.book.holdings),
            "closed_trades": encode(self.book.closed_trades[-KEEP_IN_MEMORY:]),
            "watermarks": None if self.venue is None else self.venue.watermarks(),
        }

    def trim(self, keep: int) -> None:
        """Nothing to do: :meth:`new_trades` keeps the book short."""


@dataclass
class BrokerSetup:
    """What the broker factory hands the runner.

    Attributes
    ----------
    broker
        The broker itself (simulated or exchange).
    venue
        The same broker, recording the id of every order; the engines trade through it.
    ledger
        Pairs the run's fills into closed trades.
    pending_events
        Order events that happened while the service was down, to handle with the next candle.
    restored
        Whether an earlier run's account or open orders were taken over.
    positions
        Positions to start the engines from (a restored paper account).
    position_source
        Live mode: ``(symbol, last price) -> position`` as the venue holds it, read on every
        candle (balances include fees taken in the coin); None: the engines sum their fills.
    """

    broker: ServiceBroker
    venue: RecordingBroker
    ledger: TradeLedger
    pending_events: list[Event] = field(default_factory=list)
    restored: bool = False
    positions: dict[str, float] = field(default_factory=dict)
    position_source: Callable[[str, float | None], float] | None = None


def open_broker(
    options: ServeOptions,
    settings: Settings,
    store: StateStore,
    timeframe: str,
    *,
    orders: OrderBook,
    before_send: BeforeSend,
    saved_ledger: dict[str, Any] | None,
    exchange_broker: Any = None,
) -> BrokerSetup:
    """Return the run's broker: paper (restored) or live (reconciled with the venue).

    ``orders`` is the recorder's order book: the orders recorded as open are loaded into it
    before anything is sent, and ``before_send`` records each new one.
    """
    if options.mode == "live":
        return _live(options, store, orders, before_send, saved_ledger, exchange_broker, timeframe)
    return _paper(options, settings, store, orders, before_send, timeframe)


def _paper(
    options: ServeOptions,
    settings: Settings,
    store: StateStore,
    orders: OrderBook,
    before_send: BeforeSend,
    timeframe: str,
) -> BrokerSetup:
    broker = SimulatedBroker(
        cash=options.cash,
        costs=settings_costs(settings.execution),
        market=options.market,
        leverage=options.leverage,
        monitor=PositionMonitor(MonitorRules.from_settings(settings.risk)),
    )
    saved = store.broker_state(options.run)
    if saved is not None:
        restore_broker(broker, saved)
        orders.adopt(store.open_orders(options.run))
        _reconcile(broker, store, options.run, orders)
    held = broker.account(datetime.now(UTC)).positions
    return BrokerSetup(
        broker=broker,
        venue=RecordingBroker(broker, timeframe, before_send),
        ledger=PaperTrades(broker.portfolio),
        restored=saved is not None,
        positions={symbol: position.quantity for symbol, position in held.items()},
    )


def _reconcile(broker: SimulatedBroker, store: StateStore, run: str, orders: OrderBook) -> None:
    """Check the restored paper account against the recorded positions and open orders."""
    recorded = {p.symbol: p.quantity for p in store.positions(run)}
    held = {s: h.quantity for s, h in broker.portfolio.holdings.items()}
    live_ids = {order_id for order_id, _ in broker.open_orders()}
    stale = [o for o in orders.open_orders() if o.client_id not in live_ids]
    now = datetime.now(UTC)
    for order in stale:  # recorded as open, but the saved account never had it
        orders.lost(order, now)
    message = (
        f"restored {len(held)} position(s) and {len(live_ids)} open order(s); "
        f"recorded positions {'match' if recorded == held else 'DIFFER: ' + repr(recorded)}"
    )
    store.record_event(run, "reconcile", message, now)
    log.info(message)


def _live(
    options: ServeOptions,
    store: StateStore,
    orders: OrderBook,
    before_send: BeforeSend,
    saved_ledger: dict[str, Any] | None,
    broker: Any,
    timeframe: str,
) -> BrokerSetup:
    """The venue itself, through ccxt; reconcile what the database thinks is open."""
    if broker is None:
        from tradebrain.execution.exchange_broker import ExchangeBroker
        from tradebrain.service.exchange_feed import live_exchange

        broker = ExchangeBroker(
            live_exchange(options), market=options.market, leverage=options.leverage,
            client_prefix="tb",
        )  # fmt: skip
    # Protective orders the broker places by itself are recorded before they are sent too.
    broker.on_place = lambda client_id, intent: before_send(client_id, intent, datetime.now(UTC))
    counts = store.counts(options.run)
    fresh = counts.get("candles", 0) == 0 and counts.get("orders", 0) == 0
    if fresh and options.market is MarketType.SPOT:
        _check_spot_holdings(broker, options.symbols)
    known = store.open_orders(options.run)
    orders.adopt(known)
    pending = broker.reconcile(
        [(o.client_id, intent_of(o)) for o in known],
        already_filled={o.client_id: o.filled_quantity for o in known},
    )
    message = (
        f"reconciled {len(known)} open order(s) with the venue: "
        f"{len(pending)} event(s) happened while the service was down"
    )
    store.record_event(options.run, "reconcile", message, datetime.now(UTC))
    log.info(message)
    ledger = ShadowTrades(options.market, broker.venue, saved_ledger)
    venue = RecordingBroker(broker, timeframe, before_send)
    venue.trades = ledger.closed_trades

    def venue_position(symbol: str, price: float | None) -> float:
        """The bot's position as the venue holds it (dust counts as 0)."""
        held = broker.account(datetime.now(UTC)).positions.get(symbol)
        if held is None:
            return 0.0
        quantity = float(held.quantity)
        return 0.0 if abs(quantity) * (price or 0.0) < DUST_NOTIONAL else quantity

    return BrokerSetup(
        broker=broker,
        venue=venue,
        ledger=ledger,
        pending_events=pending,
        restored=bool(known),
        position_source=venue_position,
    )


def _check_spot_holdings(broker: Broker, symbols: tuple[str, ...]) -> None:
    """A new live spot run trades only what it buys: coins already held are not its own.

    Refuse to start when a traded coin is held above dust, so an exit can never sell the
    owner's coins.
    """
    account = broker.account(datetime.now(UTC))
    for symbol in symbols:
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
