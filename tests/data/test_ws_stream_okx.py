"""The websocket candle stream against a loopback OKX (REST and websocket), spot and swap.

OKX's candles come on its business websocket with the ``confirm`` flag; the stream reads it
(ccxt's rows drop it) and yields a candle as soon as OKX confirms it. The REST side pages
OKX's history, which answers the newest rows of a window and at most a page of them.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fake_exchange import NOW
from fake_okx import FakeOkx, FakeOkxWs, serve, serve_ws

from tradebrain.core.events import CandleClosed
from tradebrain.data.exchanges import RetryPolicy, make_exchange, make_pro_exchange
from tradebrain.data.flow_tape import FlowTape
from tradebrain.data.stream import ExchangeCandleStream
from tradebrain.data.ws_stream import WebsocketCandleStream, confirming_client_class

STEP_MS = 60_000
FIRST_OPEN_MS = int(NOW.timestamp() * 1000) // STEP_MS * STEP_MS

pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.fixture
def okx() -> Iterator[tuple[FakeOkx, FakeOkxWs]]:
    with serve(FakeOkx()) as fake, serve_ws(fake) as ws:
        ws.clock = lambda: fake.now.timestamp()
        yield fake, ws


def _stream(
    fake: FakeOkx, ws: FakeOkxWs, symbol: str, stop: threading.Event, tape: FlowTape | None
) -> WebsocketCandleStream:
    market = "perp" if ":" in symbol else "spot"

    def clock() -> float:
        return fake.now.timestamp()

    rest = ExchangeCandleStream(
        lambda: make_exchange("okx", markets=[market], api_urls=fake.url), [symbol], "1m",
        retry=RetryPolicy(retries=2, base_delay_s=0.01), clock=clock, stop=stop,
    )  # fmt: skip
    return WebsocketCandleStream(
        rest,
        lambda: make_pro_exchange(
            "okx", markets=[market], api_urls=fake.url, ws_urls=ws.url,
            client_class=confirming_client_class("okx"),
        ),
        grace_s=30.0, clock=clock, stop=stop, tape=tape,
        since={symbol: datetime.fromtimestamp((FIRST_OPEN_MS - STEP_MS) / 1000, UTC)},
    )  # fmt: skip


def _run(stream: WebsocketCandleStream) -> queue.Queue[CandleClosed | BaseException]:
    events: queue.Queue[CandleClosed | BaseException] = queue.Queue()

    def pump() -> None:
        try:
            for event in stream:
                events.put(event)
        except BaseException as error:
            events.put(error)

    threading.Thread(target=pump, daemon=True).start()
    return events


def _take(events: queue.Queue[CandleClosed | BaseException]) -> CandleClosed:
    item = events.get(timeout=10)
    if isinstance(item, BaseException):
        raise item
    return item


@pytest.mark.parametrize(
    ("symbol", "inst_id"), [("BTC/USDT", "BTC-USDT"), ("BTC/USDT:USDT", "BTC-USDT-SWAP")]
)
def test_a_candle_okx_confirms_is_yielded_from_the_websocket_and_an_open_one_is_not(
    okx: tuple[FakeOkx, FakeOkxWs], symbol: str, inst_id: str
) -> None:
    fake, ws = okx
    stop = threading.Event()
    stream = _stream(fake, ws, symbol, stop, None)
    events = _run(stream)
    try:
        ws.wait_subscribed("candle1m", inst_id)
        ws.push_candle(inst_id, "1m", FIRST_OPEN_MS, confirm=False)
        with pytest.raises(queue.Empty):
            events.get(timeout=0.4)
        fake.now = datetime.fromtimestamp((FIRST_OPEN_MS + STEP_MS + 50) / 1000, UTC)
        ws.push_candle(inst_id, "1m", FIRST_OPEN_MS, confirm=True)
        event = _take(events)
        status = stream.status()
    finally:
        stop.set()
    assert event.symbol == symbol
    assert int(event.open_time.timestamp() * 1000) == FIRST_OPEN_MS
    (row,) = [r for r in fake.candles(inst_id, "1m", FIRST_OPEN_MS) if r[0] == FIRST_OPEN_MS]
    assert (event.open, event.high, event.low, event.close, event.volume) == tuple(row[1:6])
    assert status["websocket_candles"] == 1 and status["rest_candles"] == 0


def test_the_funding_okx_streams_for_a_swap_settles_on_the_tape(
    okx: tuple[FakeOkx, FakeOkxWs],
) -> None:
    fake, ws = okx
    symbol, inst_id = "BTC/USDT:USDT", "BTC-USDT-SWAP"
    tape = FlowTape([symbol], keep_ms=3_600_000)
    stop = threading.Event()
    stream = _stream(fake, ws, symbol, stop, tape)
    events = _run(stream)
    settles = FIRST_OPEN_MS + 20_000
    try:
        ws.wait_subscribed("funding-rate", inst_id)
        ws.wait_subscribed("trades", inst_id)
        later, last = settles + 8 * 3_600_000, settles + 16 * 3_600_000
        ws.push_funding_rate(inst_id, 0.0004, funding_ms=settles, next_funding_ms=later)
        ws.push_trades(inst_id, [(100.5, 2.0, "buy")], ts_ms=FIRST_OPEN_MS + 1_000)
        ws.push_funding_rate(inst_id, 0.0001, funding_ms=later, next_funding_ms=last)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            counts = tape.counts()
            if counts["funding"] and counts["trades"]:
                break
            time.sleep(0.02)
        fake.now = datetime.fromtimestamp((FIRST_OPEN_MS + STEP_MS + 50) / 1000, UTC)
        ws.push_candle(inst_id, "1m", FIRST_OPEN_MS, confirm=True)
        _take(events)
        trades, _, funding = tape.window(symbol)
    finally:
        stop.set()
    assert funding["funding_rate"].to_list() == [0.0004]
    assert trades["amount"].to_list() == [2.0]


def test_history_pages_through_okx_without_a_hole_when_a_page_holds_fewer_rows_than_asked(
    okx: tuple[FakeOkx, FakeOkxWs],
) -> None:
    fake, _ = okx
    fake.max_candles_per_page = 100  # OKX's history endpoint: newest rows, at most 100

    def advance(seconds: float) -> None:
        fake.now = datetime.fromtimestamp(fake.now.timestamp() + seconds, UTC)

    stream = ExchangeCandleStream(
        lambda: make_exchange("okx", markets=["spot"], api_urls=fake.url), ["BTC/USDT"], "1m",
        retry=RetryPolicy(retries=2, base_delay_s=0.01), clock=lambda: fake.now.timestamp(),
        sleep=advance,
    )  # fmt: skip
    history = stream.history("BTC/USDT", 250)
    opens = [int(t.timestamp() * 1000) for t in history["timestamp"]]
    assert len(opens) == 250
    assert all(b - a == STEP_MS for a, b in itertools.pairwise(opens))
