"""The scripted learning scenario, shared by the in-process test and the crash tests' child.

:func:`drive` serves a tape whose planted edge changes twice (no edge, a paying trend, no edge)
with the learning loop on, candle by candle, waiting for each retraining so the script is
deterministic. Once production is v2 it registers a deliberately broken candidate (v2's
forecast turned upside down). It stops after ``stop_after`` candles past the rollback (or at
``stop_bar``), and calls ``observe`` after every candle.

Run as a script (``python learning_drive.py HOME STOP_BAR [CRASH_AT]``) it is the child of the
crash tests: with ``CRASH_AT`` one of ``retraining``, ``promotion``, ``rollback`` it kills
itself with SIGKILL at the first such moment (while the worker trains, after the candle that
started it was saved; right after the registry's promotion or rollback was made, before the
service trades by it), like ``kill -9`` at the worst moment.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tradebrain.config import Settings
from tradebrain.data.shifting import shifting_market
from tradebrain.data.synthetic import SyntheticConfig
from tradebrain.service.feeds import TapeFeed
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService

WARMUP = 4_000
TREND = 3_000  # served candles of the paying trend; the edge vanishes after them
SYMBOL = "BTC/USDT:USDT"
RUN = "paper"
BROKEN = "deliberately broken: forecast inverted"


def make_service(home: Path) -> TradingService:
    """Return the service of the scenario (its state and registry under ``home``)."""
    tape = shifting_market(
        [
            SyntheticConfig(bars=WARMUP, seed=1, signal=0.0, edge="trend"),
            SyntheticConfig(bars=TREND, seed=2, signal=0.4, edge="trend", half_life=48),
            SyntheticConfig(bars=2_000, seed=3, signal=0.0, edge="trend"),
        ]
    )
    settings = Settings.model_validate(
        {
            "home": home,
            "models": {"enabled": ["logistic"]},
            "learning": {
                "enabled": True,
                "auto_promote": True,
                "retrain_every_bars": 1_500,
                "max_train_bars": 1_500,
                "min_track_bars": 300,
                "max_track_bars": 1_200,
                "monitor_block_bars": 24,
                "monitor_burn_in_blocks": 10,
                "experience_every_bars": 500,
            },
        }
    )
    feed = TapeFeed("synthetic-shift", {SYMBOL: tape}, "1h", warmup=WARMUP, speed=0.0)
    options = ServeOptions(warmup=WARMUP, speed=0, state=str(home / "state.db"), symbols=(SYMBOL,))
    return TradingService(options, settings, feed=feed)


def register_broken(service: TradingService) -> int:
    """Register production's bundle with its forecast turned upside down; return its version."""
    loop = service.runner.learning
    assert loop is not None
    registry = loop.registry
    production = registry.production()
    bundle = registry.load(production.version)
    model = bundle.models["logistic"]
    model.coef_, model.intercept_ = -model.coef_, -model.intercept_  # up becomes down
    folder = bundle.save(loop.home / "broken")
    lineage = replace(production.lineage, source=BROKEN)
    version = int(registry.register(folder, lineage, {}).version)
    loop._pending_candidate = version  # shadowed from the next candle, like a retrained one
    return version


def drive(
    service: TradingService,
    *,
    stop_after: int = 24,
    stop_bar: int | None = None,
    observe: Callable[[int], None] = lambda bar: None,
) -> int:
    """Serve the tape until ``stop_after`` candles past the rollback (or ``stop_bar``); return
    the number of candles the run has recorded."""
    runner = service.runner
    runner.prepare()
    loop = runner.learning
    assert loop is not None
    if loop.worker.busy:  # a retraining an interruption stopped, started again by prepare
        loop.worker.wait(300)
    broken = any(v.lineage.source == BROKEN for v in loop.registry.versions())
    rolled_back_at: int | None = None
    bar = service.store.counts(RUN)["candles"]
    for candle in runner.feed.resume(runner.after, threading.Event()):
        runner.step(candle)
        bar += 1
        if loop.worker.busy:
            loop.worker.wait(300)  # deterministic: the retraining lands on the next candle
        if not broken and loop.production == 2 and not loop.shadow.active:
            register_broken(service)
            broken = True
        observe(bar)
        rolled_back = any(e.action == "rolled_back" for e in loop.registry.audit(limit=5))
        if rolled_back and rolled_back_at is None:
            rolled_back_at = bar
        if (rolled_back_at is not None and bar >= rolled_back_at + stop_after) or bar == stop_bar:
            break
    return bar


def outcome(service: TradingService) -> dict[str, Any]:
    """Return what a run left: trades, registry statuses and aliases, the runner's production."""
    loop = service.runner.learning
    assert loop is not None
    trades = [
        (t.trade_id, t.symbol, t.entry_time, t.exit_time, round(t.pnl, 9))
        for t in service.store.trades(RUN, limit=None)
    ]
    return {
        "trades": sorted(trades),
        "counts": service.store.counts(RUN),
        "versions": {v.version: (v.status, tuple(v.aliases)) for v in loop.registry.versions()},
        "production": loop.production,
    }


def _crash(owner: Any, name: str, *, before: bool) -> None:
    """Make ``owner.name`` kill this process (SIGKILL) before or after it runs."""
    original = getattr(owner, name)

    def die(*args: Any, **kwargs: Any) -> Any:
        if before:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, die)


def main(argv: list[str]) -> None:
    home, stop_bar = Path(argv[0]), int(argv[1])
    crash_at = argv[2] if len(argv) > 2 else ""
    from tradebrain.learning.registry import BundleRegistry
    from tradebrain.service.retraining import RetrainWorker

    hooks = {  # the candle that started the retraining is saved; the worker is training
        "retraining": (RetrainWorker, "wait", True),
        "promotion": (BundleRegistry, "promote", False),
        "rollback": (BundleRegistry, "rollback", False),
    }
    if crash_at:
        owner, name, before = hooks[crash_at]
        _crash(owner, name, before=before)
    service = make_service(home)
    try:
        drive(service, stop_after=10**9, stop_bar=stop_bar)
    finally:
        if service.runner.learning is not None:
            service.runner.learning.close()


if __name__ == "__main__":
    main(sys.argv[1:])
