"""Property-based: no request the OpenAPI schema allows (or nearly allows) makes a 500.

Schemathesis generates requests from the app's own schema, sends them with the right token,
and checks each answer: never a server error, status code and body as documented.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from conftest import TOKEN
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_double import ServiceDouble

from tradebrain.api import create_app

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(ServiceDouble(), token=TOKEN))
warming_schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(ServiceDouble(warming_up=True), token=TOKEN)
)
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


@schema.parametrize()
@FAST
def test_no_generated_request_makes_a_server_error(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(headers=HEADERS, checks=CHECKS)


@warming_schema.parametrize()
@settings(FAST, max_examples=8)
def test_no_generated_request_to_a_warming_up_service_makes_a_server_error(
    case: schemathesis.Case[Any],
) -> None:
    case.call_and_validate(headers=HEADERS, checks=CHECKS)
