"""The state store keeps every step once, whole, across restarts, replays and kill -9."""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from tradebrain.data.schemas import SCHEMAS, Kind
from tradebrain.exceptions import StoreError, UserInputError
from tradebrain.state import (
    CandleRecord,
    EquityPoint,
    FillRecord,
    OrderRecord,
    PositionRecord,
    StateStore,
    Step,
    TradeRecord,
)
from tradebrain.state import _tables as tables
from tradebrain.state._opening import scrub

RUN = "paper-1"
SYMBOL = "BTC/USDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def candle_at(i: int, symbol: str = SYMBOL) -> CandleRecord:
    price = 100.0 + i
    return CandleRecord(symbol, "1h", T0 + i * HOUR, price, price + 2, price - 1, price + 1, 10.0)


def decision_at(i: int, action: str = "buy", symbol: str = SYMBOL) -> dict[str, Any]:
    return {
        "timestamp": (T0 + (i + 1) * HOUR).isoformat(),
        "symbol": symbol,
        "action": action,
        "confidence": 0.6,
        "regime": "trend",
        "probabilities": {"up": 0.6, "down": 0.4},
    }


def order(client_id: str, status: str = "open", at: datetime = T0, **changes: Any) -> OrderRecord:
    values: dict[str, Any] = {
        "client_id": client_id,
        "symbol": SYMBOL,
        "side": "buy",
        "order_type": "limit",
        "quantity": 0.5,
        "status": status,
        "created_at": T0,
        "updated_at": at,
        "limit_price": 99.5,
    }
    return OrderRecord(**(values | changes))


def fill_at(i: int) -> FillRecord:
    return FillRecord(
        f"fill-{i}", f"order-{i}", SYMBOL, "buy", 0.5, 100.0 + i, 0.05, "taker", "entry",
        T0 + (i + 1) * HOUR, slippage=0.01,
    )  # fmt: skip


def trade_at(i: int, r_multiple: float = 1.5) -> TradeRecord:
    entry, exit_ = T0 + i * HOUR, T0 + (i + 1) * HOUR
    return TradeRecord(
        f"{SYMBOL}|{i}|{i + 1}|0", SYMBOL, "long", entry, exit_, 100.0, 103.0, 0.5, 1.5, 0.1,
        -0.01, "target", r_multiple,
    )  # fmt: skip


def equity_at(i: int, equity: float = 10_000.0) -> EquityPoint:
    return EquityPoint(T0 + (i + 1) * HOUR, equity + i, 5_000.0, 10_000.0 + 2 * i)


def step_at(i: int, run: str = RUN, **changes: Any) -> Step:
    values: dict[str, Any] = {
        "run": run,
        "symbol": SYMBOL,
        "timeframe": "1h",
        "candle": candle_at(i),
        "decision": decision_at(i),
        "orders": [order(f"order-{i}", "filled", T0 + (i + 1) * HOUR, filled_quantity=0.5)],
        "fills": [fill_at(i)],
        "trades": [trade_at(i)],
        "equity": equity_at(i),
        "positions": None,
        "broker_state": {"cash": 5_000.0 + i},
        "runner_state": {"last_index": i},
    }
    return Step(**(values | changes))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.for_path(tmp_path / "state" / "state.db") as opened:
        yield opened


# -- round trips ---------------------------------------------------------------------------


def test_every_record_kind_reads_back_exactly_as_written(store: StateStore) -> None:
    full_order = order(
        "order-0", "open", T0, stop_price=95.0, target_price=110.0, trigger_price=99.0,
        reduce_only=True, tag="exit", reason="atr stop", exchange_id="x-1", confidence=0.7,
    )  # fmt: skip
    position = PositionRecord(SYMBOL, -0.25, 101.5, T0 + HOUR, stop_price=105.0)
    step = step_at(0, orders=[full_order], positions=[position])

    store.record_step(step)

    assert store.last_candle(RUN, SYMBOL, "1h") == step.candle
    assert store.latest_decision(RUN) == step.decision
    assert store.orders(RUN) == [full_order]
    assert store.fills(RUN) == step.fills
    assert store.trades(RUN) == step.trades
    assert store.equity(RUN) == [step.equity]
    assert store.positions(RUN) == [position]
    assert store.broker_state(RUN) == {"cash": 5_000.0}
    assert store.runner_state(RUN) == {"last_index": 0}
    assert store.runs() == [RUN]


