"""The REST API, Prometheus endpoint and live dashboard of the trading service."""

from tradebrain.api.app import create_app

__all__ = ["create_app"]
