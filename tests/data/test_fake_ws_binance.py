"""ccxt.pro's real binance client against the fake Binance stream server on 127.0.0.1.

Each test runs its own event loop (``asyncio.run``) with the client in it; the fake runs on a
loop of its own in a daemon thread, so the test pushes the venue's events synchronously.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from functools import partial
from typing import Any, TypeVar

import aiohttp
import ccxt
import ccxt.pro as ccxtpro
import pytest
from fake_exchange import FakeBinance
from fake_ws_binance import ClosedFlagBinance, FakeBinanceWs, Sent, pro_client, serve_ws

from tradebrain.data.exchanges import make_exchange

pytestmark = pytest.mark.usefixtures("loopback_only")

_T = TypeVar("_T")
MINUTE_MS = 60_000
OPEN_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MARKETS = [
    pytest.param("spot", "BTC/USDT", id="spot"),
    pytest.param("perp", "BTC/USDT:USDT", id="perp"),
]


@pytest.fixture
def fake_ws(fake_binance: FakeBinance) -> Iterator[FakeBinanceWs]:
    """The stream server, streaming the books of the REST fake ``fake_binance``."""
    with serve_ws(fake_binance) as server:
        yield server


def run(coroutine: Coroutine[Any, Any, _T], timeout_s: float = 10.0) -> _T:
    """Run ``coroutine`` on a fresh event loop; fail instead of hanging."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout_s))


async def pushed(
    watch: Awaitable[_T],
    fake_ws: FakeBinanceWs,
    stream: str,
    market: str,
    push: Callable[[], object],
) -> _T:
    """Start ``watch``, wait until ``stream`` is subscribed, ``push``, and return what it got."""
    task = asyncio.ensure_future(watch)
    await fake_ws.until_subscribed(stream, market)
    push()
    return await asyncio.wait_for(task, 5)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait, yielding to the client's loop, until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
def test_watch_ohlcv_receives_pushed_klines_and_the_venues_closed_flag_stays_visible(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs, market: str, symbol: str
) -> None:
    first, second = fake_binance.candles("BTCUSDT", "1m")[:2]
    opening = [*first[:4], first[1], first[5] / 2]  # the same candle, not yet final

    async def scenario() -> list[list[list[float]]]:
        client = pro_client(fake_binance, fake_ws, market, client_class=ClosedFlagBinance)
        assert isinstance(client, ClosedFlagBinance)
        seen = []
        try:
            for candle, closed in [(opening, False), (first, True), (second, False)]:
                rows = await pushed(
                    client.watch_ohlcv(symbol, "1m"), fake_ws, "btcusdt@kline_1m", market,
                    partial(fake_ws.push_kline, symbol, candle, closed=closed),
                )  # fmt: skip
                seen.append([list(row) for row in rows])
                assert client.is_closed(symbol, "1m", candle[0]) is closed
            assert client.is_closed(symbol, "1m", first[0]) is True  # still known afterwards
        finally:
            await client.close()
        return seen

    seen = run(scenario())

    assert seen == [[opening], [first], [second]]  # each call: only the rows that changed
    expected = "/stream/ws" if market == "spot" else "/fstream/market/ws"
    assert {r.path.rsplit("/", 1)[0] for r in fake_ws.requests} == {expected}