def test_timestamps_read_back_as_utc_and_exact_to_the_microsecond(store: StateStore) -> None:
    moment = datetime(2024, 3, 1, 12, 0, 0, 123_457, tzinfo=timezone(timedelta(hours=2)))
    candle = CandleRecord(SYMBOL, "1h", moment, 1.0, 1.0, 1.0, 1.0, 0.0)

    store.record_step(step_at(0, candle=candle, decision=None, orders=[], fills=[], trades=[]))

    read = store.last_candle(RUN, SYMBOL, "1h")
    assert read is not None
    assert read.open_time == moment
    assert read.open_time.utcoffset() == timedelta(0)


def test_a_trade_without_a_defined_risk_keeps_its_nan_r_multiple(store: StateStore) -> None:
    store.record_step(step_at(0, trades=[trade_at(0, r_multiple=math.nan)]))

    assert math.isnan(store.trades(RUN)[0].r_multiple)


def test_candles_come_back_in_the_project_schema_oldest_first(store: StateStore) -> None:
    for i in range(5):
        store.record_step(step_at(i))

    frame = store.candles(RUN, SYMBOL, "1h", limit=3)

    assert frame.schema == SCHEMAS[Kind.CANDLES].columns
    assert frame["timestamp"].to_list() == [T0 + i * HOUR for i in (2, 3, 4)]
    assert frame["close"].to_list() == [103.0, 104.0, 105.0]
    assert store.candles(RUN, SYMBOL, "1h").height == 5


def test_an_empty_store_answers_with_nothing_rather_than_an_error(store: StateStore) -> None:
    assert store.candles(RUN, SYMBOL, "1h").equals(SCHEMAS[Kind.CANDLES].empty())
    assert store.last_candle(RUN, SYMBOL, "1h") is None
    assert store.latest_decision(RUN) is None
    assert store.broker_state(RUN) is None
    assert store.control(RUN) is None
    assert store.counts(RUN) == dict.fromkeys(
        ("candles", "decisions", "orders", "fills", "trades", "equity"), 0
    )


def test_logs_come_newest_first_and_equity_oldest_first_within_the_limit(
    store: StateStore,
) -> None:
    for i in range(6):
        store.record_step(step_at(i))

    assert [f.fill_id for f in store.fills(RUN, limit=2)] == ["fill-5", "fill-4"]
    assert [t.trade_id.split("|")[1] for t in store.trades(RUN, limit=3)] == ["5", "4", "3"]
    assert [d["timestamp"] for d in store.decisions(RUN, limit=2)] == [
        (T0 + 6 * HOUR).isoformat(),
        (T0 + 5 * HOUR).isoformat(),
    ]
    assert [o.client_id for o in store.orders(RUN, limit=2)] == ["order-5", "order-4"]
    assert [p.timestamp for p in store.equity(RUN, limit=2)] == [T0 + 5 * HOUR, T0 + 6 * HOUR]
    assert len(store.equity(RUN)) == 6


def test_decisions_can_be_read_for_one_symbol(store: StateStore) -> None:
    store.record_step(step_at(0))
    eth = CandleRecord("ETH/USDT", "1h", T0, 1.0, 1.0, 1.0, 1.0, 1.0)
    eth_step = step_at(
        0, symbol="ETH/USDT", candle=eth, decision=decision_at(0, "sell", "ETH/USDT")
    )
    store.record_step(eth_step)

    assert [d["action"] for d in store.decisions(RUN, symbol="ETH/USDT")] == ["sell"]
    assert len(store.decisions(RUN)) == 2
    assert store.latest_decision(RUN, symbol=SYMBOL) == decision_at(0)


def test_a_limit_below_one_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.fills(RUN, limit=0)


def test_runs_do_not_see_each_others_rows(store: StateStore) -> None:
    store.record_step(step_at(0, run="a"))
    store.record_step(step_at(0, run="b"))

    assert store.counts("a")["fills"] == 1
    assert store.counts("b")["fills"] == 1
    assert store.runs() == ["a", "b"]


# -- idempotence ---------------------------------------------------------------------------


def test_recording_the_same_step_twice_keeps_one_row_of_each(store: StateStore) -> None:
    store.record_step(step_at(0))
    store.record_step(step_at(0))

    assert store.counts(RUN) == {
        "candles": 1,
        "decisions": 1,
        "orders": 1,
        "fills": 1,
        "trades": 1,
        "equity": 1,
    }


def test_a_replayed_step_keeps_the_latest_status_of_an_order(store: StateStore) -> None:
    store.record_step(step_at(0, orders=[order("o-1", "open", T0)]))
    replay = step_at(0, orders=[order("o-1", "cancelled", T0 + HOUR, reason="expired")])
    store.record_step(replay)

    [stored] = store.orders(RUN)
    assert (stored.status, stored.reason) == ("cancelled", "expired")


