"""Fixtures of the API tests: real trading services, the app over one, and clients.

Every service here is a real :class:`~tradebrain.service.service.TradingService` on a seeded
synthetic tape of two symbols (see :mod:`real_service`). The shared ``service`` has traded 1200
candles and is only read; a test that changes control state builds its own with
``new_service``. There is no test double: the error tests break one method of a real service
of their own with ``monkeypatch``, the one thing the real service does not do on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from real_service import build_service, run_to_end

from tradebrain.api import create_app
from tradebrain.service.service import TradingService

TOKEN = "test-token-7f3a9c"
TRADED_CANDLES = 1200
"""Candles the shared service trades: enough for more closed trades than a dashboard page shows."""
NEW_CANDLES = 150
"""Candles a fresh service trades by default."""

NewService = Callable[..., TradingService]


@pytest.fixture(scope="session")
def traded_service(tmp_path_factory: pytest.TempPathFactory) -> TradingService:
    """A real service that trained on its warm-up and traded ``TRADED_CANDLES`` candles."""
    home = tmp_path_factory.mktemp("traded")
    return run_to_end(build_service(home, candles=TRADED_CANDLES))


@pytest.fixture(scope="session")
def trained_models(traded_service: TradingService) -> Path:
    """The model folder ``traded_service`` trained (other services load it, skipping training)."""
    folder: Path = traded_service.runner.model_dir
    assert (folder / "manifest.json").exists()
    return folder


@pytest.fixture
def service(traded_service: TradingService) -> Iterator[TradingService]:
    """The shared traded service, to be read only: a test that changes its control fails."""
    yield traded_service
    state = traded_service.control()["state"]
    assert state == "running", f"a test left the shared service {state}; use new_service"


@pytest.fixture
def new_service(tmp_path: Path, trained_models: Path) -> Iterator[NewService]:
    """A factory of fresh real services on the trained models, each stopped at teardown.

    ``new_service(candles=150, speed=0.0)`` returns a service that is not started yet.
    """
    made: list[TradingService] = []

    def make(*, candles: int = NEW_CANDLES, speed: float = 0.0) -> TradingService:
        home = tmp_path / f"service-{len(made)}"
        made.append(build_service(home, candles=candles, speed=speed, models=trained_models))
        return made[-1]

    yield make
    for service in made:
        service.stop()


@pytest.fixture
def unstarted_service(tmp_path: Path) -> TradingService:
    """A real service not started yet: warming up, no models, no decision, control of its own."""
    return build_service(tmp_path / "unstarted", candles=NEW_CANDLES)


@pytest.fixture
def app(service: TradingService) -> FastAPI:
    """The API over the shared traded service, demanding ``TOKEN``."""
    return create_app(service, token=TOKEN)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client that sends the right bearer token."""
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    """A client that sends no token."""
    with TestClient(app) as client:
        yield client


def client_of(service: TradingService) -> TestClient:
    """Return a client (with the token) of the API over ``service``; use it in ``with``."""
    return TestClient(
        create_app(service, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}
    )
