"""Chaos tests of the running service: faults at the venue and on the disk lose nothing.

Each test runs the real service (paper mode, websocket feed through ccxt.pro, REST behind
it) on the same candles as a run without faults, injects one kind of fault, and checks that
the service saved the same candles (none missed, none twice), the same decisions and the same
orders (no order placed twice), said what happened in a log line and a metric, and recovered
without a restart of its runner.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from chaos_drive import START_MS, STEP_MS, ChaosRun, Outcome, chaos_run, outcome

from tradebrain.state import StateStore

CANDLES = 60

pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Outcome, Path]]:
    """A run without faults (its models are reused by every chaos run)."""
    home = tmp_path_factory.mktemp("reference")
    with chaos_run(home) as run:
        for k in range(CANDLES):
            run.close_candle(k)
        found = outcome(run)
        bundle = run.service.runner.bundle_dir
    assert bundle is not None
    models = tmp_path_factory.mktemp("models") / "bundle"
    shutil.copytree(bundle, models)
    assert len(found.candles) == CANDLES and found.orders, "the reference run must trade"
    yield found, models


def _same_as_reference(run: ChaosRun, reference: Outcome) -> None:
    found = outcome(run)
    opens = [row[0] for row in found.candles]
    assert len(opens) == len(set(opens)), "a candle was saved twice"
    assert found.candles == reference.candles, "candles differ from the run without faults"
    assert found.decisions == reference.decisions
    assert found.orders == reference.orders
    assert len(found.order_ids) == len(set(found.order_ids)), "an order was placed twice"
    assert run.service.phase == "running" and run.service.error is None
    assert run.metric("tradebrain_errors_total", kind="runner") == 0  # never restarted


def test_a_stream_that_drops_every_fraction_of_a_second_loses_and_doubles_nothing(
    reference: tuple[Outcome, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected, models = reference
    caplog.set_level(logging.WARNING, logger="tradebrain")
    with chaos_run(tmp_path, models=models) as run:
        run.ws.drop_every(0.3)
        for k in range(CANDLES):
            run.close_candle(k)
        run.ws.drop_every(None)
        _same_as_reference(run, expected)
        status = run.feed.status()
        assert status["fallbacks"] >= 1 and status["reconnects"] >= 1
        assert run.metric("tradebrain_feed_events_total", event="fallback") >= 1
    assert "websocket down" in caplog.text


def test_rest_answering_5xx_bursts_and_429s_while_the_websocket_is_down_loses_nothing(
    reference: tuple[Outcome, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected, models = reference
    caplog.set_level(logging.WARNING, logger="tradebrain")
    with chaos_run(tmp_path, models=models) as run:
        for k in range(CANDLES // 3):
            run.close_candle(k)
        run.ws.go_down()  # REST must carry every candle now
        klines = len(run.rest.requests_to("/api/v3/klines"))
        for n in range(klines + 1, klines + 200, 3):  # a burst of failures, then 429s
            run.rest.fail("/api/v3/klines", 503 if n < klines + 100 else 429, on_request=n)
        for k in range(CANDLES // 3, 2 * CANDLES // 3):
            run.close_candle(k)
        run.ws.come_up()
        for k in range(2 * CANDLES // 3, CANDLES):
            run.close_candle(k)
        _same_as_reference(run, expected)
        status = run.feed.status()
        assert status["rest_candles"] >= CANDLES // 3
        assert run.metric("tradebrain_feed_events_total", event="rest_failure") >= 1
    assert "REST backfill of BTC/USDT failed" in caplog.text


def test_messages_sent_twice_are_dropped_as_duplicates(
    reference: tuple[Outcome, Path], tmp_path: Path
) -> None:
    expected, models = reference
    with chaos_run(tmp_path, models=models) as run:
        run.ws.chaos.duplicate = True
        for k in range(CANDLES):
            run.close_candle(k)
        _same_as_reference(run, expected)
        assert run.feed.status()["duplicates"] >= CANDLES - 1
        assert run.metric("tradebrain_feed_events_total", event="duplicate") >= CANDLES - 1


def test_messages_out_of_order_and_late_beyond_the_grace_lose_and_double_nothing(
    reference: tuple[Outcome, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected, models = reference
    caplog.set_level(logging.INFO, logger="tradebrain")
    with chaos_run(tmp_path, models=models) as run:
        run.ws.chaos.swap_adjacent = True  # the next candle's first update before this close
        for k in range(CANDLES // 2):
            run.close_candle(k)
            following = START_MS + (k + 1) * STEP_MS
            run.ws.push_kline("BTC/USDT", run.row(following - STEP_MS), closed=False)
        run.ws.chaos.swap_adjacent = False
        run.ws.chaos.delay_s = 1.5  # later than the grace: REST fetches, the copy comes after
        for k in range(CANDLES // 2, CANDLES):
            run.close_candle(k)
        run.ws.chaos.delay_s = 0.0
        _same_as_reference(run, expected)
        assert run.feed.status()["backfilled"] >= 1
        assert run.metric("tradebrain_feed_events_total", event="backfilled") >= 1
    assert "over REST" in caplog.text


def test_a_venue_clock_running_ahead_makes_no_candle_early_late_or_twice(
    reference: tuple[Outcome, Path], tmp_path: Path
) -> None:
    expected, models = reference
    with chaos_run(tmp_path, models=models) as run:
        run.run_ahead(25_000)  # the venue closes each candle 25 s before our clock does
        for k in range(CANDLES):
            run.close_candle(k)
        _same_as_reference(run, expected)
        assert run.feed.status()["websocket_candles"] == CANDLES


def test_a_full_disk_while_writing_state_holds_the_candle_until_space_is_back(
    reference: tuple[Outcome, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected, models = reference
    caplog.set_level(logging.WARNING, logger="tradebrain")
    failures = "tradebrain_state_write_failures_total"
    with chaos_run(tmp_path, models=models) as run:
        for k in range(CANDLES // 3):
            run.close_candle(k)
        store = run.service.store
        full = _fill_the_disk(store)
        held = CANDLES // 3
        while True:  # candles go on until a step needs a page the disk no longer has
            open_ms = START_MS + held * STEP_MS
            run.clock.set(open_ms + STEP_MS + 50)
            run.ws.push_kline("BTC/USDT", run.row(open_ms), closed=True, interval="1m")
            _wait_for(lambda o=open_ms: (run.saved_through() or 0) >= o or run.metric(failures) > 0)
            if run.metric(failures) > 0:
                break
            held += 1
            assert held < CANDLES, "the disk never filled"
        _wait_for(lambda: run.metric(failures) >= 3)  # tried again and again, still held
        assert (run.saved_through() or 0) < START_MS + held * STEP_MS
        assert run.service.phase == "running"
        _free_the_disk(store, full)
        _wait_for(lambda: (run.saved_through() or 0) >= START_MS + held * STEP_MS)
        for k in range(held + 1, CANDLES):
            run.close_candle(k)
        _same_as_reference(run, expected)
        with sqlite3.connect(tmp_path / "state.db") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert "the disk is full" in caplog.text


def _fill_the_disk(store: StateStore) -> Callable[..., None]:
    """Make SQLite itself answer SQLITE_FULL: cap the database at the pages it has now.

    SQLite's ``max_page_count`` is per connection: every new connection gets the cap and the
    pooled ones are closed, so the next write that needs a new page fails as on a full disk.
    """
    engine = store._engine

    def cap(connection: Any, _: Any) -> None:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")

    sa.event.listen(engine, "connect", cap)
    engine.dispose()
    return cap


def _free_the_disk(store: StateStore, cap: Callable[..., None]) -> None:
    sa.event.remove(store._engine, "connect", cap)
    store._engine.dispose()


def _wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)
