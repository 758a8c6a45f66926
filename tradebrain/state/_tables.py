"""The tables of the state store, and the one place that knows each dialect's upsert.

Timestamps are BigInteger epoch microseconds; JSON documents are Text holding ``json.dumps``
output (so NaN and infinity survive on every database, which JSON/JSONB columns would refuse).
Every table starts with ``tb_`` so the store can share a PostgreSQL database with others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

SCHEMA_VERSION = 1
APPLICATION = "tradebrain-state"

metadata = sa.MetaData()


def _micros(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _price(name: str, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _key(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(), primary_key=True)


meta = sa.Table(
    "tb_meta",
    metadata,
    _key("key"),
    _text("value"),
)

candles = sa.Table(
    "tb_candles",
    metadata,
    _key("run"),
    _key("symbol"),
    _key("timeframe"),
    sa.Column("open_time", sa.BigInteger(), primary_key=True),
    _price("open"),
    _price("high"),
    _price("low"),
    _price("close"),
    _price("volume"),
)

decisions = sa.Table(
    "tb_decisions",
    metadata,
    _key("run"),
    _key("symbol"),
    sa.Column("timestamp", sa.BigInteger(), primary_key=True),
    _text("action", nullable=True),
    _price("confidence", nullable=True),
    _text("regime", nullable=True),
    sa.Column("document", sa.Text(), nullable=False),
)

orders = sa.Table(
    "tb_orders",
    metadata,
    _key("run"),
    _key("client_id"),
    _text("symbol"),
    _text("side"),
    _text("order_type"),
    _price("quantity"),
    _text("status"),
    _micros("created_at"),
    _micros("updated_at"),
    _price("limit_price", nullable=True),
    _price("stop_price", nullable=True),
    _price("target_price", nullable=True),
    _price("trigger_price", nullable=True),
    sa.Column("reduce_only", sa.Boolean(), nullable=False),
    _text("tag"),
    _text("reason"),
    _text("exchange_id", nullable=True),
    _price("filled_quantity"),
    _price("confidence", nullable=True),
    sa.Index("ix_tb_orders_run_status", "run", "status"),
    sa.Index("ix_tb_orders_run_created", "run", "created_at"),
)

fills = sa.Table(
    "tb_fills",
    metadata,
    _key("run"),
    _key("fill_id"),
    _text("client_id"),
    _text("symbol"),
    _text("side"),
    _price("quantity"),
    _price("price"),
    _price("fee"),
    _text("liquidity"),
    _text("tag"),
    _micros("timestamp"),
    _price("slippage"),
    sa.Index("ix_tb_fills_run_time", "run", "timestamp"),
)

trades = sa.Table(
    "tb_trades",
    metadata,
    _key("run"),
    _key("trade_id"),
    _text("symbol"),
    _text("side"),
    _micros("entry_time"),
    _micros("exit_time"),
    _price("entry_price"),
    _price("exit_price"),
    _price("quantity"),
    _price("pnl"),
    _price("fees"),
    _price("funding"),
    _text("exit_reason"),
    _price("r_multiple", nullable=True),  # NULL stands for NaN (SQLite cannot store NaN)
    sa.Index("ix_tb_trades_run_exit", "run", "exit_time"),
)

positions = sa.Table(
    "tb_positions",
    metadata,
    _key("run"),
    _key("symbol"),
    _price("quantity"),
    _price("entry_price"),
    _micros("opened_at"),
    _price("stop_price", nullable=True),
    _price("target_price", nullable=True),
)

equity = sa.Table(
    "tb_equity",
    metadata,
    _key("run"),
    sa.Column("timestamp", sa.BigInteger(), primary_key=True),
    _price("equity"),
    _price("cash"),
    _price("buy_and_hold"),
)

# Latest-wins JSON blobs per run: name is "broker" or "runner".
blobs = sa.Table(
    "tb_blobs",
    metadata,
    _key("run"),
    _key("name"),
    sa.Column("document", sa.Text(), nullable=False),
)

controls = sa.Table(
    "tb_controls",
    metadata,
    _key("run"),
    _text("state"),
    _micros("since"),
    _text("reason"),
)

events = sa.Table(
    "tb_events",
    metadata,
    # BigInteger on PostgreSQL; INTEGER on SQLite so that it is the auto-numbered rowid.
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    _text("run"),
    _text("kind"),
    _text("message"),
    _micros("at"),
    sa.Index("ix_tb_events_run_id", "run", "id"),
)


def _insert_for(dialect_name: str) -> Callable[[sa.Table], Any]:
    if dialect_name == "sqlite":
        return sqlite.insert
    if dialect_name == "postgresql":
        return postgresql.insert
    raise NotImplementedError(f"the state store has no upsert for the {dialect_name!r} dialect")


def upsert_statement(
    dialect_name: str,
    table: sa.Table,
    *,
    update: Sequence[str] = (),
    keep_if_present: Sequence[str] = (),
    only_if_not_older: str | None = None,
) -> Any:
    """Return an INSERT ... ON CONFLICT on the primary key for SQLite or PostgreSQL.

    Parameters
    ----------
    update
        Columns overwritten by the new row. Empty: the stored row is kept as it is.
    keep_if_present
        Columns among ``update`` whose stored value survives a new NULL.
    only_if_not_older
        A column; the update happens only when the new row's value is >= the stored one.
    """
    statement = _insert_for(dialect_name)(table)
    key = [column.name for column in table.primary_key.columns]
    if not update:
        return statement.on_conflict_do_nothing(index_elements=key)
    excluded = statement.excluded
    assignments = {
        name: (
            sa.func.coalesce(excluded[name], table.c[name])
            if name in keep_if_present
            else excluded[name]
        )
        for name in update
    }
    where = (
        excluded[only_if_not_older] >= table.c[only_if_not_older]
        if only_if_not_older is not None
        else None
    )
    return statement.on_conflict_do_update(index_elements=key, set_=assignments, where=where)


def upsert(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    update: Sequence[str] = (),
    keep_if_present: Sequence[str] = (),
    only_if_not_older: str | None = None,
) -> None:
    """Insert ``rows`` into ``table`` through ``upsert_statement`` (nothing when empty)."""
    if rows:
        statement = upsert_statement(
            connection.dialect.name,
            table,
            update=update,
            keep_if_present=keep_if_present,
            only_if_not_older=only_if_not_older,
        )
        connection.execute(statement, list(rows))
