"""Tests of the ccxt downloader against a fake Binance on 127.0.0.1; no real exchange is used."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ccxt
import polars as pl
import pytest
from fake_exchange import LISTED, NOW, TRADE_EVERY_MS, FakeBinance

from tradebrain.data import exchanges
from tradebrain.data.download import DownloadRequest, download
from tradebrain.data.exchanges import RetryPolicy, make_exchange
from tradebrain.data.schemas import Kind
from tradebrain.data.store import DatasetKey, ParquetStore, WriteResult
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import DataValidationError, ExchangeUnavailableError, UserInputError

pytestmark = pytest.mark.usefixtures("loopback_only")

FAST_RETRY = RetryPolicy(retries=3, base_delay_s=0.01, max_delay_s=0.05)
KLINES = "/api/v3/klines"
BTC_1M = DatasetKey.of("BTC/USDT", "1m", exchange="binance")
MINUTE_MS = 60_000


@pytest.fixture
def store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "store")


@pytest.fixture
def exchange(fake_binance: FakeBinance) -> ccxt.Exchange:
    return make_exchange(
        "binance", markets=("spot", "perp"), api_urls=fake_binance.url, rate_limit_ms=1
    )


def run(
    exchange: ccxt.Exchange,
    store: ParquetStore,
    *,
    timeframes: tuple[str, ...] = ("1m",),
    now: datetime = NOW,
    **options: Any,
) -> list[WriteResult]:
    """Download BTC/USDT from the fake's listing with fast retries, at the fake's clock."""
    request = DownloadRequest("binance", ["BTC/USDT"], timeframes, LISTED, **options)
    return download(request, store, exchange=exchange, retry=FAST_RETRY, clock=lambda: now)


def closed_candles(fake: FakeBinance, timeframe: str, now: datetime = NOW) -> pl.DataFrame:
    """Return the candles the fake serves that have closed by ``now``, as the store holds them."""
    step_ms = timeframe_seconds(timeframe) * 1000
    rows = [row for row in fake.candles("BTCUSDT", timeframe) if row[0] + step_ms <= ms(now)]
    frame = pl.DataFrame(
        rows, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
    )
    return frame.with_columns(
        pl.col("timestamp").cast(pl.Datetime("ms", "UTC")).cast(pl.Datetime("us", "UTC")),
        pl.exclude("timestamp").cast(pl.Float64),
    )


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_download_pages_through_history_and_stores_exactly_the_served_candles(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    [result] = run(exchange, store)

    stored = store.read(BTC_1M)
    assert stored.equals(closed_candles(fake_binance, "1m"))
    assert stored.height == 330 == result.rows_added
    assert len(fake_binance.requests_to(KLINES)) == 4  # 100 candles a page


def test_download_survives_one_429_and_one_500_along_the_way(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    fake_binance.fail(KLINES, 429, on_request=2)
    fake_binance.fail(KLINES, 500, on_request=4)

    run(exchange, store)

    assert store.read(BTC_1M).equals(closed_candles(fake_binance, "1m"))
    asked = [int(params["startTime"]) for params in fake_binance.requests_to(KLINES)]
    first, second, third = (ms(LISTED) + page * 100 * MINUTE_MS for page in range(3))
    assert asked[:5] == [first, second, second, third, third]  # each failed page asked again
    assert len(asked) == 6


def test_download_resumes_from_the_last_stored_candle(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    run(exchange, store, until=LISTED + timedelta(hours=2))
    assert store.last_timestamp(BTC_1M) == LISTED + timedelta(minutes=119)
    fake_binance.requests.clear()

    [result] = run(exchange, store)

    asked = [int(params["startTime"]) for params in fake_binance.requests_to(KLINES)]
    assert asked[0] == ms(LISTED + timedelta(minutes=120))
    assert result.rows_added == 330 - 120
    assert store.read(BTC_1M).equals(closed_candles(fake_binance, "1m"))


def test_download_fetches_earlier_history_when_since_moves_back(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    late = DownloadRequest("binance", ["BTC/USDT"], ["1m"], LISTED + timedelta(hours=4))
    download(late, store, exchange=exchange, retry=FAST_RETRY, clock=lambda: NOW)

    [result] = run(exchange, store)

    assert result.rows_added == 240
    assert store.read(BTC_1M).equals(closed_candles(fake_binance, "1m"))


def test_download_drops_the_candle_that_has_not_closed_yet(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    run(exchange, store, timeframes=("1h",))

    hourly = DatasetKey.of("BTC/USDT", "1h", exchange="binance")
    assert fake_binance.candles("BTCUSDT", "1h")[-1][0] == ms(LISTED + timedelta(hours=5))
    assert store.last_timestamp(hourly) == LISTED + timedelta(hours=4)
    assert store.read(hourly).equals(closed_candles(fake_binance, "1h"))


def test_download_keeps_gaps_the_exchange_really_has(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    gap = {ms(LISTED) + minute * MINUTE_MS for minute in range(95, 110)}
    fake_binance.missing |= gap

    run(exchange, store)

    assert store.read(BTC_1M).equals(closed_candles(fake_binance, "1m"))
    assert store.info(BTC_1M).gaps == 1


def test_download_refuses_candles_whose_high_is_below_their_low(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    fake_binance.inverted.add(ms(LISTED) + 150 * MINUTE_MS)

    with pytest.raises(
        DataValidationError, match=r"(?s)binance BTC/USDT 1m candles: .*high_below_body"
    ):
        run(exchange, store)

    assert store.read(BTC_1M).height == 100  # the page before the broken one is kept


def test_download_gives_up_after_the_last_retry_and_leaves_the_store_unchanged(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    run(exchange, store, until=LISTED + timedelta(hours=2))
    before = store.path(BTC_1M).read_bytes()
    fake_binance.break_down(KLINES, 503)
    fake_binance.requests.clear()

    with pytest.raises(ExchangeUnavailableError) as raised:
        run(exchange, store)

    message = str(raised.value)
    for words in ("binance", "BTC/USDT 1m candles", "after 4 attempts", "503", "run the same"):
        assert words in message
    assert "nothing was written" in message
    assert len(fake_binance.requests_to(KLINES)) == FAST_RETRY.retries + 1
    assert store.path(BTC_1M).read_bytes() == before


def test_download_keeps_the_pages_it_had_when_the_exchange_fails_midway(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    for request_number in range(3, 3 + FAST_RETRY.retries + 1):
        fake_binance.fail(KLINES, 503, on_request=request_number)

    with pytest.raises(ExchangeUnavailableError, match="kept 200 new rows"):
        run(exchange, store)
    assert store.last_timestamp(BTC_1M) == LISTED + timedelta(minutes=199)

    run(exchange, store)
    assert store.read(BTC_1M).equals(closed_candles(fake_binance, "1m"))


def test_unreachable_exchange_fails_at_once_without_backing_off_and_writes_nothing(
    loopback_only: None, store: ParquetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed_port = free_port()
    unreachable = make_exchange("binance", api_urls=f"http://127.0.0.1:{closed_port}")
    request = DownloadRequest("binance", ["BTC/USDT"], ["1h"], LISTED)
    backoffs: list[float] = []  # counted, not timed: a loaded machine is slow, not wrong
    monkeypatch.setattr(exchanges.time, "sleep", backoffs.append)

    with pytest.raises(ExchangeUnavailableError) as raised:
        download(request, store, exchange=unreachable)  # the default, patient retry policy

    assert backoffs == []  # the patient policy would wait minutes in all
    message = str(raised.value)
    assert f"cannot reach binance at http://127.0.0.1:{closed_port}/api/v3/" in message
    assert "check your network or proxy; nothing was written" in message
    assert not store.root.exists() or not any(store.root.rglob("*"))


def test_download_names_the_nearest_market_when_the_symbol_is_unknown(
    exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    request = DownloadRequest("binance", ["BTC/USDTT"], ["1h"], LISTED)

    with pytest.raises(UserInputError, match=r"lists no market BTC/USDTT; did you mean BTC/USDT"):
        download(request, store, exchange=exchange, retry=FAST_RETRY, clock=lambda: NOW)


def test_download_reports_progress_towards_the_expected_total(
    exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    seen: list[tuple[str, int, int | None]] = []
    request = DownloadRequest("binance", ["BTC/USDT"], ["1m"], LISTED)

    def report(dataset: str, rows: int, expected: int | None) -> None:
        seen.append((dataset, rows, expected))

    download(
        request, store, exchange=exchange, retry=FAST_RETRY, on_progress=report, clock=lambda: NOW
    )

    name = BTC_1M.name
    assert seen == [
        (name, 0, 330),
        (name, 100, 330),
        (name, 200, 330),
        (name, 300, 330),
        (name, 330, 330),
    ]


def test_perpetual_candles_come_from_the_futures_api_and_go_to_the_perp_market(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    run(exchange, store, timeframes=("1h",), market="perp")

    perp = DatasetKey.of("BTC/USDT:USDT", "1h", exchange="binance")
    assert perp.market == "perp"
    assert store.read(perp).equals(closed_candles(fake_binance, "1h"))
    assert fake_binance.requests_to("/fapi/v1/klines") and not fake_binance.requests_to(KLINES)


def test_download_starts_at_the_listing_when_since_is_earlier(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    long_ago = LISTED - timedelta(days=400)
    request = DownloadRequest("binance", ["BTC/USDT"], ["1h"], long_ago, market="perp")

    download(request, store, exchange=exchange, retry=FAST_RETRY, clock=lambda: NOW)

    first_asked = fake_binance.requests_to("/fapi/v1/klines")[0]
    assert int(first_asked["startTime"]) == ms(LISTED)  # the perpetual's onboardDate


def test_funding_rates_are_stored_every_eight_hours(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    later = LISTED + timedelta(days=3, hours=1)
    fake_binance.now = later

    run(exchange, store, timeframes=(), funding=True, now=later)

    funding = store.read(DatasetKey.of("BTC/USDT:USDT", "8h", Kind.FUNDING, "binance"))
    expected = fake_binance.funding_rates("BTCUSDT", 0, ms(later))
    assert funding["timestamp"].to_list() == [
        datetime.fromtimestamp(rate["fundingTime"] / 1000, UTC) for rate in expected
    ]
    assert funding["funding_rate"].to_list() == [float(rate["fundingRate"]) for rate in expected]
    assert len(expected) == 10


def test_trades_are_stored_across_the_hourly_windows_binance_serves(
    fake_binance: FakeBinance, exchange: ccxt.Exchange, store: ParquetStore
) -> None:
    run(exchange, store, timeframes=(), trades=True)

    trades = store.read(DatasetKey.of("BTC/USDT", None, Kind.TRADES, "binance"))
    served = fake_binance.trades(ms(LISTED), ms(NOW))
    assert trades["id"].to_list() == [str(trade["a"]) for trade in served]
    assert trades["price"].to_list() == [float(trade["p"]) for trade in served]
    assert trades["side"].to_list() == ["sell" if trade["m"] else "buy" for trade in served]
    assert len(served) == (ms(NOW) - ms(LISTED)) // TRADE_EVERY_MS + 1


def test_retry_waits_double_each_time_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=6, base_delay_s=1.0, max_delay_s=10.0)

    assert [policy.delay_s(retry) for retry in range(6)] == [1, 2, 4, 8, 10, 10]


@pytest.mark.parametrize("name", ["binance", "okx"])
def test_make_exchange_sends_every_request_to_the_given_base_url(name: str) -> None:
    exchange = make_exchange(name, api_urls="http://127.0.0.1:9")

    urls = exchange.urls["api"]
    flat = list(urls.values()) if isinstance(urls, dict) else [urls]
    assert flat and all(url.startswith("http://127.0.0.1:9") for url in flat)
    assert exchange.enableRateLimit
    assert exchange.options["fetchMarkets"]["types"] == ["spot"]


def test_make_exchange_names_close_matches_for_an_unknown_exchange() -> None:
    with pytest.raises(UserInputError, match="did you mean binance"):
        make_exchange("binanse")


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
