"""Every route but /health and the dashboard page needs the bearer token (real service)."""

from __future__ import annotations

import logging

import pytest
from conftest import TOKEN
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tradebrain.api import create_app
from tradebrain.api._auth import AuthThrottle, token_bits, token_weakness
from tradebrain.exceptions import UserInputError
from tradebrain.service.service import TradingService

PROTECTED = [
    ("GET", "/api/ai/live"),
    ("GET", "/api/ai/status"),
    ("GET", "/api/ai/learning_status"),
    ("GET", "/models/list"),
    ("GET", "/models/lightgbm/status"),
    ("GET", "/models/versions"),
    ("POST", "/models/promote"),
    ("POST", "/models/rollback"),
    ("POST", "/api/ai/retrain"),
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


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _refusals(service: TradingService, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


def test_an_address_that_keeps_sending_wrong_tokens_gets_429_with_retry_after_and_a_metric(
    unstarted_service: TradingService,
) -> None:
    clock = FakeClock()
    throttle = AuthThrottle(limit=3, window=60.0, clock=clock)
    app = create_app(unstarted_service, token=TOKEN, auth_throttle=throttle)
    right = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        for _ in range(2):
            assert (
                client.get("/api/positions", headers={"Authorization": "Bearer x"}).status_code
                == 401
            )
        assert client.get("/api/positions").status_code == 401  # missing counts too
        clock.now += 15
        refused = client.get("/api/positions", headers=right)  # not even compared now
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "45"
        assert "try again in 45 s" in refused.json()["detail"]
        clock.now += 45
        assert client.get("/api/positions", headers=right).status_code == 200
    failures = "tradebrain_auth_failures_total"
    assert _refusals(unstarted_service, failures, reason="wrong") == 2.0
    assert _refusals(unstarted_service, failures, reason="missing") == 1.0
    assert _refusals(unstarted_service, "tradebrain_auth_throttled_total") == 1.0


def test_by_default_the_eleventh_bad_token_in_a_minute_is_throttled(
    unstarted_service: TradingService,
) -> None:
    with TestClient(create_app(unstarted_service, token=TOKEN)) as client:
        wrong = {"Authorization": "Bearer guess"}
        codes = [client.post("/api/control/pause", headers=wrong).status_code for _ in range(11)]
    assert codes == [401] * 10 + [429]
    assert unstarted_service.control()["state"] == "running"


def test_the_refused_tokens_are_in_the_prometheus_text(
    unstarted_service: TradingService,
) -> None:
    with TestClient(create_app(unstarted_service, token=TOKEN)) as client:
        client.get("/metrics", headers={"Authorization": "Bearer guess"})
        text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'tradebrain_auth_failures_total{reason="wrong"} 1.0' in text
    assert "tradebrain_auth_throttled_total 0.0" in text


def test_a_right_token_wipes_the_addresses_earlier_failures(
    unstarted_service: TradingService,
) -> None:
    throttle = AuthThrottle(limit=2, clock=FakeClock())
    app = create_app(unstarted_service, token=TOKEN, auth_throttle=throttle)
    with TestClient(app) as client:
        wrong, right = {"Authorization": "Bearer x"}, {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/positions", headers=wrong).status_code == 401
        assert client.get("/api/positions", headers=right).status_code == 200
        assert client.get("/api/positions", headers=wrong).status_code == 401
        assert client.get("/api/positions", headers=right).status_code == 200


def test_the_throttle_remembers_a_bounded_number_of_addresses() -> None:
    throttle = AuthThrottle(limit=1, clock=FakeClock(), max_clients=100)
    for address in range(1000):
        throttle.failed(f"10.0.{address // 256}.{address % 256}")
    assert len(throttle._failures) == 100
    assert throttle.retry_after("10.0.3.231") is not None  # the newest are kept
    assert throttle.retry_after("10.0.0.0") is None


@pytest.mark.parametrize(
    "token",
    [
        "boqvrapAlyjQ0frOIEUX5hQkwvewsOIFBGEjVD1D_Q4",  # secrets.token_urlsafe(32)
        "c1cc0c72cfac45e1125e6a30b4a25818",  # secrets.token_hex(16)
        "2fccdb51-922d-4b9a-80fd-5f9280efe08e",  # a uuid4
    ],
)
def test_tokens_from_the_usual_generators_are_strong(token: str) -> None:
    assert token_weakness(token) is None
    assert token_bits(token) >= 128


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("k", "has 1 characters; at least 24 are needed"),
        (TOKEN, "has 17 characters"),
        ("z" * 64, "uses only 1 different characters"),
        ("0123456789" * 3, "repeats a chunk of 10 characters"),
        ("aabbccddeeffgghhiijjkkll", "holds about 113 bits of entropy; at least 128"),
    ],
)
def test_short_repetitive_or_low_entropy_tokens_are_weak_and_say_why(token: str, why: str) -> None:
    weakness = token_weakness(token)
    assert weakness is not None and weakness.startswith(why)
    assert token not in weakness
