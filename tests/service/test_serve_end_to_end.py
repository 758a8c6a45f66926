"""`tradebrain serve` end to end: a real process, real HTTP, SIGKILL, restart, nothing lost.

The service runs the synthetic feed in accelerated time with a small model set; the test
checks every endpoint and the auth, kills the process with SIGKILL mid-run, starts it again on
the same state database, and checks that positions, trades and decisions survived without
duplicates, that the candles it handled have no hole and no repeat across the restart, and that
it ends exactly where an uninterrupted run of the same tape ends (decisions, trades, equity).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from builders import make_candles

from tradebrain.config import Settings
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService
from tradebrain.state import StateStore

TOKEN = "e2e-secret-token"
HOUR_US = 3_600_000_000
RUN = "paper"
OHLCV = ("open", "high", "low", "close", "volume")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """One `tradebrain serve` process and a client for it."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )

    def start(self) -> None:
        env = {
            **os.environ,
            "TRADEBRAIN_HOME": str(self.home),
            "TRADEBRAIN_API__TOKEN": TOKEN,
            "TRADEBRAIN_MODELS__ENABLED": '["logistic", "lightgbm"]',
            "OMP_NUM_THREADS": "1",
        }
        command = [
            str(Path(sys.executable).with_name("tradebrain")), "serve",
            "--feed", "synthetic", "--symbols", "BTC/USDT", "--timeframe", "1h",
            "--speed", "15", "--warmup", "20000", "--port", str(self.port),
            "--state", str(self.home / "state.db"),
        ]  # fmt: skip
        log = (self.home / f"serve-{time.monotonic_ns()}.log").open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                logs = "\n".join(p.read_text()[-3000:] for p in self.home.glob("serve-*.log"))
                code = self.process.returncode
                pytest.fail(f"serve exited with {code} waiting for {what}:\n{logs}")
            try:
                if check():
                    return
            except (httpx.HTTPError, AssertionError, KeyError):
                pass
            time.sleep(0.25)
        pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path, _free_port())
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()
    server.client.close()


def _rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