def test_a_kline_that_arrives_while_nobody_watches_is_returned_only_with_the_next_message(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    first, second, third = fake_binance.candles("BTCUSDT", "1m")[:3]

    async def scenario() -> tuple[bool, list[list[float]]]:
        client = pro_client(fake_binance, fake_ws)
        try:
            await pushed(
                client.watch_ohlcv("BTC/USDT", "1m"), fake_ws, "btcusdt@kline_1m", "spot",
                lambda: fake_ws.push_kline("BTC/USDT", first, closed=True),
            )  # fmt: skip
            fake_ws.push_kline("BTC/USDT", second, closed=True)  # nobody is waiting
            await until(lambda: len(client.ohlcvs["BTC/USDT"]["1m"]) == 2)  # ccxt has it...
            waiting = asyncio.ensure_future(client.watch_ohlcv("BTC/USDT", "1m"))
            await asyncio.sleep(0.3)
            stuck = not waiting.done()  # ...but the next watch waits for a new message
            fake_ws.push_kline("BTC/USDT", third, closed=False)
            rows = await asyncio.wait_for(waiting, 5)
        finally:
            await client.close()
        return stuck, [list(row) for row in rows]

    stuck, rows = run(scenario())

    assert stuck
    assert rows == [second, third]


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
def test_watch_trades_receives_pushed_trades_with_side_amount_price_and_id(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs, market: str, symbol: str
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        client = pro_client(fake_binance, fake_ws, market)
        trades = []
        try:
            for price, amount, side in [(100.5, 0.25, "sell"), (100.75, 1.5, "buy")]:
                trades += await pushed(
                    client.watch_trades(symbol), fake_ws, "btcusdt@trade", market,
                    partial(fake_ws.push_trade, symbol, price, amount, side=side, time_ms=OPEN_MS),
                )  # fmt: skip
        finally:
            await client.close()
        return trades

    trades = run(scenario())

    assert [
        (t["id"], t["side"], t["price"], t["amount"], t["symbol"], t["timestamp"]) for t in trades
    ] == [("1", "sell", 100.5, 0.25, symbol, OPEN_MS), ("2", "buy", 100.75, 1.5, symbol, OPEN_MS)]
    category = "/stream/ws" if market == "spot" else "/fstream/public/ws"
    assert {r.path.rsplit("/", 1)[0] for r in fake_ws.requests} == {category}


def test_watch_trades_can_take_aggregate_trades_instead(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        client = pro_client(fake_binance, fake_ws)
        try:
            return await pushed(
                client.watch_trades("BTC/USDT", params={"name": "aggTrade"}), fake_ws,
                "btcusdt@aggTrade", "spot", lambda: fake_ws.push_trade("BTC/USDT", 99.0, 2.0),
            )  # fmt: skip
        finally:
            await client.close()

    [trade] = run(scenario())

    assert trade["info"]["e"] == "aggTrade"
    assert (trade["id"], trade["price"], trade["amount"]) == ("1", 99.0, 2.0)
    assert fake_ws.subscriptions() == set()  # closed
    assert [r.params for r in fake_ws.requests] == [["btcusdt@aggTrade"]]


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
def test_watch_order_book_converges_to_the_fakes_true_book_after_several_diffs(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs, market: str, symbol: str
) -> None:
    fake_ws.set_book(symbol, [(100, 1), (99, 2)], [(101, 1), (102, 3)])  # before anyone looks
    book = fake_ws.book(symbol)

    async def scenario() -> tuple[Any, Any, Any]:
        client = pro_client(fake_binance, fake_ws, market)
        try:
            task = asyncio.ensure_future(client.watch_order_book(symbol))
            await fake_ws.until_subscribed("btcusdt@depth@100ms", market)
            fake_ws.update_book(symbol, bids=[(100, 0), (99.5, 4)])  # maybe before the snapshot
            first = await asyncio.wait_for(task, 5)
            first_nonce = first["nonce"]
            for step in range(6):
                fake_ws.set_book(
                    symbol,
                    [(99.5 - step, 1 + step), (98, 2)],
                    [(101 + step, 1), (103, 0.5 * (step + 1))],
                )
                await asyncio.wait_for(client.watch_order_book(symbol), 5)
            await until(lambda: client.orderbooks[symbol]["nonce"] == book.last_update_id)
            ours = client.orderbooks[symbol]
        finally:
            await client.close()
        return first_nonce, [list(level) for level in ours["bids"]], ours["asks"]

    first_nonce, bids, asks = run(scenario())

    true_bids, true_asks = book.levels()
    assert (bids, [list(level) for level in asks]) == (true_bids, true_asks)
    assert first_nonce >= 1004  # the snapshot's lastUpdateId, or a diff applied after it
    path = "/api/v3/depth" if market == "spot" else "/fapi/v1/depth"
    assert fake_binance.requests_to(path) == [{"symbol": "BTCUSDT", "limit": "1000"}]


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
def test_out_of_order_depth_diffs_fail_the_book_watch_and_the_next_watch_resyncs_from_a_snapshot(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs, market: str, symbol: str
) -> None:
    fake_ws.set_book(symbol, [(100, 1)], [(101, 1)])
    book = fake_ws.book(symbol)

    async def scenario() -> tuple[BaseException | None, Any]:
        client = pro_client(fake_binance, fake_ws, market)
        try:
            await client.watch_order_book(symbol)
            fake_ws.chaos.swap_adjacent = True
            failing = asyncio.ensure_future(client.watch_order_book(symbol))
            await asyncio.sleep(0.01)
            fake_ws.update_book(symbol, bids=[(99, 1)])
            fake_ws.update_book(symbol, asks=[(102, 1)])
            error = await asyncio.wait_for(asyncio.gather(failing, return_exceptions=True), 5)
            fake_ws.chaos.swap_adjacent = False
            resynced = await asyncio.wait_for(client.watch_order_book(symbol), 5)
            levels = ([list(b) for b in resynced["bids"]], [list(a) for a in resynced["asks"]])
        finally:
            await client.close()
        return error[0], (resynced["nonce"], levels)

    error, (nonce, levels) = run(scenario())

    assert isinstance(error, ccxt.ChecksumError)  # an InvalidNonce, so a NetworkError too
    assert (nonce, levels) == (book.last_update_id, book.levels())
    path = "/api/v3/depth" if market == "spot" else "/fapi/v1/depth"
    assert len(fake_binance.requests_to(path)) == 2  # a fresh snapshot after the gap


def test_mark_price_and_funding_rate_arrive_for_the_perpetual(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    next_funding = OPEN_MS + 8 * 3_600_000

    async def scenario() -> dict[str, Any]:
        client = pro_client(fake_binance, fake_ws, "perp")
        try:
            return await pushed(
                client.watch_mark_price("BTC/USDT:USDT"), fake_ws, "btcusdt@markPrice@1s", "perp",
                lambda: fake_ws.push_mark_price(
                    "BTC/USDT:USDT", 100.25, funding_rate=0.0001, next_funding_ms=next_funding,
                    index_price=100.2, event_ms=OPEN_MS,
                ),
            )  # fmt: skip
        finally:
            await client.close()

    ticker = run(scenario())

    assert (ticker["symbol"], ticker["markPrice"], ticker["indexPrice"]) == (
        "BTC/USDT:USDT",
        100.25,
        100.2,
    )
    assert ticker["timestamp"] == OPEN_MS
    assert float(ticker["info"]["r"]) == 0.0001  # the funding rate rides in the raw event
    assert ticker["info"]["T"] == next_funding
    assert {r.path.rsplit("/", 1)[0] for r in fake_ws.requests} == {"/fstream/market/ws"}


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
def test_a_dropped_connection_fails_the_pending_watch_and_the_next_watch_resubscribes(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs, market: str, symbol: str
) -> None:
    first, second = fake_binance.candles("BTCUSDT", "1m")[:2]

    async def scenario() -> tuple[BaseException | None, list[list[float]]]:
        client = pro_client(fake_binance, fake_ws, market)
        try:
            await pushed(
                client.watch_ohlcv(symbol, "1m"), fake_ws, "btcusdt@kline_1m", market,
                lambda: fake_ws.push_kline(symbol, first, closed=True),
            )  # fmt: skip
            pending = asyncio.ensure_future(client.watch_ohlcv(symbol, "1m"))
            await asyncio.sleep(0.01)
            assert fake_ws.drop_connections() == 1
            [error] = await asyncio.wait_for(asyncio.gather(pending, return_exceptions=True), 5)
            rows = await pushed(
                client.watch_ohlcv(symbol, "1m"), fake_ws, "btcusdt@kline_1m", market,
                lambda: fake_ws.push_kline(symbol, second, closed=False),
            )  # fmt: skip
        finally:
            await client.close()
        return error, [list(row) for row in rows]

    error, rows = run(scenario())

    assert isinstance(error, ccxt.NetworkError)
    assert rows == [second]
    assert fake_ws.connections_opened == 2
    assert [r.method for r in fake_ws.requests] == ["SUBSCRIBE", "SUBSCRIBE"]


def test_drop_every_keeps_cutting_connections_until_it_is_turned_off(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    async def scenario() -> tuple[list[BaseException], list[dict[str, Any]]]:
        client = pro_client(fake_binance, fake_ws)
        errors: list[BaseException] = []
        try:
            fake_ws.drop_every(0.2)
            while len(errors) < 2:
                try:
                    await asyncio.wait_for(client.watch_trades("BTC/USDT"), 2)
                except ccxt.NetworkError as error:
                    errors.append(error)
            fake_ws.drop_every(None)
            trades = await pushed(
                client.watch_trades("BTC/USDT"), fake_ws, "btcusdt@trade", "spot",
                lambda: fake_ws.push_trade("BTC/USDT", 100.0, 1.0),
            )  # fmt: skip
        finally:
            await client.close()
        return errors, trades

    errors, trades = run(scenario())

    assert len(errors) == 2
    assert [trade["price"] for trade in trades] == [100.0]
    assert fake_ws.connections_opened == 3


def test_while_the_venue_is_down_a_watch_fails_and_once_it_is_up_the_next_watch_connects(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    async def scenario() -> tuple[BaseException | None, list[dict[str, Any]]]:
        client = pro_client(fake_binance, fake_ws)
        try:
            await client.load_markets()
            fake_ws.go_down()
            refused: BaseException | None = None
            try:
                await asyncio.wait_for(client.watch_trades("BTC/USDT"), 5)
            except ccxt.NetworkError as error:
                refused = error
            fake_ws.go_down(for_s=0.3)
            await asyncio.sleep(0.35)  # longer than ccxt's dial backoff (0.2 s after one failure)
            trades = await pushed(
                client.watch_trades("BTC/USDT"), fake_ws, "btcusdt@trade", "spot",
                lambda: fake_ws.push_trade("BTC/USDT", 100.0, 1.0),
            )  # fmt: skip
        finally:
            await client.close()
        return refused, trades

    refused, trades = run(scenario())

    assert isinstance(refused, ccxt.NetworkError)
    assert "503" in str(refused)
    assert len(trades) == 1
    assert fake_ws.connections_opened == 1


def test_duplicated_events_arrive_twice_and_ccxt_keeps_both_copies_of_a_trade(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    async def scenario() -> list[str]:
        client = pro_client(fake_binance, fake_ws)
        try:
            fake_ws.chaos.duplicate = True
            await pushed(
                client.watch_trades("BTC/USDT"), fake_ws, "btcusdt@trade", "spot",
                lambda: fake_ws.push_trade("BTC/USDT", 100.0, 1.0),
            )  # fmt: skip
            await until(lambda: len(client.trades["BTC/USDT"]) == 2)
            return [trade["id"] for trade in client.trades["BTC/USDT"]]
        finally:
            await client.close()

    ids = run(scenario())

    assert ids == ["1", "1"]  # ccxt does not drop a repeated trade id: dedupe downstream
    assert [sent.payload["t"] for sent in fake_ws.sent if sent.stream == "btcusdt@trade"] == [1, 1]


def test_held_events_are_sent_on_release_in_reverse_order_when_asked(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    async def scenario() -> tuple[int, list[str]]:
        client = pro_client(fake_binance, fake_ws)
        try:
            task = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await fake_ws.until_subscribed("btcusdt@trade")
            fake_ws.hold()
            for price in (100.0, 101.0, 102.0):
                fake_ws.push_trade("BTC/USDT", price, 1.0)
            await asyncio.sleep(0.1)
            sent_while_held = sum(1 for sent in fake_ws.sent if sent.stream is not None)
            fake_ws.release(reverse=True)
            await asyncio.wait_for(task, 5)
            await until(lambda: len(client.trades["BTC/USDT"]) == 3)
            return sent_while_held, [trade["id"] for trade in client.trades["BTC/USDT"]]
        finally:
            await client.close()

    sent_while_held, ids = run(scenario())

    assert sent_while_held == 0
    assert ids == ["3", "2", "1"]


def test_delayed_events_arrive_late_and_the_send_log_has_the_wall_time_of_each_write(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    hooked: list[Sent] = []
    fake_ws.on_send = hooked.append

    async def scenario() -> tuple[float, float, dict[str, Any]]:
        client = pro_client(fake_binance, fake_ws)
        try:
            task = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            await fake_ws.until_subscribed("btcusdt@trade")
            fake_ws.chaos.delay_s = 0.3
            pushed_at = time.time()
            fake_ws.push_trade("BTC/USDT", 100.0, 1.0)
            [trade] = await asyncio.wait_for(task, 5)
            return pushed_at, time.time(), trade
        finally:
            await client.close()

    pushed_at, received_at, trade = run(scenario())

    [write] = [sent for sent in fake_ws.sent if sent.stream == "btcusdt@trade"]
    assert write in hooked
    assert pushed_at + 0.29 <= write.wall_time <= received_at  # asyncio may fire a hair early
    assert write.wall_time - trade["info"]["E"] / 1000 >= 0.29  # stamped at push, sent late
    assert [sent.payload for sent in fake_ws.sent if sent.stream is None] == [
        {"result": None, "id": 1}
    ]


def test_event_times_run_ahead_when_the_venues_clock_is_skewed(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    fake_ws.chaos.clock_ahead_ms = 5_000

    async def scenario() -> tuple[float, dict[str, Any]]:
        client = pro_client(fake_binance, fake_ws)
        try:
            [trade] = await pushed(
                client.watch_trades("BTC/USDT"), fake_ws, "btcusdt@trade", "spot",
                lambda: fake_ws.push_trade("BTC/USDT", 100.0, 1.0),
            )  # fmt: skip
            return time.time(), trade
        finally:
            await client.close()

    received_at, trade = run(scenario())

    assert 4_000 < trade["timestamp"] - received_at * 1000 <= 5_000


def test_one_client_with_spot_and_perp_markets_tells_the_two_btcusdt_streams_apart(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    async def scenario() -> list[tuple[str, float]]:
        client = pro_client(fake_binance, fake_ws, ("spot", "perp"))
        seen = []
        try:
            for market, symbol, price in [
                ("spot", "BTC/USDT", 100.0),
                ("perp", "BTC/USDT:USDT", 100.5),
            ]:
                [trade] = await pushed(
                    client.watch_trades(symbol), fake_ws, "btcusdt@trade", market,
                    partial(fake_ws.push_trade, symbol, price, 1.0),
                )  # fmt: skip
                seen.append((trade["symbol"], trade["price"]))
        finally:
            await client.close()
        return seen

    assert run(scenario()) == [("BTC/USDT", 100.0), ("BTC/USDT:USDT", 100.5)]


def test_subscribe_and_unsubscribe_are_answered_as_binance_does_and_only_subscribed_streams_flow(
    fake_ws: FakeBinanceWs,
) -> None:
    async def scenario() -> list[Any]:
        got = []
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(fake_ws.ws_urls()["spot"] + "/0") as ws,
        ):

            async def ask(request: dict[str, Any]) -> None:
                await ws.send_json(request)
                got.append(await ws.receive_json(timeout=5))

            await ask({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1})
            await fake_ws.until_subscribed("btcusdt@trade")
            fake_ws.push_trade("ETH/USDT", 20.0, 1.0)  # not subscribed
            fake_ws.push_trade("BTCUSDT", 30.0, 1.0, market="perp")  # another market
            fake_ws.push_trade("BTC/USDT", 100.0, 1.0)
            got.append(await ws.receive_json(timeout=5))
            await ask({"method": "LIST_SUBSCRIPTIONS", "id": 2})
            await ask({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 3})
            fake_ws.push_trade("BTC/USDT", 101.0, 1.0)
            await ask({"method": "LIST_SUBSCRIPTIONS", "id": 4})
            await ask({"method": "NO_SUCH_METHOD", "id": 5})
        return got

    replies = run(scenario())

    assert replies[0] == {"result": None, "id": 1}
    assert (replies[1]["e"], replies[1]["s"], replies[1]["p"]) == (
        "trade",
        "BTCUSDT",
        "100.00000000",
    )
    assert replies[2:5] == [
        {"result": ["btcusdt@trade"], "id": 2},
        {"result": None, "id": 3},
        {"result": [], "id": 4},
    ]
    assert replies[5]["error"]["code"] == 2
    assert [(r.method, r.params) for r in fake_ws.requests][:1] == [
        ("SUBSCRIBE", ["btcusdt@trade"])
    ]


def test_ccxts_un_watch_unsubscribes_on_the_fake(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    async def scenario() -> None:
        client = pro_client(fake_binance, fake_ws)
        try:
            await pushed(
                client.watch_trades("BTC/USDT"), fake_ws, "btcusdt@trade", "spot",
                lambda: fake_ws.push_trade("BTC/USDT", 100.0, 1.0),
            )  # fmt: skip
            await asyncio.wait_for(client.un_watch_trades("BTC/USDT"), 5)
        finally:
            await client.close()

    run(scenario())

    assert [(r.method, r.params) for r in fake_ws.requests] == [
        ("SUBSCRIBE", ["btcusdt@trade"]),
        ("UNSUBSCRIBE", ["btcusdt@trade"]),
    ]


def test_urls_other_than_the_spot_and_usdm_streams_are_refused(fake_ws: FakeBinanceWs) -> None:
    async def scenario() -> list[int]:
        statuses = []
        async with aiohttp.ClientSession() as session:
            for url in (fake_ws.ws_urls()["inverse"], fake_ws.ws_urls()["ws-api"]["spot"]):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(url)
                statuses.append(refused.value.status)
        return statuses

    assert run(scenario()) == [404, 404]
    assert all(
        url.startswith(fake_ws.url)
        for url in [*fake_ws.ws_urls().values(), *fake_ws.ws_urls()["ws-api"].values()]
        if isinstance(url, str)
    )


@pytest.mark.parametrize(("market", "symbol"), MARKETS)
def test_the_rest_fake_serves_the_streamed_book_as_binances_depth_snapshot(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs, market: str, symbol: str
) -> None:
    fake_ws.set_book(symbol, [(100, 1), (99, 2), (98, 3)], [(101, 1)])
    fake_ws.update_book(symbol, bids=[(99, 0)], asks=[(102, 5)])
    exchange = make_exchange("binance", markets=(market,), api_urls=fake_binance.url)

    snapshot = exchange.fetch_order_book(symbol, limit=2)

    assert snapshot["nonce"] == fake_ws.book(symbol).last_update_id == 1_000 + 4 + 2
    assert (snapshot["bids"], snapshot["asks"]) == (
        [[100.0, 1.0], [98.0, 3.0]],
        [[101.0, 1.0], [102.0, 5.0]],
    )
    other = "perp" if market == "spot" else "spot"
    assert fake_binance.book("BTCUSDT", other).levels() == ([], [])  # each market its own book


def test_a_client_built_by_pro_client_talks_only_to_the_fakes(
    fake_binance: FakeBinance, fake_ws: FakeBinanceWs
) -> None:
    async def scenario() -> ccxtpro.binance:
        client = pro_client(fake_binance, fake_ws, "perp")
        try:
            await client.load_markets()
        finally:
            await client.close()
        return client

    client = run(scenario())

    assert set(client.markets) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert [r.path for r in fake_binance.requests] == ["/fapi/v1/exchangeInfo"]
    assert client.urls["api"]["ws"]["linear"] == fake_ws.url + "/fstream/ws"
