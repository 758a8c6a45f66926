"""Notifications through real apprise to a webhook on 127.0.0.1: every kind's content, the rate
limit, failing and hanging services, a full queue, and secrets that never show."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from tradebrain.config import Settings
from tradebrain.core.orders import Fill, Liquidity, Side
from tradebrain.exceptions import ConfigError
from tradebrain.risk.verdicts import PolicyMode, PolicyModeChanged
from tradebrain.service.notify import (
    DaySummary,
    ErrorForwarder,
    Notifier,
    control_message,
    daily_summary_message,
    fill_message,
    registry_message,
    risk_message,
)

pytestmark = pytest.mark.usefixtures("loopback_only")

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


class Inbox:
    """A webhook on a free port of 127.0.0.1 that keeps every message apprise posts to it.

    ``status`` is the HTTP status it answers; while ``hold`` is set, each answer waits until
    :meth:`release` (at most ``hold`` seconds).
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.hold = 0.0
        self._released = threading.Event()
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                document = json.loads(self.rfile.read(size))
                if inbox.hold:
                    inbox._released.wait(inbox.hold)
                with inbox._lock:
                    inbox.messages.append({**document, "path": self.path})
                    inbox.headers.append(dict(self.headers))
                self.send_response(inbox.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def url(self, path: str = "hook") -> str:
        """Return the apprise URL that posts JSON here."""
        return f"json://127.0.0.1:{self.port}/{path}"

    def release(self) -> None:
        """Let every held answer go."""
        self._released.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Return the messages once ``count`` have arrived (fail after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} arrived"
            time.sleep(0.01)
        with self._lock:
            return list(self.messages)


@contextmanager
def serve_inbox() -> Iterator[Inbox]:
    """Serve an :class:`Inbox` in a background thread for the block."""
    inbox = Inbox()
    thread = threading.Thread(
        target=inbox.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield inbox
    finally:
        inbox.release()
        inbox.server.shutdown()
        inbox.server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with serve_inbox() as served:
        yield served


@pytest.fixture
def notifiers() -> Iterator[list[Notifier]]:
    """Notifiers the test builds, closed after it."""
    made: list[Notifier] = []
    yield made
    for notifier in made:
        notifier.close(timeout=2)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fill(number: int = 1) -> Fill:
    return Fill(
        NOW, f"tb-order-{number}", "BTC/USDT", Side.BUY, 0.125, 43210.5, 5.4, Liquidity.MAKER
    )


def _notifier(made: list[Notifier], urls: list[str], **options: Any) -> Notifier:
    notifier = Notifier(urls, **options)
    made.append(notifier)
    return notifier


def test_each_kind_of_message_arrives_through_apprise_with_what_a_trader_needs(
    inbox: Inbox, notifiers: list[Notifier]
) -> None:
    notifier = _notifier(notifiers, [inbox.url()], label="[paper]")
    notifier.post(fill_message(_fill(7)))
    change = PolicyModeChanged(
        NOW, PolicyMode.NORMAL, PolicyMode.DEFENSIVE, ("daily drawdown 6.1% > 5.0%",)
    )
    policy = risk_message(change)
    assert policy is not None
    notifier.post(policy)
    notifier.post(control_message("emergency_stop", "emergency stop pulled by the operator", NOW))
    notifier.post(
        registry_message({
            "action": "promoted", "version": 4, "previous": 3, "reason": "passed the gates",
            "evidence": {"p_value": 0.0123456, "candidate_sharpe": 1.8},
        })
    )  # fmt: skip
    notifier.post(
        daily_summary_message(
            DaySummary(date(2024, 3, 1), 10_250.0, 10_000.0, True, 4, 2, 3.5, 2, 1, 180.0)
        )
    )
    fill, mode, control, registry, summary = inbox.wait_for(5)
    assert notifier.flush(5)  # the webhook saw the last one; now its count is kept too

    assert fill["title"] == "[paper] BTC/USDT BUY 0.125 @ 43,210.5"
    for part in ("buy 0.125 BTC/USDT at 43,210.5", "fee: 5.4 (maker)", "order: tb-order-7"):
        assert part in fill["message"]
    assert mode["title"] == "[paper] risk mode NORMAL -> DEFENSIVE"
    assert "daily drawdown 6.1% > 5.0%" in mode["message"] and mode["type"] == "warning"
    assert control["title"] == "[paper] EMERGENCY STOP: closing every position"
    assert "pulled by the operator" in control["message"] and control["type"] == "failure"
    assert registry["title"] == "[paper] model v4 promoted to production (was v3)"
    assert (
        "p_value: 0.01235" in registry["message"] and "candidate_sharpe: 1.8" in registry["message"]
    )
    assert summary["title"] == "[paper] daily summary 2024-03-01 (UTC)"
    for part in ("equity: 10,250.00", "day P&L: +250.00 (+2.50%)", "fills: 4 (buy 2, sell 2",
                 "closed trades: 2 (won 1, lost 1; P&L +180.00)"):  # fmt: skip
        assert part in summary["message"]
    assert notifier.status()["sent"] == {
        "fill": 1, "policy": 1, "control": 1, "registry": 1, "daily_summary": 1,
    }  # fmt: skip


def test_errors_of_the_tradebrain_loggers_are_forwarded_and_nothing_else(
    inbox: Inbox, notifiers: list[Notifier]
) -> None:
    notifier = _notifier(notifiers, [inbox.url()])
    forwarder = ErrorForwarder(notifier)
    logging.getLogger("tradebrain").addHandler(forwarder)
    try:
        try:
            raise OSError("disk unplugged mid-candle")
        except OSError:
            logging.getLogger("tradebrain.service.service").exception("the runner stopped")
        logging.getLogger("tradebrain.service.runner").warning("only a warning")
        logging.getLogger("someone.else").error("not ours")
    finally:
        logging.getLogger("tradebrain").removeHandler(forwarder)
    assert notifier.flush(5)
    (error,) = inbox.wait_for(1)
    assert error["title"] == "error: the runner stopped"
    assert "OSError: disk unplugged mid-candle" in error["message"]
    assert "logger: tradebrain.service.service" in error["message"]


def test_a_burst_beyond_the_rate_limit_is_counted_and_said_in_the_next_message_sent(
    inbox: Inbox, notifiers: list[Notifier]
) -> None:
    clock = Clock()
    notifier = _notifier(notifiers, [inbox.url()], max_per_minute=5, clock=clock)
    queued = [notifier.post(fill_message(_fill(n))) for n in range(50)]
    assert queued == [True] * 5 + [False] * 45
    assert notifier.flush(5)
    assert len(inbox.wait_for(5)) == 5
    status = notifier.status()
    assert status["sent"] == {"fill": 5} and status["suppressed"] == {"fill": 45}

    clock.now += 61  # a minute later the kind may speak again
    assert notifier.post(fill_message(_fill(50)))
    sixth = inbox.wait_for(6)[-1]
    assert "order: tb-order-50" in sixth["message"]
    assert sixth["message"].endswith("(45 more fills not sent: rate limit)")
    assert notifier.post(fill_message(_fill(51)))
    assert "rate limit" not in inbox.wait_for(7)[-1]["message"]  # said once


def test_each_kind_has_its_own_rate_limit(inbox: Inbox, notifiers: list[Notifier]) -> None:
    notifier = _notifier(notifiers, [inbox.url()], max_per_minute=2, clock=Clock())
    for n in range(4):
        notifier.post(fill_message(_fill(n)))
    assert notifier.post(control_message("paused", "paused by the operator", NOW))
    messages = inbox.wait_for(3)
    assert messages[-1]["title"] == "trading paused: no new positions"
    assert messages[-1]["message"].endswith("(2 more fills not sent: rate limit)")


def test_a_service_answering_500_is_counted_warned_about_once_and_never_raises(
    inbox: Inbox, notifiers: list[Notifier], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    inbox.status = 500
    notifier = _notifier(notifiers, [inbox.url()])
    for n in range(3):
        assert notifier.post(fill_message(_fill(n)))
    assert notifier.flush(10)
    status = notifier.status()
    assert status["failed"] == {"fill": 3} and status["failing"] is True
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].name == "tradebrain.service.notify"
    assert "fill notification could not be delivered" in warnings[0].getMessage()
    assert "500" in warnings[0].getMessage()  # apprise's reason, once

    inbox.status = 200
    assert notifier.post(control_message("running", "resumed by the operator", NOW))
    assert notifier.flush(10)
    assert notifier.status()["failing"] is False
    assert any("delivered again (3 failed before)" in r.getMessage() for r in caplog.records)


def test_a_service_that_is_down_is_counted_as_failed_without_raising(
    notifiers: list[Notifier], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = _notifier(notifiers, [f"json://127.0.0.1:{port}/hook"])
    for n in range(2):
        assert notifier.post(fill_message(_fill(n)))
    assert notifier.flush(10)
    assert notifier.status()["failed"] == {"fill": 2}
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "could not be delivered" in warned[0].getMessage()


def test_sending_returns_at_once_while_the_service_hangs(
    inbox: Inbox, notifiers: list[Notifier]
) -> None:
    inbox.hold = 1.0
    notifier = _notifier(notifiers, [inbox.url()], max_per_minute=100)
    took = []
    for n in range(20):
        started = time.perf_counter()
        notifier.post(fill_message(_fill(n)))
        took.append(time.perf_counter() - started)
    assert max(took) < 0.25, took  # delivery holds each message for up to a second
    assert notifier.status()["queued"] >= 18
    inbox.release()
    assert notifier.flush(10)
    assert notifier.status()["sent"] == {"fill": 20}


def test_a_full_queue_drops_and_counts_without_waiting(
    inbox: Inbox, notifiers: list[Notifier]
) -> None:
    notifier = _notifier(notifiers, [inbox.url()], queue_size=2, start=False)
    started = time.perf_counter()
    queued = [notifier.post(fill_message(_fill(n))) for n in range(5)]
    assert time.perf_counter() - started < 0.05
    assert queued == [True, True, False, False, False]
    assert notifier.status()["dropped"] == {"fill": 3}
    notifier.start()
    assert notifier.flush(5)
    assert notifier.post(control_message("paused", "paused by the operator", NOW))
    first, second, third = inbox.wait_for(3)
    assert "dropped" not in first["message"] + second["message"]  # queued before the drops
    assert third["message"].endswith("(3 messages dropped: queue full)")


def test_closing_delivers_what_is_queued_and_drops_what_comes_after(
    inbox: Inbox, notifiers: list[Notifier]
) -> None:
    notifier = _notifier(notifiers, [inbox.url()])
    for n in range(3):
        notifier.post(fill_message(_fill(n)))
    notifier.close(timeout=5)
    assert len(inbox.messages) == 3
    assert notifier.post(fill_message(_fill(9))) is False
    assert notifier.status()["dropped"] == {"fill": 1}


def test_only_the_configured_kinds_are_sent(inbox: Inbox, notifiers: list[Notifier]) -> None:
    notifier = _notifier(notifiers, [inbox.url()], kinds=["control"])
    assert not notifier.wants("fill") and notifier.wants("control")
    assert notifier.post(fill_message(_fill())) is False
    assert notifier.post(control_message("paused", "paused by the operator", NOW))
    assert notifier.flush(5)
    assert [m["title"] for m in inbox.messages] == ["trading paused: no new positions"]
    assert notifier.status()["suppressed"] == {} and notifier.status()["dropped"] == {}


def test_a_notifier_without_urls_does_nothing_and_starts_no_thread() -> None:
    before = set(threading.enumerate())
    notifier = Notifier()
    assert not notifier.enabled and not notifier.wants("fill")
    assert notifier.send("fill", "a fill", "body") is False
    assert not [t for t in set(threading.enumerate()) - before if t.name == "tradebrain-notify"]
    status = notifier.status()
    assert status["enabled"] is False and status["services"] == [] and status["sent"] == {}
    notifier.close()


def test_a_url_apprise_cannot_use_is_refused_by_position_without_its_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        Notifier(["json://127.0.0.1:9/fine", "nosuchservice://bot-secret-token@host"])
    message = str(caught.value)
    assert "notify.urls[1]" in message and "'nosuchservice'" in message
    assert "bot-secret-token" not in message


def test_secrets_never_appear_in_logs_status_or_the_settings_shown(
    inbox: Inbox, notifiers: list[Notifier], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # apprise logs the URLs it posts to at DEBUG
    good = f"json://trader:pw-SECRET-1@127.0.0.1:{inbox.port}/hook-SECRET-2"
    settings = Settings.model_validate({"notify": {"urls": [good]}})
    notifier = Notifier.from_settings(settings.notify)
    notifiers.append(notifier)
    notifier.post(fill_message(_fill()))
    assert notifier.flush(5)
    inbox.status = 500
    notifier.post(fill_message(_fill(2)))
    assert notifier.flush(5)

    assert inbox.messages[0]["path"] == "/hook-SECRET-2"  # the secrets were used...
    assert inbox.headers[0]["Authorization"].startswith("Basic ")
    shown = [
        *(record.getMessage() for record in caplog.records),
        json.dumps(notifier.status()),
        repr(notifier),
        settings.to_yaml(),
        repr(settings),
    ]
    leaks = [text for text in shown if "SECRET" in text]
    assert not leaks, leaks  # ...and shown nowhere
    assert notifier.status()["services"] == ["json"]
    assert yaml.safe_load(settings.to_yaml())["notify"]["urls"] == ["**********"]
