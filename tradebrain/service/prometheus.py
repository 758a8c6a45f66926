"""Prometheus metrics of the running service, in a registry of its own.

Each service owns one :class:`ServiceMetrics` (so two services in one process, as in tests,
never share counters); the runner updates it, and ``GET /metrics`` returns :meth:`render`.
"""

from __future__ import annotations

from typing import Any

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

        self.feed_events = Counter(
            "tradebrain_feed_events",
            "What the exchange feed went through, by event: reconnect (the websocket came "
            "back), fallback (it went down; REST polls), duplicate (a candle received again "
            "and dropped), backfilled (candles fetched over REST after a gap or a missing "
            "confirmation), rejected (websocket candles that broke a data rule), rest_failure "
            "(a REST request that failed and is retried), venue_clock_ahead (a candle the venue "
            "confirmed over a second before our clock closed it), late_trade and late_book (stream "
            "rows stamped before a candle already decided on, dropped).",
            ["event"],
            registry=self.registry,
        )
        self.feed_websocket_up = Gauge(
            "tradebrain_feed_websocket_up",
            "1 while the exchange feed's websocket delivers, 0 while REST polls instead.",
            registry=self.registry,
        )
        self.state_write_failures = Counter(
            "tradebrain_state_write_failures",
            "State store writes that failed because the disk was full (each is retried).",
            registry=self.registry,
        )
        self._feed_seen: dict[str, float] = {}

    def observe_feed(self, status: dict[str, Any]) -> None:
        """Bring the feed counters up to a feed's ``status()`` (they count since its start)."""
        counts = {
            "reconnect": status.get("reconnects"),
            "fallback": status.get("fallbacks"),
            "duplicate": status.get("duplicates"),
            "backfilled": status.get("backfilled"),
            "rejected": status.get("rejected"),
            "rest_failure": status.get("rest_failures"),
            "venue_clock_ahead": status.get("early_closes"),
            **{
                f"late_{kind}": (status.get("flow") or {}).get(f"late_{kind}s")
                for kind in ("trade", "book")
            },
        }
        for event, value in counts.items():
            if value is None:
                continue
            seen = self._feed_seen.get(event, 0.0)
            if value > seen:
                self.feed_events.labels(event=event).inc(value - seen)
            self._feed_seen[event] = max(seen, float(value))
        if "mode" in status:
            self.feed_websocket_up.set(1.0 if status["mode"] == "websocket" else 0.0)

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
