"""The learning loop through the API: status, the model registry, retraining and refusals.

One real service of this module runs the learning loop (``learning.enabled``) with a logistic
model trained on a short warm-up, registered as production v1 in an MLflow registry under the
test's folder; it trades a long tape while the tests read it. A retraining runs in its worker
process and registers a candidate; a promotion or rollback the registry refuses answers with
the registry's reason. The shared traded service runs with the loop off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN
from fastapi.testclient import TestClient
from real_service import (
    LEARNING_WARMUP,
    SYMBOLS,
    TIMEFRAME,
    build_learning_service,
    start_trading,
    wait_for,
)

from tradebrain.api import create_app
from tradebrain.api._errors import INTERNAL_ERROR
from tradebrain.service.service import TradingService

LONG_TAPE = 5000  # candles at 20 a second: minutes, far more than this module needs
RETRAIN_SECONDS = 90.0  # a retraining on 2000 candles takes a few seconds; a slow CI more

LEARNING_ROUTES = [
    ("GET", "/api/ai/learning_status", None),
    ("GET", "/models/versions", None),
    ("POST", "/models/promote", {"version": 1, "reason": "test"}),
    ("POST", "/models/rollback", {"reason": "test"}),
    ("POST", "/api/ai/retrain", {"reason": "test"}),
]


@pytest.fixture(scope="module")
def learning_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TradingService]:
    """A real service with the learning loop on, trading 20 candles a second."""
    home = tmp_path_factory.mktemp("learning")
    service = start_trading(build_learning_service(home, candles=LONG_TAPE, speed=20))
    yield service
    service.stop()


@pytest.fixture
def learning_client(learning_service: TradingService) -> Iterator[TestClient]:
    """A client (with the token) of the API over the learning service."""
    app = create_app(learning_service, token=TOKEN)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def _version(client: TestClient, number: int) -> dict[str, Any]:
    """Return registry version ``number`` as /models/versions lists it (it must be there)."""
    response = client.get("/models/versions")
    assert response.status_code == 200, response.text
    found = [v for v in response.json() if v["version"] == number]
    assert found, f"version {number} is not listed: {response.json()}"
    return found[0]  # type: ignore[no-any-return]


def test_learning_status_says_the_loop_is_on_with_the_warm_up_model_as_production_v1(
    learning_client: TestClient,
) -> None:
    body = learning_client.get("/api/ai/learning_status").json()
    assert body["enabled"] is True
    assert body["production_version"] == 1
    assert "note" not in body
    assert body["monitor"]["version"] == 1
    assert body["next_retrain_in"] > 0 and body["bars_since_training"] >= 0
    assert set(body["experience"]) == {"decisions", "orders", "fills", "trades"}
    assert isinstance(body["trials"], int)


def test_model_versions_list_v1_as_production_with_its_lineage(
    learning_client: TestClient,
) -> None:
    v1 = _version(learning_client, 1)
    assert v1["status"] == "production" and v1["aliases"] == ["production"]
    assert v1["run_id"]
    lineage = v1["lineage"]
    assert (lineage["symbol"], lineage["timeframe"]) == (SYMBOLS[0], TIMEFRAME)
    assert lineage["source"] == "synthetic warm-up"
    assert lineage["rows"] == LEARNING_WARMUP
    assert lineage["parent"] is None
    assert len(lineage["data_hash"]) == 64 and lineage["data_start"] < lineage["data_end"]


def test_retrain_starts_a_retraining_that_registers_a_candidate_in_shadow(
    learning_client: TestClient,
) -> None:
    before = {v["version"] for v in learning_client.get("/models/versions").json()}
    response = learning_client.post("/api/ai/retrain", json={"reason": "operator test"})
    assert response.status_code == 200, response.text
    started = response.json()
    assert started["retraining"] is True and started["retraining_since"] is not None
    assert started["production_version"] == 1
    again = learning_client.post("/api/ai/retrain", json={"reason": "a second one"})
    assert again.status_code == 422  # the first takes seconds: it is still running
    assert again.json()["detail"] == "a retraining is already running; wait for it"

    def registered() -> dict[str, Any] | None:
        """Return the new version once its registration is complete (it has its alias)."""
        found = learning_client.get("/models/versions").json()
        return next((v for v in found if v["version"] not in before and v["aliases"]), None)

    candidate = wait_for(registered, "the retrained candidate", RETRAIN_SECONDS)
    assert candidate is not None
    assert candidate["status"] == "candidate" and candidate["aliases"] == ["candidate"]
    assert candidate["lineage"]["parent"] == 1
    assert candidate["lineage"]["source"] == "synthetic"
    assert candidate["metrics"]["rows"] == candidate["lineage"]["rows"] > 0

    def in_shadow() -> dict[str, Any] | None:
        body: dict[str, Any] = learning_client.get("/api/ai/learning_status").json()
        return body if body["candidate_version"] == candidate["version"] else None

    status = wait_for(in_shadow, "the candidate's shadow", 30.0)
    assert status is not None
    assert status["retraining"] is False
    assert status["last_retrain"]["version"] == candidate["version"]
    assert status["last_retrain"]["reason"] == "operator test"
    assert status["production_version"] == 1  # never promoted without the gates or the operator
    shadow = status["shadow"]
    assert len(shadow["candidate_equity"]) == len(shadow["production_equity"])


def test_the_operator_promotes_a_version_and_rolls_it_back(tmp_path: Path) -> None:
    service = start_trading(build_learning_service(tmp_path, candles=LONG_TAPE, speed=20))
    try:
        registry = service.runner.learning.registry  # type: ignore[union-attr]
        first = registry.get(1)
        # A second version the quick way: v1's bundle again, registered as its child.
        second = registry.register(
            registry.bundle_dir(1), replace(first.lineage, parent=1), {"rows": 1.0}
        ).version
        with TestClient(
            create_app(service, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            promoted = client.post("/models/promote", json={"version": second, "reason": "why"})
            assert promoted.status_code == 200, promoted.text
            assert promoted.json()["production_version"] == second
            assert _version(client, second)["aliases"] == ["production"]
            assert _version(client, 1)["status"] == "archived"

            back = client.post("/models/rollback", json={"reason": "it did worse"})
            assert back.status_code == 200, back.text
            assert back.json()["production_version"] == 1
            assert client.get("/api/ai/learning_status").json()["production_version"] == 1
            assert _version(client, second)["status"] == "rolled_back"
            assert _version(client, 1)["status"] == "production"
    finally:
        service.stop()


def test_before_its_first_candle_the_loop_reports_no_production_and_refuses_to_retrain(
    tmp_path: Path,
) -> None:
    service = build_learning_service(tmp_path, candles=10, speed=0.0)  # not started: no history
    try:
        with TestClient(
            create_app(service, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            status = client.get("/api/ai/learning_status").json()
            assert status["enabled"] is True and status["production_version"] is None
            assert client.get("/models/versions").json() == []
            response = client.post("/api/ai/retrain", json={"reason": "too early"})
        assert response.status_code in (422, 503), response.text  # said why, not a crash
        assert response.json()["detail"] != INTERNAL_ERROR
    finally:
        service.stop()


def test_rollback_with_only_one_production_ever_is_refused_saying_there_is_none_to_go_back_to(
    learning_client: TestClient,
) -> None:
    response = learning_client.post("/models/rollback", json={"reason": "operator test"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("cannot roll back: version 1 is in production")
    assert "no earlier production is left" in detail
    assert learning_client.get("/api/ai/learning_status").json()["production_version"] == 1
    assert _version(learning_client, 1)["status"] == "production"


def test_promoting_an_unknown_version_is_404_naming_the_registered_ones(
    learning_client: TestClient,
) -> None:
    response = learning_client.post("/models/promote", json={"version": 99, "reason": "test"})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "version 99" in detail and "is not registered" in detail
    assert "registered: [1" in detail
    assert learning_client.get("/api/ai/learning_status").json()["production_version"] == 1


def test_promoting_the_production_version_is_refused_as_nothing_to_do(
    learning_client: TestClient,
) -> None:
    response = learning_client.post("/models/promote", json={"version": 1})
    assert response.status_code == 422
    assert response.json()["detail"] == "version 1 is already in production; nothing to do"


BROKEN_PROMOTE_REQUESTS = {
    "no version": {"reason": "test"},
    "version 0": {"version": 0},
    "version as text": {"version": "two"},
    "reason too long": {"version": 2, "reason": "x" * 501},
    "unknown field": {"version": 2, "force": True},
}


@pytest.mark.parametrize("body", BROKEN_PROMOTE_REQUESTS.values(), ids=BROKEN_PROMOTE_REQUESTS)
def test_a_promote_request_breaking_a_rule_is_422_naming_the_field(
    learning_client: TestClient, body: dict[str, Any]
) -> None:
    response = learning_client.post("/models/promote", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


@pytest.mark.parametrize(("method", "path", "body"), LEARNING_ROUTES)
def test_learning_routes_need_the_token(
    learning_service: TradingService, method: str, path: str, body: dict[str, Any] | None
) -> None:
    with TestClient(create_app(learning_service, token=TOKEN)) as anonymous:
        response = anonymous.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"].startswith("missing bearer token")


# --- the loop off (the shared traded service) ----------------------------------------------


def test_with_the_loop_off_learning_status_says_so_with_a_note(client: TestClient) -> None:
    body = client.get("/api/ai/learning_status").json()
    assert body["enabled"] is False
    assert body["note"].startswith("the learning loop is off (learning.enabled)")
    assert body["production_version"] is None and body["candidate_version"] is None
    assert body["retraining"] is False


def test_with_the_loop_off_model_versions_is_refused_saying_the_loop_is_off(
    client: TestClient,
) -> None:
    response = client.get("/models/versions")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "the learning loop is off: no model registry is kept (learning.enabled)"
    )


@pytest.mark.parametrize(("method", "path", "body"), LEARNING_ROUTES[2:])
def test_with_the_loop_off_commands_are_refused_saying_how_to_turn_it_on(
    client: TestClient, method: str, path: str, body: dict[str, Any]
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        "the learning loop is off; start the service with learning.enabled: true"
    )
