"""`--feed exchange:NAME` against a fake Binance on 127.0.0.1: warm-up history through REST,
then the candles after the last recorded one (a restart's backfill), each once, in order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fake_exchange import FakeBinance

from tradebrain.exceptions import UserInputError
from tradebrain.service.exchange_feed import ExchangeFeed


def _feed(fake: FakeBinance, symbols: tuple[str, ...] = ("BTC/USDT",)) -> ExchangeFeed:
    return ExchangeFeed(
        "binance", symbols, "1m", api_url=fake.url, poll_interval=0.05,
        clock=lambda: fake.now.timestamp(),  # the venue's clock
    )  # fmt: skip


def _closed(fake: FakeBinance, symbol: str) -> list[list[float]]:
    """The fake's candles that have closed by its clock."""
    return [c for c in fake.candles(symbol.replace("/", ""), "1m") if c[0] + 60_000 <= fake.now_ms]


def test_history_is_the_newest_closed_candles_of_the_venue(fake_binance: FakeBinance) -> None:
    history = _feed(fake_binance).history("BTC/USDT", 50, None)
    closed = _closed(fake_binance, "BTC/USDT")
    assert history.height == 50
    assert history["timestamp"][-1] == datetime.fromtimestamp(closed[-1][0] / 1000, UTC)
    assert history["close"].to_list() == [c[4] for c in closed[-50:]]


def test_a_restart_gets_every_candle_after_the_last_recorded_one_once_and_in_order(
    fake_binance: FakeBinance,
) -> None:
    feed = _feed(fake_binance, ("BTC/USDT", "ETH/USDT"))
    closed = _closed(fake_binance, "BTC/USDT")
    last_recorded = datetime.fromtimestamp(closed[-11][0] / 1000, UTC)  # 10 candles missed
    stop = threading.Event()
    seen = []
    for candle in feed.resume({"BTC/USDT": last_recorded, "ETH/USDT": last_recorded}, stop):
        seen.append((candle.open_time, candle.symbol, candle.close))
        if len(seen) == 20:
            stop.set()
    assert [s for s in seen if s[1] == "BTC/USDT"] == [
        (datetime.fromtimestamp(c[0] / 1000, UTC), "BTC/USDT", c[4]) for c in closed[-10:]
    ]
    assert seen == sorted(seen, key=lambda s: (s[0], s[1] != "BTC/USDT"))
    assert feed.status()["feed"] == "exchange:binance"


def test_a_symbol_the_venue_does_not_list_is_named(fake_binance: FakeBinance) -> None:
    with pytest.raises(UserInputError, match="DOGE/USDT"):
        _feed(fake_binance, ("DOGE/USDT",)).history("DOGE/USDT", 10, None)


