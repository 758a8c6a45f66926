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
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_drive import (
    ChaosRun,
    Outcome,
    chaos_run,
    clock_ahead,
    disorder,
    drops,
    duplicates,
    full_disk,
    outcome,
    rest_errors,
)

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
        drops(run, CANDLES)
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
        rest_errors(run, CANDLES)
        _same_as_reference(run, expected)
        status = run.feed.status()
        assert status["rest_candles"] >= CANDLES // 3
        assert run.metric("tradebrain_feed_events_total", event="rest_failure") >= 1
    assert "REST backfill of BTC/USDT failed" in caplog.text


def test_messages_sent_twice_are_dropped_as_duplicates(
    reference: tuple[Outcome, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected, models = reference
    caplog.set_level(logging.INFO, logger="tradebrain")
    with chaos_run(tmp_path, models=models) as run:
        duplicates(run, CANDLES)
        _same_as_reference(run, expected)
        assert run.feed.status()["duplicates"] >= CANDLES - 1
        assert run.metric("tradebrain_feed_events_total", event="duplicate") >= CANDLES - 1
    assert "dropped a copy of the 1m candle" in caplog.text


def test_messages_out_of_order_and_late_beyond_the_grace_lose_and_double_nothing(
    reference: tuple[Outcome, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected, models = reference
    caplog.set_level(logging.INFO, logger="tradebrain")
    with chaos_run(tmp_path, models=models) as run:
        disorder(run, CANDLES)
        _same_as_reference(run, expected)
        assert run.feed.status()["backfilled"] >= 1
        assert run.metric("tradebrain_feed_events_total", event="backfilled") >= 1
    assert "over REST" in caplog.text


def test_a_venue_clock_running_ahead_makes_no_candle_early_late_or_twice(
    reference: tuple[Outcome, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected, models = reference
    caplog.set_level(logging.WARNING, logger="tradebrain")
    with chaos_run(tmp_path, models=models) as run:
        clock_ahead(run, CANDLES)
        _same_as_reference(run, expected)
        assert run.feed.status()["websocket_candles"] == CANDLES
        assert run.metric("tradebrain_feed_events_total", event="venue_clock_ahead") >= 1
    assert "its clock runs ahead of ours" in caplog.text


def test_a_full_disk_while_writing_state_holds_the_candle_until_space_is_back(
    reference: tuple[Outcome, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected, models = reference
    caplog.set_level(logging.WARNING, logger="tradebrain")
    with chaos_run(tmp_path, models=models) as run:
        held = full_disk(run, CANDLES)
        assert CANDLES // 3 <= held < CANDLES
        _same_as_reference(run, expected)
        with sqlite3.connect(tmp_path / "state.db") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert "the disk is full" in caplog.text
