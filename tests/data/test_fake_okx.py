"""Tests of the loopback OKX (tests/fake_okx.py) with ccxt's real ``okx`` and ``ccxt.pro.okx``.

They prove the fake is faithful enough to build product streams on: tradebrain's REST candle
stream reads its history, and ccxt.pro's watchers receive candles, trades, books, funding and
mark prices from its websocket, through drops, refusals, duplicates, delays and reordering.
Every test runs in a second or less and touches nothing beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import ccxt
import ccxt.pro
import pytest
from fake_exchange import LISTED
from fake_okx import (
    FUNDING_EVERY_MS,
    FakeOkx,
    FakeOkxWs,
    okx_checksum,
    pro_client,
    rest_client,
    serve,
    serve_ws,
)

from tradebrain.data.exchanges import RetryPolicy, make_exchange
from tradebrain.data.stream import ExchangeCandleStream
from tradebrain.exceptions import ExchangeUnavailableError

pytestmark = pytest.mark.usefixtures("loopback_only")

HISTORY = "/api/v5/market/history-candles"
RECENT = "/api/v5/market/candles"
MINUTE_MS = 60_000
QUICK_RETRY = RetryPolicy(retries=2, base_delay_s=0.01)
WAIT_S = 5.0


class ConfirmAwareOkx(ccxt.pro.okx):  # type: ignore[misc]
    """``ccxt.pro.okx`` that keeps OKX's confirm flag, which ccxt's parsed OHLCV row drops.

    OKX sends each candle as ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``;
    ``confirm`` is ``"1"`` once the candle is final. :meth:`handle_ohlcv` records it per
    ``(symbol, timeframe)`` and open time *before* ccxt resolves the watcher, so whoever
    ``watch_ohlcv`` wakes can ask :meth:`is_confirmed` about each row it got.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config or {})
        self.confirmed: dict[tuple[str, str], dict[int, bool]] = {}

    def handle_ohlcv(self, client: Any, message: dict[str, Any]) -> None:
        arg = message.get("arg") or {}
        market = self.safe_market(arg.get("instId"))
        timeframe = self.find_timeframe(str(arg.get("channel", "")).replace("candle", ""))
        flags = self.confirmed.setdefault((market["symbol"], timeframe), {})
        for row in message.get("data") or []:
            flags[int(row[0])] = len(row) > 8 and row[8] == "1"
        super().handle_ohlcv(client, message)

    def is_confirmed(self, symbol: str, timeframe: str, open_ms: int) -> bool:
        """Tell whether OKX marked the candle of ``symbol`` opening at ``open_ms`` final."""
        return self.confirmed.get((symbol, timeframe), {}).get(open_ms, False)


@pytest.fixture
def okx(loopback_only: None) -> Iterator[FakeOkx]:
    """A fake OKX REST API on a free port of 127.0.0.1."""
    with serve(FakeOkx()) as fake:
        yield fake


@pytest.fixture
def okx_ws(okx: FakeOkx) -> Iterator[FakeOkxWs]:
    """The fake OKX's public websocket on another free port of 127.0.0.1."""
    with serve_ws(okx) as ws:
        yield ws


def run(scenario: Coroutine[Any, Any, None]) -> None:
    """Run an async scenario on a fresh event loop, failing it after 10 seconds."""
    asyncio.run(asyncio.wait_for(scenario, 10))


def open_candle_ms(fake: FakeOkx) -> int:
    return fake.now_ms // MINUTE_MS * MINUTE_MS


def stream_history(fake: FakeOkx, market: str, symbol: str, bars: int) -> list[list[float]]:
    """Return ``ExchangeCandleStream.history`` of ``symbol`` as rows, on the fake's clock."""

    def sleep(seconds: float) -> None:  # backoff moves the fake's clock, as in test_stream
        fake.now += timedelta(seconds=seconds)

    stream = ExchangeCandleStream(
        lambda: make_exchange("okx", markets=[market], api_urls=fake.url),
        [symbol],
        "1m",
        retry=QUICK_RETRY,
        clock=lambda: fake.now.timestamp(),
        sleep=sleep,
    )
    frame = stream.history(symbol, bars)
    return [[int(row[0].timestamp() * 1000), *row[1:]] for row in frame.iter_rows()]


