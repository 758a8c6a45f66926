"""Tape feeds (synthetic and replay) release candles in order and resume where a run stopped."""

from __future__ import annotations

import threading
import time

import polars as pl
import pytest

from tests.builders import make_candles
from tradebrain.exceptions import UserInputError
from tradebrain.service.feeds import TapeFeed, replay_feed, synthetic_feed


def _feed(speed: float = 0.0, n: int = 40, warmup: int = 10) -> TapeFeed:
    tapes = {"BTC/USDT": make_candles(n, seed=1), "ETH/USDT": make_candles(n, seed=2)}
    return TapeFeed("test", tapes, "1h", warmup=warmup, speed=speed)


def test_a_fresh_run_gets_the_warm_up_as_history_and_every_later_candle_once_in_order() -> None:
    feed = _feed()
    history = feed.history("BTC/USDT", 10, None)
    assert history.height == 10
    events = list(feed.resume({}, threading.Event()))
    assert len(events) == 2 * 30
    times = [(e.open_time, e.symbol) for e in events]
    assert times == sorted(times, key=lambda t: (t[0], t[1] != "BTC/USDT"))
    first = events[0]
    assert first.open_time == make_candles(40, seed=1)["timestamp"][10]
    assert first.close == make_candles(40, seed=1)["close"][10]


def test_a_restarted_run_resumes_right_after_the_last_candle_it_handled() -> None:
    feed = _feed()
    candles = make_candles(40, seed=1)
    last = candles["timestamp"][24]
    after = {"BTC/USDT": last, "ETH/USDT": last}
    history = feed.history("BTC/USDT", 5, last)
    assert history["timestamp"].to_list() == candles["timestamp"][20:25].to_list()
    events = list(feed.resume(after, threading.Event()))
    assert events[0].open_time == candles["timestamp"][25]
    assert len(events) == 2 * 15


def test_the_feed_paces_candles_at_its_speed_and_stops_when_asked() -> None:
    feed = _feed(speed=50.0)
    stop = threading.Event()
    started = time.monotonic()
    seen = []
    for event in feed.resume({}, stop):
        seen.append(event)
        if len(seen) == 10:  # 5 instants x 2 symbols
            stop.set()
    elapsed = time.monotonic() - started
    assert len(seen) == 10
    assert elapsed >= 4 / 50.0


def test_the_synthetic_feed_is_the_same_market_every_time_for_one_seed() -> None:
    one = synthetic_feed(["BTC/USDT"], "1h", seed=3, warmup=400, speed=0, bars=800)
    two = synthetic_feed(["BTC/USDT"], "1h", seed=3, warmup=400, speed=0, bars=800)
    assert one.history("BTC/USDT", 400, None).equals(two.history("BTC/USDT", 400, None))
    first = next(iter(one.resume({}, threading.Event())))
    assert first == next(iter(two.resume({}, threading.Event())))


def test_a_replay_of_a_file_needs_one_symbol_and_its_timeframe(tmp_path) -> None:
    path = tmp_path / "c.parquet"
    make_candles(50).write_parquet(path)
    feed, timeframe = replay_feed(path, ["X/USDT"], None, warmup=20, speed=0, store=None)
    assert timeframe == "1h"
    assert len(list(feed.resume({}, threading.Event()))) == 30
    with pytest.raises(UserInputError, match="one symbol"):
        replay_feed(path, ["X/USDT", "Y/USDT"], None, warmup=20, speed=0, store=None)
    with pytest.raises(UserInputError, match="4h"):
        replay_feed(path, ["X/USDT"], "4h", warmup=20, speed=0, store=None)


def test_too_little_data_for_the_warm_up_is_refused_with_the_numbers() -> None:
    with pytest.raises(UserInputError, match="fewer than the warm-up of 60"):
        TapeFeed("t", {"A/B": make_candles(50)}, "1h", warmup=60, speed=0)
    with pytest.raises(UserInputError, match="speed"):
        TapeFeed("t", {"A/B": make_candles(50)}, "1h", warmup=10, speed=-1)
    assert isinstance(_feed().history("BTC/USDT", 3, None), pl.DataFrame)
