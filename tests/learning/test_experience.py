"""The experience log copies a run from the state store to Parquet: whole, once, crash-proof."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.exceptions import StoreError, UserInputError
from tradebrain.learning.experience import KINDS, ExperienceLog, file_name
from tradebrain.state import (
    CandleRecord,
    FillRecord,
    OrderRecord,
    StateStore,
    Step,
    TradeRecord,
)

RUN = "paper-1"
SYMBOL = "BTC/USDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
TIME = pl.Datetime("us", "UTC")


# -- builders --------------------------------------------------------------------------------


def candle_at(i: int, symbol: str = SYMBOL) -> CandleRecord:
    price = 100.0 + i
    return CandleRecord(symbol, "1h", T0 + i * HOUR, price, price + 2, price - 1, price + 1, 10.0)


def decision_at(i: int, action: str = "buy", symbol: str = SYMBOL, **extra: Any) -> dict[str, Any]:
    """The decision on candle ``i``, stamped with its open time as the brain stamps it."""
    return {
        "timestamp": (T0 + i * HOUR).isoformat(),
        "symbol": symbol,
        "action": action,
        "confidence": 0.6,
        "regime": "trend",
        "votes": {"lightgbm": [0.2, 0.2, 0.6]},
        "reasons": [f"reason {i}"],
        **extra,
    }


def order_at(i: int, status: str = "filled", updated: int | None = None) -> OrderRecord:
    return OrderRecord(
        client_id=f"order-{i}",
        symbol=SYMBOL,
        side="buy",
        order_type="limit",
        quantity=0.5,
        status=status,
        created_at=T0 + i * HOUR,
        updated_at=T0 + (i if updated is None else updated) * HOUR,
        limit_price=99.5,
        filled_quantity=0.5 if status == "filled" else 0.0,
    )


def fill_at(i: int, symbol: str = SYMBOL) -> FillRecord:
    return FillRecord(
        f"fill-{symbol}-{i}", f"order-{i}", symbol, "buy", 0.5, 100.0 + i, 0.05, "taker",
        "entry", T0 + (i + 1) * HOUR, slippage=0.01,
    )  # fmt: skip


def trade_at(i: int) -> TradeRecord:
    return TradeRecord(
        f"{SYMBOL}|{i}", SYMBOL, "long", T0 + (i - 1) * HOUR, T0 + (i + 1) * HOUR, 100.0, 103.0,
        0.5, 1.5, 0.1, -0.01, "target", 1.5,
    )  # fmt: skip


def step_at(i: int, run: str = RUN, symbol: str = SYMBOL, **changes: Any) -> Step:
    values: dict[str, Any] = {
        "run": run,
        "symbol": symbol,
        "timeframe": "1h",
        "candle": candle_at(i, symbol),
        "decision": decision_at(i, symbol=symbol),
        "orders": [order_at(i)] if symbol == SYMBOL else [],
        "fills": [fill_at(i, symbol)],
        "trades": [trade_at(i)] if symbol == SYMBOL and i % 3 == 2 else [],
    }
    return Step(**(values | changes))


def record(store: StateStore, steps: range | list[int], **changes: Any) -> None:
    for i in steps:
        store.record_step(step_at(i, **changes))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.for_path(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def log(tmp_path: Path) -> ExperienceLog:
    return ExperienceLog(tmp_path / "experience")


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def leftovers(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.name.endswith(".tmp"))


def record_rows(records: list[Any], run: str = RUN) -> list[dict[str, Any]]:
    return [{"run": run, **vars(r)} for r in records] if records else []


def as_rows(frame: pl.DataFrame, sort_by: str) -> list[dict[str, Any]]:
    return frame.sort(sort_by).to_dicts()


# -- round trip ------------------------------------------------------------------------------


def test_export_then_read_gives_back_every_row_the_store_holds(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(30))

    written = log.export(store, RUN)

    assert written == {"decisions": 30, "orders": 30, "fills": 30, "trades": 10}
    assert log.counts(RUN) == written
    for kind, records in (
        ("orders", store.orders(RUN, limit=None)),
        ("fills", store.fills(RUN, limit=None)),
        ("trades", store.trades(RUN, limit=None)),
    ):
        key = {"orders": "client_id", "fills": "fill_id", "trades": "trade_id"}[kind]
        assert as_rows(log.read(kind, RUN), key) == sorted(
            record_rows(records), key=lambda row: row[key]
        )
    decisions = log.read("decisions", RUN)
    stored = store.decisions(RUN, limit=None)[::-1]
    assert [json.loads(d) for d in decisions["document"]] == stored
    assert decisions["timestamp"].to_list() == [T0 + i * HOUR for i in range(30)]
    assert decisions["action"].to_list() == [d["action"] for d in stored]
    assert decisions["reasons"].to_list() == [d["reasons"] for d in stored]
    assert [json.loads(v) for v in decisions["votes"]] == [d["votes"] for d in stored]
    assert not decisions["shadow"].any()
    assert decisions["model_version"].null_count() == 30


def test_every_kind_has_the_columns_of_its_store_table_plus_times_in_utc(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(3))
    log.export(store, RUN)

    for kind in ("orders", "fills", "trades"):
        frame = log.read(kind, RUN)
        assert frame.columns == list(store.rows_since(RUN, kind)[0])
        assert all(dtype == TIME for dtype in frame.select(pl.col(pl.Datetime)).dtypes)
    assert log.read("decisions").columns == [
        "run", "symbol", "timestamp", "action", "confidence", "regime", "shadow",
        "model_version", "votes", "reasons", "document",
    ]  # fmt: skip


def test_reading_a_kind_never_exported_gives_an_empty_frame_of_its_columns(
    log: ExperienceLog,
) -> None:
    for kind in KINDS:
        frame = log.read(kind)
        assert frame.is_empty()
        assert "run" in frame.columns
    assert log.counts() == dict.fromkeys(KINDS, 0)


# -- incremental export ----------------------------------------------------------------------


def test_a_second_export_without_change_writes_no_file_and_duplicates_nothing(
    store: StateStore, log: ExperienceLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(store, range(30))
    first = log.export(store, RUN)
    replaced: list[str] = []
    real_replace = os.replace

    def counting_replace(source: Any, target: Any) -> None:
        replaced.append(str(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", counting_replace)

    assert log.export(store, RUN) == dict.fromkeys(KINDS, 0)
    assert replaced == []
    assert log.counts(RUN) == first


def test_candles_recorded_after_an_export_are_exported_by_the_next(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(10))
    log.export(store, RUN)
    record(store, range(10, 15))

    written = log.export(store, RUN)

    assert written == {"decisions": 5, "orders": 5, "fills": 5, "trades": 2}
    assert log.read("decisions", RUN)["timestamp"].to_list() == [T0 + i * HOUR for i in range(15)]
    assert log.counts(RUN) == {"decisions": 15, "orders": 15, "fills": 15, "trades": 5}


def test_an_order_whose_status_changed_is_updated_not_duplicated(
    store: StateStore, log: ExperienceLog
) -> None:
    store.record_step(step_at(0, orders=[order_at(0, "open")]))
    log.export(store, RUN)
    store.record_step(step_at(1, orders=[order_at(0, "filled", updated=1)]))

    written = log.export(store, RUN)

    orders = log.read("orders", RUN)
    assert written["orders"] == 1
    assert orders["client_id"].to_list() == ["order-0"]
    assert orders["status"].to_list() == ["filled"]
    assert orders["updated_at"].to_list() == [T0 + HOUR]


def test_a_symbol_recorded_late_with_older_times_is_still_exported(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(24))
    log.export(store, RUN)
    record(store, range(3), symbol="ETH/USDT")  # a new symbol, a day older than the newest row

    written = log.export(store, RUN)

    assert written["decisions"] == 3
    assert written["fills"] == 3
    assert log.read("decisions", RUN).filter(pl.col("symbol") == "ETH/USDT").height == 3


def test_a_fill_reconciled_late_within_the_overlap_is_exported(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(10))
    log.export(store, RUN)
    late = FillRecord(
        "fill-late", "order-3", SYMBOL, "buy", 0.1, 101.0, 0.01, "maker", "entry", T0 + 4 * HOUR
    )
    store.record_step(step_at(10, fills=[late]))

    log.export(store, RUN)

    assert "fill-late" in log.read("fills", RUN)["fill_id"].to_list()


def test_rows_of_two_utc_days_land_in_two_day_partitions(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(22, 26))  # 22:00 and 23:00 on Jan 1, 00:00 and 01:00 on Jan 2

    log.export(store, RUN)

    decisions = sorted((log.root / "decisions").glob("*/*.parquet"))
    assert [path.parent.name for path in decisions] == ["date=2024-01-01", "date=2024-01-02"]
    days = [pl.read_parquet(path)["timestamp"].dt.date().unique().to_list() for path in decisions]
    assert days == [[T0.date()], [(T0 + 24 * HOUR).date()]]


def test_duckdb_reads_the_glob_with_hive_partitioning(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(20, 30))
    log.export(store, RUN)

    found = (
        duckdb.connect()
        .execute(
            "select date, count(*) as n, min(run) as run "
            "from read_parquet(?, hive_partitioning=true) group by date order by date",
            [log.glob("fills")],
        )
        .fetchall()
    )

    assert found == [(T0.date(), 3, RUN), ((T0 + 24 * HOUR).date(), 7, RUN)]


def test_shadow_decisions_come_with_their_run_flagged_with_their_model_version(
    store: StateStore, log: ExperienceLog
) -> None:
    shadow_run = f"{RUN}:shadow:v7"
    for i in range(4):
        candidate = decision_at(i, "sell", shadow=True, model_version=7)
        store.record_step(step_at(i, shadow_decisions=[(shadow_run, candidate)]))
    store.record_step(step_at(0, run="other-run"))

    written = log.export(store, RUN)

    decisions = log.read("decisions", RUN)
    assert written["decisions"] == 8
    production = decisions.filter(~pl.col("shadow"))
    shadow = decisions.filter(pl.col("shadow"))
    assert production["run"].unique().to_list() == [RUN]
    assert production["model_version"].null_count() == 4
    assert shadow["run"].unique().to_list() == [shadow_run]
    assert shadow["model_version"].unique().to_list() == ["7"]
    assert shadow["action"].unique().to_list() == ["sell"]


def test_exporting_a_shadow_run_on_its_own_is_refused_with_the_run_to_export(
    store: StateStore, log: ExperienceLog
) -> None:
    with pytest.raises(UserInputError, match="export its production run 'paper-1'"):
        log.export(store, f"{RUN}:shadow:v2")


# -- crash safety ----------------------------------------------------------------------------


class SimulatedCrashError(Exception):
    """Raised in place of the n-th ``os.replace``: the export dies between two files."""


def export_until_done(log: ExperienceLog, store: StateStore, crash_at: list[int]) -> None:
    """Export, the k-th file move of attempt j failing for each k = crash_at[j], then once
    more without a crash."""
    real_replace = os.replace
    for k in crash_at:
        calls = 0

        def failing_replace(source: Any, target: Any, k: int = k) -> None:
            nonlocal calls
            calls += 1
            if calls == k:
                raise SimulatedCrashError(f"crash before moving file {k} into place")
            real_replace(source, target)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "replace", failing_replace)
            with contextlib.suppress(SimulatedCrashError):
                log.export(store, RUN)
    log.export(store, RUN)


def snapshot(log: ExperienceLog) -> dict[str, list[dict[str, Any]]]:
    return {kind: log.read(kind).to_dicts() for kind in KINDS}


@settings(max_examples=20)
@given(
    before=st.integers(1, 30),
    after=st.integers(0, 30),
    crash_at=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    crash_after_new_rows=st.booleans(),
)
def test_an_export_interrupted_at_any_file_then_rerun_gives_the_rows_of_an_uninterrupted_one(
    before: int, after: int, crash_at: list[int], crash_after_new_rows: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with StateStore.for_path(root / "state.db") as store:
            store.record_step(step_at(0, orders=[order_at(0, "open")]))
            record(store, range(1, before))
            interrupted = ExperienceLog(root / "interrupted")
            if not crash_after_new_rows:
                export_until_done(interrupted, store, crash_at)
            store.record_step(step_at(before, orders=[order_at(0, "filled", updated=before)]))
            record(store, range(before + 1, before + after))
            if crash_after_new_rows:
                export_until_done(interrupted, store, crash_at)
            else:
                interrupted.export(store, RUN)
            clean = ExperienceLog(root / "clean")
            clean.export(store, RUN)

            assert snapshot(interrupted) == snapshot(clean)
            assert [p.relative_to(interrupted.root) for p in parquet_files(interrupted.root)] == [
                p.relative_to(clean.root) for p in parquet_files(clean.root)
            ]
            assert interrupted.counts()["decisions"] == store.counts(RUN)["decisions"]
            assert interrupted.export(store, RUN) == dict.fromkeys(KINDS, 0)
            assert leftovers(interrupted.root) == []


def test_no_temporary_file_is_left_after_an_export(store: StateStore, log: ExperienceLog) -> None:
    record(store, range(30))

    log.export(store, RUN)

    assert leftovers(log.root) == []
    assert parquet_files(log.root)


def test_a_temporary_file_left_by_a_killed_export_is_removed_by_the_next(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(3))
    log.export(store, RUN)
    stale = log.root / "fills" / "date=2024-01-01" / f".{RUN}.parquet.4242.cafe.tmp"
    stale.write_bytes(b"half a parquet file")

    log.export(store, RUN)

    assert not stale.exists()


def test_a_watermark_written_after_the_files_is_what_the_next_export_resumes_from(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(5))
    log.export(store, RUN)

    saved = json.loads((log.root / "_watermarks" / f"{RUN}.json").read_text())

    assert saved["run"] == RUN
    assert saved["store"] == store.url
    newest = datetime.fromtimestamp(saved["newest"]["decisions"][RUN][SYMBOL] / 1e6, UTC)
    assert newest == T0 + 4 * HOUR


def test_a_lost_or_foreign_watermark_means_reading_everything_again_without_duplicates(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(10))
    log.export(store, RUN)
    mark = log.root / "_watermarks" / f"{RUN}.json"
    mark.write_text(json.dumps({**json.loads(mark.read_text()), "store": "sqlite:///other.db"}))
    record(store, range(10, 12))

    written = log.export(store, RUN)

    assert written["decisions"] == 2
    assert log.counts(RUN)["decisions"] == 12
    mark.unlink()
    assert log.export(store, RUN) == dict.fromkeys(KINDS, 0)


def test_an_unreadable_day_file_is_refused_with_its_path_and_the_way_out(
    store: StateStore, log: ExperienceLog
) -> None:
    record(store, range(3))
    log.export(store, RUN)
    broken = log.root / "fills" / "date=2024-01-01" / f"{RUN}.parquet"
    broken.write_bytes(b"not parquet")
    (log.root / "_watermarks" / f"{RUN}.json").unlink()

    with pytest.raises(StoreError, match=r"fills/date=2024-01-01/paper-1\.parquet.*delete it"):
        log.export(store, RUN)


# -- names, kinds and the store's export readers ---------------------------------------------


def test_run_names_are_encoded_so_that_two_runs_never_share_a_file() -> None:
    names = ["a/b", "a_b", "a:b", ".hidden", "paper-1", "x y"]

    encoded = [file_name(name) for name in names]

    assert len(set(encoded)) == len(names)
    assert encoded[4] == "paper-1"
    assert all("/" not in name and not name.startswith(".") for name in encoded)
    with pytest.raises(UserInputError, match="run name is empty"):
        file_name("")


def test_runs_are_kept_apart_in_their_own_files(store: StateStore, log: ExperienceLog) -> None:
    record(store, range(3))
    record(store, range(5), run="a/b")
    log.export(store, RUN)
    log.export(store, "a/b")

    assert log.counts(RUN)["decisions"] == 3
    assert log.counts("a/b")["decisions"] == 5
    assert log.counts()["decisions"] == 8
    assert log.read("decisions", "a/b")["run"].unique().to_list() == ["a/b"]


def test_an_unknown_kind_is_refused_with_the_kinds_there_are(log: ExperienceLog) -> None:
    with pytest.raises(UserInputError, match=r"no kind 'candles'.*decisions"):
        log.read("candles")
    with pytest.raises(UserInputError, match="no kind"):
        log.glob("equity")


def test_a_negative_overlap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="overlap must be >= 0"):
        ExperienceLog(tmp_path, overlap=-HOUR)


def test_shadow_runs_are_the_runs_named_after_the_run_even_with_like_wildcards(
    store: StateStore,
) -> None:
    for run in ("run_1", "runX1"):
        store.record_step(
            step_at(0, run=run, shadow_decisions=[(f"{run}:shadow:v1", decision_at(0))])
        )
    store.record_step(
        step_at(1, run="run_1", shadow_decisions=[("run_1:shadow:v2", decision_at(1))])
    )

    assert store.shadow_runs("run_1") == ["run_1:shadow:v1", "run_1:shadow:v2"]
    assert store.shadow_runs("run%") == []


def test_rows_since_reads_each_symbol_from_its_own_instant_and_new_symbols_whole(
    store: StateStore,
) -> None:
    record(store, range(6))
    record(store, range(6), symbol="ETH/USDT")
    record(store, range(3), symbol="SOL/USDT")

    everything = store.rows_since(RUN, "decisions")
    one_instant = store.rows_since(RUN, "decisions", T0 + 4 * HOUR)
    per_symbol = store.rows_since(
        RUN, "decisions", {SYMBOL: T0 + 5 * HOUR, "ETH/USDT": T0 + 3 * HOUR}
    )

    assert len(everything) == 15
    assert {(r["symbol"], r["timestamp"].hour) for r in one_instant} == {
        (SYMBOL, 4), (SYMBOL, 5), ("ETH/USDT", 4), ("ETH/USDT", 5),
    }  # fmt: skip
    assert sorted((r["symbol"], r["timestamp"].hour) for r in per_symbol) == [
        ("BTC/USDT", 5), ("ETH/USDT", 3), ("ETH/USDT", 4), ("ETH/USDT", 5),
        ("SOL/USDT", 0), ("SOL/USDT", 1), ("SOL/USDT", 2),
    ]  # fmt: skip
    assert [r["timestamp"] for r in everything] == sorted(r["timestamp"] for r in everything)


def test_rows_since_gives_orders_by_update_time_and_times_as_utc_datetimes(
    store: StateStore,
) -> None:
    store.record_step(step_at(0, orders=[order_at(0, "open")]))
    store.record_step(step_at(5, orders=[order_at(0, "filled", updated=5), order_at(5)]))

    found = store.rows_since(RUN, "orders", T0 + 5 * HOUR)

    assert [(r["client_id"], r["status"]) for r in found] == [
        ("order-0", "filled"),
        ("order-5", "filled"),
    ]
    assert found[0]["created_at"] == T0
    assert found[0]["created_at"].tzinfo is not None


def test_rows_since_refuses_an_unknown_kind_a_naive_instant_and_symbols_for_equity(
    store: StateStore,
) -> None:
    with pytest.raises(ValueError, match="cannot read kind 'positions'"):
        store.rows_since(RUN, "positions")
    with pytest.raises(ValueError, match="no time zone"):
        store.rows_since(RUN, "fills", datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="equity rows have no symbol"):
        store.rows_since(RUN, "equity", {SYMBOL: T0})


def test_a_trade_without_risk_defined_keeps_a_null_r_multiple(
    store: StateStore, log: ExperienceLog
) -> None:
    trade = TradeRecord(
        "t-nan", SYMBOL, "short", T0, T0 + HOUR, 100.0, 99.0, 1.0, 1.0, 0.1, 0.0, "signal",
        math.nan,
    )  # fmt: skip
    store.record_step(step_at(0, trades=[trade]))

    log.export(store, RUN)

    assert log.read("trades", RUN)["r_multiple"].to_list() == [None]