# -- REST -------------------------------------------------------------------------------------


def test_tradebrain_history_of_okx_spot_returns_the_fakes_closed_candles(okx: FakeOkx) -> None:
    history = stream_history(okx, "spot", "BTC/USDT", 150)

    assert history == okx.candles("BTC-USDT", "1m")[-151:-1]  # the open candle left out
    assert okx.requests_to("/api/v5/public/instruments") == [{"instType": "SPOT"}]


def test_tradebrain_history_of_an_okx_perpetual_returns_its_candles_in_base_volume(
    okx: FakeOkx,
) -> None:
    history = stream_history(okx, "perp", "BTC/USDT:USDT", 150)

    assert history == okx.candles("BTC-USDT-SWAP", "1m")[-151:-1]
    assert history != okx.candles("BTC-USDT", "1m")[-151:-1]  # swap prices carry a basis
    assert okx.requests_to(HISTORY)[0]["instId"] == "BTC-USDT-SWAP"


def test_history_pages_newest_first_through_okx_with_after_and_before(okx: FakeOkx) -> None:
    okx.now = LISTED + timedelta(hours=12, seconds=20)

    history = stream_history(okx, "spot", "ETH/USDT", 700)

    assert history == okx.candles("ETH-USDT", "1m")[-701:-1]
    pages = okx.requests_to(HISTORY)
    assert len(pages) >= 3
    first = pages[0]
    assert int(first["after"]) - int(first["before"]) == 300 * MINUTE_MS + 1  # ccxt's window
    assert first["limit"] == "300"


def test_okx_rows_carry_the_confirm_flag_zero_only_for_the_candle_open_at_now(
    okx: FakeOkx,
) -> None:
    exchange = rest_client(okx, "spot")

    answer = exchange.publicGetMarketHistoryCandles({"instId": "BTC-USDT", "bar": "1m", "limit": 3})

    rows = answer["data"]
    assert [int(row[0]) for row in rows] == [open_candle_ms(okx) - k * MINUTE_MS for k in range(3)]
    assert [row[8] for row in rows] == ["0", "1", "1"]
    assert len(rows[0]) == 9


def test_a_burst_of_429_is_retried_and_the_history_still_arrives(okx: FakeOkx) -> None:
    okx.throttle(HISTORY, requests=2)

    history = stream_history(okx, "spot", "BTC/USDT", 10)

    assert history == okx.candles("BTC-USDT", "1m")[-11:-1]
    assert len(okx.requests_to(HISTORY)) == 3


def test_a_broken_down_candle_endpoint_fails_history_as_exchange_unavailable(
    okx: FakeOkx,
) -> None:
    okx.break_down(HISTORY, 503)

    with pytest.raises(ExchangeUnavailableError, match="okx kept failing"):
        stream_history(okx, "spot", "BTC/USDT", 10)
    assert len(okx.requests_to(HISTORY)) == 3

    okx.repair(HISTORY)
    assert stream_history(okx, "spot", "BTC/USDT", 10) == okx.candles("BTC-USDT", "1m")[-11:-1]


def test_a_planned_failure_answers_only_the_nth_request(okx: FakeOkx) -> None:
    okx.fail(RECENT, 500, on_request=1)
    exchange = rest_client(okx, "spot")

    with pytest.raises(ccxt.ExchangeNotAvailable):
        exchange.fetch_ohlcv("BTC/USDT", "1m", limit=5)  # no since: ccxt asks /market/candles
    assert len(exchange.fetch_ohlcv("BTC/USDT", "1m", limit=5)) == 5
    assert len(okx.requests_to(RECENT)) == 2


