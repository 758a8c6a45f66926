"""Drive the running service through loopback Binance servers, with faults injected.

Shared by the chaos tests (``test_chaos.py``) and the chaos table
(``benchmarks/bench_chaos.py``). A :class:`ChaosRun` is the real
:class:`~tradebrain.service.service.TradingService` in paper mode, on its own thread, fed by
the websocket exchange feed (ccxt.pro against ``fake_ws_binance``, REST against
``fake_exchange``). The venue's clock flows in real time from points the driver sets, so
the stream's grace periods and REST backoffs elapse as they would live, only the minutes
between candles are skipped. The driver closes one candle at a time: it moves the clock just
past the close, the venue pushes the kline with its closed flag, and the driver waits until
the service has saved the candle (by websocket, or by REST when the websocket could not).

:func:`outcome` reads what the service saved: candles, decisions and orders, to compare
with a run without faults on the same candles.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fake_exchange import FakeBinance, serve
from fake_ws_binance import FakeBinanceWs, serve_ws

from tradebrain.config import Settings
from tradebrain.data.exchanges import RetryPolicy
from tradebrain.service.exchange_feed import ExchangeFeed
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService
from tradebrain.state import StateStore

SYMBOL = "BTC/USDT"
TIMEFRAME = "1m"
STEP_MS = 60_000
START = datetime(2024, 1, 3, 12, 0, tzinfo=UTC)  # 3,600 one-minute candles of history before
START_MS = int(START.timestamp() * 1000)
WARMUP = 3_000
GRACE_S = 1.0


class VenueClock:
    """Epoch seconds that flow in real time from the last point :meth:`set` put them at."""

    def __init__(self, at_ms: int) -> None:
        self._lock = threading.Lock()
        self.set(at_ms)

    def set(self, at_ms: int) -> None:
        with self._lock:
            self._base_s = at_ms / 1000
            self._anchor = time.monotonic()

    def __call__(self) -> float:
        with self._lock:
            return self._base_s + (time.monotonic() - self._anchor)


@dataclass
class ChaosRun:
    """A running service and the venue it listens to."""

    service: TradingService
    rest: FakeBinance
    ws: FakeBinanceWs
    clock: VenueClock
    feed: ExchangeFeed
    ahead: list[int]  # how far the venue's clock runs ahead of ours, ms (one item)
    closed: list[int] = field(default_factory=list)

    def row(self, open_ms: int) -> list[float]:
        (row,) = [r for r in self.rest.candles("BTCUSDT", TIMEFRAME, open_ms) if r[0] == open_ms]
        return row

    def saved_through(self) -> int | None:
        """The open time (ms) of the newest candle the service saved."""
        last = self.service.store.last_candle(self.service.options.run, SYMBOL, TIMEFRAME)
        return None if last is None else int(last.open_time.timestamp() * 1000)

    def close_candle(self, k: int, *, timeout_s: float = 20.0) -> None:
        """Close candle ``k`` after the start; wait until the service saved it."""
        open_ms = START_MS + k * STEP_MS
        self.clock.set(open_ms + STEP_MS + 50 - self.ahead[0])
        self.ws.push_kline(SYMBOL, self.row(open_ms), closed=True, interval=TIMEFRAME)
        deadline = time.monotonic() + timeout_s
        while (self.saved_through() or 0) < open_ms:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the service did not save candle {k} within {timeout_s} s; "
                    f"feed {self.feed.status()}, phase {self.service.phase}, "
                    f"error {self.service.error}"
                )
            if self.service.phase == "failed":
                raise AssertionError(f"the service failed: {self.service.error}")
            time.sleep(0.01)
        self.closed.append(open_ms)

    def run_ahead(self, ms: int) -> None:
        """Make the venue's clock (its event times and its REST) run ``ms`` ahead of ours."""
        self.ahead[0] = ms
        self.ws.chaos.clock_ahead_ms = ms

    def metric(self, name: str, **labels: str) -> float:
        """The current value of a Prometheus sample of the service (0 when absent)."""
        value = self.service.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else float(value)


@contextmanager
def chaos_run(home: Path, *, models: Path | None = None) -> Iterator[ChaosRun]:
    """Start the fakes and the service (paper, websocket feed); stop them afterwards."""
    with serve(FakeBinance(now=START)) as rest, serve_ws(rest) as ws:
        clock = VenueClock(START_MS)
        ticking = threading.Event()
        ahead = [0]

        def tick() -> None:  # the venue's REST clock: ours, plus how far it runs ahead
            while not ticking.wait(0.002):
                rest.now = datetime.fromtimestamp(clock() + ahead[0] / 1000, UTC)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        ws.clock = clock
        feed = ExchangeFeed(
            "binance", (SYMBOL,), TIMEFRAME, api_url=rest.url, ws_url=ws.ws_urls(),
            stream="websocket", clock=clock, poll_interval=0.2, grace_s=GRACE_S,
            retry=RetryPolicy(retries=3, base_delay_s=0.05, max_delay_s=0.4),
        )  # fmt: skip
        settings = Settings.model_validate(
            {"home": home, "models": {"enabled": ["logistic", "lightgbm"]}}
        )
        options = ServeOptions(
            feed="exchange:binance", symbols=(SYMBOL,), timeframe=TIMEFRAME, warmup=WARMUP,
            state=str(home / "state.db"), models=models,
        )  # fmt: skip
        service = TradingService(options, settings, feed=feed)
        service.start()
        try:
            if not service.wait_ready(120):
                raise AssertionError(f"the service did not start: {service.error}")
            ws.wait_subscribed("btcusdt@kline_1m", market="spot")
            yield ChaosRun(service, rest, ws, clock, feed, ahead)
        finally:
            service.stop()
            ticking.set()
            ticker.join(timeout=5)


