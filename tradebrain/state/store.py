"""``StateStore``: the trading service's memory, one transaction per closed candle.

What one step writes, and what a second write of the same key does (the runner may replay the
last candle after a crash, so every write is idempotent):

============  =====================================  ====================================
table         key                                    second write of the key
============  =====================================  ====================================
candles       (run, symbol, timeframe, open_time)    replaces the values (last wins)
decisions     (run, symbol, timestamp)               replaces the document (last wins)
orders        (run, client_id)                       updates it, unless the stored
                                                     ``updated_at`` is newer; a new NULL
                                                     ``exchange_id`` keeps the stored one
fills         (run, fill_id)                         ignored (a fill is a fact)
trades        (run, trade_id)                        ignored (a closed trade is a fact)
equity        (run, timestamp)                       replaces the values (last wins)
positions     (run, symbol)                          the whole snapshot is replaced
broker/runner run                                    replaced (last wins)
============  =====================================  ====================================

Identifiers are unique within a run: two runs may use the same ``client_id``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from tradebrain.data.schemas import SCHEMAS, Kind
from tradebrain.exceptions import StoreError, StoreFullError
from tradebrain.state import _rows as rows
from tradebrain.state import _tables as t
from tradebrain.state._opening import first_line, mask, open_engine, scrub
from tradebrain.state.records import (
    WORKING_STATUSES,
    CandleRecord,
    EquityPoint,
    EventRecord,
    FillRecord,
    OrderRecord,
    PositionRecord,
    Step,
    TradeRecord,
    from_micros,
    to_micros,
)

_OHLCV = ("open", "high", "low", "close", "volume")
_ORDER_MUTABLE = tuple(
    name
    for name in OrderRecord.__dataclass_fields__
    if name not in {"client_id", "symbol", "side", "order_type", "created_at"}
)


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be a positive whole number or None, got {limit!r}")


class StateStore:
    """The persistent state of paper and live runs, in SQLite or PostgreSQL.

    Parameters
    ----------
    url
        A SQLAlchemy URL: ``sqlite:///state.db`` or ``postgresql+psycopg://user:pw@host/db``.
        Tables are created when missing. On SQLite the journal is WAL with
        ``synchronous=FULL``, so a committed step survives ``kill -9`` and power loss.

    Raises
    ------
    UserInputError
        The URL cannot be parsed or opened, or names something that is not a tradebrain
        state database. The message never shows the password.
    StoreError
        An existing SQLite file is empty (0 bytes), cannot be read and written by this
        user, or fails ``PRAGMA quick_check`` (corrupt); the message says the way out and the
        file is not written to.
    """

    def __init__(self, url: str) -> None:
        self.url = mask(url)  # safe to print
        self._engine = open_engine(url)

    @classmethod
    def for_path(cls, path: str | Path) -> StateStore:
        """Open (or create) the SQLite state database at ``path``, creating its folders."""
        file = Path(path).expanduser().resolve()
        file.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{file}")

    def close(self) -> None:
        """Close the pooled connections (a later call would open new ones)."""
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"

    @contextmanager
    def _connect(self, action: str, write: bool = False) -> Iterator[Connection]:
        try:
            with self._engine.begin() if write else self._engine.connect() as connection:
                yield connection
        except exc.SQLAlchemyError as error:
            if _is_full(error):
                raise StoreFullError(
                    f"the state store {self.url} could not {action}: the disk is full "
                    f"({scrub(first_line(error), self._engine.url)}); nothing of the write "
                    "was kept; free space on the disk of the state database"
                ) from error
            raise StoreError(
                f"the state store {self.url} could not {action}: "
                f"{scrub(first_line(error), self._engine.url)} (a write "
                "is all or nothing: none of it was kept); check the disk, the database server "
                "and its permissions"
            ) from error

    # -- writing ---------------------------------------------------------------------------

    def record_step(self, step: Step) -> None:
        """Write everything one closed candle caused, in one transaction (all or nothing)."""
        run = step.run
        candle = step.candle
        if (candle.symbol, candle.timeframe) != (step.symbol, step.timeframe):
            raise ValueError(
                f"step for {step.symbol} {step.timeframe} carries a candle of "
                f"{candle.symbol} {candle.timeframe}; they must match"
            )
        decision = [rows.decision_row(run, step.symbol, step.decision)] if step.decision else []
        decision += [
            rows.decision_row(shadow_run, step.symbol, document)
            for shadow_run, document in step.shadow_decisions
        ]
        orders = rows.last_per_key((rows.order_row(run, o) for o in step.orders), ("client_id",))
        fills = rows.first_per_key((rows.fill_row(run, f) for f in step.fills), ("fill_id",))
        trades = rows.first_per_key((rows.trade_row(run, x) for x in step.trades), ("trade_id",))
        positions = (
            None
            if step.positions is None
            else rows.last_per_key((rows.position_row(run, p) for p in step.positions), ("symbol",))
        )
        blobs = [
            {"run": run, "name": name, "document": rows.dump_json(document)}
            for name, document in (("broker", step.broker_state), ("runner", step.runner_state))
            if document is not None
        ]
        with self._connect(f"record the {candle.symbol} {candle.timeframe} step", True) as db:
            t.upsert(db, t.candles, [rows.candle_row(run, candle)], update=_OHLCV)
            t.upsert(
                db, t.decisions, decision, update=("action", "confidence", "regime", "document")
            )
            t.upsert(
                db,
                t.orders,
                orders,
                update=_ORDER_MUTABLE,
                keep_if_present=("exchange_id",),
                only_if_not_older="updated_at",
            )
            t.upsert(db, t.fills, fills)
            t.upsert(db, t.trades, trades)
            if step.equity is not None:
                point = rows.equity_row(run, step.equity)
                t.upsert(db, t.equity, [point], update=("equity", "cash", "buy_and_hold"))
            if positions is not None:
                db.execute(sa.delete(t.positions).where(t.positions.c.run == run))
                if positions:
                    db.execute(sa.insert(t.positions), positions)
            t.upsert(db, t.blobs, blobs, update=("document",))

    def record_orders(self, run: str, orders: list[OrderRecord]) -> None:
        """Write orders on their own, in one transaction: a live order is recorded as open
        under its client id BEFORE it is sent, so a crash in between leaves a record that the
        restarted runner reconciles with the venue (never an order nobody knows about)."""
        records = rows.last_per_key((rows.order_row(run, o) for o in orders), ("client_id",))
        with self._connect("record orders", True) as db:
            t.upsert(
                db,
                t.orders,
                records,
                update=_ORDER_MUTABLE,
                keep_if_present=("exchange_id",),
                only_if_not_older="updated_at",
            )

    def set_control(self, run: str, state: str, reason: str, at: datetime) -> None:
        """Set the run's control state (e.g. "running", "paused", "halted") since ``at``."""
        row = {"run": run, "state": state, "reason": reason, "since": to_micros(at)}
        with self._connect("set the control state", write=True) as db:
            t.upsert(db, t.controls, [row], update=("state", "reason", "since"))

    def record_event(self, run: str, kind: str, message: str, at: datetime) -> None:
        """Append one line to the run's audit log (pause, emergency stop, reconciliation...)."""
        row = {"run": run, "kind": kind, "message": message, "at": to_micros(at)}
        with self._connect("record an event", write=True) as db:
            db.execute(sa.insert(t.events), [row])

    # -- reading ---------------------------------------------------------------------------

    def _all(self, statement: sa.Select[Any], action: str) -> list[dict[str, Any]]:
        with self._connect(action) as db:
            return [dict(row) for row in db.execute(statement).mappings()]

    def last_candle(self, run: str, symbol: str, timeframe: str) -> CandleRecord | None:
        """Return the newest stored candle of ``symbol`` on ``timeframe``, or None."""
        found = self._candle_rows(run, symbol, timeframe, 1)
        return rows.candle_record(found[0]) if found else None

    def _candle_rows(
        self, run: str, symbol: str, timeframe: str, limit: int | None
    ) -> list[dict[str, Any]]:
        _check_limit(limit)
        c = t.candles.c
        statement = (
            sa.select(t.candles)
            .where(c.run == run, c.symbol == symbol, c.timeframe == timeframe)
            .order_by(c.open_time.desc())
            .limit(limit)
        )
        return self._all(statement, "read candles")

    def candles(
        self, run: str, symbol: str, timeframe: str, limit: int | None = None
    ) -> pl.DataFrame:
        """Return the newest ``limit`` candles (all when None), oldest first.

        The frame has the project's candle schema: ``timestamp`` (open time,
        ``Datetime("us", "UTC")``) and ``open, high, low, close, volume`` (Float64).
        """
        found = self._candle_rows(run, symbol, timeframe, limit)[::-1]
        schema = SCHEMAS[Kind.CANDLES]
        if not found:
            return schema.empty()
        data: dict[str, list[Any]] = {"timestamp": [r["open_time"] for r in found]}
        data.update({name: [r[name] for r in found] for name in _OHLCV})
        frame = pl.DataFrame(
            data, schema={"timestamp": pl.Int64, **dict.fromkeys(_OHLCV, pl.Float64)}
        )
        return frame.with_columns(pl.col("timestamp").cast(schema.columns["timestamp"]))

    def _blob(self, run: str, name: str) -> dict[str, Any] | None:
        c = t.blobs.c
        found = self._all(
            sa.select(c.document).where(c.run == run, c.name == name), f"read the {name} state"
        )
        return rows.load_json(found[0]["document"]) if found else None

    def broker_state(self, run: str) -> dict[str, Any] | None:
        """Return the latest broker state of the run, or None when none was recorded."""
        return self._blob(run, "broker")

    def runner_state(self, run: str) -> dict[str, Any] | None:
        """Return the latest runner state of the run, or None when none was recorded."""
        return self._blob(run, "runner")

    def orders(
        self, run: str, status: str | None = None, limit: int | None = 1000
    ) -> list[OrderRecord]:
        """Return the run's orders (of one ``status`` when given), newest created first."""
        _check_limit(limit)
        c = t.orders.c
        statement = sa.select(t.orders).where(c.run == run)
        if status is not None:
            statement = statement.where(c.status == status)
        statement = statement.order_by(c.created_at.desc(), c.client_id.desc()).limit(limit)
        return [rows.order_record(r) for r in self._all(statement, "read orders")]

    def open_orders(self, run: str) -> list[OrderRecord]:
        """Return every order of the run still working (open or partly filled), oldest first
        (the order to restore them in)."""
        working = [o for s in WORKING_STATUSES for o in self.orders(run, status=s, limit=None)]
        return sorted(working, key=lambda o: (o.created_at, o.client_id))

    def positions(self, run: str) -> list[PositionRecord]:
        """Return the run's latest snapshot of open positions, by symbol."""
        c = t.positions.c
        statement = sa.select(t.positions).where(c.run == run).order_by(c.symbol)
        return [rows.position_record(r) for r in self._all(statement, "read positions")]

    def fills(self, run: str, limit: int | None = 100) -> list[FillRecord]:
        """Return the run's newest ``limit`` fills, newest first."""
        _check_limit(limit)
        c = t.fills.c
        statement = (
            sa.select(t.fills)
            .where(c.run == run)
            .order_by(c.timestamp.desc(), c.fill_id.desc())
            .limit(limit)
        )
        return [rows.fill_record(r) for r in self._all(statement, "read fills")]

    def trades(self, run: str, limit: int | None = 100) -> list[TradeRecord]:
        """Return the run's newest ``limit`` closed trades, newest exit first."""
        _check_limit(limit)
        c = t.trades.c
        statement = (
            sa.select(t.trades)
            .where(c.run == run)
            .order_by(c.exit_time.desc(), c.trade_id.desc())
            .limit(limit)
        )
        return [rows.trade_record(r) for r in self._all(statement, "read trades")]

    def decisions(
        self, run: str, symbol: str | None = None, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """Return the stored decision dicts of the run (of ``symbol``), newest first."""
        _check_limit(limit)
        c = t.decisions.c
        statement = sa.select(c.document).where(c.run == run)
        if symbol is not None:
            statement = statement.where(c.symbol == symbol)
        statement = statement.order_by(c.timestamp.desc(), c.symbol).limit(limit)
        return [rows.load_json(r["document"]) for r in self._all(statement, "read decisions")]

    def latest_decision(self, run: str, symbol: str | None = None) -> dict[str, Any] | None:
        """Return the newest decision of the run (of ``symbol``), or None."""
        found = self.decisions(run, symbol, limit=1)
        return found[0] if found else None

    def equity(self, run: str, limit: int | None = None) -> list[EquityPoint]:
        """Return the newest ``limit`` equity points (all when None), oldest first."""
        _check_limit(limit)
        c = t.equity.c
        statement = (
            sa.select(t.equity).where(c.run == run).order_by(c.timestamp.desc()).limit(limit)
        )
        return [rows.equity_record(r) for r in self._all(statement, "read equity")][::-1]

    def counts(self, run: str) -> dict[str, int]:
        """Return the run's number of candles, decisions, orders, fills, trades, equity points."""
        tables = {
            "candles": t.candles,
            "decisions": t.decisions,
            "orders": t.orders,
            "fills": t.fills,
            "trades": t.trades,
            "equity": t.equity,
        }
        with self._connect("count rows") as db:
            return {
                name: int(
                    db.execute(
                        sa.select(sa.func.count()).select_from(table).where(table.c.run == run)
                    ).scalar_one()
                )
                for name, table in tables.items()
            }

    def runs(self) -> list[str]:
        """Return the name of every run with a recorded candle, sorted."""
        statement = sa.select(t.candles.c.run).distinct().order_by(t.candles.c.run)
        return [r["run"] for r in self._all(statement, "list runs")]

    def control(self, run: str) -> dict[str, Any] | None:
        """Return ``{"state", "since", "reason"}`` of the run, or None when never set."""
        c = t.controls.c
        found = self._all(sa.select(t.controls).where(c.run == run), "read the control state")
        if not found:
            return None
        row = found[0]
        return {"state": row["state"], "since": from_micros(row["since"]), "reason": row["reason"]}

    def events(self, run: str, limit: int | None = 100) -> list[EventRecord]:
        """Return the run's newest ``limit`` audit-log events, newest first."""
        _check_limit(limit)
        c = t.events.c
        statement = (
            sa.select(c.at, c.kind, c.message)
            .where(c.run == run)
            .order_by(c.id.desc())
            .limit(limit)
        )
        return [
            EventRecord(at=from_micros(r["at"]), kind=r["kind"], message=r["message"])
            for r in self._all(statement, "read events")
        ]

    # -- reading for export (the experience log) -------------------------------------------

    @staticmethod
    def _exported_table(kind: str) -> tuple[sa.Table, str, tuple[str, ...]]:
        # kind -> (table, the column rows_since filters on, the epoch-microsecond columns)
        exported = {
            "candles": (t.candles, "open_time", ("open_time",)),
            "decisions": (t.decisions, "timestamp", ("timestamp",)),
            "orders": (t.orders, "updated_at", ("created_at", "updated_at")),
            "fills": (t.fills, "timestamp", ("timestamp",)),
            "trades": (t.trades, "exit_time", ("entry_time", "exit_time")),
            "equity": (t.equity, "timestamp", ("timestamp",)),
        }
        if kind not in exported:
            raise ValueError(
                f"rows_since cannot read kind {kind!r}; choose one of {sorted(exported)}"
            )
        return exported[kind]

    def shadow_runs(self, run: str) -> list[str]:
        """Return the names of the run's shadow runs (``f"{run}:shadow:..."``), sorted.

        A candidate model in shadow mode stores its decisions under such a run, beside the
        production decisions of ``run``; only decisions are stored for it.
        """
        c = t.decisions.c
        statement = (
            sa.select(c.run)
            .where(c.run.startswith(f"{run}:shadow:", autoescape=True))
            .distinct()
            .order_by(c.run)
        )
        return [r["run"] for r in self._all(statement, "list shadow runs")]

    def rows_since(
        self,
        run: str,
        kind: str,
        since: datetime | dict[str, datetime] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the stored rows of one kind of the run, at or after ``since``, oldest first.

        The rows are the table's columns as stored (``run`` included), except that every
        epoch-microsecond column comes back as a UTC ``datetime``; decisions keep their
        ``document`` as JSON text. Rows are ordered by their time, then by their key.

        Parameters
        ----------
        run
            The run's name (a shadow run's name reads its decisions).
        kind
            ``"candles"`` (by ``open_time``), ``"decisions"`` (``timestamp``), ``"orders"``
            (``updated_at``: an order changes after it is created, and its updated time
            moves forward), ``"fills"`` (``timestamp``), ``"trades"`` (``exit_time``) or
            ``"equity"`` (``timestamp``).
        since
            None for every row; one instant for every symbol; or symbol -> instant, where a
            symbol not named is read from its first row (so a symbol seen for the first time
            is read whole). Equity has no symbol and takes one instant or None.

        Raises
        ------
        ValueError
            ``kind`` is not one of the above, ``since`` has no time zone, or a mapping is
            given for equity.
        """
        table, since_column, micros_columns = self._exported_table(kind)
        time = table.c[since_column]
        statement = sa.select(table).where(table.c.run == run)
        if isinstance(since, datetime):
            statement = statement.where(time >= to_micros(since))
        elif since is not None:
            if "symbol" not in table.c:
                raise ValueError(
                    f"{kind} rows have no symbol; give rows_since one instant or None, not a "
                    "mapping of symbols"
                )
            symbol = table.c.symbol
            named = sorted(since)
            statement = statement.where(
                sa.or_(
                    symbol.not_in(named),
                    *(sa.and_(symbol == s, time >= to_micros(since[s])) for s in named),
                )
            )
        key = [column for column in table.primary_key.columns if column.name != "run"]
        statement = statement.order_by(time, *key)
        found = self._all(statement, f"read {kind} for export")
        for row in found:
            for name in micros_columns:
                row[name] = from_micros(row[name])
        return found


__all__ = ["StateStore"]


def _is_full(error: BaseException) -> bool:
    """Whether ``error`` says the disk or the database's size limit is full."""
    text = str(getattr(error, "orig", None) or error).lower()
    return (
        "database or disk is full" in text  # SQLite's SQLITE_FULL
        or "no space left on device" in text  # ENOSPC, any backend
        or "could not extend file" in text  # PostgreSQL's disk full
        or "disk full" in text
    )
