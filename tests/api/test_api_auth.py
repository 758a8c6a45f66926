"""Every route but /health and the dashboard page needs the bearer token (real service)."""

from __future__ import annotations

import logging

import pytest
from conftest import TOKEN
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tradebrain.api import create_app
from tradebrain.exceptions import UserInputError
from tradebrain.service.service import TradingService

PROTECTED = [
    ("GET", "/api/ai/live"),
    ("GET", "/api/ai/status"),
    ("GET", "/api/ai/learning_status"),
    ("GET", "/models/list"),
    ("GET", "/models/lightgbm/status"),
    ("POST", "/predict/single"),
    ("POST", "/predict/batch"),
    ("GET", "/predict/top"),
    ("GET", "/api/positions"),
    ("GET", "/api/trades"),
    ("GET", "/api/equity"),
    ("POST", "/api/control/pause"),
    ("POST", "/api/control/resume"),
    ("POST", "/api/control/emergency_stop"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_route_without_token_is_401_asking_for_bearer(
    anonymous: TestClient, service: TradingService, method: str, path: str
) -> None:
    response = anonymous.request(method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"].startswith("missing bearer token")
    assert service.control()["state"] == "running"  # nothing happened


WRONG_HEADERS: list[str | bytes] = [
    f"Bearer {TOKEN}x",
    "Bearer wrong",
    f"Basic {TOKEN}",
    f"Bearer {TOKEN[:-1]}",
    "Bearer é".encode("latin-1"),  # not ASCII: still a plain 401, not a crash
]


@pytest.mark.parametrize("header", WRONG_HEADERS)
def test_wrong_token_is_401_and_never_echoed(anonymous: TestClient, header: str | bytes) -> None:
    response = anonymous.post("/api/control/pause", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in response.text


def test_right_token_opens_the_route(client: TestClient) -> None:
    assert client.get("/api/positions").status_code == 200


def test_health_and_dashboard_need_no_token(anonymous: TestClient) -> None:
    assert anonymous.get("/health").status_code == 200
    page = anonymous.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert anonymous.get("/dashboard.js").status_code == 200


def test_dashboard_page_does_not_embed_the_token(anonymous: TestClient) -> None:
    assert TOKEN not in anonymous.get("/").text
    assert TOKEN not in anonymous.get("/dashboard.js").text


def test_dashboard_page_may_load_only_its_own_script_and_talk_only_to_this_server(
    anonymous: TestClient,
) -> None:
    policy = anonymous.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "http" not in anonymous.get("/").text.replace("http://www.w3.org", "")


def test_swagger_ui_is_off_but_the_openapi_schema_is_served(anonymous: TestClient) -> None:
    assert anonymous.get("/docs").status_code == 404
    assert anonymous.get("/openapi.json").json()["info"]["title"] == "tradebrain"


def test_openapi_declares_bearer_auth_on_protected_routes(app: FastAPI) -> None:
    schema = app.openapi()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/metrics"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in schema["paths"]["/health"]["get"]


def test_building_without_a_token_is_refused_with_how_to_set_one(service: TradingService) -> None:
    with pytest.raises(UserInputError, match=r"TRADEBRAIN_API__TOKEN.*api\.token"):
        create_app(service, token=None)


def test_a_blank_token_is_refused(service: TradingService) -> None:
    with pytest.raises(UserInputError, match="blank"):
        create_app(service, token="  ", require_token=False)


def test_without_a_required_token_the_api_is_open_and_warns(
    caplog: pytest.LogCaptureFixture, unstarted_service: TradingService
) -> None:
    with caplog.at_level(logging.WARNING, logger="tradebrain.api"):
        app = create_app(unstarted_service, token=None, require_token=False)
    assert "WITHOUT a token" in caplog.text
    with TestClient(app) as client:
        assert client.post("/api/control/pause").json()["state"] == "paused"
    assert unstarted_service.control()["state"] == "paused"


def test_a_token_given_is_demanded_even_when_not_required(service: TradingService) -> None:
    app = create_app(service, token=TOKEN, require_token=False)
    with TestClient(app) as client:
        assert client.get("/api/positions").status_code == 401
