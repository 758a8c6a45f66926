"""Prometheus metrics of the running service, in a registry of its own.

Each service owns one :class:`ServiceMetrics` (so two services in one process, as in tests,
never share counters); the runner updates it, and ``GET /metrics`` returns :meth:`render`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class ServiceMetrics:
    """Decisions, decision latency, feed lag, equity, open positions, errors by kind, refused
    API tokens, and notifications by kind and outcome."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "tradebrain_decisions",
            "Decisions made, by symbol and action.",
            ["symbol", "action"],
            registry=self.registry,
        )
        self.decision_latency = Histogram(
            "tradebrain_decision_latency_seconds",
            "Time from a closed candle to its decision (features, models, brain, risk).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.feed_lag = Gauge(
            "tradebrain_feed_lag_seconds",
            "Wall-clock time between a candle's close and its arrival.",
            registry=self.registry,
        )
        self.equity = Gauge(
            "tradebrain_equity", "Account equity in quote currency.", registry=self.registry
        )
        self.open_positions = Gauge(
            "tradebrain_open_positions", "Number of open positions.", registry=self.registry
        )
        self.errors = Counter(
            "tradebrain_errors", "Errors, by kind.", ["kind"], registry=self.registry
        )
        self.auth_failures = Counter(
            "tradebrain_auth_failures",
            "API requests refused with 401: bearer token missing or wrong.",
            ["reason"],
            registry=self.registry,
        )
        self.auth_throttled = Counter(
            "tradebrain_auth_throttled",
            "API requests refused with 429: their address sent too many bad tokens.",
            registry=self.registry,
        )

        self.notifications = Counter(
            "tradebrain_notifications",
            "Notifications by kind (fill, policy, control, error, registry, daily_summary) and "
            "outcome: sent, failed (a service refused it or was unreachable), dropped (the "
            "queue was full), suppressed (the kind's rate limit).",
            ["kind", "outcome"],
            registry=self.registry,
        )

    def observe_decision(self, symbol: str, action: str, seconds: float) -> None:
        """Count one decision and record how long it took."""
        self.decisions.labels(symbol=symbol, action=action).inc()
        self.decision_latency.observe(seconds)

    def count_error(self, kind: str) -> None:
        """Count one error of ``kind`` (``"feed"``, ``"broker"``, ``"model"``, ``"state"``, ...)."""
        self.errors.labels(kind=kind).inc()

    def count_notification(self, kind: str, outcome: str) -> None:
        """Count one notification of ``kind`` that was ``outcome`` (``"sent"``, ``"failed"``,
        ``"dropped"`` or ``"suppressed"``)."""
        self.notifications.labels(kind=kind, outcome=outcome).inc()

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format."""
        return generate_latest(self.registry)