def test_serve_trades_answers_every_endpoint_and_survives_sigkill_without_losing_or_repeating(
    served: Served,
) -> None:
    served.start()
    served.wait_for("health", lambda: httpx.get(f"{served.url}/health").status_code == 200)
    served.wait_for(
        "a decision",
        lambda: "action" in served.get("/api/ai/live"),
    )
    served.wait_for("a closed trade", lambda: len(served.get("/api/trades")) >= 1, timeout=240)
    served.wait_for("30 candles", lambda: len(served.get("/api/equity")["equity"]) >= 30)

    # --- every endpoint answers, and only with the token ---------------------------------
    assert httpx.get(f"{served.url}/api/ai/live").status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert httpx.get(f"{served.url}/api/positions", headers=wrong).status_code == 401
    decision = served.get("/api/ai/live")
    for key in ("action", "confidence", "regime", "size", "votes", "filters", "reasons"):
        assert key in decision
    assert set(decision["votes"]) >= {"logistic", "lightgbm"}
    status = served.get("/api/ai/status")
    assert status["sequence_length"] > 0 and status["decisions"] > 0
    assert served.get("/api/ai/learning_status")["retrain_every_bars"] > 0
    models = served.get("/models/list")
    assert {m["id"] for m in models} == {"logistic", "lightgbm"}
    assert served.get("/models/lightgbm/status")["id"] == "lightgbm"
    assert served.client.get("/models/nope/status").status_code == 404
    top = served.get("/predict/top", limit=5)
    assert top and top[0]["symbol"] == "BTC/USDT"
    single = served.client.post("/predict/single", json={"symbol": "BTC/USDT", "timeframe": "1h"})
    assert single.status_code == 200 and single.json()["symbol"] == "BTC/USDT"
    assert served.client.post("/predict/single", json={"symbol": 3}).status_code == 422
    sent = [  # decided in the service's worker process (spawned from the real command)
        {"timestamp": row["timestamp"].isoformat(), **{k: row[k] for k in OHLCV}}
        for row in make_candles(800).iter_rows(named=True)
    ]
    on_candles = {"symbol": "BTC/USDT", "timeframe": "1h", "candles": sent}
    decided = served.client.post("/predict/single", json=on_candles, timeout=120)
    assert decided.status_code == 200, decided.text
    assert decided.json()["timestamp"].startswith(sent[-1]["timestamp"][:19])
    equity = served.get("/api/equity")
    assert len(equity["equity"]) == len(equity["buy_and_hold"]) > 10
    metrics = served.client.get("/metrics")
    assert metrics.status_code == 200 and "tradebrain_decisions" in metrics.text

    # --- SIGKILL in the middle of the run ------------------------------------------------
    trades_before = served.get("/api/trades", limit=1000)
    served.kill()
    db = served.home / "state.db"
    candles_before = _rows(db, "SELECT COUNT(*) FROM tb_candles")[0][0]
    decisions_before = _rows(db, "SELECT COUNT(*) FROM tb_decisions")[0][0]
    positions_before = _rows(db, "SELECT symbol, quantity, entry_price FROM tb_positions")

    served.start()
    served.wait_for("health after restart", lambda: served.get("/health")["status"] == "ok")
    served.wait_for(
        "new candles after restart",
        lambda: _rows(db, "SELECT COUNT(*) FROM tb_candles")[0][0] >= candles_before + 20,
    )
    trades_after = served.get("/api/trades", limit=1000)
    served.kill()

    keys_after = [json.dumps(t, sort_keys=True) for t in trades_after]
    assert len(keys_after) == len(set(keys_after)), "a trade was recorded twice"
    for trade in trades_before:
        assert json.dumps(trade, sort_keys=True) in keys_after, "a trade was lost"
    assert _rows(db, "SELECT COUNT(*) FROM tb_decisions")[0][0] > decisions_before
    if positions_before:  # the restored position either is still open or became a trade
        _symbol, _quantity, entry = positions_before[0]
        still = _rows(db, "SELECT symbol, quantity, entry_price FROM tb_positions")
        closed = [t for t in trades_after if abs(t["entry_price"] - entry) < 1e-9]
        assert still == positions_before or closed

    times = [row[0] for row in _rows(db, "SELECT open_time FROM tb_candles ORDER BY open_time")]
    assert len(times) == len(set(times)), "a candle was handled twice"
    assert all(b - a == HOUR_US for a, b in itertools.pairwise(times)), "a hole"
    duplicates = _rows(
        db, "SELECT symbol, timestamp, COUNT(*) FROM tb_decisions GROUP BY 1, 2 HAVING COUNT(*) > 1"
    )
    assert duplicates == []

    # --- the same tape without the kill ends exactly where the killed run did --------------
    steady = _uninterrupted(served.home, candles=len(times))
    killed = StateStore.for_path(db)
    assert killed.counts(RUN)["candles"] == steady.store.counts(RUN)["candles"] == len(times)
    assert killed.decisions(RUN, limit=None) == steady.store.decisions(RUN, limit=None)
    assert killed.trades(RUN, limit=None) == steady.store.trades(RUN, limit=None)
    assert [(p.timestamp, p.equity, p.cash) for p in killed.equity(RUN)] == [
        (p.timestamp, p.equity, p.cash) for p in steady.store.equity(RUN)
    ]


def _uninterrupted(home: Path, candles: int) -> TradingService:
    """Run the killed service's tape in-process, without a kill, for ``candles`` candles, on
    the models it trained (so the comparison is of the run, not of two trainings)."""
    options = ServeOptions(
        feed="synthetic", symbols=("BTC/USDT",), timeframe="1h", speed=0, warmup=20_000,
        state=str(home / "steady" / "state.db"), models=home / "state-models",
    )  # fmt: skip
    settings = Settings.model_validate(
        {"home": home / "steady", "models": {"enabled": ["logistic", "lightgbm"]}}
    )
    service = TradingService(options, settings)
    record = service.store.record_step

    def record_then_stop_at_the_end(step: Any) -> None:
        record(step)
        if service.store.counts(RUN)["candles"] == candles:
            service._stop.set()  # the feed yields nothing after the candle in hand

    service.store.record_step = record_then_stop_at_the_end  # type: ignore[method-assign]
    service.start()
    deadline = time.monotonic() + 300
    while service.phase in ("starting", "warming_up", "running"):
        assert time.monotonic() < deadline, "the uninterrupted run did not reach its end"
        time.sleep(0.05)
    assert service.phase == "stopped", service.error
    return service