def test_an_order_moves_from_open_to_filled_over_two_steps(store: StateStore) -> None:
    store.record_step(step_at(0, orders=[order("o-1", "open", T0, exchange_id="x-9")]))
    assert [o.client_id for o in store.open_orders(RUN)] == ["o-1"]

    filled = order("o-1", "filled", T0 + HOUR, filled_quantity=0.5)
    store.record_step(step_at(1, orders=[filled]))

    [stored] = store.orders(RUN)
    assert (stored.status, stored.filled_quantity, stored.updated_at) == ("filled", 0.5, T0 + HOUR)
    assert stored.exchange_id == "x-9"  # a later record without the exchange id keeps it
    assert store.open_orders(RUN) == []
    assert store.orders(RUN, status="filled") == [stored]


def test_an_older_copy_of_an_order_never_overwrites_a_newer_one(store: StateStore) -> None:
    store.record_step(step_at(1, orders=[order("o-1", "filled", T0 + HOUR)]))
    store.record_step(step_at(0, orders=[order("o-1", "open", T0)]))

    assert store.orders(RUN)[0].status == "filled"


def test_a_new_positions_snapshot_replaces_the_previous_one(store: StateStore) -> None:
    btc = PositionRecord(SYMBOL, 0.5, 100.0, T0)
    eth = PositionRecord("ETH/USDT", -2.0, 3_000.0, T0, target_price=2_800.0)
    store.record_step(step_at(0, positions=[btc, eth]))

    store.record_step(step_at(1, positions=None))
    assert store.positions(RUN) == [btc, eth]

    store.record_step(step_at(2, positions=[eth]))
    assert store.positions(RUN) == [eth]

    store.record_step(step_at(3, positions=[]))
    assert store.positions(RUN) == []


def test_a_step_that_fails_halfway_leaves_nothing_behind(store: StateStore) -> None:
    broken_fill = FillRecord(
        "fill-x", "order-x", SYMBOL, "buy", 0.5, math.nan, 0.0, "taker", "entry", T0
    )  # SQLite stores NaN as NULL, so the NOT NULL price fails after the candle was written

    with pytest.raises(StoreError, match="record the BTC/USDT 1h step"):
        store.record_step(step_at(0, fills=[broken_fill]))

    assert set(store.counts(RUN).values()) == {0}
    assert store.runner_state(RUN) is None


# -- control and events --------------------------------------------------------------------


def test_control_state_and_events_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore.for_path(path) as first:
        first.set_control(RUN, "running", "started", T0)
        first.set_control(RUN, "paused", "daily loss limit", T0 + HOUR)
        first.record_event(RUN, "pause", "daily loss limit reached", T0 + HOUR)
        first.record_event(RUN, "reconcile", "positions match the exchange", T0 + 2 * HOUR)

    with StateStore.for_path(path) as second:
        assert second.control(RUN) == {
            "state": "paused",
            "since": T0 + HOUR,
            "reason": "daily loss limit",
        }
        events = second.events(RUN)
        assert [(e.kind, e.at) for e in events] == [
            ("reconcile", T0 + 2 * HOUR),
            ("pause", T0 + HOUR),
        ]
        assert second.events(RUN, limit=1) == events[:1]
        assert second.events("another run") == []