@dataclass(frozen=True)
class Outcome:
    """What a run saved: candles, decisions and orders, comparable across runs."""

    candles: tuple[tuple[Any, ...], ...]
    decisions: tuple[tuple[Any, ...], ...]
    orders: tuple[tuple[Any, ...], ...]
    order_ids: tuple[str, ...]


def _decision_key(decision: dict[str, Any]) -> tuple[Any, ...]:
    """What a decision decided (not how long it took)."""
    target = decision.get("target_position")
    return (
        decision["timestamp"], decision["symbol"], decision["action"],
        None if target is None else round(float(target), 12),
    )  # fmt: skip


def outcome(run: ChaosRun) -> Outcome:
    """Read the candles, decisions and orders ``run`` saved."""
    store, name = run.service.store, run.service.options.run
    candles = store.candles(name, SYMBOL, TIMEFRAME)
    decisions = store.decisions(name, limit=None)
    orders = store.orders(name, limit=None)
    return Outcome(
        candles=tuple(candles.iter_rows()),
        decisions=tuple(sorted(_decision_key(d) for d in decisions)),
        orders=tuple(
            sorted((o.client_id, o.side, round(o.quantity, 12), o.status) for o in orders)
        ),
        order_ids=tuple(o.client_id for o in orders),
    )


# --- the faults: each drives ``candles`` candles through the service with one kind of fault ---


def drops(run: ChaosRun, candles: int) -> None:
    """The stream drops every 0.3 s (every socket aborted, no close frame)."""
    run.ws.drop_every(0.3)
    for k in range(candles):
        run.close_candle(k)
    run.ws.drop_every(None)


def rest_errors(run: ChaosRun, candles: int) -> None:
    """The websocket is down for a third of the candles; REST answers bursts of 503, then 429."""
    for k in range(candles // 3):
        run.close_candle(k)
    run.ws.go_down()  # REST must carry every candle now
    klines = len(run.rest.requests_to("/api/v3/klines"))
    for n in range(klines + 1, klines + 200, 3):  # a burst of failures, then 429s
        run.rest.fail("/api/v3/klines", 503 if n < klines + 100 else 429, on_request=n)
    for k in range(candles // 3, 2 * candles // 3):
        run.close_candle(k)
    run.ws.come_up()
    for k in range(2 * candles // 3, candles):
        run.close_candle(k)


def duplicates(run: ChaosRun, candles: int) -> None:
    """Every message is sent twice."""
    run.ws.chaos.duplicate = True
    for k in range(candles):
        run.close_candle(k)
    run.ws.chaos.duplicate = False


def disorder(run: ChaosRun, candles: int) -> None:
    """Half the candles: the next candle's first update comes before this one's close; the other
    half: every message 1.5 s late, beyond the grace (REST fetches, the late copy follows)."""
    run.ws.chaos.swap_adjacent = True
    for k in range(candles // 2):
        run.close_candle(k)
        run.ws.push_kline(SYMBOL, run.row(START_MS + (k + 1) * STEP_MS), closed=False)
    run.ws.chaos.swap_adjacent = False
    run.ws.chaos.delay_s = 1.5
    for k in range(candles // 2, candles):
        run.close_candle(k)
    run.ws.chaos.delay_s = 0.0


def clock_ahead(run: ChaosRun, candles: int) -> None:
    """The venue's clock (event times, its REST) runs 25 s ahead: it closes candles early."""
    run.run_ahead(25_000)
    for k in range(candles):
        run.close_candle(k)


FAILURES = "tradebrain_state_write_failures_total"


def full_disk(run: ChaosRun, candles: int) -> int:
    """The state database's disk fills a third of the way in: SQLite answers SQLITE_FULL
    (its own ``max_page_count`` capped at the pages it has). Candles go on until a step needs
    a page; that step is held while it is tried again and again; then space comes back.
    Returns the candle that was held."""
    for k in range(candles // 3):
        run.close_candle(k)
    store = run.service.store
    cap = _fill_the_disk(store)
    held = candles // 3
    while True:
        open_ms = START_MS + held * STEP_MS
        run.clock.set(open_ms + STEP_MS + 50)
        run.ws.push_kline(SYMBOL, run.row(open_ms), closed=True, interval=TIMEFRAME)
        _wait_for(lambda o=open_ms: (run.saved_through() or 0) >= o or run.metric(FAILURES) > 0)
        if run.metric(FAILURES) > 0:
            break
        held += 1
        if held >= candles:
            raise AssertionError("the disk never filled")
    _wait_for(lambda: run.metric(FAILURES) >= 3)  # tried again and again, still held
    if (run.saved_through() or 0) >= START_MS + held * STEP_MS:
        raise AssertionError("a step was saved while the disk was full")
    if run.service.phase != "running":
        raise AssertionError(f"the service is {run.service.phase} while the disk is full")
    _free_the_disk(store, cap)
    _wait_for(lambda: (run.saved_through() or 0) >= START_MS + held * STEP_MS)
    for k in range(held + 1, candles):
        run.close_candle(k)
    return held


SCENARIOS = {
    "stream drops": (drops, "every websocket aborted every 0.3 s"),
    "REST 5xx and 429": (rest_errors, "websocket down for 20 candles; REST: 503 bursts, 429s"),
    "duplicates": (duplicates, "every message sent twice"),
    "out of order, late": (disorder, "next candle's update first; then 1.5 s late (> grace)"),
    "venue clock ahead": (clock_ahead, "venue closes candles 25 s before our clock"),
    "disk full": (full_disk, "SQLITE_FULL on the state database until space is back"),
}
"""Name -> (driver, what it injects), for the tests and the chaos table."""


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
