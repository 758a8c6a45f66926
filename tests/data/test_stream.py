"""Tests of the live candle stream against a fake Binance on 127.0.0.1, on a fake clock.

The stream's clock and the fake's clock move together, and only when the stream sleeps, so
hours of candles stream in milliseconds and no real exchange is ever touched.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from fake_exchange import NOW, FakeBinance

from tradebrain.core.events import CandleClosed
from tradebrain.data.exchanges import RetryPolicy, make_exchange
from tradebrain.data.stream import ExchangeCandleStream
from tradebrain.exceptions import DataValidationError, ExchangeUnavailableError, UserInputError

pytestmark = pytest.mark.usefixtures("loopback_only")

KLINES = "/api/v3/klines"
MINUTE = timedelta(minutes=1)
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
FAKE_IDS = {"BTC/USDT": "BTCUSDT", "ETH/USDT": "ETHUSDT"}
# Delays in fake seconds: an outage of four failures lasts 30 + 60 + 120 + 120 s.
SLOW_RETRY = RetryPolicy(retries=3, base_delay_s=30.0, max_delay_s=120.0)


class FakeClock:
    """Epoch seconds that move only when the stream sleeps; the fake exchange follows them."""

    def __init__(self, fake: FakeBinance, start: datetime = NOW) -> None:
        self.fake = fake
        self.now = start.timestamp()
        self.sleeps: list[float] = []
        self.lateness: dict[CandleClosed, float] = {}  # seconds from close to delivery
        fake.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.fake.now = datetime.fromtimestamp(self.now, UTC)


@pytest.fixture
def clock(fake_binance: FakeBinance) -> FakeClock:
    return FakeClock(fake_binance)


def stream_of(
    fake: FakeBinance, clock: FakeClock, symbols: list[str] = SYMBOLS, **options: Any
) -> ExchangeCandleStream:
    """Return a 1m stream of ``symbols`` from the fake, on ``clock``, built by a factory."""
    options.setdefault("retry", SLOW_RETRY)
    return ExchangeCandleStream(
        lambda: make_exchange("binance", api_urls=fake.url, rate_limit_ms=1),
        symbols,
        options.pop("timeframe", "1m"),
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def take(events: Iterator[CandleClosed], count: int, clock: FakeClock) -> list[CandleClosed]:
    """Return the next ``count`` events; fail if one arrives before its close on ``clock``."""
    taken = []
    for _ in range(count):
        event = next(events)
        assert event.close_time.timestamp() <= clock.now, f"{event} arrived before it closed"
        clock.lateness[event] = clock.now - event.close_time.timestamp()
        taken.append(event)
    return taken


def expected(fake: FakeBinance, first_open: datetime, count: int) -> list[CandleClosed]:
    """Return the fake's candles of every symbol opening from ``first_open``, in stream order."""
    rows = {
        symbol: {row[0]: row for row in fake.candles(FAKE_IDS[symbol], "1m")} for symbol in SYMBOLS
    }
    events = []
    opening = first_open
    while len(events) < count:
        for symbol in SYMBOLS:
            row = rows[symbol].get(int(opening.timestamp() * 1000))
            if row is not None:
                events.append(CandleClosed(symbol, opening, opening + MINUTE, *row[1:]))
        opening += MINUTE
    return events[:count]


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def test_stream_yields_closed_candles_of_two_symbols_in_time_then_symbol_order(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    stream = stream_of(fake_binance, clock)

    events = take(iter(stream), 10, clock)

    assert events == expected(fake_binance, minute_of(NOW), 10)
    assert [event.symbol for event in events] == SYMBOLS * 5
    assert clock.now < (minute_of(NOW) + 6 * MINUTE).timestamp()  # each within a poll of close


def test_stream_asks_shortly_after_each_close_and_never_serves_an_open_candle(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    stream = stream_of(fake_binance, clock, poll_interval=2.0)
    events = iter(stream)

    for _ in range(3):
        [event] = take(events, 1, clock)
        assert clock.now == event.close_time.timestamp() + 2.0
    assert max(clock.sleeps) <= 1.0  # sleeps in slices, so `stop` is seen within a second


def test_status_reports_the_last_candle_of_each_symbol_and_the_lag(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    stream = stream_of(fake_binance, clock)
    take(iter(stream), 4, clock)

    status = stream.status()

    last_open = minute_of(NOW) + MINUTE
    assert status["connected"] is True
    assert status["mode"] == "rest"
    assert status["reconnects"] == 0
    assert status["last_error"] is None
    assert status["last_candle"] == {symbol: last_open.isoformat() for symbol in SYMBOLS}
    assert status["lag_s"] == pytest.approx(clock.now - (last_open + MINUTE).timestamp())


@pytest.mark.parametrize(
    ("statuses", "first_failing"),
    [
        pytest.param((500, 429, 500, 503), 1, id="a run of 5xx and 429"),
        pytest.param((500,), 2, id="a failure between the two symbols"),
    ],
)
def test_stream_survives_a_failing_exchange_and_backfills_every_candle_exactly_once(
    fake_binance: FakeBinance, clock: FakeClock, statuses: tuple[int, ...], first_failing: int
) -> None:
    stream = stream_of(fake_binance, clock)
    events = iter(stream)
    before = take(events, 4, clock)
    served = len(fake_binance.requests_to(KLINES))
    for offset, status in enumerate(statuses):
        fake_binance.fail(KLINES, status, on_request=served + first_failing + offset)

    after = take(events, 16, clock)

    assert before + after == expected(fake_binance, minute_of(NOW), 20)
    assert stream.status()["reconnects"] == 1
    # Every retry rebuilt the client through the factory, which loads the markets afresh.
    assert len(fake_binance.requests_to("/api/v3/exchangeInfo")) == 1 + len(statuses)
    assert stream.status()["connected"] is True
    last_error = stream.status()["last_error"]
    assert last_error.startswith(("OperationFailed: binance", "ExchangeNotAvailable: binance"))
    assert "?" not in last_error  # URLs lose their query strings, which may carry signatures
    # The candle asked for when the outage began came after every backoff, the poll included;
    # those that closed during the outage came with it, by backfill.
    outage_s = sum(SLOW_RETRY.delay_s(retry) for retry in range(len(statuses)))
    assert max(clock.lateness[event] for event in after) == pytest.approx(outage_s + 1.0)


def test_since_resumes_after_a_restart_and_backfills_the_candles_missed_while_down(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    first_run = stream_of(fake_binance, clock)
    before = take(iter(first_run), 4, clock)
    last = first_run.status()["last_candle"]
    clock.sleep(600)  # ten minutes down
    restarted_at = clock.now

    second_run = stream_of(
        fake_binance,
        clock,
        since={symbol: datetime.fromisoformat(iso) for symbol, iso in last.items()},
    )
    after = take(iter(second_run), 30, clock)

    assert before + after == expected(fake_binance, minute_of(NOW), 34)
    missed = [event for event in after if event.close_time.timestamp() <= restarted_at]
    assert len(missed) == 2 * 10  # ten minutes of two symbols, delivered at once
    assert clock.now - restarted_at < 10 * 60


def test_a_candle_the_venue_lacks_is_skipped_without_stalling_the_stream(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    gap = minute_of(NOW) + 2 * MINUTE
    fake_binance.missing.add(int(gap.timestamp() * 1000))  # both symbols lack it
    stream = stream_of(fake_binance, clock)

    events = take(iter(stream), 8, clock)

    assert gap not in {event.open_time for event in events}
    assert events == expected(fake_binance, minute_of(NOW), 8)
    assert clock.now < (gap + 5 * MINUTE).timestamp()


def test_broken_candles_from_the_venue_stop_the_stream_with_the_rule_they_break(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    fake_binance.inverted.add(int((minute_of(NOW) + MINUTE).timestamp() * 1000))
    stream = stream_of(fake_binance, clock)
    events = iter(stream)
    take(events, 2, clock)

    with pytest.raises(DataValidationError, match="none of them was streamed"):
        next(events)


def test_stop_ends_a_stream_that_waits_for_the_next_close_promptly(
    fake_binance: FakeBinance,
) -> None:
    stop = threading.Event()
    stream = ExchangeCandleStream(
        make_exchange("binance", api_urls=fake_binance.url, rate_limit_ms=1),
        SYMBOLS,
        "1h",
        retry=SLOW_RETRY,
        stop=stop,
    )  # the real clock and sleep: the next close is up to an hour away
    received: list[CandleClosed] = []
    worker = threading.Thread(target=lambda: received.extend(stream), daemon=True)
    worker.start()
    time.sleep(0.3)

    stop.set()
    worker.join(timeout=30)  # generous for a loaded machine; the close is up to an hour away

    assert not worker.is_alive(), "stop did not end the wait for the next close"
    assert received == []


def test_stop_set_by_the_consumer_ends_iteration_before_the_next_candle(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    stream = stream_of(fake_binance, clock)
    events = iter(stream)
    take(events, 1, clock)  # BTC; ETH of the same minute is already fetched

    stream.close()

    assert list(events) == []


def test_an_unknown_symbol_fails_with_the_symbol_and_a_suggestion(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    stream = stream_of(fake_binance, clock, symbols=["BTC/USDT", "ETH/USD"])

    with pytest.raises(UserInputError, match=r"no market ETH/USD; did you mean ETH/USDT"):
        next(iter(stream))


def test_a_timeframe_the_venue_lacks_fails_with_the_timeframes_it_offers(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    stream = stream_of(fake_binance, clock, timeframe="7m")

    with pytest.raises(UserInputError, match=r"offers no 7m candles; pick one of .*1m, 3m"):
        stream.connect()


def test_an_unreachable_venue_fails_at_start_with_where_it_looked() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    backoffs: list[float] = []  # counted, not timed: a loaded machine is slow, not wrong
    stream = ExchangeCandleStream(
        lambda: make_exchange("binance", api_urls=f"http://127.0.0.1:{port}"),
        SYMBOLS,
        "1m",
        retry=SLOW_RETRY,
        sleep=backoffs.append,
    )

    with pytest.raises(ExchangeUnavailableError, match=rf"cannot reach binance at .*:{port}"):
        next(iter(stream))
    assert backoffs == []  # SLOW_RETRY would back off 30 s and more


def test_websocket_mode_is_refused_as_not_implemented(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    with pytest.raises(UserInputError, match="websocket streaming is not implemented"):
        stream_of(fake_binance, clock, mode="websocket")


def test_history_returns_the_last_closed_candles_across_pages(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    stream = stream_of(fake_binance, clock)

    frame = stream.history("ETH/USDT", 150)  # the fake serves 100 candles a page

    closed = [
        row for row in fake_binance.candles("ETHUSDT", "1m") if row[0] + 60_000 <= clock.now * 1000
    ]
    assert frame.schema == pl.Schema(
        {"timestamp": pl.Datetime("us", "UTC")}
        | {name: pl.Float64() for name in ("open", "high", "low", "close", "volume")}
    )
    assert frame.rows() == [
        (datetime.fromtimestamp(row[0] / 1000, UTC), *row[1:]) for row in closed[-150:]
    ]


def test_iteration_after_history_starts_right_after_the_warm_up_candles(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    stream = stream_of(fake_binance, clock)
    warm_up = {symbol: stream.history(symbol, 20) for symbol in SYMBOLS}
    clock.sleep(150)  # a slow warm-up: two more candles close meanwhile

    events = take(iter(stream), 6, clock)

    first_open = warm_up["BTC/USDT"]["timestamp"][-1] + MINUTE
    assert first_open == minute_of(NOW)
    assert events == expected(fake_binance, first_open, 6)


def test_history_reaches_further_back_over_gaps_to_return_the_bars_asked_for(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    last_open = minute_of(NOW) - MINUTE
    for minutes_back in (3, 4, 40):
        fake_binance.missing.add(int((last_open - minutes_back * MINUTE).timestamp() * 1000))
    stream = stream_of(fake_binance, clock)

    frame = stream.history("BTC/USDT", 120)

    assert frame.height == 120
    assert frame["timestamp"][-1] == last_open
    assert frame["timestamp"].is_sorted()
    assert frame["timestamp"][0] == last_open - 122 * MINUTE


def test_history_until_ends_at_the_candle_a_restarted_service_handled_last(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    last_handled = minute_of(NOW) - 30 * MINUTE
    stream = stream_of(fake_binance, clock)

    frame = stream.history("BTC/USDT", 10, until=last_handled)

    assert frame["timestamp"].to_list() == [last_handled - k * MINUTE for k in range(9, -1, -1)]


def test_history_reaches_back_over_a_gap_longer_than_the_bars_asked_for(
    fake_binance: FakeBinance, clock: FakeClock
) -> None:
    last_open = minute_of(NOW) - MINUTE
    outage = range(5, 60)  # the venue lacks 55 candles, from 5 to 59 minutes back
    fake_binance.missing.update(int((last_open - k * MINUTE).timestamp() * 1000) for k in outage)
    stream = stream_of(fake_binance, clock)

    frame = stream.history("BTC/USDT", 10)

    assert frame["timestamp"].to_list() == [
        last_open - k * MINUTE for k in (64, 63, 62, 61, 60, 4, 3, 2, 1, 0)
    ]


class AheadClock(FakeClock):
    """A local clock 20 s ahead of the venue's."""

    def __call__(self) -> float:
        return self.now + 20.0


def test_a_local_clock_ahead_of_the_venue_never_makes_a_forming_candle_final(
    fake_binance: FakeBinance,
) -> None:
    clock = AheadClock(fake_binance)
    events = iter(stream_of(fake_binance, clock, ["BTC/USDT"]))
    for event in take(events, 5, clock):
        # closed by the venue's own clock when delivered, not only by the local one
        assert event.close_time <= fake_binance.now, event
