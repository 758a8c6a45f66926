"""Save and restore a simulated broker, so a paper-trading service survives a restart.

:func:`broker_state` turns a :class:`~tradebrain.execution.broker.SimulatedBroker` into a
JSON-ready dict (cash, open positions with their protective levels, resting and pending
orders, last prices, the running ATR of the position monitor, the recent closed trades that
risk's losing-streak and Kelly rules look at); :func:`restore_broker` puts it back into a
fresh broker built with the same settings. The state store keeps the newest dict in the same
transaction as the candle that produced it, so a restart resumes from a consistent account.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from tradebrain.core.market import AtrTracker
from tradebrain.core.orders import Liquidity, OrderIntent, OrderType, Side
from tradebrain.exceptions import UserInputError
from tradebrain.execution.account import ClosedTrade
from tradebrain.execution.monitor import Protection
from tradebrain.execution.portfolio import Holding

if TYPE_CHECKING:
    from tradebrain.execution.broker import SimulatedBroker

VERSION = 1
KEPT_TRADES = 500
"""Closed trades kept in a snapshot: enough for the Kelly and losing-streak rules."""

_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (Holding, Protection, OrderIntent, ClosedTrade)
}
_ENUMS: dict[str, type[Enum]] = {cls.__name__: cls for cls in (Side, OrderType, Liquidity)}


def encode(value: Any) -> Any:
    """Return ``value`` as JSON-ready data (dataclasses, datetimes, enums, tuples, NaN)."""
    if isinstance(value, Enum):
        return {"__enum__": type(value).__name__, "value": value.value}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__type__": type(value).__name__, **fields}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    return value


def decode(data: Any) -> Any:
    """Invert :func:`encode`."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__enum__" in data:
        return _ENUMS[data["__enum__"]](data["value"])
    if "__datetime__" in data:
        return datetime.fromisoformat(data["__datetime__"])
    if "__tuple__" in data:
        return tuple(decode(v) for v in data["__tuple__"])
    if "__float__" in data:
        return float(data["__float__"])
    if "__type__" in data:
        cls = _TYPES[data["__type__"]]
        return cls(**{k: decode(v) for k, v in data.items() if k != "__type__"})
    return {k: decode(v) for k, v in data.items()}


def broker_state(broker: SimulatedBroker) -> dict[str, Any]:
    """Return everything needed to rebuild ``broker``'s account and orders."""
    portfolio = broker.portfolio
    monitor = broker.monitor
    return {
        "version": VERSION,
        "market": broker.market.value,
        "cash": portfolio.cash,
        "fees_paid": portfolio.fees_paid,
        "funding_paid": portfolio.funding_paid,
        "peak_equity": portfolio.peak_equity,
        "day_start_equity": portfolio.day_start_equity,
        "day": portfolio.day,
        "holdings": encode(portfolio.holdings),
        "closed_trades": encode(portfolio.closed_trades[-KEPT_TRADES:]),
        "prices": encode(broker.prices),
        "pending": encode(broker._pending),
        "resting": encode(broker._resting),
        "protection": encode(broker._protection),
        "next_id": broker.next_order_number,
        "atr_state": {
            symbol: encode({"previous_close": t.previous_close, "count": t.count, "atr": t.atr})
            for symbol, t in monitor.atr_trackers.items()
        },
    }


def restore_broker(broker: SimulatedBroker, state: dict[str, Any]) -> None:
    """Put ``state`` (from :func:`broker_state`) back into a freshly built ``broker``."""
    if state.get("version") != VERSION:
        raise UserInputError(
            f"the saved broker state has version {state.get('version')!r}, this tradebrain "
            f"reads version {VERSION}; start a new run (another --state file) to begin afresh"
        )
    if state["market"] != broker.market.value:
        raise UserInputError(
            f"the saved paper account trades {state['market']}, this run {broker.market.value}; "
            "use the same market or another --state file"
        )
    portfolio = broker.portfolio
    portfolio.cash = float(state["cash"])
    portfolio.fees_paid = float(state["fees_paid"])
    portfolio.funding_paid = float(state["funding_paid"])
    portfolio.peak_equity = float(state["peak_equity"])
    portfolio.day_start_equity = float(state["day_start_equity"])
    portfolio.day = str(state.get("day", ""))
    portfolio.holdings = decode(state["holdings"])
    portfolio.closed_trades = decode(state["closed_trades"])
    portfolio._closed_view = None
    broker.prices = decode(state["prices"])
    broker._pending = [tuple(pair) for pair in decode(state["pending"])]
    broker._resting = [tuple(pair) for pair in decode(state["resting"])]
    broker._protection = decode(state["protection"])
    broker.next_order_number = int(state["next_id"])
    monitor = broker.monitor
    monitor.atr_trackers = {
        symbol: AtrTracker(
            monitor.rules.atr_period,
            mean_first=True,
            # states saved before the tracker existed carry a "__type__" tag: not a field
            **{k: decode(v) for k, v in fields.items() if k != "__type__"},
        )
        for symbol, fields in state["atr_state"].items()
    }