def test_ccxt_parses_trades_book_funding_and_time_of_a_perpetual_from_the_fake(
    okx: FakeOkx,
) -> None:
    exchange = rest_client(okx, "perp")

    trades = exchange.fetch_trades("BTC/USDT:USDT", limit=5)
    book = exchange.fetch_order_book("BTC/USDT:USDT", 5)
    rate = exchange.fetch_funding_rate("BTC/USDT:USDT")
    history = exchange.fetch_funding_rate_history("BTC/USDT:USDT")

    expected = okx.trades("BTC-USDT-SWAP", 0, okx.now_ms)[-5:]
    assert [trade["id"] for trade in trades] == [trade["tradeId"] for trade in expected]
    assert book["bids"][0][0] == okx.book("BTC-USDT-SWAP").levels("bids")[0][0]
    assert len(book["asks"]) == 5
    assert rate["fundingTimestamp"] == int(LISTED.timestamp() * 1000) + FUNDING_EVERY_MS
    assert rate["interval"] == "8h"
    assert [entry["fundingRate"] for entry in history] == [0.0001]
    assert exchange.fetch_time() == okx.now_ms


# -- websocket: data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market", "symbol", "inst_id"),
    [("spot", "BTC/USDT", "BTC-USDT"), ("perp", "BTC/USDT:USDT", "BTC-USDT-SWAP")],
)
def test_watch_ohlcv_receives_pushed_candles_over_the_business_url(
    okx: FakeOkx, okx_ws: FakeOkxWs, market: str, symbol: str, inst_id: str
) -> None:
    open_ms = open_candle_ms(okx)

    async def scenario() -> None:
        client = pro_client(okx, okx_ws, market)
        try:
            watch = asyncio.ensure_future(client.watch_ohlcv(symbol, "1m"))
            await okx_ws.until_subscribed("candle1m", inst_id)
            okx_ws.push_candle(inst_id, "1m", open_ms, [100.0, 101.0, 99.5, 100.5, 3.0])
            assert await asyncio.wait_for(watch, WAIT_S) == [
                [open_ms, 100.0, 101.0, 99.5, 100.5, 3.0]  # base volume for spot and swap
            ]
        finally:
            await client.close()

    run(scenario())
    [subscription] = okx_ws.subscriptions
    assert subscription.path == "/ws/v5/business"


