"""The trading service in-process: it trades a synthetic tape, records every candle, survives
interruptions exactly, and obeys the operator's pause and emergency stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tradebrain.config import Settings
from tradebrain.exceptions import NotFoundError, UserInputError
from tradebrain.service.feeds import synthetic_feed
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService
from tradebrain.state import StateStore

WARMUP = 20_000
SEED = 12
"""A tape whose first 100 candles after the warm-up hold an entry and a closed trade."""


def _settings(home: Path) -> Settings:
    return Settings.model_validate({"home": home, "models": {"enabled": ["logistic", "lightgbm"]}})


def _service(home: Path, bars: int, state: Path, **options: Any) -> TradingService:
    opts = ServeOptions(warmup=WARMUP, speed=0, state=str(state), **options)
    feed = synthetic_feed(["BTC/USDT"], "1h", seed=SEED, warmup=WARMUP, speed=0, bars=bars)
    return TradingService(opts, _settings(home), feed=feed)


def _run_to_end(service: TradingService, timeout: float = 120.0) -> TradingService:
    service.start()
    deadline = time.monotonic() + timeout
    while service.phase in ("starting", "warming_up", "running"):
        assert time.monotonic() < deadline, "the service did not finish its tape"
        time.sleep(0.02)
    assert service.phase == "finished", service.error
    return service


def _outcome(service: TradingService) -> tuple[list[Any], list[float], int]:
    trades = service.trades(limit=10_000)
    equity = service.equity(limit=100_000)["equity"]
    return trades, equity, service.store.counts("paper")["decisions"]


def test_a_run_records_one_decision_candle_and_equity_point_per_candle(tmp_path: Path) -> None:
    service = _run_to_end(_service(tmp_path, WARMUP + 150, tmp_path / "s.db"))
    counts = service.store.counts("paper")
    assert counts["candles"] == counts["decisions"] == counts["equity"] == 150
    # every closed trade has its own exit fill, and at least one entry fill opened them
    assert counts["fills"] > counts["trades"] > 0
    status = service.ai_status()
    assert status["candles_loaded"] == {"BTC/USDT": WARMUP + 150}
    assert set(status["models"]) == {"logistic", "lightgbm"}
    equity = service.equity()
    assert len(equity["equity"]) == len(equity["buy_and_hold"]) == 150
    assert equity["buy_and_hold"][0] == pytest.approx(10_000.0)
    decision = service.live_decision()
    assert decision is not None and decision["reasons"] and set(decision["votes"]) >= {"logistic"}


def test_an_interrupted_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    whole = _run_to_end(_service(tmp_path / "a", WARMUP + 300, tmp_path / "a.db"))
    expected = _outcome(whole)

    state = tmp_path / "b.db"
    _run_to_end(_service(tmp_path / "b", WARMUP + 120, state))
    resumed = _run_to_end(_service(tmp_path / "b", WARMUP + 300, state))
    assert resumed.runner.restored
    trades, equity, decisions = _outcome(resumed)
    assert decisions == expected[2] == 300
    assert trades == expected[0]
    assert equity == pytest.approx(expected[1], rel=1e-12)


def test_a_crash_before_a_candle_is_committed_loses_nothing_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    whole = _run_to_end(_service(tmp_path / "a", WARMUP + 200, tmp_path / "a.db"))
    expected = _outcome(whole)

    state = tmp_path / "b.db"
    crashing = _service(tmp_path / "b", WARMUP + 200, state)
    record = crashing.store.record_step
    seen = {"steps": 0}

    def record_then_crash(step: Any) -> None:
        seen["steps"] += 1
        if seen["steps"] == 90:
            raise OSError("disk unplugged mid-candle")
        record(step)

    crashing.store.record_step = record_then_crash  # type: ignore[method-assign]
    crashing.start()
    deadline = time.monotonic() + 120
    while crashing.phase != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert "disk unplugged" in (crashing.error or "")
    assert crashing.health()["status"] == "degraded"
    assert StateStore.for_path(state).counts("paper")["candles"] == 89

    resumed = _run_to_end(_service(tmp_path / "b", WARMUP + 200, state))
    trades, equity, decisions = _outcome(resumed)
    assert decisions == expected[2] == 200
    assert trades == expected[0]
    assert equity == pytest.approx(expected[1], rel=1e-12)


def test_a_paused_service_opens_nothing_and_stays_paused_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    service = _service(tmp_path, WARMUP + 100, state)
    assert service.pause()["state"] == "paused"
    _run_to_end(service)
    assert service.store.counts("paper")["fills"] == 0
    denied = [o for o in service.store.orders("paper") if o.status == "denied"]
    assert denied and all(o.reason.startswith("control:") for o in denied)
    again = _service(tmp_path, WARMUP + 150, state)
    assert again.control()["state"] == "paused"
    _run_to_end(again)
    assert again.store.counts("paper")["fills"] == 0
    assert again.resume()["state"] == "running"


def _stop_when_holding(service: TradingService, then: Callable[[], Any]) -> dict[str, Any]:
    """Call ``then`` (on the runner's thread, between two candles) after the first candle
    that ends with a position open and on which the strategy sent no exit of its own; return
    what that candle was."""
    record = service.store.record_step
    seen: dict[str, Any] = {}

    def record_then_check(step: Any) -> None:
        record(step)
        exits = [o for o in step.orders if o.reduce_only and o.tag != "stop"]
        if not seen and step.positions and step.decision and not exits:
            seen["candle"] = step.candle
            seen["position"] = step.positions[0]
            then()

    service.store.record_step = record_then_check  # type: ignore[method-assign]
    return seen


def test_an_emergency_stop_mid_run_closes_the_position_at_the_next_open_and_opens_nothing(
    tmp_path: Path,
) -> None:
    service = _service(tmp_path, WARMUP + 300, tmp_path / "s.db")
    seen = _stop_when_holding(service, service.emergency_stop)
    _run_to_end(service)
    assert seen, f"no candle ended with a position open (seed {SEED} always has one)"
    pulled = seen["candle"].open_time + timedelta(hours=1)  # its close
    closing = [
        t
        for t in service.trades(limit=10_000)
        if t["entry_time"] == seen["position"].opened_at.isoformat()
    ]
    assert [t["exit_reason"] for t in closing] == ["emergency"]
    assert closing[0]["exit_time"] == pulled.isoformat()  # at the next candle's open
    fills = service.store.fills("paper", limit=None)
    assert all(f.timestamp <= pulled for f in fills)  # nothing opened after the stop
    assert service.positions() == []
    assert service.control()["state"] == "emergency_stop"


def test_an_emergency_stop_pulled_while_stopped_closes_the_position_after_a_restart(
    tmp_path: Path,
) -> None:
    state = tmp_path / "s.db"
    first = _service(tmp_path, WARMUP + 300, state)
    seen = _stop_when_holding(first, first._stop.set)  # the run stops holding a position
    first.start()
    deadline = time.monotonic() + 120
    while first.phase in ("starting", "warming_up", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert seen and first.positions(), "the first run must stop holding a position"
    held = first.positions()[0]
    first.emergency_stop()

    second = _run_to_end(_service(tmp_path, WARMUP + 300, state))
    closing = [t for t in second.trades(limit=10_000) if t["entry_time"] == held["opened_at"]]
    assert [t["exit_reason"] for t in closing] == ["emergency"]
    restart_at = seen["candle"].open_time + timedelta(hours=1)
    assert closing[0]["exit_time"] == restart_at.isoformat()  # the first candle after it
    assert second.positions() == []
    assert second.control()["state"] == "emergency_stop"


def test_predictions_name_what_is_wrong(tmp_path: Path) -> None:
    service = _run_to_end(_service(tmp_path, WARMUP + 40, tmp_path / "s.db"))
    assert service.predict("BTC/USDT", "1h")["symbol"] == "BTC/USDT"
    with pytest.raises(NotFoundError, match="not served"):
        service.predict("DOGE/USDT", "1h")
    with pytest.raises(UserInputError, match="1h candles, not 4h"):
        service.predict("BTC/USDT", "4h")
    history = service.feed.history("BTC/USDT", 800, None)
    decision = service.predict("BTC/USDT", "1h", history)
    assert decision["timestamp"] == history["timestamp"][-1].isoformat()
    with pytest.raises(UserInputError, match="send between"):
        service.predict("BTC/USDT", "1h", history.head(10))
    assert service.top_predictions(5)[0]["symbol"] == "BTC/USDT"
