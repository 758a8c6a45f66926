"""The websocket candle stream against loopback Binance servers (REST and websocket).

ccxt.pro's real binance client talks to ``fake_ws_binance`` and ccxt's REST client to
``fake_exchange``; the venue's clock is the test's, so every close, gap and fallback happens
when the test says.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from fake_exchange import NOW, FakeBinance, serve
from fake_ws_binance import FakeBinanceWs, serve_ws

from tradebrain.core.events import CandleClosed
from tradebrain.data.exchanges import RetryPolicy, make_exchange, make_pro_exchange
from tradebrain.data.flow_tape import FlowTape
from tradebrain.data.stream import ExchangeCandleStream
from tradebrain.data.ws_stream import WebsocketCandleStream, confirming_client_class

STEP_MS = 60_000
FIRST_OPEN_MS = int(NOW.timestamp() * 1000) // STEP_MS * STEP_MS  # the candle open at NOW


@dataclass
class Venue:
    """The fakes and their shared clock (epoch seconds), moved by the test."""

    rest: FakeBinance
    ws: FakeBinanceWs
    now_s: float = NOW.timestamp()
    pushed: list[int] = field(default_factory=list)

    def clock(self) -> float:
        return self.now_s

    def at_ms(self, moment_ms: int) -> None:
        self.now_s = moment_ms / 1000
        self.rest.now = datetime.fromtimestamp(self.now_s, UTC)

    def row(self, symbol: str, open_ms: int) -> list[float]:
        venue_id = symbol.split(":")[0].replace("/", "")
        (row,) = [r for r in self.rest.candles(venue_id, "1m", open_ms) if r[0] == open_ms]
        return row

    def close(self, symbol: str, open_ms: int, *, push: bool = True, after_ms: int = 50) -> None:
        """Move the clock just past the candle's close; the venue says it closed."""
        self.at_ms(open_ms + STEP_MS + after_ms)
        if push:
            self.ws.push_kline(symbol, self.row(symbol, open_ms), closed=True)


@dataclass
class Running:
    stream: WebsocketCandleStream
    events: queue.Queue[CandleClosed | BaseException]
    stop: threading.Event

    def take(self, count: int, timeout_s: float = 10.0) -> list[CandleClosed]:
        found: list[CandleClosed] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < count:
            item = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(item, BaseException):
                raise item
            found.append(item)
        return found

    def nothing_more(self, wait_s: float = 0.5) -> bool:
        try:
            self.events.get(timeout=wait_s)
        except queue.Empty:
            return True
        return False


@contextmanager
def streaming(
    venue: Venue,
    symbols: tuple[str, ...] = ("BTC/USDT",),
    *,
    grace_s: float = 30.0,
    tape: FlowTape | None = None,
) -> Iterator[Running]:
    stop = threading.Event()
    markets = sorted({"perp" if ":" in s else "spot" for s in symbols})
    rest = ExchangeCandleStream(
        lambda: make_exchange("binance", markets=markets, api_urls=venue.rest.url),
        list(symbols), "1m", retry=RetryPolicy(retries=2, base_delay_s=0.01),
        poll_interval=0.2, clock=venue.clock, stop=stop,
    )  # fmt: skip
    since = {s: datetime.fromtimestamp((FIRST_OPEN_MS - STEP_MS) / 1000, UTC) for s in symbols}
    stream = WebsocketCandleStream(
        rest,
        lambda: make_pro_exchange(
            "binance", markets=markets, api_urls=venue.rest.url, ws_urls=venue.ws.ws_urls(),
            client_class=confirming_client_class("binance"),
        ),
        grace_s=grace_s, retry=RetryPolicy(base_delay_s=0.05, max_delay_s=0.2),
        clock=venue.clock, stop=stop, since=since, tape=tape,
    )  # fmt: skip
    events: queue.Queue[CandleClosed | BaseException] = queue.Queue()

    def pump() -> None:
        try:
            for event in stream:
                events.put(event)
        except BaseException as error:  # the test sees it on its next take
            events.put(error)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        for symbol in symbols:
            market = "perp" if ":" in symbol else "spot"
            stream_id = symbol.split(":")[0].replace("/", "").lower()
            venue.ws.wait_subscribed(f"{stream_id}@kline_1m", market=market)
        yield Running(stream, events, stop)
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the stream did not end after stop"


