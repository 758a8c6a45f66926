"""Pause, resume and emergency stop through the API act on a real service while it trades.

Control is kept in the service's state database, so each test runs a service of its own on a
tape long enough to outlast it (it is stopped at teardown).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import NewService, client_of
from real_service import RUN, SYMBOLS, decisions_made, start_trading, wait_for

from tradebrain.api.schemas import Control
from tradebrain.service.service import TradingService

PRODUCES = {
    "pause": ("paused", "paused by the operator"),
    "resume": ("running", "resumed by the operator"),
    "emergency_stop": ("emergency_stop", "emergency stop pulled by the operator"),
}

LONG_TAPE = 2000  # candles: minutes at these speeds, far more than a test needs


def _after_the_next_candle(service: TradingService) -> None:
    """Wait until the runner has stepped every symbol of one more candle."""
    before = decisions_made(service)
    wait_for(
        lambda: (made := decisions_made(service)) > before and made % len(SYMBOLS) == 0,
        "the next candle",
    )


def _opened(position: dict[str, Any]) -> tuple[str, str]:
    """Return what names a position's trade once it closes: its symbol and entry time."""
    return position["symbol"], position["opened_at"]


def test_pause_stops_new_positions_and_resume_trades_again(new_service: NewService) -> None:
    service = start_trading(new_service(candles=LONG_TAPE, speed=20))
    with client_of(service) as client:
        paused = client.post("/api/control/pause").json()
        assert paused["state"] == "paused" and paused["reason"] == "paused by the operator"
        assert service.control()["state"] == "paused"
        assert client.get("/api/ai/status").json()["control"]["state"] == "paused"
        # The pause gates new orders only: an entry sent just before it fills at the next open.
        _after_the_next_candle(service)
        held = {p["symbol"]: p["opened_at"] for p in client.get("/api/positions").json()}

        wait_for(
            lambda: any(o.reason.startswith("control:") for o in service.store.orders(RUN)),
            "an entry denied by the pause",
        )
        for position in client.get("/api/positions").json():
            assert held.get(position["symbol"]) == position["opened_at"]  # none opened

        fills = service.store.counts(RUN)["fills"]
        resumed = client.post("/api/control/resume").json()
        assert resumed["state"] == "running" and resumed["reason"] == "resumed by the operator"
        assert service.control()["state"] == "running"
        wait_for(lambda: service.store.counts(RUN)["fills"] > fills, "a fill after resuming")


def test_emergency_stop_closes_every_position_at_the_next_candle(new_service: NewService) -> None:
    service = start_trading(new_service(candles=LONG_TAPE, speed=5))
    with client_of(service) as client:

        def holding() -> list[dict[str, Any]]:
            """Positions held just after a candle: early in the 200 ms before the next one."""
            _after_the_next_candle(service)
            return client.get("/api/positions").json()  # type: ignore[no-any-return]

        held = wait_for(holding, "a position to close")
        stopped = client.post("/api/control/emergency_stop").json()
        assert stopped["state"] == "emergency_stop"
        assert stopped["reason"] == "emergency stop pulled by the operator"
        # The newest candle each engine had when the stop took effect (an exit the strategy
        # sent on it or before may fill first; one sent later means the stop did nothing).
        with service._lock:
            reached = {s: r.engine.last_candle.close_time for s, r in service.runner.runs.items()}

        wait_for(lambda: client.get("/api/positions").json() == [], "the positions to close")
        trades = client.get("/api/trades", params={"limit": 20}).json()
        orders = service.store.orders(RUN, limit=None)
        for position in held:
            symbol = position["symbol"]
            closing = [t for t in trades if (t["symbol"], t["entry_time"]) == _opened(position)]
            own_exit_first = any(
                o.symbol == symbol and o.tag == "exit" and o.created_at <= reached[symbol]
                for o in orders
            )
            allowed = (["emergency"], ["exit"]) if own_exit_first else (["emergency"],)
            assert [t["exit_reason"] for t in closing] in allowed, (position, closing)

        for _ in range(3):
            _after_the_next_candle(service)
            assert client.get("/api/positions").json() == []
        assert client.get("/api/ai/status").json()["control"]["state"] == "emergency_stop"
        assert client.post("/api/control/resume").json()["state"] == "running"


def test_each_of_50_parallel_control_calls_answers_with_the_state_it_produced(
    unstarted_service: TradingService,
) -> None:
    calls = [list(PRODUCES)[i % 3] for i in range(50)]
    with client_of(unstarted_service) as client, ThreadPoolExecutor(50) as pool:
        for _ in range(4):  # a few rounds: a race shows in most of them
            answers = list(pool.map(lambda call: client.post(f"/api/control/{call}"), calls))
            for call, answer in zip(calls, answers, strict=True):
                assert answer.status_code == 200, answer.text
                assert (answer.json()["state"], answer.json()["reason"]) == PRODUCES[call]
    last = max((answer.json() for answer in answers), key=lambda body: body["since"])
    stored = Control.model_validate(unstarted_service.control())
    assert stored == Control.model_validate(last)  # the stored state is the last call's


def test_a_control_answer_is_the_calls_own_switch_even_if_another_lands_right_after(
    unstarted_service: TradingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = unstarted_service.store
    # Another caller's pause lands between this call's switch and any later read.
    monkeypatch.setattr(store, "control", lambda run: {"state": "paused", "reason": "other"})
    answer = unstarted_service.emergency_stop()
    assert (answer["state"], answer["reason"]) == PRODUCES["emergency_stop"]
