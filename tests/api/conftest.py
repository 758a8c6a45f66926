"""Fixtures of the API tests: a service, the app over it, and a client with or without a token.

To run these tests against the real service instead of the test double, change only the
``service`` fixture (e.g. to a started ``TradingService`` on a synthetic feed).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_double import ServiceDouble

from tradebrain.api import create_app

TOKEN = "test-token-7f3a9c"


@pytest.fixture
def service() -> ServiceDouble:
    """The service the app serves: the deterministic test double."""
    return ServiceDouble()


@pytest.fixture
def app(service: ServiceDouble) -> FastAPI:
    """The API over ``service``, demanding ``TOKEN``."""
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