# -- crash safety --------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from tradebrain.state import (
        CandleRecord, EquityPoint, FillRecord, OrderRecord, StateStore, Step,
    )

    path, start = sys.argv[1], int(sys.argv[2])
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    store = StateStore.for_path(path)
    print("ready", flush=True)
    i = start
    while True:
        at = t0 + timedelta(minutes=i)
        store.record_step(Step(
            run="crash", symbol="BTC/USDT", timeframe="1m",
            candle=CandleRecord("BTC/USDT", "1m", at, 1.0, 1.0, 1.0, 1.0, float(i)),
            decision={"timestamp": at.isoformat(), "symbol": "BTC/USDT", "action": "hold"},
            orders=[OrderRecord(f"o{i}", "BTC/USDT", "buy", "market", 1.0, "filled", at, at)],
            fills=[FillRecord(f"f{i}", f"o{i}", "BTC/USDT", "buy", 1.0, 1.0, 0.0, "taker",
                              "entry", at)],
            trades=[],
            equity=EquityPoint(at, float(i), 0.0, 0.0),
            positions=None, broker_state={"last": i}, runner_state={"last": i},
        ))
        i += 1
    """
)


def test_steps_survive_kill_9_whole_or_not_at_all_and_replays_add_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.db"
    chance = random.Random(7)
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    recorded = 0
    for _kill in range(6):
        # The runner replays the last recorded candle after a crash: start one step back.
        start = max(recorded - 1, 0)
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(start)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        with contextlib.suppress(subprocess.TimeoutExpired):  # let it write a while, then kill
            child.wait(timeout=0.05 + 0.25 * chance.random())
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()

        with StateStore.for_path(path) as store:
            counts = store.counts("crash")
            assert counts["candles"] == counts["decisions"] == counts["orders"]
            assert counts["candles"] == counts["fills"] == counts["equity"]
            assert counts["candles"] >= recorded
            recorded = counts["candles"]
            last = store.last_candle("crash", "BTC/USDT", "1m")
            if recorded:
                assert last is not None and last.volume == recorded - 1
                assert store.runner_state("crash") == {"last": recorded - 1}
                indexes = [p.equity for p in store.equity("crash")]
                assert indexes == [float(i) for i in range(recorded)]
    assert recorded > 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- property ------------------------------------------------------------------------------

_keys = st.integers(min_value=0, max_value=4)
_steps = st.lists(
    st.tuples(_keys, _keys, _keys, _keys, st.sampled_from(["open", "filled", "cancelled"])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_steps)
def test_counts_equal_the_number_of_distinct_keys_whatever_is_repeated(
    steps: list[tuple[int, int, int, int, str]],
) -> None:
    with StateStore("sqlite://") as store:  # a real SQLite database, in memory
        for moment, fill, trade, order_key, status in steps:
            store.record_step(
                step_at(
                    moment,
                    orders=[order(f"o{order_key}", status, T0 + len(steps) * HOUR)],
                    fills=[fill_at(fill)],
                    trades=[trade_at(trade)],
                )
            )

        moments = {s[0] for s in steps}
        assert store.counts(RUN) == {
            "candles": len(moments),
            "decisions": len(moments),
            "orders": len({s[3] for s in steps}),
            "fills": len({s[1] for s in steps}),
            "trades": len({s[2] for s in steps}),
            "equity": len(moments),
        }
        last_status = {f"o{s[3]}": s[4] for s in steps}
        assert {o.client_id: o.status for o in store.orders(RUN)} == last_status


# -- bad input -----------------------------------------------------------------------------


def test_a_url_that_cannot_be_parsed_names_the_url_and_the_accepted_forms() -> None:
    with pytest.raises(UserInputError, match=r"'not a url'.*sqlite:///"):
        StateStore("not a url")


def test_an_unsupported_database_is_refused_without_showing_the_password() -> None:
    with pytest.raises(UserInputError) as caught:
        StateStore("mysql://trader:hunter2@db.example/state")
    assert "hunter2" not in str(caught.value)
    assert "trader:***@" in str(caught.value)
    assert "SQLite and PostgreSQL" in str(caught.value)


def test_a_postgresql_url_that_cannot_be_opened_hides_its_password() -> None:
    with pytest.raises(UserInputError) as caught:
        StateStore("postgresql+psycopg://trader:hunter2@127.0.0.1:1/state")
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_a_short_password_is_masked_in_its_field_and_nowhere_else() -> None:
    with pytest.raises(UserInputError) as caught:
        StateStore("postgresql://u:p@127.0.0.1:1/db")
    message = str(caught.value)
    assert "'postgresql://u:***@127.0.0.1:1/db'" in message
    assert "No module named 'psycopg'" in message  # not "'***syco***g'"
    assert "***syco" not in message


@pytest.mark.parametrize(
    ("driver_says", "shown"),
    [
        (
            "connect to postgresql://u:pw@host/db failed",
            "connect to postgresql://u:***@host/db failed",
        ),
        ("invalid dsn: password=pw host=db", "invalid dsn: password=*** host=db"),
        ("invalid dsn: password='pw' host=db", "invalid dsn: password='***' host=db"),
        ("user u has no pwd; pw is not a word", "user u has no pwd; pw is not a word"),
    ],
)
def test_a_driver_message_shows_the_password_field_masked_and_other_text_intact(
    driver_says: str, shown: str
) -> None:
    assert scrub(driver_says, sa.make_url("postgresql://u:pw@host/db")) == shown


def test_a_file_that_is_not_a_database_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my trading notes, not a database\n" * 200)

    with pytest.raises(UserInputError, match="not a SQLite database; point the store"):
        StateStore.for_path(path)
    assert path.read_text().startswith("these are my trading notes")


def _recorded_run(path: Path, steps: int = 400) -> bytes:
    """Record ``steps`` steps (about 2 KB each) into a new state file, close it, and return
    its bytes."""
    with StateStore.for_path(path) as store:
        for i in range(steps):
            wordy = decision_at(i) | {"reasons": [f"reason {i}: " + "x" * 2000]}
            store.record_step(step_at(i, decision=wordy))
    return path.read_bytes()


def test_a_state_file_with_random_bytes_in_the_middle_is_refused_and_left_as_it_is(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    whole = _recorded_run(path)
    middle = len(whole) // 2
    damage = random.Random(7).randbytes(64 * 1024)
    path.write_bytes(whole[:middle] + damage + whole[middle + len(damage) :])
    damaged = path.read_bytes()

    with pytest.raises(StoreError) as caught:
        StateStore.for_path(path)
    message = str(caught.value)
    assert f"the state database sqlite:///{path} is corrupt (PRAGMA quick_check: " in message
    assert "--state NEW.db" in message and ".recover" in message and "backup" in message
    assert path.read_bytes() == damaged  # not written to


def test_an_empty_state_file_is_refused_rather_than_starting_a_fresh_run(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.touch()

    with pytest.raises(StoreError, match=r"is an empty file \(0 bytes\).*delete the file"):
        StateStore.for_path(path)
    assert path.stat().st_size == 0
    assert not path.with_name("state.db-wal").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read and write any file")
def test_a_state_file_this_user_cannot_read_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _recorded_run(path, steps=1)
    path.chmod(0o200)
    try:
        with pytest.raises(StoreError, match="give this user read and write access"):
            StateStore.for_path(path)
    finally:
        path.chmod(0o600)


def test_a_healthy_state_file_reopens_with_every_step(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _recorded_run(path, steps=50)
    with StateStore.for_path(path) as store:
        assert store.counts(RUN)["candles"] == 50


def test_a_sqlite_file_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE recipes (name TEXT)")

    with pytest.raises(UserInputError, match=r"not a tradebrain state database.*recipes"):
        StateStore.for_path(path)


def test_a_missing_folder_or_a_folder_instead_of_a_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="does not exist; create it first"):
        StateStore(f"sqlite:///{tmp_path / 'missing' / 'state.db'}")
    with pytest.raises(UserInputError, match="names a folder"):
        StateStore(f"sqlite:///{tmp_path}")


def test_a_database_from_a_newer_tradebrain_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.for_path(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE tb_meta SET value = '99' WHERE key = 'schema_version'")

    with pytest.raises(UserInputError, match=r"schema version 99.*upgrade tradebrain"):
        StateStore.for_path(path)


def test_a_naive_timestamp_is_refused_when_the_record_is_built() -> None:
    with pytest.raises(ValueError, match=r"open_time.*no time zone"):
        CandleRecord(SYMBOL, "1h", datetime(2024, 1, 1), 1.0, 1.0, 1.0, 1.0, 1.0)


def test_an_unknown_order_status_is_refused() -> None:
    with pytest.raises(ValueError, match="'partial' is not one of"):
        order("o-1", "partial")


def test_sqlite_runs_in_wal_mode_with_full_sync(store: StateStore, tmp_path: Path) -> None:
    store.record_step(step_at(0))
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with store._engine.connect() as connection:  # per-connection settings: ask the store's own
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


# -- portability ---------------------------------------------------------------------------


def test_the_schema_and_every_upsert_compile_for_postgresql() -> None:
    dialect = postgresql.dialect()
    ddl = [
        str(sa.schema.CreateTable(table).compile(dialect=dialect))
        for table in tables.metadata.sorted_tables
    ]
    assert any("BIGSERIAL" in text or "BIGINT" in text for text in ddl)

    statement = tables.upsert_statement(
        "postgresql",
        tables.orders,
        update=("status", "exchange_id", "updated_at"),
        keep_if_present=("exchange_id",),
        only_if_not_older="updated_at",
    )
    sql = str(statement.compile(dialect=dialect))
    assert "ON CONFLICT (run, client_id) DO UPDATE" in sql
    assert "coalesce(excluded.exchange_id, tb_orders.exchange_id)" in sql
    assert "WHERE excluded.updated_at >= tb_orders.updated_at" in sql
    ignore = str(tables.upsert_statement("postgresql", tables.fills).compile(dialect=dialect))
    assert "ON CONFLICT (run, fill_id) DO NOTHING" in ignore