def test_a_ccxt_pro_subclass_sees_okx_confirm_flag_of_each_candle(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    open_ms = open_candle_ms(okx)

    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot", client_class=ConfirmAwareOkx)
        try:
            watch = asyncio.ensure_future(client.watch_ohlcv("BTC/USDT", "1m"))
            await okx_ws.until_subscribed("candle1m", "BTC-USDT")
            okx_ws.push_candle("BTC-USDT", "1m", open_ms, confirm=False)
            [forming] = await asyncio.wait_for(watch, WAIT_S)
            assert not client.is_confirmed("BTC/USDT", "1m", forming[0])

            okx_ws.push_candle("BTC-USDT", "1m", open_ms, confirm=True)
            rows = await asyncio.wait_for(client.watch_ohlcv("BTC/USDT", "1m"), WAIT_S)
            assert [row[0] for row in rows] == [open_ms]  # only what changed since last call
            assert client.is_confirmed("BTC/USDT", "1m", open_ms)
            assert rows[0][1:] == okx.candles("BTC-USDT", "1m")[-1][1:]
        finally:
            await client.close()

    run(scenario())


def test_watch_trades_receives_pushed_trades_of_spot_and_swap(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, ["spot", "perp"])
        try:
            for symbol, inst_id in (("ETH/USDT", "ETH-USDT"), ("ETH/USDT:USDT", "ETH-USDT-SWAP")):
                watch = asyncio.ensure_future(client.watch_trades(symbol))
                await okx_ws.until_subscribed("trades", inst_id)
                okx_ws.push_trades(inst_id, [(20.5, 1.5, "buy"), (20.4, 2.0, "sell")])
                trades = await asyncio.wait_for(watch, WAIT_S)
                assert [(t["symbol"], t["price"], t["amount"], t["side"]) for t in trades] == [
                    (symbol, 20.5, 1.5, "buy"),
                    (symbol, 20.4, 2.0, "sell"),
                ]
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize(
    ("market", "symbol", "inst_id"),
    [("spot", "BTC/USDT", "BTC-USDT"), ("perp", "BTC/USDT:USDT", "BTC-USDT-SWAP")],
)
def test_watch_order_book_converges_to_the_true_book_after_updates(
    okx: FakeOkx, okx_ws: FakeOkxWs, market: str, symbol: str, inst_id: str
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, market)
        try:
            book = await asyncio.wait_for(client.watch_order_book(symbol), WAIT_S)  # snapshot
            best_bid, best_ask = book["bids"][0][0], book["asks"][0][0]
            okx_ws.update_book(inst_id, bids=[(best_bid, 0), (best_bid - 0.05, 7.5)])
            okx_ws.update_book(inst_id, asks=[(best_ask - 0.02, 0.3), (best_ask + 5, 1.0)])
            okx_ws.update_book(inst_id, bids=[(best_bid - 0.5, 0)], asks=[(best_ask, 0.9)])
            while book["nonce"] != okx.book(inst_id).seq_id:
                book = await asyncio.wait_for(client.watch_order_book(symbol), WAIT_S)
        finally:
            await client.close()
        true_book = okx.book(inst_id)
        assert [list(level) for level in true_book.levels("bids")] == book["bids"]
        assert [list(level) for level in true_book.levels("asks")] == book["asks"]
        last_sent = okx_ws.sent_messages("books")[-1].message["data"][0]
        assert okx_checksum(book["bids"], book["asks"]) == last_sent["checksum"]
        assert last_sent["checksum"] == true_book.checksum()

    run(scenario())


def test_ccxt_accepts_a_wrong_checksum_so_product_code_must_check_it_itself(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            await asyncio.wait_for(client.watch_order_book("ETH/USDT"), WAIT_S)
            okx_ws.update_book("ETH-USDT", bids=[(19.0, 1.0)], checksum=12345)
            book = await asyncio.wait_for(client.watch_order_book("ETH/USDT"), WAIT_S)
        finally:
            await client.close()
        assert book["nonce"] == okx.book("ETH-USDT").seq_id  # taken without complaint
        assert okx_checksum(book["bids"], book["asks"]) == okx.book("ETH-USDT").checksum()
        assert okx_checksum(book["bids"], book["asks"]) != 12345  # what a product check sees

    run(scenario())


def signed_crc32(text: str) -> int:
    crc = zlib.crc32(text.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def test_okx_checksum_is_the_signed_crc32_of_interleaved_levels() -> None:
    # OKX's documented example: bids 3366.1:7, 3366:6; asks 3366.8:9, 3368:8.
    bids, asks = [[3366.1, 7.0], [3366.0, 6.0]], [[3366.8, 9.0], [3368.0, 8.0]]

    assert okx_checksum(bids, asks) == signed_crc32("3366.1:7:3366.8:9:3366:6:3368:8")
    assert okx_checksum(bids, asks[:1]) == signed_crc32("3366.1:7:3366.8:9:3366:6")
    assert okx_checksum(bids, asks) == -1881014294  # a signed 32-bit int, as OKX sends it


def test_a_gap_in_the_book_sequence_fails_the_watch_and_the_next_watch_resyncs(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            await asyncio.wait_for(client.watch_order_book("BTC/USDT"), WAIT_S)
            watch = asyncio.ensure_future(client.watch_order_book("BTC/USDT"))
            await asyncio.sleep(0)
            okx_ws.update_book("BTC-USDT", bids=[(90.0, 1.0)], prev_seq_id=1)
            with pytest.raises(ccxt.InvalidNonce):
                await asyncio.wait_for(watch, WAIT_S)

            book = await asyncio.wait_for(client.watch_order_book("BTC/USDT"), WAIT_S)
            assert book["nonce"] == okx.book("BTC-USDT").seq_id
            assert [90.0, 1.0] in book["bids"]
        finally:
            await client.close()

    run(scenario())
    ops = [json.loads(frame.text)["op"] for frame in okx_ws.received if frame.text != "ping"]
    assert ops == ["subscribe", "unsubscribe", "subscribe"]  # ccxt resubscribes for a snapshot


def test_watch_funding_rate_gives_the_pushed_rate_of_the_swap(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    funding_ms = int(LISTED.timestamp() * 1000) + FUNDING_EVERY_MS

    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "perp")
        try:
            watch = asyncio.ensure_future(client.watch_funding_rate("BTC/USDT:USDT"))
            await okx_ws.until_subscribed("funding-rate", "BTC-USDT-SWAP")
            okx_ws.push_funding_rate("BTC-USDT-SWAP", 0.00025, funding_ms=funding_ms)
            rate = await asyncio.wait_for(watch, WAIT_S)
        finally:
            await client.close()
        assert rate["symbol"] == "BTC/USDT:USDT"
        assert rate["fundingRate"] == 0.00025
        assert rate["fundingTimestamp"] == funding_ms
        assert rate["nextFundingTimestamp"] == funding_ms + FUNDING_EVERY_MS
        assert rate["interval"] == "8h"
        assert rate["timestamp"] is None  # ccxt leaves OKX's ts in rate["info"]["ts"]

    run(scenario())


def test_watch_mark_price_gives_the_pushed_mark_price(okx: FakeOkx, okx_ws: FakeOkxWs) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "perp")
        try:
            watch = asyncio.ensure_future(client.watch_mark_price("ETH/USDT:USDT"))
            await okx_ws.until_subscribed("mark-price", "ETH-USDT-SWAP")
            okx_ws.push_mark_price("ETH-USDT-SWAP", 21.37)
            ticker = await asyncio.wait_for(watch, WAIT_S)
        finally:
            await client.close()
        assert ticker["markPrice"] == 21.37

    run(scenario())


def test_only_subscribed_channels_are_pushed(okx: FakeOkx, okx_ws: FakeOkxWs) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            assert okx_ws.push_trades("ETH-USDT", [(20.0, 1.0, "buy")]) == 0
            assert okx_ws.push_candle("BTC-USDT", "1m", open_candle_ms(okx)) == 0
            assert okx_ws.push_trades("BTC-USDT", [(100.0, 1.0, "buy")]) == 1
            [trade] = await asyncio.wait_for(watch, WAIT_S)
            assert trade["symbol"] == "BTC/USDT"
        finally:
            await client.close()

    run(scenario())


# -- websocket: protocol and chaos -----------------------------------------------------------


def test_a_candle_channel_on_the_public_url_is_refused_with_okx_error_60018(
    okx_ws: FakeOkxWs,
) -> None:
    async def scenario() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{okx_ws.url}/ws/v5/public") as ws,
        ):
            arg = {"channel": "candle1m", "instId": "BTC-USDT"}
            await ws.send_str(json.dumps({"op": "subscribe", "args": [arg]}))
            error = json.loads(await ws.receive_str(timeout=WAIT_S))
            await ws.send_str("ping")
            assert await ws.receive_str(timeout=WAIT_S) == "pong"
        assert error["event"] == "error"
        assert error["code"] == "60018"

    run(scenario())
    assert okx_ws.pings == 1


def test_ccxt_keepalive_pings_are_answered_with_pong_and_the_connection_stays(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        client.streaming["keepAlive"] = 50  # ms; OKX's default is 18 s
        try:
            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            await asyncio.sleep(0.4)
            okx_ws.push_trades("BTC-USDT", [(100.0, 1.0, "buy")])
            assert len(await asyncio.wait_for(watch, WAIT_S)) == 1
        finally:
            await client.close()

    run(scenario())
    assert okx_ws.pings >= 3
    assert okx_ws.accepted == 1
    assert [frame.text for frame in okx_ws.sent].count("pong") >= 3  # the last may be cut off


@pytest.mark.parametrize("clean", [False, True])
def test_a_drop_fails_the_pending_watch_with_network_error_and_the_next_watch_resubscribes(
    okx: FakeOkx, okx_ws: FakeOkxWs, clean: bool
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            assert okx_ws.drop_all(clean=clean) == 1
            with pytest.raises(ccxt.NetworkError, match="closed by remote server"):
                await asyncio.wait_for(watch, WAIT_S)

            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            okx_ws.push_trades("BTC-USDT", [(100.5, 0.1, "sell")])
            trades = await asyncio.wait_for(watch, WAIT_S)
            assert [trade["price"] for trade in trades] == [100.5]
        finally:
            await client.close()

    run(scenario())
    assert okx_ws.accepted == 2
    assert len(okx_ws.subscriptions) == 2


def test_periodic_drops_keep_closing_connections_until_switched_off(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            okx_ws.drop_every(0.1)
            for _ in range(2):
                with pytest.raises(ccxt.NetworkError):
                    await asyncio.wait_for(client.watch_trades("BTC/USDT"), WAIT_S)
            okx_ws.drop_every(None)
            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            okx_ws.push_trades("BTC-USDT", [(100.0, 1.0, "buy")])
            assert len(await asyncio.wait_for(watch, WAIT_S)) == 1
        finally:
            await client.close()

    run(scenario())
    assert okx_ws.accepted == 3


def test_refused_connections_fail_the_watch_until_the_venue_accepts_again(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            okx_ws.refuse_for(0.3)
            with pytest.raises(ccxt.NetworkError):
                await asyncio.wait_for(client.watch_trades("BTC/USDT"), WAIT_S)
            await asyncio.sleep(0.35)
            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            okx_ws.push_trades("BTC-USDT", [(100.0, 1.0, "buy")])
            assert len(await asyncio.wait_for(watch, WAIT_S)) == 1
        finally:
            await client.close()

    run(scenario())
    assert okx_ws.refused == 1
    assert okx_ws.accepted == 1


def test_duplicated_messages_arrive_twice(okx: FakeOkx, okx_ws: FakeOkxWs) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            okx_ws.duplicate = True
            okx_ws.push_trades("BTC-USDT", [(100.0, 1.0, "buy")])
            await asyncio.wait_for(watch, WAIT_S)
            while len(client.trades["BTC/USDT"]) < 2:
                await asyncio.sleep(0.01)
            ids = [trade["id"] for trade in client.trades["BTC/USDT"]]
        finally:
            await client.close()
        assert len(ids) == 2
        assert ids[0] == ids[1]  # ccxt does not drop the repeat: consumers must

    run(scenario())
    assert len(okx_ws.sent_messages("trades")) == 2


def test_late_and_reordered_messages_arrive_late_and_swapped(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            okx_ws.delay_s = 0.2
            pushed_s = time.time()
            okx_ws.push_trades("BTC-USDT", [(100.0, 1.0, "buy")])
            await asyncio.wait_for(watch, WAIT_S)
            assert time.time() - pushed_s >= 0.2

            okx_ws.delay_s = 0.0
            okx_ws.reorder = True
            okx_ws.push_trades("BTC-USDT", [(101.0, 1.0, "buy")])
            okx_ws.push_trades("BTC-USDT", [(102.0, 1.0, "buy")])
            while len(client.trades["BTC/USDT"]) < 3:
                await asyncio.sleep(0.01)
            prices = [trade["price"] for trade in client.trades["BTC/USDT"]]
        finally:
            await client.close()
        assert prices == [100.0, 102.0, 101.0]

    run(scenario())
    [late, *_] = okx_ws.sent_messages("trades")
    assert late.wall_s - int(late.message["data"][0]["ts"]) / 1000 >= 0.2


def test_sent_frames_carry_wall_time_and_a_clock_ahead_stamps_ts_ahead(
    okx: FakeOkx, okx_ws: FakeOkxWs
) -> None:
    async def scenario() -> None:
        client = pro_client(okx, okx_ws, "spot")
        try:
            watch = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await okx_ws.until_subscribed("trades", "BTC-USDT")
            okx_ws.clock_ahead_ms = 5_000
            okx_ws.push_trades("BTC-USDT", [(100.0, 1.0, "buy")])
            [trade] = await asyncio.wait_for(watch, WAIT_S)
            received_s = time.time()
        finally:
            await client.close()
        [frame] = okx_ws.sent_messages("trades")
        assert frame.wall_s <= received_s < frame.wall_s + 1  # latency is measurable
        ahead_ms = trade["timestamp"] - frame.wall_s * 1000
        assert 4_000 < ahead_ms <= 5_000

    run(scenario())