def test_live_exchange_hands_the_environments_keys_to_ccxt_and_they_sign_requests(
    loopback_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_venue import FakeVenue, serve

    from tradebrain.service.exchange_feed import live_exchange
    from tradebrain.service.options import ServeOptions

    key, secret = "live-key-from-the-environment", "live-secret-from-the-environment"
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_API_KEY", key)
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_SECRET", secret)
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_PASSWORD", "live-passphrase")
    with serve(FakeVenue(api_key=key, secret=secret, balances={"USDT": 1234.5})) as venue:
        options = ServeOptions(mode="live", feed="exchange:binance", api_url=venue.url)
        exchange = live_exchange(options)
        assert (exchange.apiKey, exchange.secret, exchange.password) == (
            key, secret, "live-passphrase",
        )  # fmt: skip
        balance = exchange.fetch_balance()  # signed: the venue checks the key and the HMAC
    assert balance["USDT"]["free"] == 1234.5


def test_the_fake_venue_refuses_a_request_signed_with_another_secret(
    loopback_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ccxt
    from fake_venue import FakeVenue, serve

    from tradebrain.service.exchange_feed import live_exchange
    from tradebrain.service.options import ServeOptions

    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_API_KEY", "the-key")
    monkeypatch.setenv("TRADEBRAIN_EXCHANGE_SECRET", "not-the-secret")
    with serve(FakeVenue(api_key="the-key", secret="the-secret")) as venue:
        exchange = live_exchange(
            ServeOptions(mode="live", feed="exchange:binance", api_url=venue.url)
        )
        with pytest.raises(ccxt.AuthenticationError):
            exchange.fetch_balance()


def test_serve_options_build_a_websocket_feed_that_subscribes_through_one_base_url(
    fake_binance: FakeBinance, tmp_path: Path
) -> None:
    from fake_ws_binance import serve_ws

    from tradebrain.service.exchange_feed import exchange_feed
    from tradebrain.service.options import ServeOptions

    with serve_ws(fake_binance) as ws:
        options = ServeOptions(
            feed="exchange:binance", symbols=("BTC/USDT",), timeframe="1m",
            api_url=fake_binance.url, ws_url=ws.url, order_flow=True,
        )  # fmt: skip
        feed = exchange_feed(options, tmp_path)
        feed.history("BTC/USDT", 20, None)
        stop = threading.Event()
        feed.resume({}, stop)
        thread = threading.Thread(target=lambda: list(feed), daemon=True)
        thread.start()
        try:
            for stream in ("btcusdt@kline_1m", "btcusdt@trade"):
                ws.wait_subscribed(stream, market="spot")
            paths = ws.connection_paths("spot")
        finally:
            stop.set()
            thread.join(timeout=10)
    assert paths and all(p.startswith("/stream.binance.com:9443/ws") for p in paths)
    assert feed.status()["stream"] == "websocket" and feed.tape is not None


def test_order_flow_needs_the_websocket_of_an_exchange_feed() -> None:
    from tradebrain.service.options import ServeOptions

    with pytest.raises(UserInputError, match="--order-flow"):
        ServeOptions(feed="exchange:binance", stream="rest", order_flow=True)
    with pytest.raises(UserInputError, match="--order-flow"):
        ServeOptions(feed="synthetic", order_flow=True)
    with pytest.raises(UserInputError, match="--stream must be websocket or rest"):
        ServeOptions(feed="exchange:binance", stream="fix")


def test_a_failed_write_of_the_streamed_order_flow_keeps_every_row_for_the_next_flush(
    tmp_path: Path,
) -> None:
    from tradebrain.data.flow_tape import FlowTape
    from tradebrain.data.schemas import Kind
    from tradebrain.data.store import DatasetKey, ParquetStore

    blocked = tmp_path / "store"
    blocked.write_text("a file where the store's folder should be")  # every write fails
    feed = ExchangeFeed(
        "binance", ("BTC/USDT", "ETH/USDT"), "1m", stream="websocket", order_flow=True,
        store=ParquetStore(blocked),
    )  # fmt: skip
    feed.tape = FlowTape(["BTC/USDT", "ETH/USDT"], keep_ms=3_600_000)
    t0 = 1_704_067_200_000
    for number, symbol in enumerate(("BTC/USDT", "ETH/USDT")):
        trades = [{"id": f"{number}-{i}", "timestamp": t0 + i, "price": 100.0, "amount": 1.0,
                   "side": "buy"} for i in range(3)]  # fmt: skip
        feed.tape.add_trades(symbol, trades)
        feed.tape.add_book(symbol, t0 + 10, [[99.0, 1.0]], [[101.0, 1.0]])
        feed.tape.seal(symbol, t0 + 60_000)
    assert feed.flush() == 0
    assert feed.status()["flow_flush_errors"] == 1
    blocked.unlink()  # space is back
    assert feed.flush() == 2 * 3 + 2 * 2
    store = ParquetStore(blocked)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        trades = store.read(DatasetKey.of(symbol, None, Kind.TRADES, exchange="binance"))
        assert trades.height == 3
