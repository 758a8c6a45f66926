"""The exchange broker: the engine's ``Broker`` port on a real venue, through ccxt.

How a runner uses it::

    broker = ExchangeBroker(exchange, market=MarketType.PERP, leverage=3, client_prefix="tb")
    events = broker.reconcile(database.open_orders())      # after every start
    ...
    client_id = broker.client_id_for(intent, sequence=row_id)
    database.store_open(client_id, intent)                  # BEFORE the request
    broker.submit(intent, client_id=client_id)
    ...
    events = broker.on_candle(candle)   # or broker.poll() between candles

- ``submit`` never raises for the venue's answer: a refusal (insufficient balance, bad size,
  leverage refused) becomes an ``OrderDenied`` that the next ``poll``/``on_candle`` returns.
- Requests that may have reached the venue (timeouts, dropped connections, HTTP 5xx) are
  never blindly resent: the order is first looked up by its client id. HTTP 429 is resent
  after the retry policy's backoff. If the outcome is still unknown after every retry the
  order stays followed; the next poll finds it, or reports it denied when the venue has no
  order with that client id.
- Fills are reported once each (deduplicated by trade id), partial fills as several fills,
  with ``Fill.order_id`` = the client id; cancellations and expiries as ``OrderCancelled``.
- Protection: when an entry with ``stop_price`` fills, a reduce-only stop-market order goes to
  the venue (perps: a Binance algo order), with the client id ``{entry id}-sl``; a
  ``target_price`` becomes a reduce-only limit ``{entry id}-tp`` on perps. On spot, Binance
  locks the coins of a resting sell, so a stop and a limit target cannot both rest without an
  OCO list: the stop rests on the venue and the target is watched here, on candle highs, and
  exits with a market order. When a protective order fills, or an exit leaves the position
  flat, the remaining protective orders are cancelled.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

import ccxt

from tradebrain.core.events import CandleClosed, Event, FundingSettled, OrderDenied
from tradebrain.core.market import MarketSource, MarketType
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.data.exchanges import RetryPolicy
from tradebrain.exceptions import TemporaryError
from tradebrain.execution.account import AccountSnapshot
from tradebrain.execution.exchange_account import VenueAccount
from tradebrain.execution.exchange_desk import VenueDesk
from tradebrain.execution.exchange_orders import (
    STOP_SUFFIX,
    TARGET_SUFFIX,
    TrackedOrder,
    VenueCalls,
    VenueRefusal,
    check_prefix,
    client_id_for,
    guard_logs,
    logger,
)

_EPSILON = 1e-12


class ExchangeBroker:
    """Trades spot or USDT-margined perpetuals on a ccxt venue (Binance's API).

    Parameters
    ----------
    exchange
        A ccxt exchange from :func:`~tradebrain.data.exchanges.make_exchange` with ``apiKey``
        and ``secret`` set by the caller; they never appear in reprs, messages or logs (a
        filter masks them, and API-key headers, in ccxt's debug log too).
    market
        Spot, or perp (``BTC/USDT`` is traded as ``BTC/USDT:USDT``).
    leverage
        Leverage set once per perp symbol before its first order (Binance takes whole numbers:
        it is rounded); 1 on spot.
    retry
        Retries of temporary trouble (HTTP 429, 5xx, timeouts) and their backoff.
    client_prefix
        1-8 letters, digits or underscores that start every client order id.
    clock
        Returns the current UTC time (stamps denials and cancellations).
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        market: MarketType = MarketType.SPOT,
        leverage: float = 1.0,
        retry: RetryPolicy | None = None,
        client_prefix: str = "tb",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.exchange = exchange
        self.market = MarketType(market)
        self.leverage = round(leverage) if self.market is MarketType.PERP else 1
        self.retry = retry or RetryPolicy()
        self.client_prefix = check_prefix(client_prefix)
        self.clock = clock or (lambda: datetime.now(UTC))
        guard_logs(exchange.apiKey, exchange.secret)
        self.calls = VenueCalls(exchange, self.retry)
        self.venue = VenueAccount(exchange, self.calls, self.market, self.leverage)
        self.desk = VenueDesk(exchange, self.calls, self.market, self.clock)
        self._queued: list[Event] = []
        self.on_place: Callable[[str, OrderIntent], None] | None = None
        """Called with (client id, intent) before a protective order is sent, so a runner can
        record it first (an order nobody knows about is never left on the venue)."""
        self._leveraged: set[str] = set()
        self._stops: dict[str, float] = {}  # venue symbol -> stop price of the open position
        self._soft_targets: dict[str, tuple[str, float]] = {}  # spot: symbol -> (entry, target)
        self._sequence = itertools.count(1)

    def __repr__(self) -> str:
        return (
            f"ExchangeBroker(exchange={self.exchange.id!r}, market={self.market.value!r}, "
            f"leverage={self.leverage}, client_prefix={self.client_prefix!r}, "
            f"open_orders={len(self.desk.orders)})"
        )

    # --- client ids ---------------------------------------------------------------------------
    def client_id_for(self, intent: OrderIntent, sequence: int) -> str:
        """Return the client order id ``submit`` will send for ``intent`` with ``sequence``.

        Store it with the order (as open) before calling ``submit(intent, client_id=...)``;
        ``sequence`` is any number in [0, 1e10) unique per order in the runner (a row id).
        """
        return client_id_for(self.client_prefix, intent, sequence)

    def open_orders(self) -> list[tuple[str, OrderIntent]]:
        """Return the orders followed on the venue (protective ones included): (client id,
        intent)."""
        return [(client_id, order.intent) for client_id, order in self.desk.orders.items()]

    def snapshot(self) -> None:
        """Return None: the venue keeps the account; :meth:`reconcile` catches up after a
        restart."""
        return None

    # --- the Broker port ----------------------------------------------------------------------
    def submit(self, intent: OrderIntent, client_id: str | None = None) -> str:
        """Send ``intent`` to the venue; return its client order id (never raises for refusals).

        Without ``client_id`` the id is :meth:`client_id_for` with this broker's counter. A
        refusal comes back as an ``OrderDenied`` from the next :meth:`poll`; an id already
        followed is not sent again.
        """
        client_id = client_id or self.client_id_for(intent, next(self._sequence))
        if client_id in self.desk.orders:
            return client_id
        symbol = self.venue.venue_symbol(intent.symbol)
        order = TrackedOrder(client_id, intent, symbol, conditional=self._is_conditional(intent))
        try:
            self.venue.load_markets()
            self._prepare_exit(order)
            quantity = self.venue.size(intent, symbol, self.equity)
            if self.market is MarketType.PERP and symbol not in self._leveraged:
                self.calls.call(
                    "set leverage", lambda: self.exchange.set_leverage(self.leverage, symbol)
                )
                self._leveraged.add(symbol)
            self.desk.place(order, quantity, look_first=False)
        except (VenueRefusal, TemporaryError) as error:
            reason = error.reason if isinstance(error, VenueRefusal) else str(error)
            self._queued.append(OrderDenied(self.clock(), intent, reason, "venue", client_id))
        return client_id

    def cancel(self, order_id: str, timestamp: datetime) -> list[Event]:
        """Cancel the order with client id ``order_id``; return its fills and cancellation."""
        order = self.desk.orders.get(order_id)
        if order is None:
            return []
        order.cancel_reason = order.cancel_reason or "cancelled on request"
        try:
            self.calls.call("cancel an order", functools.partial(self.desk.cancel_on_venue, order))
        except (VenueRefusal, TemporaryError) as error:  # following it tells what happened
            logger.info("cancel %s: %s", order_id, error)
        return self._follow(order)

    def poll(self) -> list[Event]:
        """Ask the venue about every followed order; return new fills, cancellations, denials.

        Call it on every candle (``on_candle`` does) and whenever the runner wants news
        between candles. Network trouble leaves an order for the next poll (logged); it never
        raises.
        """
        events, self._queued = self._queued, []
        for order in list(self.desk.orders.values()):
            if order.client_id in self.desk.orders:
                events.extend(self._follow(order))
        events.extend(self._queued)
        self._queued = []
        return events

    def on_candle(self, candle: CandleClosed, market: MarketSource | None = None) -> list[Event]:
        """Note the close, cancel expired orders, fire spot targets reached, then :meth:`poll`.

        ``market`` is not read: the venue prices the fills itself.
        """
        symbol = self.venue.venue_symbol(candle.symbol)
        self.venue.prices[symbol] = candle.close
        for order in list(self.desk.orders.values()):
            expiry = order.intent.expires_at
            if order.venue_symbol == symbol and expiry is not None and expiry <= candle.close_time:
                order.cancel_reason = "expired"
                self._queued.extend(self.cancel(order.client_id, candle.close_time))
        soft = self._soft_targets.get(symbol)
        if soft is not None and candle.high >= soft[1]:
            del self._soft_targets[symbol]
            intent = OrderIntent(
                candle.close_time, candle.symbol, Side.SELL, reduce_only=True, tag="target"
            )
            self.submit(intent, client_id=soft[0] + TARGET_SUFFIX)
        return self.poll()

    def on_funding(self, event: FundingSettled) -> list[Event]:
        """Return no events: the venue settles funding into the balance itself."""
        return []

    def reconcile(
        self,
        known_open: Iterable[tuple[str, OrderIntent]],
        already_filled: Mapping[str, float] | None = None,
    ) -> list[Event]:
        """Adopt the orders a runner believes open and return what happened while it was down.

        Parameters
        ----------
        known_open
            ``(client id, intent)`` of every order stored as open (protective ``-sl``/``-tp``
            ids too, if the runner stored them).
        already_filled
            Base quantity per client id the runner already recorded as filled; those fills
            are not reported again.

        Returns
        -------
        list of Event
            Fills and cancellations that happened meanwhile (each once), and an
            ``OrderCancelled`` for an order the venue never received (it is not resent).
            Entries that filled while down get their protective orders placed (or adopted,
            when the venue already has them); orders still open are followed from now on.
        """
        self.venue.load_markets()
        filled = already_filled or {}
        for client_id, intent in known_open:
            if client_id in self.desk.orders:
                continue
            symbol = self.venue.venue_symbol(intent.symbol)
            order = TrackedOrder(
                client_id, intent, symbol, conditional=self._is_conditional(intent)
            )
            order.skip = filled.get(client_id, 0.0)
            order.lost_reason = "never reached the venue before a restart; not resent"
            self.desk.orders[client_id] = order
        return self.poll()

    def account(self, timestamp: datetime) -> AccountSnapshot:
        """Return the venue's account at ``timestamp``, marked at the last prices.

        Raises :class:`~tradebrain.exceptions.ExchangeUnavailableError` when the venue
        cannot be read after every retry.
        """
        targets = {symbol: target for symbol, (_, target) in self._soft_targets.items()}
        return self.venue.snapshot(timestamp, self._stops, targets)

    def equity(self) -> float:
        """Return the account's equity in quote currency, marked at the last prices."""
        return self.account(self.clock()).equity

    def liquidation_price(self, symbol: str) -> float | None:
        """Return the venue's liquidation price of the perp position in ``symbol``, if any."""
        return self.venue.liquidation_price(symbol)

    # --- following orders and their protection ------------------------------------------------
    def _follow(self, order: TrackedOrder) -> list[Event]:
        try:
            events, over = self.desk.follow(order)
        except (VenueRefusal, TemporaryError) as error:
            logger.warning("following order %s failed (%s); will retry", order.client_id, error)
            return []
        if over:
            # The fills above are final: the desk has marked their trades seen and dropped the
            # order. A refused protective order (e.g. a dust remainder below the venue's lot
            # size) must not swallow them, or a filled order would stay open in the records.
            try:
                events.extend(self._after_final(order))
            except (VenueRefusal, TemporaryError) as error:
                logger.error(
                    "order %s is over, but protecting what is left failed (%s)",
                    order.client_id, error,
                )  # fmt: skip
        return events

    def _after_final(self, order: TrackedOrder) -> list[Event]:
        """Protect a filled entry; drop protection once an exit or a stop leaves no position."""
        intent = order.intent
        if order.role == "order" and not intent.reduce_only:
            if order.net_filled > _EPSILON and (intent.stop_price or intent.target_price):
                self._protect(order, intent.stop_price, intent.target_price, order.net_filled)
            return []
        if order.reported <= _EPSILON:
            return []
        symbol = order.venue_symbol
        if order.role == "order" and abs(self.venue.held(symbol)) > _EPSILON:
            stop = self._stops.get(symbol)
            if self.market is MarketType.SPOT and stop is not None and not self._protective(symbol):
                self._protect(order, stop, None, self.venue.held(symbol))  # after a partial exit
            return []
        return self._unprotect(symbol, "position closed")

    def _protect(
        self, origin: TrackedOrder, stop_price: float | None, target: float | None, held: float
    ) -> None:
        """Place the stop (and perp target) of ``origin``'s position, or watch a spot target."""
        intent = origin.intent
        symbol = origin.venue_symbol
        if self.market is MarketType.SPOT:
            held = min(held, self.venue.held(symbol))
        quantity = self.venue.precise(symbol, held)
        long = (intent.side is Side.BUY) != intent.reduce_only
        exit_side = Side.SELL if long else Side.BUY
        when = self.clock()
        plans: list[tuple[str, OrderIntent]] = []
        if stop_price:
            self._stops[symbol] = stop_price
            stop = OrderIntent(
                when,
                intent.symbol,
                exit_side,
                quantity,
                OrderType.STOP,
                reduce_only=True,
                tag="stop",
                trigger_price=stop_price,
            )
            plans.append((origin.client_id + STOP_SUFFIX, stop))
        if target and self.market is MarketType.PERP:
            limit = OrderIntent(
                when,
                intent.symbol,
                exit_side,
                quantity,
                OrderType.LIMIT,
                limit_price=target,
                reduce_only=True,
                tag="target",
            )
            plans.append((origin.client_id + TARGET_SUFFIX, limit))
        elif target:
            self._soft_targets[symbol] = (origin.client_id, target)
        for client_id, plan in plans:
            if client_id in self.desk.orders:
                continue
            order = TrackedOrder(client_id, plan, symbol, conditional=self._is_conditional(plan))
            if self.on_place is not None:  # the runner records it before it is sent
                self.on_place(client_id, plan)
            try:
                self.desk.place(order, quantity, look_first=True)  # adopt it if it exists
            except VenueRefusal as refusal:
                logger.error("protective order %s refused: %s", client_id, refusal.reason)
                self._queued.append(OrderDenied(when, plan, refusal.reason, "venue", client_id))

    def _unprotect(self, symbol: str, reason: str, *, keep_levels: bool = False) -> list[Event]:
        """Cancel the protective orders of ``symbol``; return their fills and cancellations."""
        if not keep_levels:
            self._soft_targets.pop(symbol, None)
            self._stops.pop(symbol, None)
        events: list[Event] = []
        for order in self._protective(symbol):
            order.cancel_reason = reason
            events.extend(self.cancel(order.client_id, self.clock()))
        return events

    def _protective(self, symbol: str) -> list[TrackedOrder]:
        orders = self.desk.orders.values()
        return [order for order in orders if order.venue_symbol == symbol and order.role != "order"]

    def _prepare_exit(self, order: TrackedOrder) -> None:
        """On spot, free the coins a resting stop locks before an exit sells them."""
        if self.market is MarketType.SPOT and order.intent.reduce_only:
            self._queued.extend(
                self._unprotect(order.venue_symbol, "replaced by an exit", keep_levels=True)
            )

    def _is_conditional(self, intent: OrderIntent) -> bool:
        return self.market is MarketType.PERP and intent.order_type is OrderType.STOP
