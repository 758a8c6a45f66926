"""An unexpected failure is a counted, logged 500 whose body tells nothing inside.

The real service fails neither way on demand, so each test breaks one method of a real service
of its own (``monkeypatch``): a crash, or an answer of the wrong shape. The rest is real.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TOKEN, client_of
from fastapi.testclient import TestClient

from tradebrain.api._errors import INTERNAL_ERROR
from tradebrain.service.service import TradingService


@pytest.fixture
def broken(unstarted_service: TradingService) -> TradingService:
    """A real service of this test alone, whose methods the test may break."""
    return unstarted_service


@pytest.fixture
def client(broken: TradingService) -> Iterator[TestClient]:
    """A client (with the token) of the API over ``broken``."""
    with client_of(broken) as client:
        yield client


def _api_errors(service: TradingService) -> float:
    value = service.metrics.registry.get_sample_value("tradebrain_errors_total", {"kind": "api"})
    return value or 0.0


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("positions exploded (secret internals: /srv/state.db)")


def test_a_crashing_service_method_is_a_generic_500_counted_as_api_error(
    client: TestClient,
    broken: TradingService,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broken, "positions", _explode)
    with caplog.at_level(logging.ERROR, logger="tradebrain.api"):
        response = client.get("/api/positions")
    assert response.status_code == 500
    assert response.json() == {"detail": INTERNAL_ERROR}
    assert "/srv/state.db" not in response.text
    assert _api_errors(broken) == 1.0
    assert "GET /api/positions failed" in caplog.text
    assert "positions exploded" in caplog.text  # the traceback is in the log
    assert TOKEN not in caplog.text


def test_a_service_answer_of_the_wrong_shape_is_a_500_not_a_broken_body(
    client: TestClient, broken: TradingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broken, "pause", lambda: {"state": "dancing", "reason": ""})
    response = client.post("/api/control/pause")
    assert response.status_code == 500
    assert response.json() == {"detail": INTERNAL_ERROR}
    assert _api_errors(broken) == 1.0


def test_user_errors_are_not_counted_as_api_errors(
    client: TestClient, broken: TradingService
) -> None:
    wrong_timeframe = {"symbol": "BTC/USDT", "timeframe": "5m"}
    assert client.post("/predict/single", json=wrong_timeframe).status_code == 422
    assert client.get("/models/none/status").status_code == 404
    assert client.get("/api/ai/live", params={"symbol": "DOGE/USDT"}).status_code == 404
    assert _api_errors(broken) == 0.0
