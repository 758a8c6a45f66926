"""Notifications of the trading service through apprise, never on the decision path.

:class:`Notifier` takes a message and returns at once: the message waits in a bounded queue
and one daemon thread delivers it through :class:`apprise.Apprise` to every configured URL
(Telegram, Discord, Slack, e-mail, any webhook). Each kind is rate limited over a sliding
minute; what the limit holds back, or a full queue drops, is counted and said in the next
message delivered. A service that fails (down, HTTP 500) is logged once per run of failures
at WARNING and counted; nothing is raised to the caller. Without URLs the notifier does
nothing and costs one truth test a message.

The builders (:func:`fill_message`, :func:`risk_message`, :func:`control_message`,
:func:`error_message`, :func:`registry_message`, :func:`daily_summary_message`) turn what the
service saw into a :class:`Message`. :class:`Announcer` is what the runner calls once a
candle's step is committed to the state store: a fill that was not saved is never announced,
and a candle handled again after a restart was not committed before, so it was not announced
before either. A crash between the commit and the delivery loses that message: notifications
are sent at most once. :class:`ErrorForwarder` forwards the ERROR records of the
``tradebrain`` loggers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tradebrain.config import NOTIFY_EVENTS, NotifySettings
from tradebrain.core.events import CandleClosed
from tradebrain.core.orders import Fill
from tradebrain.exceptions import ConfigError
from tradebrain.risk.verdicts import PolicyModeChanged, SymbolPaused, SymbolResumed
from tradebrain.state import StateStore

log = logging.getLogger(__name__)

OUTCOMES = ("sent", "failed", "dropped", "suppressed")
"""What becomes of a message: delivered, refused by a service, dropped (queue full), or held
back by the rate limit."""
WINDOW_S = 60.0
"""The rate limit's window: ``max_per_minute`` messages of one kind per sliding minute."""
_PLURAL = {
    "fill": "fills", "policy": "risk-policy messages", "control": "control messages",
    "error": "errors", "registry": "registry messages", "daily_summary": "daily summaries",
}  # fmt: skip


@dataclass(frozen=True)
class Message:
    """One notification: its kind (a ``notify.events`` name), title, body and level.

    ``level`` is apprise's notify type: ``info``, ``success``, ``warning`` or ``failure``.
    """

    kind: str
    title: str
    body: str
    level: str = "info"


