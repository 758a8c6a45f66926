"""An unexpected failure is a counted, logged 500 whose body tells nothing inside."""

from __future__ import annotations

import logging

import pytest
from conftest import TOKEN
from fastapi.testclient import TestClient
from service_double import ServiceDouble

from tradebrain.api._errors import INTERNAL_ERROR


def _api_errors(service: ServiceDouble) -> float:
    value = service.metrics.registry.get_sample_value("tradebrain_errors_total", {"kind": "api"})
    return value or 0.0


def test_a_crashing_service_method_is_a_generic_500_counted_as_api_error(
    client: TestClient, service: ServiceDouble, caplog: pytest.LogCaptureFixture
) -> None:
    service.failing.add("positions")
    with caplog.at_level(logging.ERROR, logger="tradebrain.api"):
        response = client.get("/api/positions")
    assert response.status_code == 500
    assert response.json() == {"detail": INTERNAL_ERROR}
    assert "/srv/state.db" not in response.text
    assert _api_errors(service) == 1.0
    assert "GET /api/positions failed" in caplog.text
    assert "positions exploded" in caplog.text  # the traceback is in the log
    assert TOKEN not in caplog.text


def test_a_service_answer_of_the_wrong_shape_is_a_500_not_a_broken_body(
    client: TestClient, service: ServiceDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "control", lambda: {"state": "dancing", "reason": ""})
    response = client.post("/api/control/resume")
    assert response.status_code == 200  # resume does not call control()
    monkeypatch.setattr(service, "resume", lambda: {"state": "dancing", "reason": ""})
    response = client.post("/api/control/resume")
    assert response.status_code == 500
    assert response.json() == {"detail": INTERNAL_ERROR}
    assert _api_errors(service) == 1.0


def test_user_errors_are_not_counted_as_api_errors(
    client: TestClient, service: ServiceDouble
) -> None:
    client.post("/predict/single", json={"symbol": "BTC/USDT", "timeframe": "5m"})
    client.get("/models/none/status")
    assert _api_errors(service) == 0.0
