"""The persistent state of the trading service: one transaction per closed candle.

``StateStore`` keeps candles, decisions, orders, fills, trades, equity, positions, the broker
and runner snapshots, the control state and an audit log, in SQLite (WAL, ``synchronous=FULL``)
or PostgreSQL. Every write is idempotent, so replaying a step after a crash adds nothing.
"""

from tradebrain.state.records import (
    ORDER_STATUSES,
    CandleRecord,
    EquityPoint,
    EventRecord,
    FillRecord,
    OrderRecord,
    PositionRecord,
    Step,
    TradeRecord,
)
from tradebrain.state.store import StateStore

__all__ = [
    "ORDER_STATUSES",
    "CandleRecord",
    "EquityPoint",
    "EventRecord",
    "FillRecord",
    "OrderRecord",
    "PositionRecord",
    "StateStore",
    "Step",
    "TradeRecord",
]
