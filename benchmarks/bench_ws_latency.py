"""Benchmark: from a venue's closed candle to the service's decision, websocket vs REST polling.

Run: ``.venv/bin/python benchmarks/bench_ws_latency.py [--candles 300] [--rest-candles 60]``

A paper service (the real runner: features, every model, brain, risk, the state store's
transaction) listens to loopback Binance servers (``tests/fake_exchange.py`` for REST,
``tests/fake_ws_binance.py`` for the websocket, ccxt and ccxt.pro unmodified) on 1-second
candles in real time. The venue closes each candle on its second; on the websocket path it
pushes the kline with its closed flag at that moment. The latency of a candle is the wall time
from its close to the moment ``Runner.step`` has decided and saved it. REST polling (the same
service with ``--stream rest`` and the default 1 s poll interval) is measured beside it, in
the same run. The issue's bar: p99 <= 50 ms through the websocket.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # what `tradebrain serve` runs with

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_exchange import FakeBinance, serve
from fake_ws_binance import serve_ws

from tradebrain.config import Settings
from tradebrain.service.exchange_feed import ExchangeFeed
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService

SYMBOL = "BTC/USDT"
START = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)  # 10,800 one-second candles of history before it


def _measure(
    stream: str, candles: int, warmup: int, home: Path, models: Path | None
) -> tuple[list[float], Path | None, dict[str, object]]:
    """Run the service on ``candles`` live candles; return close-to-decision seconds."""
    t0 = time.time()

    def venue_clock() -> float:
        return START.timestamp() + (time.time() - t0)

    with serve(FakeBinance(now=START)) as rest, serve_ws(rest) as ws:
        ws.clock = venue_clock
        ticking = threading.Event()

        def tick() -> None:  # the REST venue's clock follows the real one
            while not ticking.wait(0.002):
                rest.now = datetime.fromtimestamp(venue_clock(), UTC)

        threading.Thread(target=tick, daemon=True).start()
        feed = ExchangeFeed(
            "binance", (SYMBOL,), "1s", api_url=rest.url, ws_url=ws.ws_urls(), stream=stream,
            clock=venue_clock,
        )  # fmt: skip
        settings = Settings.model_validate({"home": home})
        options = ServeOptions(
            feed="exchange:binance", symbols=(SYMBOL,), timeframe="1s", warmup=warmup,
            state=str(home / f"{stream}.db"), models=models, stream=stream,
        )  # fmt: skip
        service = TradingService(options, settings, feed=feed)
        runner = service.runner
        runner.prepare()
        status: dict[str, object] = {}
        stop = threading.Event()
        pushing = threading.Thread(target=_push, args=(rest, ws, venue_clock, stop), daemon=True)
        if stream == "websocket":
            pushing.start()
        latencies: list[float] = []
        saved: list[float] = []
        strategy = runner.runs[SYMBOL].strategy
        decide = strategy.on_candle
        decided_at = [0.0]

        def timed(context: object, candle: object) -> object:
            orders = decide(context, candle)  # type: ignore[arg-type]
            decided_at[0] = time.time()
            return orders

        strategy.on_candle = timed  # type: ignore[method-assign]
        for candle in runner.feed.resume(runner.after, stop):
            runner.step(candle)
            closed = t0 + (candle.close_time.timestamp() - START.timestamp())
            latencies.append(decided_at[0] - closed)
            saved.append(time.time() - closed)
            if len(latencies) >= candles:
                stop.set()
        status.update(feed.status())
        status["saved_p99_ms"] = float(np.percentile(np.array(saved[5:]) * 1000, 99))
        ticking.set()
        return latencies, runner.bundle_dir, status


def _push(rest: FakeBinance, ws: object, clock: object, stop: threading.Event) -> None:
    """Close each one-second candle on its second: push its kline with the closed flag."""
    next_close = int(clock()) + 1  # type: ignore[operator]
    while not stop.is_set():
        wait = next_close - clock()  # type: ignore[operator]
        if wait > 0:
            time.sleep(wait)
        open_ms = (next_close - 1) * 1000
        rows = [r for r in rest.candles("BTCUSDT", "1s", open_ms) if r[0] == open_ms]
        if rows:
            ws.push_kline(SYMBOL, rows[0], closed=True, interval="1s")  # type: ignore[attr-defined]
        next_close += 1


def _summary(name: str, seconds: list[float]) -> dict[str, float]:
    values = np.array(seconds[5:]) * 1000  # the first candles include the stream's start
    found = {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
    }
    print(
        f"{name:>10}: {values.size} candles  p50 {found['p50']:7.1f} ms  "
        f"p99 {found['p99']:7.1f} ms  max {found['max']:7.1f} ms"
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=300, help="websocket candles timed")
    parser.add_argument("--rest-candles", type=int, default=60, help="REST candles timed")
    parser.add_argument("--warmup", type=int, default=3_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        print(f"REST polling: training the default models on {arguments.warmup} candles first")
        rest_latencies, models, rest_status = _measure(
            "rest", arguments.rest_candles, arguments.warmup, home, None
        )
        print(f"websocket: {arguments.candles} candles of 1 s, the same models")
        ws_latencies, _, ws_status = _measure(
            "websocket", arguments.candles, arguments.warmup, home, models
        )
        print()
        rest = _summary("REST", rest_latencies)
        ws = _summary("websocket", ws_latencies)
        print(f"\nwebsocket p99 / REST p99 = {ws['p99'] / rest['p99']:.3f}")
        print(
            f"decided and saved (the state store's transaction too): p99 REST "
            f"{rest_status['saved_p99_ms']:.1f} ms, websocket {ws_status['saved_p99_ms']:.1f} ms"
        )
        print(
            f"websocket path: {ws_status['websocket_candles']} candles by websocket, "
            f"{ws_status['rest_candles']} by REST (backfills)"
        )
        verdict = "met" if ws["p99"] <= 50 else "NOT met"
        print(f"issue bar p99 <= 50 ms through the websocket, to the decision: {verdict}")


if __name__ == "__main__":
    main()