class Notifier:
    """Sends messages through apprise from a thread of its own (see the module notes).

    Parameters
    ----------
    urls
        Apprise URLs. They hold tokens: they are handed to apprise and never kept, shown or
        logged here (:meth:`status` shows their schemes only).
    kinds
        The kinds sent; a message of another kind is ignored (not counted).
    max_per_minute
        Messages of one kind sent per sliding minute; the rest are counted as suppressed.
    queue_size
        Messages waiting for delivery; one more is dropped and counted.
    on_count
        Called with ``(kind, outcome)`` for every outcome in :data:`OUTCOMES` (the service's
        Prometheus counters): on the delivery thread for ``sent`` and ``failed``, on the
        caller's for the others, so it must be quick and thread-safe.
    clock
        Monotonic seconds (tests pass their own).
    start
        Start the delivery thread now; False: messages wait until :meth:`start`.
    label
        Put in front of every title (``"[paper]"``), so paper and live are told apart.

    Raises
    ------
    ConfigError
        A URL apprise does not know (named by its position and scheme only).
    """

    def __init__(
        self,
        urls: Sequence[str] = (),
        *,
        kinds: Iterable[str] = NOTIFY_EVENTS,
        max_per_minute: int = 10,
        queue_size: int = 100,
        on_count: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        start: bool = True,
        label: str = "",
    ) -> None:
        self.kinds = frozenset(kinds) if urls else frozenset()
        self.max_per_minute = max_per_minute
        self.label = label
        self.services = [_scheme(url) for url in urls]
        self._apprise = _apprise_for(urls) if urls else None
        self._on_count = on_count
        self._clock = clock
        # each message waits with the note of what was missed before it: (held back, dropped)
        self._queue: queue.Queue[tuple[Message, Counter[str], int]] = queue.Queue(queue_size)
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._counts: dict[str, Counter[str]] = {outcome: Counter() for outcome in OUTCOMES}
        self._held_back: Counter[str] = Counter()  # suppressed, not yet said in a message
        self._dropped_since = 0  # dropped, not yet said in a message
        self._failing = False
        self._failed_in_a_row = 0
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    @classmethod
    def from_settings(cls, notify: NotifySettings, **options: Any) -> Notifier:
        """Return the notifier ``notify`` describes (``options`` as for the constructor)."""
        return cls(
            [url.get_secret_value() for url in notify.urls],
            kinds=notify.events,
            max_per_minute=notify.max_per_minute,
            queue_size=notify.queue_size,
            **options,
        )

    @property
    def enabled(self) -> bool:
        """Whether anything is ever sent (some URL and some kind)."""
        return bool(self.kinds)

    def wants(self, kind: str) -> bool:
        """Return whether a message of ``kind`` would be sent (cheap: build it only then)."""
        return kind in self.kinds

    def start(self) -> None:
        """Start delivering (a notifier without URLs starts nothing)."""
        if self._thread is not None or self._apprise is None:
            return
        self._thread = threading.Thread(
            target=self._deliver_all, name="tradebrain-notify", daemon=True
        )
        self._thread.start()

    # --- the caller's side: never waits ---------------------------------------------------
    def send(self, kind: str, title: str, body: str, level: str = "info") -> bool:
        """Queue a message of ``kind`` and return at once whether it was queued.

        Not queued: ``kind`` is not sent, the kind's rate limit is reached (suppressed), or
        the queue is full or closed (dropped); each but the first is counted.
        """
        return self.post(Message(kind, title, body, level))

    def post(self, message: Message) -> bool:
        """Queue ``message`` (see :meth:`send`)."""
        kind = message.kind
        if kind not in self.kinds:
            return False
        now = self._clock()
        with self._lock:
            recent = self._recent.setdefault(kind, deque())
            while recent and recent[0] <= now - WINDOW_S:
                recent.popleft()
            if len(recent) >= self.max_per_minute:
                self._held_back[kind] += 1
                self._count_locked(kind, "suppressed")
                return False
            recent.append(now)
            if self._closing.is_set():
                self._dropped_locked(kind)
                return False
            try:  # this message will say what was missed since the last one
                self._queue.put_nowait((message, self._held_back, self._dropped_since))
            except queue.Full:
                self._dropped_locked(kind)
                return False
            self._held_back, self._dropped_since = Counter(), 0
        return True

    def _dropped_locked(self, kind: str) -> None:
        self._dropped_since += 1
        self._count_locked(kind, "dropped")

    def _count_locked(self, kind: str, outcome: str) -> None:
        self._counts[outcome][kind] += 1
        if self._on_count is not None:
            try:
                self._on_count(kind, outcome)
            except Exception:  # a metric is not worth an error in the caller's thread
                log.debug("could not count a notification", exc_info=True)

    # --- the delivery thread ----------------------------------------------------------------
    def _deliver_all(self) -> None:
        while True:
            try:
                message, held_back, dropped = self._queue.get(timeout=0.25)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            try:
                self._deliver(message, held_back, dropped)
            except Exception:  # a bug here must not end the deliveries
                log.warning("a notification could not be delivered", exc_info=True)
            finally:
                self._queue.task_done()

    def _deliver(self, message: Message, held_back: Counter[str], dropped: int) -> None:
        """Deliver ``message`` with the note of what was missed before it; on failure the
        note waits for the next message."""
        import apprise

        services = self._apprise
        if services is None:
            return
        body = message.body
        if note := _missed_note(held_back, dropped):
            body = f"{body}\n{note}"
        title = f"{self.label} {message.title}".strip()
        reasons: list[str] = []
        failed, first = 0, False
        try:
            with _APPRISE_QUIET.capture() as reasons:
                delivered = bool(
                    services.notify(
                        body=body, title=title, notify_type=apprise.NotifyType(message.level),
                        body_format=apprise.NotifyFormat.TEXT,
                    )
                )  # fmt: skip
        except Exception as error:  # apprise's own failure: counted like a refusal
            delivered = False
            reasons.append(type(error).__name__)
        with self._lock:
            self._count_locked(message.kind, "sent" if delivered else "failed")
            if delivered:
                failed, self._failed_in_a_row, self._failing = self._failed_in_a_row, 0, False
            else:  # the next message queued says what was missed
                self._held_back.update(held_back)
                self._dropped_since += dropped
                self._failed_in_a_row += 1
                first, self._failing = not self._failing, True
        if delivered and failed:
            log.info("notifications are delivered again (%d failed before)", failed)
        elif not delivered and first:
            reason = reasons[0] if reasons else "the service refused it"
            log.warning(
                "a %s notification could not be delivered (%s); further failures are counted "
                "(tradebrain_notifications_total{outcome=\"failed\"}) and not logged until one "
                "gets through",
                message.kind, reason,
            )  # fmt: skip

    # --- status and shutdown ----------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Wait until every queued message is handled; return whether they all were."""
        if self._thread is None:
            return self._queue.unfinished_tasks == 0
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(
                lambda: self._queue.unfinished_tasks == 0, timeout
            )

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (for at most ``timeout`` seconds), then stop; later
        messages are dropped."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        """Return the services (schemes only), the kinds sent, the queue and the counters."""
        with self._lock:
            counts = {outcome: dict(self._counts[outcome]) for outcome in OUTCOMES}
            failing = self._failing
        return {
            "enabled": self.enabled,
            "services": list(self.services),
            "events": [kind for kind in NOTIFY_EVENTS if kind in self.kinds],
            "max_per_minute": self.max_per_minute,
            "queued": self._queue.qsize(),
            "failing": failing,
            **counts,
        }

    def __repr__(self) -> str:
        return f"Notifier(services={self.services}, kinds={sorted(self.kinds)})"


def _apprise_for(urls: Sequence[str]) -> Any:
    """Return an :class:`apprise.Apprise` holding ``urls``; refuse one it does not know."""
    import apprise

    asset = apprise.AppriseAsset(app_id="tradebrain", app_desc="tradebrain trading service")
    notifier = apprise.Apprise(asset=asset)
    for name in _QUIETED:
        logging.getLogger(name).addFilter(_APPRISE_QUIET)
    for index, url in enumerate(urls):
        with _APPRISE_QUIET.capture():  # apprise logs a URL it refuses, secrets and all
            added = notifier.add(url)
        if not added:
            raise ConfigError(
                f"notify.urls[{index}] (scheme {_scheme(url)!r}) is not a URL apprise can "
                "send to; see https://github.com/caronc/apprise/wiki for each service's form "
                "(the URL is not shown: it holds secrets)"
            )
    return notifier


def _scheme(url: str) -> str:
    """Return the scheme of ``url`` (``tgram``), the one part of it that holds no secret."""
    scheme, found, _ = url.partition("://")
    return scheme.lower() if found and scheme.isalnum() and len(scheme) <= 16 else "?"


def _missed_note(held_back: Mapping[str, int], dropped: int) -> str:
    """Return ``"(12 more fills not sent: rate limit)"`` and the like, or ``""``."""
    parts = [f"{n} more {_PLURAL.get(kind, kind)}" for kind, n in sorted(held_back.items())]
    notes = [f"{' and '.join(parts)} not sent: rate limit"] if parts else []
    if dropped:
        notes.append(f"{dropped} message{'s' if dropped > 1 else ''} dropped: queue full")
    return f"({'; '.join(notes)})" if notes else ""


class _AppriseQuiet(logging.Filter):
    """Holds apprise's and urllib3's records back while a notifier delivers, keeping the texts
    of apprise's warnings.

    Apprise logs every failed delivery at WARNING, and, like urllib3's connection pool, the
    URLs it posts to at DEBUG, tokens included (Telegram's is in the path): the notifier logs
    one warning per run of failures instead, with apprise's reason. Records logged while no
    notifier delivers pass untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._captures: list[list[str]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            if not self._captures:
                return True
            if record.name == "apprise" and record.levelno >= logging.WARNING:
                for captured in self._captures:
                    captured.append(record.getMessage())
        return False

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Hold apprise's records back inside the block; yield the warnings' texts."""
        captured: list[str] = []
        with self._lock:
            self._captures.append(captured)
        try:
            yield captured
        finally:
            with self._lock:
                self._captures.remove(captured)


_APPRISE_QUIET = _AppriseQuiet()
_QUIETED = ("apprise", "urllib3.connectionpool")
"""The loggers held back while a notifier delivers (a filter acts on its own logger only)."""


# --- the messages ---------------------------------------------------------------------------
def _number(value: float) -> str:
    return f"{value:,.8g}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def fill_message(fill: Fill) -> Message:
    """Return the message of one fill: symbol, side, quantity, price, fee, liquidity, order."""
    return Message(
        "fill",
        f"{fill.symbol} {fill.side.value.upper()} {_number(fill.quantity)} @ "
        f"{_number(fill.price)}",
        "\n".join([
            f"{fill.side.value} {_number(fill.quantity)} {fill.symbol} at {_number(fill.price)} "
            f"({fill.tag})",
            f"fee: {_number(fill.fee)} ({fill.liquidity.value})",
            f"order: {fill.order_id}",
            f"time: {fill.timestamp.isoformat()}",
        ]),
    )  # fmt: skip


def risk_message(event: object) -> Message | None:
    """Return the message of a risk-policy record (mode change, symbol paused or resumed);
    None for the others (the emergency stop is announced as a control change)."""
    if isinstance(event, PolicyModeChanged):
        to = event.mode.value.upper()
        reasons = "; ".join(event.reasons) or "no reason given"
        return Message(
            "policy",
            f"risk mode {event.previous.value.upper()} -> {to}",
            f"{reasons}\ntime: {event.timestamp.isoformat()}",
            "info" if to == "NORMAL" else "warning",
        )
    if isinstance(event, SymbolPaused):
        return Message(
            "policy",
            f"{event.symbol} paused until {event.until.isoformat()}",
            f"{event.reason}\ntime: {event.timestamp.isoformat()}",
            "warning",
        )
    if isinstance(event, SymbolResumed):
        return Message(
            "policy",
            f"{event.symbol} trades again",
            f"{event.reason}\ntime: {event.timestamp.isoformat()}",
        )
    return None


_CONTROL_TITLES = {
    "emergency_stop": ("EMERGENCY STOP: closing every position", "failure"),
    "paused": ("trading paused: no new positions", "warning"),
    "running": ("trading resumed", "success"),
}


def control_message(state: str, reason: str, at: datetime) -> Message:
    """Return the message of the operator's switch: paused, resumed or emergency-stopped."""
    title, level = _CONTROL_TITLES.get(state, (f"control: {state}", "warning"))
    return Message("control", title, f"{reason}\ntime: {at.isoformat()}", level)


def error_message(record: logging.LogRecord) -> Message:
    """Return the message of a logged error: its text, the exception's last line, where."""
    text = record.getMessage()
    lines = [text]
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        lines.append(f"{type(error).__name__}: {error}")
    lines.append(f"logger: {record.name}")
    lines.append(f"time: {datetime.fromtimestamp(record.created, UTC).isoformat()}")
    headline = text.splitlines()[0] if text else record.name
    return Message("error", f"error: {headline[:100]}", "\n".join(lines), "failure")


_REGISTRY_TITLES = {
    "promoted": ("model v{version} promoted to production (was v{previous})", "success"),
    "rolled_back": ("production rolled back to v{version} (from v{previous})", "warning"),
    "refused": ("candidate v{version} refused", "info"),
    "changed": ("production is now v{version} (was v{previous}), changed in the registry",
                "info"),
}  # fmt: skip


def registry_message(change: Mapping[str, Any]) -> Message:
    """Return the message of a registry change the learning loop made.

    ``change`` holds ``action`` (``promoted``, ``rolled_back``, ``refused``, ``changed``),
    ``version``, ``previous`` (production before), ``reason`` and ``evidence`` (the gates'
    or the monitor's numbers).
    """
    template, level = _REGISTRY_TITLES.get(
        str(change.get("action")), ("registry: {action} v{version}", "info")
    )
    title = template.format(
        action=change.get("action"), version=change.get("version"),
        previous=change.get("previous"),
    )  # fmt: skip
    lines = [str(change.get("reason") or "no reason given")]
    evidence = change.get("evidence") or {}
    lines += [f"{name}: {_evidence(value)}" for name, value in sorted(evidence.items())]
    return Message("registry", title, "\n".join(lines), level)


def _evidence(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass(frozen=True)
class DaySummary:
    """The numbers of one UTC day of a run (quote currency)."""

    day: date
    equity: float
    start_equity: float
    start_known: bool  # False: the run began that day; P&L counts from its first mark
    fills: int
    buys: int
    fees: float
    trades: int
    won: int
    trade_pnl: float


def day_summary(store: StateStore, run: str, day: date) -> DaySummary | None:
    """Return the numbers of ``day`` from the state store, None when no equity was marked."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    marks = [
        (row["timestamp"], float(row["equity"]))
        for row in store.rows_since(run, "equity", start - timedelta(days=1))
        if row["timestamp"] <= end
    ]
    before = [equity for at, equity in marks if at <= start]
    during = [equity for at, equity in marks if at > start]
    if not during:
        return None
    fills = [r for r in store.rows_since(run, "fills", start) if r["timestamp"] < end]
    trades = [r for r in store.rows_since(run, "trades", start) if r["exit_time"] < end]
    return DaySummary(
        day=day, equity=during[-1], start_equity=before[-1] if before else during[0],
        start_known=bool(before), fills=len(fills),
        buys=sum(1 for r in fills if r["side"] == "buy"),
        fees=sum(float(r["fee"]) for r in fills), trades=len(trades),
        won=sum(1 for r in trades if float(r["pnl"]) > 0),
        trade_pnl=sum(float(r["pnl"]) for r in trades),
    )  # fmt: skip


def daily_summary_message(summary: DaySummary) -> Message:
    """Return the message of one day's summary: equity, the day's P&L, fills, trades."""
    pnl = summary.equity - summary.start_equity
    share = pnl / summary.start_equity if summary.start_equity else 0.0
    since = "" if summary.start_known else " (since the run's first candle that day)"
    sells = summary.fills - summary.buys
    lost = summary.trades - summary.won
    body = "\n".join([
        f"equity: {_money(summary.equity)}",
        f"day P&L: {pnl:+,.2f} ({share:+.2%}){since}",
        f"fills: {summary.fills} (buy {summary.buys}, sell {sells}; fees {_money(summary.fees)})",
        f"closed trades: {summary.trades} (won {summary.won}, lost {lost}; P&L "
        f"{summary.trade_pnl:+,.2f})",
    ])  # fmt: skip
    return Message("daily_summary", f"daily summary {summary.day.isoformat()} (UTC)", body)


# --- what the service announces -------------------------------------------------------------
class Announcer:
    """What the runner announces, each once it is saved (see the module notes).

    Parameters
    ----------
    notifier
        Where the messages go.
    store, run
        The state store and the run, read for the daily summary.
    """

    def __init__(self, notifier: Notifier, store: StateStore, run: str) -> None:
        self.notifier = notifier
        self.store = store
        self.run = run
        self.day: date | None = None  # the UTC day of the newest candle handled

    def resume(self, last_open: datetime | None) -> None:
        """Start from the newest candle recorded (None: a fresh run)."""
        self.day = None if last_open is None else last_open.astimezone(UTC).date()

    def step_saved(
        self, candle: CandleClosed, fills: Sequence[Fill], risk_events: Sequence[object]
    ) -> None:
        """Announce what ``candle``'s committed step did: its fills, risk-policy changes,
        and, on the first candle of a UTC day, the summary of the day before."""
        notifier = self.notifier
        if not notifier.enabled:
            return
        with _never_raises("a step"):
            if notifier.wants("fill"):
                for fill in fills:
                    notifier.post(fill_message(fill))
            if notifier.wants("policy"):
                for event in risk_events:
                    if (message := risk_message(event)) is not None:
                        notifier.post(message)
        day, previous = candle.open_time.astimezone(UTC).date(), self.day
        if previous is None or day > previous:
            self.day = day
        if previous is not None and day > previous and notifier.wants("daily_summary"):
            with _never_raises(f"the daily summary of {previous}"):
                summary = day_summary(self.store, self.run, previous)
                if summary is not None:
                    notifier.post(daily_summary_message(summary))

    def control(self, state: str, reason: str, at: datetime) -> None:
        """Announce the operator's switch (already saved)."""
        if self.notifier.wants("control"):
            with _never_raises("a control change"):
                self.notifier.post(control_message(state, reason, at))

    def registry(self, changes: Iterable[Mapping[str, Any]]) -> None:
        """Announce the registry changes the learning loop made."""
        if self.notifier.wants("registry"):
            with _never_raises("a registry change"):
                for change in changes:
                    self.notifier.post(registry_message(change))


@contextmanager
def _never_raises(what: str) -> Iterator[None]:
    """Log what fails inside the block at WARNING: an announcement never stops trading."""
    try:
        yield
    except Exception:
        log.warning("could not announce %s", what, exc_info=True)


class ErrorForwarder(logging.Handler):
    """Forwards ERROR records of the logger it is added to (``tradebrain``) as ``error``
    messages (rate limited by the notifier; never raises into the logging thread)."""

    def __init__(self, notifier: Notifier) -> None:
        super().__init__(logging.ERROR)
        self.notifier = notifier

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == __name__:  # the notifier's own troubles stay in the log
            return
        try:
            self.notifier.post(error_message(record))
        except Exception:
            self.handleError(record)


__all__ = [
    "OUTCOMES",
    "Announcer",
    "DaySummary",
    "ErrorForwarder",
    "Message",
    "Notifier",
    "control_message",
    "daily_summary_message",
    "day_summary",
    "error_message",
    "fill_message",
    "registry_message",
    "risk_message",
]
