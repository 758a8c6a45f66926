"""Live feeds for the service: where new candles come from while it runs.

A :class:`LiveFeed` is an engine :class:`~tradebrain.engine.ports.Feed` that also gives each
symbol's warm-up history and can resume after the last candle a run handled: iterating it
yields new closed candles as they happen, blocking between them. Three kinds, chosen by
``--feed``:

- ``synthetic`` — the embedded default: a seeded synthetic market (one per symbol) ticked in
  accelerated real time, ``speed`` candles per second;
- ``replay:PATH`` — a stored candle file or dataset replayed at ``speed`` candles per second
  (the first ``warmup`` candles are the history);
- ``exchange:NAME`` — closed candles streamed from a venue through ccxt
  (:mod:`tradebrain.data.stream`).

Synthetic and replay feeds are tapes: candle ``k`` is always the same candle, so a restarted
service resumes right after the last candle it recorded (``after``) — nothing is skipped,
nothing is handled twice. An exchange feed backfills missed candles through REST instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from tradebrain.config import Settings
from tradebrain.core.events import CandleClosed, make_candle, to_datetime
from tradebrain.data.planted_edge import EdgeKind
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.engine.ports import Feed
from tradebrain.exceptions import UserInputError
from tradebrain.service.options import ServeOptions

SYNTHETIC_BARS = 100_000
"""Length of each synthetic tape: at 10 candles/s, close to three hours of running."""
PAYING_EDGE: EdgeKind = "trend"
PAYING_SIGNAL = 0.08
"""The default synthetic world: a persistent trend whose oracle earns well after costs."""


class LiveFeed(Feed, Protocol):
    """New closed candles for the service, after a warm-up history.

    Iterating it yields closed candles of every symbol in time order, from right after the
    point :meth:`resume` set (the feed's own starting point when it was never called); it
    blocks between candles and ends when the ``stop`` given to :meth:`resume` is set or the
    feed has no more data.
    """

    name: str
    symbols: tuple[str, ...]
    timeframe: str

    def history(self, symbol: str, bars: int, until: datetime | None) -> pl.DataFrame:
        """Return the newest ``bars`` closed candles opened at or before ``until``.

        ``until`` is the open time of the last candle the service already handled (a
        restart), or None for the feed's own starting point.
        """
        ...

    def resume(self, after: Mapping[str, datetime | None], stop: threading.Event) -> LiveFeed:
        """Start the next iteration after the candle opened at ``after[symbol]`` (None or
        missing: the feed's own starting point); end it once ``stop`` is set. Return self."""
        ...

    def __iter__(self) -> Iterator[CandleClosed]: ...

    def status(self) -> dict[str, Any]:
        """``{"feed": name, "connected": bool, "lag_s": float | None, ...}``."""
        ...


@dataclass
class _Tape:
    open_us: np.ndarray
    columns: tuple[list[float], list[float], list[float], list[float], list[float]]
    frame: pl.DataFrame


class TapeFeed:
    """Candles known in advance (synthetic or a file), released at ``speed`` candles/s.

    Parameters
    ----------
    name
        ``"synthetic"`` or ``"replay:PATH"``, shown in status.
    tapes
        Symbol -> candle frame (candle schema, sorted, all on one timeframe).
    timeframe
        The candles' timeframe.
    warmup
        Candles before the starting point of a fresh run (the first history).
    speed
        Candles released per second (per symbol); 0 releases them as fast as they are taken.
    """

    def __init__(
        self,
        name: str,
        tapes: Mapping[str, pl.DataFrame],
        timeframe: str,
        *,
        warmup: int,
        speed: float,
    ) -> None:
        if speed < 0:
            raise UserInputError(f"--speed must be >= 0 candles per second, got {speed}")
        self.name = name
        self.symbols = tuple(tapes)
        self.timeframe = timeframe
        self.speed = speed
        self._step_us = timeframe_seconds(timeframe) * 1_000_000
        self._tapes: dict[str, _Tape] = {}
        for symbol, frame in tapes.items():
            if frame.height <= warmup:
                raise UserInputError(
                    f"{name}: {symbol} has {frame.height} candles, fewer than the warm-up of "
                    f"{warmup}; give more data or a smaller --warmup"
                )
            open_us = frame["timestamp"].dt.epoch("us").to_numpy().astype(np.int64)
            columns = tuple(
                frame[c].cast(pl.Float64).to_list()
                for c in ("open", "high", "low", "close", "volume")
            )
            self._tapes[symbol] = _Tape(open_us, columns, frame)  # type: ignore[arg-type]
        self._warmup = warmup
        self._released: dict[str, int] = {}
        self._last_release = 0.0
        self._lock = threading.Lock()
        self._after: dict[str, datetime | None] = {}
        self._stop = threading.Event()

    def _index_after(self, symbol: str, after: datetime | None) -> int:
        """Return the index of the first candle to release (the warm-up end when fresh)."""
        tape = self._tapes[symbol]
        if after is None:
            return self._warmup
        after_us = int((after - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6)
        return int(np.searchsorted(tape.open_us, after_us, side="right"))

    def history(self, symbol: str, bars: int, until: datetime | None) -> pl.DataFrame:
        """Return the ``bars`` candles before the first one this feed will release."""
        self._check(symbol)
        end = self._index_after(symbol, until)
        return self._tapes[symbol].frame.slice(max(0, end - bars), min(bars, end))

    def resume(self, after: Mapping[str, datetime | None], stop: threading.Event) -> TapeFeed:
        """Release from after ``after[symbol]`` (see :class:`LiveFeed`) until ``stop``."""
        self._after = dict(after)
        self._stop = stop
        return self

    def __iter__(self) -> Iterator[CandleClosed]:
        """Release candles in time order, ``speed`` per second, until the tapes end."""
        after, stop = self._after, self._stop
        cursor = {s: self._index_after(s, after.get(s)) for s in self.symbols}
        pause = 1.0 / self.speed if self.speed > 0 else 0.0
        step_us = self._step_us
        while not stop.is_set():
            pending = [
                (int(self._tapes[s].open_us[i]), n, s)
                for n, s in enumerate(self.symbols)
                if (i := cursor[s]) < len(self._tapes[s].open_us)
            ]
            if not pending:
                return
            open_us = min(pending)[0]
            for candle_us, _, symbol in sorted(pending):
                if candle_us != open_us:
                    continue
                tape = self._tapes[symbol]
                index = cursor[symbol]
                o, h, low, c, v = (column[index] for column in tape.columns)
                cursor[symbol] = index + 1
                with self._lock:
                    self._released[symbol] = index
                yield make_candle(
                    symbol, to_datetime(candle_us), to_datetime(candle_us + step_us),
                    o, h, low, c, v,
                )  # fmt: skip
            if pause and stop.wait(pause):
                return

    def status(self) -> dict[str, Any]:
        """Say how far each tape has been released."""
        with self._lock:
            released = dict(self._released)
        return {
            "feed": self.name,
            "connected": True,
            "lag_s": 0.0,
            "speed": self.speed,
            "remaining": {
                s: len(self._tapes[s].open_us) - 1 - released.get(s, self._warmup - 1)
                for s in self.symbols
            },
        }

    def _check(self, symbol: str) -> None:
        if symbol not in self._tapes:
            raise UserInputError(f"{self.name} has no symbol {symbol!r}; it has {self.symbols}")


def synthetic_feed(
    symbols: list[str],
    timeframe: str,
    *,
    seed: int,
    warmup: int,
    speed: float,
    signal: float = PAYING_SIGNAL,
    edge: EdgeKind = PAYING_EDGE,
    bars: int = SYNTHETIC_BARS,
) -> TapeFeed:
    """Return a feed of seeded synthetic markets, one per symbol (seed, seed + 1, ...).

    The markets carry a planted edge of strength ``signal`` (see
    :mod:`tradebrain.data.synthetic`): by default a persistent trend that pays after costs, so
    the models have something real to find and the brain something worth trading.
    """
    tapes = {}
    for n, symbol in enumerate(symbols):
        config = SyntheticConfig(
            bars=bars, timeframe=timeframe, seed=seed + n, signal=signal, edge=edge,
            start_price=30_000.0 / (1 + n),
        )  # fmt: skip
        tapes[symbol] = generate_market(config).candles
    return TapeFeed("synthetic", tapes, timeframe, warmup=warmup, speed=speed)


def replay_feed(
    path: Path,
    symbols: list[str],
    timeframe: str | None,
    *,
    warmup: int,
    speed: float,
    store: Any,
) -> tuple[TapeFeed, str]:
    """Return a feed replaying one candle file (or stored dataset) as ``symbols[0]``.

    Returns the feed and the data's timeframe (inferred from the file when not given).
    """
    from tradebrain.data.loading import load_market_data

    if len(symbols) != 1:
        raise UserInputError(
            f"--feed replay:PATH replays one candle file, so give one symbol, not {symbols}"
        )
    loaded = load_market_data(path, store, "candles", timeframe=timeframe)
    if loaded.timeframe is None:
        raise UserInputError(f"{path}: could not tell the timeframe; pass --timeframe")
    if timeframe is not None and loaded.timeframe != timeframe:
        raise UserInputError(
            f"{path} holds {loaded.timeframe} candles, but --timeframe is {timeframe}"
        )
    feed = TapeFeed(
        f"replay:{path}", {symbols[0]: loaded.frame}, loaded.timeframe,
        warmup=warmup, speed=speed,
    )  # fmt: skip
    return feed, loaded.timeframe


def make_feed(options: ServeOptions, settings: Settings) -> LiveFeed:
    """Return the feed ``options.feed`` names."""
    kind = options.feed_kind
    if kind == "synthetic":
        return synthetic_feed(
            list(options.symbols), options.timeframe, seed=options.seed,
            warmup=options.warmup, speed=options.speed,
        )  # fmt: skip
    if kind == "replay":
        from tradebrain.data.store import ParquetStore

        store = ParquetStore(settings.home / "store")
        feed, _ = replay_feed(
            Path(options.feed_target), list(options.symbols), options.timeframe,
            warmup=options.warmup, speed=options.speed, store=store,
        )  # fmt: skip
        return feed
    from tradebrain.service.exchange_feed import exchange_feed

    return exchange_feed(options, settings.home)