@pytest.fixture
def venue(loopback_only: None) -> Iterator[Venue]:
    with serve(FakeBinance()) as rest, serve_ws(rest) as ws:
        found = Venue(rest, ws)
        ws.clock = found.clock
        found.at_ms(int(NOW.timestamp() * 1000))
        yield found


def _opens(events: list[CandleClosed]) -> list[int]:
    return [int(e.open_time.timestamp() * 1000) for e in events]


def test_candles_the_venue_closes_are_yielded_once_each_in_order_from_the_websocket(
    venue: Venue,
) -> None:
    with streaming(venue) as running:
        venue.ws.chaos.duplicate = True  # every message twice
        events = []
        for k in range(3):
            open_ms = FIRST_OPEN_MS + k * STEP_MS
            venue.ws.push_kline("BTC/USDT", venue.row("BTC/USDT", open_ms), closed=False)
            venue.close("BTC/USDT", open_ms)
            events += running.take(1)
        assert running.nothing_more()
        status = running.stream.status()
    assert _opens(events) == [FIRST_OPEN_MS + k * STEP_MS for k in range(3)]
    assert [e.close for e in events] == [venue.row("BTC/USDT", o)[4] for o in _opens(events)]
    assert status["mode"] == "websocket" and status["connected"] is True
    assert status["websocket_candles"] == 3 and status["rest_candles"] == 0
    assert status["duplicates"] == 3


def test_a_candle_whose_close_message_was_lost_is_fetched_over_rest_when_a_newer_one_shows(
    venue: Venue,
) -> None:
    with streaming(venue) as running:
        lost, newer = FIRST_OPEN_MS, FIRST_OPEN_MS + STEP_MS
        venue.close("BTC/USDT", lost, push=False)  # the close message never comes
        venue.ws.push_kline("BTC/USDT", venue.row("BTC/USDT", newer), closed=False)
        (event,) = running.take(1)
        venue.close("BTC/USDT", newer)
        (following,) = running.take(1)
        status = running.stream.status()
    assert _opens([event, following]) == [lost, newer]
    assert event.close == venue.row("BTC/USDT", lost)[4]
    assert status["rest_candles"] == 1 and status["websocket_candles"] == 1
    assert status["backfilled"] == 1


def test_a_candle_not_confirmed_within_the_grace_is_fetched_over_rest(venue: Venue) -> None:
    with streaming(venue, grace_s=2.0) as running:
        venue.close("BTC/USDT", FIRST_OPEN_MS, push=False)
        assert running.nothing_more(0.5)  # within the grace: waits for the websocket
        venue.at_ms(FIRST_OPEN_MS + STEP_MS + 2_100)
        (event,) = running.take(1)
    assert _opens([event]) == [FIRST_OPEN_MS]


def test_candles_sent_out_of_order_and_late_are_yielded_in_time_order(venue: Venue) -> None:
    with streaming(venue) as running:
        venue.ws.hold()
        venue.close("BTC/USDT", FIRST_OPEN_MS, push=False)
        venue.rest.now = datetime.fromtimestamp((FIRST_OPEN_MS + 4 * STEP_MS) / 1000, UTC)
        for k in range(4):  # the venue runs ahead: four closes within the grace of the first
            open_ms = FIRST_OPEN_MS + k * STEP_MS
            venue.ws.push_kline("BTC/USDT", venue.row("BTC/USDT", open_ms), closed=True)
        assert running.nothing_more(0.3)
        venue.ws.release(reverse=True)  # newest first
        events = running.take(4)
        status = running.stream.status()
    assert _opens(events) == [FIRST_OPEN_MS + k * STEP_MS for k in range(4)]
    assert status["websocket_candles"] == 4 and status["rest_candles"] == 0


def test_a_venue_clock_running_ahead_makes_no_candle_early_or_twice(venue: Venue) -> None:
    with streaming(venue) as running:
        venue.ws.chaos.clock_ahead_ms = 20_000
        for k in range(3):
            open_ms = FIRST_OPEN_MS + k * STEP_MS
            venue.at_ms(open_ms + STEP_MS - 20_000)  # the local clock: 20 s before the close
            venue.rest.now = datetime.fromtimestamp((open_ms + STEP_MS) / 1000, UTC)
            venue.ws.push_kline("BTC/USDT", venue.row("BTC/USDT", open_ms), closed=True)
        events = running.take(3)
        assert running.nothing_more()
    assert _opens(events) == [FIRST_OPEN_MS + k * STEP_MS for k in range(3)]


