"""Property-based: no request the OpenAPI schema allows (or nearly allows) makes a 500.

Schemathesis generates requests from the app's own schema, sends them with the right token to
the API over a real service, and checks each answer: never a server error, status code and body
as documented. Once over a service that has traded 1200 candles, once over one still warming up,
and the learning routes once more over a service whose learning loop is on (with it off they
only refuse); each service is the test's own, because generated requests pause and stop trading,
retrain, promote and roll back too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import TOKEN, NewService
from hypothesis import HealthCheck, settings
from real_service import build_learning_service, run_to_end
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tradebrain.api import create_app
from tradebrain.service.service import TradingService

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Not negative_data_rejection: FastAPI ignores unknown query parameters by design (a client
# may add a cache buster), which that check counts as accepting invalid data.

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
FAST = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def traded_schema(new_service: NewService) -> Any:
    """The schema of the API over a real service that has traded 1200 candles."""
    service = run_to_end(new_service())
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(service, token=TOKEN))


@pytest.fixture
def warming_schema(unstarted_service: TradingService) -> Any:
    """The schema of the API over a real service still warming up (no models, no decision)."""
    app = create_app(unstarted_service, token=TOKEN)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def learning_schema(tmp_path: Path) -> Iterator[Any]:
    """The schema of the API over a real service with the learning loop on (production v1)."""
    service = run_to_end(build_learning_service(tmp_path / "learning", candles=150, speed=0.0))
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(service, token=TOKEN))
    service.stop()  # and its retraining worker


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Give the test item the ``_nodeid`` schemathesis 4 renames per operation (pytest 9 has
    none; without it ``from_fixture`` fails with AttributeError)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


traded = schemathesis.pytest.from_fixture("traded_schema")
warming = schemathesis.pytest.from_fixture("warming_schema")
learning = schemathesis.pytest.from_fixture("learning_schema").include(
    path_regex=r"^/(api/ai/(learning_status|retrain)|models/(versions|promote|rollback))$"
)


@traded.parametrize()
@FAST
def test_no_generated_request_makes_a_server_error(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(headers=HEADERS, checks=CHECKS)


@warming.parametrize()
@settings(FAST, max_examples=8)
def test_no_generated_request_to_a_warming_up_service_makes_a_server_error(
    case: schemathesis.Case[Any],
) -> None:
    case.call_and_validate(headers=HEADERS, checks=CHECKS)


@learning.parametrize()
@settings(FAST, max_examples=8)
def test_no_generated_request_to_the_learning_loop_makes_a_server_error(
    case: schemathesis.Case[Any],
) -> None:
    case.call_and_validate(headers=HEADERS, checks=CHECKS)
