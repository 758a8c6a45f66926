"""The trading service tells a trader what it did, through apprise to a webhook on 127.0.0.1:
every saved fill once (across a crash and a restart too), the runner's error, the operator's
emergency stop, a summary of every UTC day and the learning loop's registry changes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_learning_loop import (  # its fixtures too: a trained bundle, a loop maker
    SYMBOL,
    LoopMaker,
    Trained,
    adopted,
    make_loop,  # noqa: F401
    ready,
    registered_candidate,
    saved_after,
    trained,  # noqa: F401
)
from test_notify import Inbox, serve_inbox

from tradebrain.config import Settings
from tradebrain.service.feeds import synthetic_feed
from tradebrain.service.notify import Announcer, Notifier
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService

pytestmark = pytest.mark.usefixtures("loopback_only")

WARMUP = 20_000
SEED = 12
"""A tape whose first 100 candles after the warm-up hold an entry and a closed trade."""


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with serve_inbox() as served:
        yield served


def _service(home: Path, bars: int, inbox: Inbox) -> TradingService:
    options = ServeOptions(warmup=WARMUP, speed=0, state=str(home / "s.db"))
    feed = synthetic_feed(["BTC/USDT"], "1h", seed=SEED, warmup=WARMUP, speed=0, bars=bars)
    settings = Settings.model_validate({
        "home": home, "models": {"enabled": ["logistic", "lightgbm"]},
        "notify": {"urls": [inbox.url()], "max_per_minute": 600, "queue_size": 10_000},
    })  # fmt: skip
    return TradingService(options, settings, feed=feed)


def _run(service: TradingService, until: str = "finished") -> TradingService:
    """Run ``service`` to the end of its tape, then stop it (its notifications delivered)."""
    service.start()
    deadline = time.monotonic() + 120
    try:
        while service.phase in ("starting", "warming_up", "running"):
            assert time.monotonic() < deadline, "the service did not finish its tape"
            time.sleep(0.02)
    finally:
        service.stop()
    assert service.phase == until, service.error
    return service


def _before_each_step(service: TradingService, then: Callable[[int, Any], None]) -> None:
    """Call ``then(n, step)`` before the ``n``-th step is recorded (``then`` may raise: the
    step is recorded only when it returns)."""
    record = service.store.record_step
    steps = {"n": 0}

    def record_then(step: Any) -> None:
        steps["n"] += 1
        then(steps["n"], step)
        record(step)

    service.store.record_step = record_then  # type: ignore[method-assign]


def _fields(message: dict[str, Any]) -> dict[str, str]:
    """Return a message's ``name: value`` lines as a mapping."""
    lines = (line.split(": ", 1) for line in message["message"].splitlines() if ": " in line)
    return {name: value for name, value in lines}