def test_a_dropped_websocket_falls_back_to_rest_polling_and_comes_back(venue: Venue) -> None:
    with streaming(venue, grace_s=2.0) as running:
        venue.close("BTC/USDT", FIRST_OPEN_MS)
        running.take(1)
        venue.ws.go_down()  # every socket aborted, new ones refused
        deadline = time.monotonic() + 5
        while running.stream.status()["mode"] != "rest" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running.stream.status()["mode"] == "rest"
        for k in range(1, 4):  # three candles while the websocket is down: REST polls them
            venue.close("BTC/USDT", FIRST_OPEN_MS + k * STEP_MS, push=False, after_ms=300)
            running.take(1)
        venue.ws.come_up()
        reopened = FIRST_OPEN_MS + 4 * STEP_MS
        deadline = time.monotonic() + 10
        while running.stream.status()["mode"] != "websocket" and time.monotonic() < deadline:
            venue.ws.push_kline("BTC/USDT", venue.row("BTC/USDT", reopened), closed=False)
            time.sleep(0.1)
        venue.close("BTC/USDT", reopened)
        (back,) = running.take(1)
        status = running.stream.status()
    assert _opens([back]) == [reopened]
    assert status["mode"] == "websocket"
    assert status["fallbacks"] >= 1 and status["reconnects"] >= 1
    assert status["rest_candles"] == 3 and status["websocket_candles"] == 2
    assert status["last_error"] is not None


def test_two_symbols_come_in_time_order_and_one_waits_for_the_other(venue: Venue) -> None:
    symbols = ("BTC/USDT", "ETH/USDT")
    with streaming(venue, symbols) as running:
        venue.close("ETH/USDT", FIRST_OPEN_MS)
        assert running.nothing_more(0.3)  # BTC's candle of that time is not final yet
        venue.ws.push_kline("BTC/USDT", venue.row("BTC/USDT", FIRST_OPEN_MS), closed=True)
        events = running.take(2)
    assert [(e.symbol, _opens([e])[0]) for e in events] == [
        ("BTC/USDT", FIRST_OPEN_MS), ("ETH/USDT", FIRST_OPEN_MS),
    ]  # fmt: skip


def test_trades_books_and_funding_of_a_perpetual_reach_the_tape_sealed_at_each_close(
    venue: Venue,
) -> None:
    symbol = "BTC/USDT:USDT"
    tape = FlowTape([symbol], keep_ms=3_600_000)
    with streaming(venue, (symbol,), tape=tape) as running:
        for stream_id in ("btcusdt@trade", "btcusdt@markPrice@1s"):
            venue.ws.wait_subscribed(stream_id, market="perp")
        inside = FIRST_OPEN_MS + 10_000
        venue.ws.chaos.duplicate = True
        venue.ws.push_trade(symbol, 100.0, 0.5, side="buy", time_ms=inside)
        venue.ws.push_trade(symbol, 100.5, 0.25, side="sell", time_ms=inside + 1)
        venue.ws.chaos.duplicate = False
        venue.ws.push_mark_price(symbol, 100.2, funding_rate=0.0001, next_funding_ms=inside)
        later = inside + 8 * 3_600_000
        venue.ws.push_mark_price(symbol, 100.3, funding_rate=0.0002, next_funding_ms=later)
        venue.ws.set_book(symbol, [(99.5, 2.0), (99.0, 3.0)], [(100.5, 1.0), (101.0, 4.0)])
        deadline = time.monotonic() + 5
        while tape.counts()["books"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        venue.close(symbol, FIRST_OPEN_MS)
        running.take(1)
        venue.ws.push_trade(symbol, 99.0, 1.0, side="sell", time_ms=inside + 2)  # too late
        time.sleep(0.3)
        trades, book, funding = tape.window(symbol)
        counts = tape.counts()
    assert trades["amount"].to_list() == [0.5, 0.25]
    assert trades["side"].to_list() == ["buy", "sell"]
    assert counts["late_trades"] == 1  # copies: ccxt drops some itself, the tape the rest
    assert set(book["side"]) == {"bid", "ask"} and book["is_snapshot"].all()
    assert funding["funding_rate"].to_list() == [0.0001]  # settled when the next time showed
