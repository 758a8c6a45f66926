"""Live order flow equals the batch path on the recorded stream.

The exchange feed streams a perpetual's klines, trades, book and mark price (funding) from
loopback Binance servers through ccxt.pro, attaches each candle's order-flow inputs as the
service sees them live, and records the tape in the Parquet store. Replaying the recording
through the batch path (``orderflow_columns`` on the stored trades, book and funding, then
``compute_features``) gives the same inputs and the same order-flow and sentiment features,
to 1e-9.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from fake_exchange import FakeBinance, serve
from fake_ws_binance import serve_ws

from tradebrain.core.events import CandleClosed
from tradebrain.data.schemas import TIMESTAMP, Kind
from tradebrain.data.store import DatasetKey, ParquetStore
from tradebrain.features.compute import compute_features
from tradebrain.features.live import LiveFeatureEngine
from tradebrain.features.live_orderflow import tail_candles
from tradebrain.features.orderflow_inputs import ORDERFLOW_COLUMNS, orderflow_columns
from tradebrain.features.registry import CANDLE_INPUTS
from tradebrain.service.exchange_feed import FUNDING_TIMEFRAME, ExchangeFeed

SYMBOL = "BTC/USDT:USDT"
TIMEFRAME = "5m"
STEP_MS = 300_000
START = datetime(2024, 1, 1, 5, 0, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
SETS = ["orderflow", "sentiment"]


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; {_taped.__doc__}")
        time.sleep(0.005)


def _taped(feed: ExchangeFeed, trades: int, book_ms: int) -> bool:
    """Whether the tape holds ``trades`` trades and a book snapshot taken at ``book_ms``."""
    tape = feed.tape
    counts = tape.counts() if tape is not None else {}
    newest = tape.last_book_ms(SYMBOL) if tape is not None else None
    _taped.__doc__ = f"the tape holds {counts}, its newest book at {newest}"
    return counts.get("trades") == trades and newest == book_ms


def _recorded(store: ParquetStore, kind: Kind) -> pl.DataFrame:
    timeframe = FUNDING_TIMEFRAME if kind is Kind.FUNDING else None
    return store.read(DatasetKey.of(SYMBOL, timeframe, kind, exchange="binance"))


def test_the_replayed_recording_gives_the_live_order_flow_inputs_and_features_to_1e_9(
    loopback_only: None, tmp_path: object
) -> None:
    candles = tail_candles(TIMEFRAME) + 30  # past the tail: the live inputs read a window
    rng = np.random.default_rng(11)
    store = ParquetStore(tmp_path)  # type: ignore[arg-type]
    with serve(FakeBinance(now=START)) as rest, serve_ws(rest) as ws:
        venue_ms = [START_MS]

        def clock() -> float:
            return venue_ms[0] / 1000

        def at(moment_ms: int) -> None:
            venue_ms[0] = moment_ms
            rest.now = datetime.fromtimestamp(moment_ms / 1000, UTC)

        ws.clock = clock
        feed = ExchangeFeed(
            "binance", (SYMBOL,), TIMEFRAME, api_url=rest.url, ws_url=ws.ws_urls(),
            stream="websocket", order_flow=True, store=store, clock=clock,
            flush_every_s=0.5,
        )  # fmt: skip
        stop = threading.Event()
        feed.resume({SYMBOL: datetime.fromtimestamp((START_MS - STEP_MS) / 1000, UTC)}, stop)
        events: list[CandleClosed] = []
        failures: list[BaseException] = []

        def pump() -> None:
            try:
                events.extend(feed)
            except BaseException as error:  # shown by the assertion below
                failures.append(error)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        for stream in ("btcusdt@kline_5m", "btcusdt@trade", "btcusdt@markPrice@1s"):
            ws.wait_subscribed(stream, market="perp")
        _until(lambda: any("depth" in s for s in ws.subscriptions("perp")), "the book stream")
        trades = books = 0
        price = 100.0
        next_funding_ms = START_MS + 3 * 3_600_000
        for k in range(candles):
            open_ms = START_MS + k * STEP_MS
            for second in sorted(
                rng.choice(np.arange(1, 299), size=rng.integers(3, 15), replace=False)
            ):
                at(open_ms + int(second) * 1000)
                price = round(price * math.exp(rng.normal(0, 0.001)), 2)
                amount = round(float(rng.lognormal(-1.0, 1.0)), 4)
                side = "buy" if rng.random() < 0.5 else "sell"
                ws.push_trade(SYMBOL, price, amount, side=side, time_ms=venue_ms[0])
                trades += 1
            for second in (100, 200):
                at(open_ms + second * 1000 + 500)
                bids = [
                    (round(price - 0.5 * (i + 1), 2), round(float(rng.uniform(0.1, 5)), 3))
                    for i in range(25)
                ]
                asks = [
                    (round(price + 0.5 * (i + 1), 2), round(float(rng.uniform(0.1, 5)), 3))
                    for i in range(25)
                ]
                ws.set_book(SYMBOL, bids, asks)
                books = venue_ms[0]  # the newest snapshot's time
            if open_ms + STEP_MS >= next_funding_ms:
                next_funding_ms += 8 * 3_600_000
            rate = round(float(rng.normal(0.0001, 0.0001)), 6)
            ws.push_mark_price(SYMBOL, price, funding_rate=rate, next_funding_ms=next_funding_ms)
            _until(
                lambda t=trades, b=books: _taped(feed, t, b),
                f"candle {k}'s {trades} trades and book on the tape",
            )
            at(open_ms + STEP_MS + 20)
            ohlc = [open_ms, price, price + 1.0, price - 1.0, price, 10.0 + k]
            ws.push_kline(SYMBOL, ohlc, closed=True, interval=TIMEFRAME)
            _until(lambda n=k + 1: len(events) == n or bool(failures), f"candle {k}")
        stop.set()
        thread.join(timeout=15)
        status = feed.status()
    assert not failures, failures
    assert len(events) == candles
    assert status["websocket_candles"] == candles and status["rest_candles"] == 0
    assert status["flow"]["late_trades"] == 0 and status["flow"]["late_books"] == 0

    # The batch path, on the recording alone.
    frame = pl.DataFrame(
        {
            "timestamp": [e.open_time for e in events],
            "open": [e.open for e in events],
            "high": [e.high for e in events],
            "low": [e.low for e in events],
            "close": [e.close for e in events],
            "volume": [e.volume for e in events],
        }
    ).with_columns(pl.col("timestamp").cast(TIMESTAMP))
    recorded = {kind: _recorded(store, kind) for kind in (Kind.TRADES, Kind.BOOK, Kind.FUNDING)}
    assert recorded[Kind.TRADES].height == trades
    assert recorded[Kind.FUNDING].height >= 1
    batch = orderflow_columns(
        frame, TIMEFRAME, trades=recorded[Kind.TRADES], book=recorded[Kind.BOOK],
        funding=recorded[Kind.FUNDING],
    )  # fmt: skip
    live = np.array([e.flow for e in events], dtype=np.float64)
    expected = batch.select(ORDERFLOW_COLUMNS).to_numpy()
    assert live.shape == expected.shape
    assert np.array_equal(np.isnan(live), np.isnan(expected))
    difference = np.nanmax(np.abs(live - expected) / np.maximum(1.0, np.abs(expected)))
    assert difference <= 1e-9, f"live inputs differ from batch by {difference:.3g}"
    assert np.isfinite(live[-1]).sum() >= len(ORDERFLOW_COLUMNS) - 1  # warmed up: real values

    # ... and the features computed from them, live row by row and batch on the whole.
    engine = LiveFeatureEngine(SETS, inputs=(*CANDLE_INPUTS, *ORDERFLOW_COLUMNS))
    rows = []
    for event in events:
        candle = {
            "timestamp": event.open_time, "open": event.open, "high": event.high,
            "low": event.low, "close": event.close, "volume": event.volume,
            **dict(zip(ORDERFLOW_COLUMNS, event.flow or (), strict=True)),
        }  # fmt: skip
        rows.append(engine.update_row(candle).copy())
    features = compute_features(batch, SETS).select(engine.feature_names).to_numpy()
    features = np.where(np.equal(features, None), np.nan, features).astype(np.float64)
    live_features = np.array(rows)
    assert np.array_equal(np.isnan(live_features), np.isnan(features))
    gap = np.nanmax(np.abs(live_features - features) / np.maximum(1.0, np.abs(features)))
    assert gap <= 1e-9, f"live features differ from batch by {gap:.3g}"