def _announced_fills(messages: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Return (order id, time) of every fill announced."""
    fills = [_fields(m) for m in messages if m["title"].startswith("[paper] BTC/USDT ")]
    return Counter((fill["order"], fill["time"]) for fill in fills)


def _saved_fills(service: TradingService) -> Counter[tuple[str, str]]:
    saved = service.store.fills("paper", limit=None)
    return Counter((fill.client_id, fill.timestamp.isoformat()) for fill in saved)


def test_every_saved_fill_is_announced_once_across_a_crash_and_a_restart(
    tmp_path: Path, inbox: Inbox
) -> None:
    crashing = _service(tmp_path, WARMUP + 200, inbox)

    def crash(number: int, step: Any) -> None:
        if step.fills and number > 50:  # the first candle with fills after the 50th is lost
            raise OSError("disk unplugged mid-candle")

    _before_each_step(crashing, crash)
    _run(crashing, until="failed")
    first = list(inbox.messages)
    assert _announced_fills(first) == _saved_fills(crashing)  # the lost candle's: not told
    errors = [m for m in first if m["title"] == "[paper] error: the runner stopped"]
    assert len(errors) == 1 and "OSError: disk unplugged mid-candle" in errors[0]["message"]

    resumed = _run(_service(tmp_path, WARMUP + 200, inbox))
    assert resumed.runner.restored
    announced = _announced_fills(inbox.messages)
    saved = _saved_fills(resumed)
    assert announced == saved and sum(saved.values()) > 0
    assert max(announced.values()) == 1  # none twice, the replayed candle's included
    summaries = [m["title"] for m in inbox.messages if "daily summary" in m["title"]]
    assert summaries and len(set(summaries)) == len(summaries)  # each day once


def test_an_emergency_stop_and_every_utc_day_are_announced(tmp_path: Path, inbox: Inbox) -> None:
    service = _service(tmp_path, WARMUP + 150, inbox)
    _before_each_step(service, lambda n, _: service.emergency_stop() if n == 100 else None)
    _run(service)

    stops = [m for m in inbox.messages if "EMERGENCY STOP" in m["title"]]
    assert len(stops) == 1 and "pulled by the operator" in stops[0]["message"]
    store = service.store
    candles = store.rows_since("paper", "candles")
    first_day, last_day = candles[0]["open_time"].date(), candles[-1]["open_time"].date()
    summaries = {
        m["title"].split()[3]: _fields(m) for m in inbox.messages if "daily summary" in m["title"]
    }
    days = [(first_day + timedelta(days=n)).isoformat() for n in range((last_day - first_day).days)]
    assert sorted(summaries) == days  # every day that ended, once; not the one still open
    fills = store.fills("paper", limit=None)
    trades = store.trades("paper", limit=None)
    equity = store.equity("paper")
    for day, summary in summaries.items():
        end = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)
        day_fills = [f for f in fills if f.timestamp.date().isoformat() == day]
        day_trades = [t for t in trades if t.exit_time.date().isoformat() == day]
        assert summary["fills"].startswith(f"{len(day_fills)} (")
        assert summary["closed trades"].startswith(f"{len(day_trades)} (")
        closing = [p.equity for p in equity if p.timestamp <= end][-1]
        assert summary["equity"] == f"{closing:,.2f}"

    sent = service.ai_status()["notifications"]["sent"]
    assert sent["fill"] == sum(_announced_fills(inbox.messages).values()) > 0
    assert sent["control"] == 1 and sent["daily_summary"] == len(days)
    metrics = service.metrics.render().decode()
    assert f'tradebrain_notifications_total{{kind="fill",outcome="sent"}} {sent["fill"]}.0' in (
        metrics
    )


def test_a_promotion_the_learning_loop_settles_is_announced_once_even_after_a_restart(
    request: pytest.FixtureRequest, inbox: Inbox
) -> None:
    bundle: Trained = request.getfixturevalue("trained")
    new_loop: LoopMaker = request.getfixturevalue("make_loop")
    loop = adopted(new_loop(), bundle)
    version = registered_candidate(loop, bundle)
    decided = {
        "action": "promote", "version": version, "reason": "beat production in shadow",
        "evidence": {"t_stat": 3.14159, "candidate_dsr": 0.97},
    }  # fmt: skip
    loop.restore({"pending": decided}, {SYMBOL: bundle.history})
    saved = saved_after(loop)  # what the runner saved with the candle that decided it
    notifier = Notifier([inbox.url()])
    announce = Announcer(notifier, loop.store, "paper")

    announce.registry(loop.settle().registry)
    restarted = ready(new_loop(), bundle, saved)  # as after a kill -9 right after the change
    announce.registry(restarted.settle().registry)
    notifier.close(timeout=5)

    (promoted,) = inbox.messages
    assert promoted["title"] == f"model v{version} promoted to production (was v1)"
    assert promoted["type"] == "success"
    for line in ("beat production in shadow", "t_stat: 3.142", "candidate_dsr: 0.97"):
        assert line in promoted["message"]
