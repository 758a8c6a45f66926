"""Turn what one candle did inside the engine into the state store's records.

The recorder (:mod:`tradebrain.service.recorder`) hands what the engines published during a
candle here; :class:`OrderBook` keeps every order's latest status so a changed order is
written again (the store upserts by client id).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from tradebrain.core.events import OrderCancelled, OrderDenied
from tradebrain.core.orders import Fill, OrderIntent
from tradebrain.execution.account import ClosedTrade, Position
from tradebrain.state import FillRecord, OrderRecord, PositionRecord, TradeRecord
from tradebrain.state.records import WORKING_STATUSES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    """Return epoch microseconds of an aware datetime."""
    return (moment - _EPOCH) // _MICROSECOND


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH


def order_record(client_id: str, intent: OrderIntent, status: str, at: datetime) -> OrderRecord:
    """Return the record of an order the broker accepted (or risk denied)."""
    return OrderRecord(
        client_id=client_id,
        symbol=intent.symbol,
        side=intent.side.value,
        order_type=intent.order_type.value,
        quantity=intent.quantity,
        status=status,
        created_at=at,
        updated_at=at,
        limit_price=intent.limit_price,
        stop_price=intent.stop_price,
        target_price=intent.target_price,
        trigger_price=intent.trigger_price,
        reduce_only=intent.reduce_only,
        tag=intent.tag,
        confidence=intent.confidence,
    )


class OrderBook:
    """Every order's latest record; collects the ones that changed during a candle."""

    def __init__(self, known: list[OrderRecord] | None = None) -> None:
        self.orders: dict[str, OrderRecord] = {o.client_id: o for o in known or []}
        self._changed: dict[str, OrderRecord] = {}

    def adopt(self, known: list[OrderRecord]) -> None:
        """Take over the orders an earlier run recorded as open (after a restart)."""
        self.orders = {o.client_id: o for o in known}

    def submitted(self, client_id: str, intent: OrderIntent, at: datetime) -> None:
        """Record an order the broker accepted."""
        self._put(order_record(client_id, intent, "open", at))

    def filled(self, fill: Fill) -> None:
        """Record a fill: the order's filled quantity grows; it is filled (or made by the broker:
        protective exits have no earlier record)."""
        order = self.orders.get(fill.order_id)
        if order is None:
            intent = OrderIntent(
                fill.timestamp, fill.symbol, fill.side, fill.quantity, reduce_only=True,
                tag=fill.tag,
            )  # fmt: skip
            order = order_record(fill.order_id, intent, "open", fill.timestamp)
        filled = order.filled_quantity + fill.quantity
        complete = order.quantity <= 0 or filled >= order.quantity * (1 - 1e-9)
        self._put(
            replace(
                order,
                status="filled" if complete else "partially_filled",
                filled_quantity=filled,
                # a venue's clock may lag ours: a status never moves back in time
                updated_at=max(order.updated_at, fill.timestamp),
            )
        )

    def cancelled(self, event: OrderCancelled) -> None:
        """Record a cancellation with its reason."""
        order = self.orders.get(event.order_id) or order_record(
            event.order_id, event.intent, "open", event.timestamp
        )
        when = max(order.updated_at, event.timestamp)
        self._put(replace(order, status="cancelled", reason=event.reason, updated_at=when))

    def denied(self, event: OrderDenied, client_id: str) -> None:
        """Record an intent risk (or the operator's pause) refused, with the rule and reason."""
        record = order_record(client_id, event.intent, "denied", event.timestamp)
        reason = f"{event.rule}: {event.reason}" if event.rule else event.reason
        self._put(replace(record, reason=reason))

    def settle(self, working: set[str], at: datetime) -> None:
        """Mark partly filled orders the broker no longer works on as filled (a venue rounds
        quantities to its lot size, so a complete order can show less than was asked)."""
        for order in list(self.orders.values()):
            if order.status == "partially_filled" and order.client_id not in working:
                self._put(replace(order, status="filled", updated_at=max(order.updated_at, at)))

    def lost(self, order: OrderRecord, at: datetime) -> None:
        """Record that an order recorded as open is not in the restored account."""
        reason = "not in the restored account: it was lost in a restart"
        self._put(replace(order, status="cancelled", reason=reason, updated_at=at))

    def open_orders(self) -> list[OrderRecord]:
        """Return the orders still working (open or partly filled)."""
        return [o for o in self.orders.values() if o.status in WORKING_STATUSES]

    def drain(self) -> list[OrderRecord]:
        """Return the orders changed since the last call, and forget the finished ones (the
        store keeps them; memory stays flat in a service that runs for months)."""
        changed, self._changed = list(self._changed.values()), {}
        for record in changed:
            if record.status not in WORKING_STATUSES:
                self.orders.pop(record.client_id, None)
        return changed

    def _put(self, record: OrderRecord) -> None:
        self.orders[record.client_id] = record
        self._changed[record.client_id] = record


def fill_record(fill: Fill, sequence: int) -> FillRecord:
    """Return the record of ``fill``: keyed by the venue's trade id when there is one, else by
    order, time and ``sequence`` (which tells apart fills of one order at one time)."""
    key = f"trade|{fill.trade_id}" if fill.trade_id else f"{micros(fill.timestamp)}|{sequence}"
    return FillRecord(
        fill_id=f"{fill.order_id}|{key}",
        client_id=fill.order_id,
        symbol=fill.symbol,
        side=fill.side.value,
        quantity=fill.quantity,
        price=fill.price,
        fee=fill.fee,
        liquidity=fill.liquidity.value,
        tag=fill.tag,
        timestamp=fill.timestamp,
        slippage=fill.slippage,
    )


def trade_record(trade: ClosedTrade, number: int) -> TradeRecord:
    """Return the record of the ``number``-th closed trade of the run."""
    return TradeRecord(
        trade_id=f"{trade.symbol}|{micros(trade.entry_time)}|{micros(trade.exit_time)}|{number}",
        symbol=trade.symbol,
        side="long" if trade.side > 0 else "short",
        entry_time=trade.entry_time,
        exit_time=trade.exit_time,
        entry_price=trade.entry_price,
        exit_price=trade.exit_price,
        quantity=trade.quantity,
        pnl=trade.pnl,
        fees=trade.fees,
        funding=trade.funding,
        exit_reason=trade.exit_reason,
        r_multiple=trade.r_multiple,
    )


def position_record(position: Position) -> PositionRecord:
    """Return the record of an open position."""
    return PositionRecord(
        symbol=position.symbol,
        quantity=position.quantity,
        entry_price=position.entry_price,
        opened_at=position.opened_at,
        stop_price=position.stop_price,
        target_price=position.target_price,
    )
