"""Real trading services for the API tests, built and run in-process on a synthetic tape.

The API tests run against :class:`~tradebrain.service.service.TradingService` itself: no mock
where the real part runs. Training the models on the warm-up takes a few seconds, so each test
process trains once (the ``traded_service`` fixture); every other service loads that model
folder, as ``tradebrain serve --models DIR`` does, and is ready in a few hundredths of a second.
The tape is seeded, so two services given the same candles decide and trade the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from tradebrain.config import Settings
from tradebrain.service.feeds import synthetic_feed
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService

SYMBOLS = ("BTC/USDT", "ETH/USDT")
TIMEFRAME = "1h"
WARMUP = 20_000
CASH = 10_000.0
RUN = "paper"  # the run's name in the state database (its mode)

_T = TypeVar("_T")


def build_service(
    home: Path,
    *,
    candles: int,
    speed: float = 0.0,
    models: Path | None = None,
    warmup: int = WARMUP,
    settings: Mapping[str, Any] | None = None,
) -> TradingService:
    """Return a service (not started) that will trade ``candles`` candles after its warm-up.

    Parameters
    ----------
    home
        Its home folder; the state database is ``home/state.db``.
    candles
        Candles of each symbol released after the ``warmup`` candles of history.
    speed
        Candles per second (0: as fast as the runner takes them).
    models
        A model folder to load; None: train on the warm-up (a few seconds).
    warmup
        Candles of history of each symbol before trading starts.
    settings
        Sections of the settings that replace the defaults here (``models`` trains logistic
        and LightGBM), e.g. ``{"learning": {"enabled": True}}``.
    """
    options = ServeOptions(
        warmup=warmup, speed=speed, state=str(home / "state.db"), symbols=SYMBOLS,
        timeframe=TIMEFRAME, cash=CASH, models=models,
    )  # fmt: skip
    feed = synthetic_feed(
        list(SYMBOLS), TIMEFRAME, seed=7, warmup=warmup, speed=speed, bars=warmup + candles
    )
    chosen = {"models": {"enabled": ["logistic", "lightgbm"]}, **(settings or {})}
    return TradingService(options, Settings.model_validate({**chosen, "home": home}), feed=feed)


LEARNING_WARMUP = 2000
"""Warm-up of a learning service: the logistic model trains on it, and so does a retraining."""
LEARNING = {
    "models": {"enabled": ["logistic"]},
    # Only the operator starts a retraining here, on the newest 2000 candles (a few seconds).
    "learning": {"enabled": True, "retrain_every_bars": 1_000_000, "max_train_bars": 2000},
}


def build_learning_service(home: Path, *, candles: int, speed: float) -> TradingService:
    """Return a service (not started) with the learning loop on and a logistic model only.

    It trains on its ``LEARNING_WARMUP`` candles and registers that model as production v1 in
    the MLflow registry under ``home`` (a few seconds; the registry's first start is most).
    """
    return build_service(
        home, candles=candles, speed=speed, warmup=LEARNING_WARMUP, settings=LEARNING
    )


def wait_for(condition: Callable[[], _T], what: str, timeout: float = 20.0) -> _T:
    """Poll ``condition`` every 20 ms until it is truthy, and return its value.

    Raises
    ------
    AssertionError
        Naming ``what`` when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.02)
    return value


def run_to_end(service: TradingService, timeout: float = 180.0) -> TradingService:
    """Start ``service``, wait until it has traded its whole tape, and return it."""
    service.start()
    wait_for(lambda: service.phase not in ("starting", "warming_up", "running"), "the tape's end",
             timeout)  # fmt: skip
    assert service.phase == "finished", service.error
    return service


def start_trading(service: TradingService, timeout: float = 120.0) -> TradingService:
    """Start ``service`` and wait until it has decided on a candle of every symbol."""
    service.start()
    wait_for(
        lambda: service.phase == "failed" or len(service.top_predictions(len(SYMBOLS))) == 2,
        "a decision on every symbol",
        timeout,
    )
    assert service.phase == "running", service.error
    return service


def decisions_made(service: TradingService) -> int:
    """Return how many decisions the service has recorded."""
    return int(service.store.counts(RUN)["decisions"])


def candles_body(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Return candles (candle schema) as the ``candles`` of a predict request body."""
    return [
        {"timestamp": row["timestamp"].isoformat(), "open": row["open"], "high": row["high"],
         "low": row["low"], "close": row["close"], "volume": row["volume"]}
        for row in frame.iter_rows(named=True)
    ]  # fmt: skip
