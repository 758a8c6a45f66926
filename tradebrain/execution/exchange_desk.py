"""The exchange broker's order desk: place each order on the venue once, follow it to its end.

:meth:`VenueDesk.place` never sends an order twice: when a request may have reached the venue
(a timeout, a dropped connection, HTTP 5xx or Binance -1001/-1007) it looks the order up by its
client id before sending it again; HTTP 429 is resent after the retry policy's backoff.
:meth:`VenueDesk.follow` asks the venue about one order and reports each new trade of it once
(by trade id), then its end: filled, or cancelled / expired / rejected by the venue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import ccxt

from tradebrain.core.events import Event, OrderCancelled, OrderDenied, OrderFilled
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderType
from tradebrain.execution.exchange_orders import (
    TrackedOrder,
    VenueCalls,
    VenueRefusal,
    base_fee,
    fill_from_trade,
    logger,
)

_FINAL = {"closed", "canceled", "expired", "rejected"}
_EPSILON = 1e-12


class VenueDesk:
    """The orders a broker follows on one venue, by client id.

    Parameters
    ----------
    exchange
        The ccxt exchange (markets loaded).
    calls
        Retrying, scrubbing calls into ``exchange``.
    market
        Spot or perp (perps send ``positionSide`` and ``reduceOnly``).
    clock
        Returns the current UTC time.
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        calls: VenueCalls,
        market: MarketType,
        clock: Callable[[], datetime],
    ) -> None:
        self.exchange = exchange
        self.calls = calls
        self.market = market
        self.clock = clock
        self.orders: dict[str, TrackedOrder] = {}

    def place(self, order: TrackedOrder, quantity: float, *, look_first: bool) -> None:
        """Create ``order`` on the venue exactly once; raise :class:`VenueRefusal` on a refusal."""
        self.orders[order.client_id] = order
        order.sent_here = True
        unknown = look_first
        last = "none"
        for attempt in range(self.calls.retry.retries + 1):
            if attempt > 0:
                self.calls.sleep(self.calls.retry.delay_s(attempt - 1))
            try:
                if unknown and self.lookup(order) is not None:
                    order.confirmed = True
                    return
                self._create(order, quantity)
                order.confirmed = True
                return
            except ccxt.BaseError as error:
                outcome = self.calls.outcome(error)
                last = self.calls.describe(error)
                if outcome == "refused":
                    del self.orders[order.client_id]
                    raise VenueRefusal(last) from None
                unknown = unknown or outcome in ("unknown", "duplicate")
                logger.warning("send order %s: %s; retrying", order.client_id, last)
        order.lost_reason = f"the venue did not confirm the order; last error: {last}"
        logger.error("order %s unconfirmed after retries: %s", order.client_id, last)

    def _create(self, order: TrackedOrder, quantity: float) -> None:
        intent = order.intent
        params: dict[str, Any] = {}
        if self.market is MarketType.PERP:
            params["positionSide"] = "BOTH"
            if intent.reduce_only:
                params["reduceOnly"] = True
        price = None
        kind = "market"
        if intent.order_type is OrderType.LIMIT:
            kind, price = "limit", intent.limit_price
        elif intent.order_type is OrderType.STOP:
            params["stopLossPrice"] = intent.trigger_price  # spot STOP_LOSS, perp STOP_MARKET
        params["clientAlgoId" if order.conditional else "newClientOrderId"] = order.client_id
        self.exchange.create_order(
            order.venue_symbol, kind, intent.side.value, quantity, price, params
        )

    def lookup(self, order: TrackedOrder) -> dict[str, Any] | None:
        """Return the venue's view of ``order`` (ccxt order), or None when it has none."""
        symbol = order.venue_symbol
        try:
            if order.triggered:
                return self.exchange.fetch_order(order.venue_id, symbol)  # type: ignore[no-any-return]
            if order.conditional:
                params = {"clientAlgoId": order.client_id, "trigger": True}
            else:
                params = {"origClientOrderId": order.client_id}
            return self.exchange.fetch_order(None, symbol, params)  # type: ignore[no-any-return]
        except ccxt.OrderNotFound:
            return None

    def cancel_on_venue(self, order: TrackedOrder) -> None:
        if order.triggered:
            self.exchange.cancel_order(order.venue_id, order.venue_symbol)
        elif order.conditional:
            params = {"clientAlgoId": order.client_id, "trigger": True}
            self.exchange.cancel_order(None, order.venue_symbol, params)
        else:
            params = {"origClientOrderId": order.client_id}
            self.exchange.cancel_order(None, order.venue_symbol, params)

    # --- following orders ---------------------------------------------------------------------
    def follow(self, order: TrackedOrder) -> tuple[list[Event], bool]:
        """Return the new fills of ``order`` (and its end), and whether it is over.

        An order the venue does not know that was never confirmed ends as denied (this broker
        sent it and the venue stayed unavailable) or cancelled (adopted after a restart).
        """
        view = self.calls.call("look up an order", lambda: self.lookup(order))
        if view is None:
            if order.confirmed:
                logger.error("the venue no longer knows order %s", order.client_id)
                return [], False
            del self.orders[order.client_id]
            reason = order.lost_reason or "the venue has no order with this client id"
            if order.sent_here:  # sent by this broker, never confirmed: the venue is unavailable
                denial = OrderDenied(
                    self.clock(), order.intent, reason, "venue_unavailable", order.client_id
                )
                return [denial], False
            return [OrderCancelled(self.clock(), order.client_id, order.intent, reason)], False
        order.confirmed = True
        if order.conditional and not order.triggered:
            actual = (view.get("info") or {}).get("actualOrderId")
            if view["status"] == "closed" and actual:
                order.triggered, order.venue_id = True, str(actual)
                return self.follow(order)
        else:
            order.venue_id = str(view["id"])
        events: list[Event] = []
        filled = float(view.get("filled") or 0.0)
        if filled > order.reported + _EPSILON and order.venue_id:
            events.extend(self._new_fills(order))
        if view["status"] in _FINAL and order.reported >= filled - _EPSILON:
            del self.orders[order.client_id]
            if view["status"] != "closed":
                reason = order.cancel_reason or f"the venue reports the order {view['status']}"
                events.append(OrderCancelled(self.clock(), order.client_id, order.intent, reason))
            return events, True
        return events, False

    def _new_fills(self, order: TrackedOrder) -> list[Event]:
        symbol = order.venue_symbol
        params = {"orderId": order.venue_id}
        trades = self.calls.call(
            "fetch trades", lambda: self.exchange.fetch_my_trades(symbol, params=params)
        )
        market = self.exchange.market(symbol)
        events: list[Event] = []
        for trade in sorted(trades, key=lambda trade: (trade["timestamp"] or 0, str(trade["id"]))):
            trade_id = str(trade["id"])
            if trade_id in order.trade_ids:
                continue
            order.trade_ids.add(trade_id)
            amount = float(trade["amount"])
            order.reported += amount
            order.net_filled += amount - base_fee(trade, market["base"])
            skipped = min(order.skip, amount)
            order.skip -= skipped
            if amount - skipped > _EPSILON:
                fill = fill_from_trade(
                    trade, order, amount - skipped, market["base"], market["quote"]
                )
                events.append(OrderFilled(fill))
        return events

    # --- protection ---------------------------------------------------------------------------
