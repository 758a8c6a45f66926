"""Fixtures shared by every test: candle frames, real data, and a fake exchange on 127.0.0.1."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before lightgbm/xgboost load OpenMP

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from builders import REAL_DATA, CandleMaker, make_candles, skip_without_real_data
from fake_exchange import FakeBinance, serve

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}

# Property tests draw the same examples on every run unless asked to explore: a CI failure can
# be reproduced, and a green run is not luck. No deadline: a loaded 2-core machine is slow.
# HYPOTHESIS_PROFILE=explore draws new examples each run.
hypothesis.settings.register_profile("ci", derandomize=True, database=None, deadline=None)
hypothesis.settings.register_profile("explore", deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def candles() -> CandleMaker:
    """A factory of valid candle frames: ``candles(n=50, timeframe="1h", seed=0)``."""
    return make_candles


@pytest.fixture
def real_data() -> Path:
    """The folder of real exchange data; the test is skipped when it is absent."""
    if not REAL_DATA.is_dir():
        skip_without_real_data(f"real market data not found at {REAL_DATA} (../shared/data/real)")
    return REAL_DATA


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to resolve or connect beyond 127.0.0.1 fail the test at once."""
    resolve = socket.getaddrinfo
    connect = socket.socket.connect

    def guarded_resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK:
            pytest.fail(f"a test tried to resolve {host!r}; tests may only use 127.0.0.1")
        return resolve(host, *args, **kwargs)

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in _LOOPBACK:
            pytest.fail(f"a test tried to connect to {address!r}; tests may only use 127.0.0.1")
        return connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_resolve)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture
def fake_binance(loopback_only: None) -> Iterator[FakeBinance]:
    """A fake Binance REST API served on a free port of 127.0.0.1 for one test."""
    with serve(FakeBinance()) as fake:
        yield fake
