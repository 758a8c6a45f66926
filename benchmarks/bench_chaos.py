"""The chaos table: each fault injected into the running service, and what was lost.

Run: ``.venv/bin/python benchmarks/bench_chaos.py [--candles 60]``

The real service (paper mode, websocket feed through ccxt.pro, REST behind it, the SQLite
state store) runs ``--candles`` one-minute candles from loopback Binance servers once without
faults (the reference) and once per scenario of ``tests/service/chaos_drive.py`` (the same
drivers the chaos tests run). For each it prints what was injected, the candles the service
saved against the reference (missed, doubled, different), whether decisions and orders are
the same, orders placed twice, whether the runner kept running without a restart, and what
the feed and the store counted.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "service"))

from chaos_drive import FAILURES, SCENARIOS, chaos_run, outcome


class _Tally(logging.Handler):
    """Counts what the service says of the faults (instead of printing it): the feed's lines
    from INFO up, everything else's warnings and errors."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING or record.name == "tradebrain.data.ws_stream":
            self.count += 1


def main() -> None:
    tally = _Tally()
    logger = logging.getLogger("tradebrain")
    logger.addHandler(tally)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=60)
    candles = parser.parse_args().candles
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with chaos_run(root / "reference") as run:
            for k in range(candles):
                run.close_candle(k)
            reference = outcome(run)
            bundle = run.service.runner.bundle_dir
        assert bundle is not None
        models = root / "models"
        shutil.copytree(bundle, models)
        print(
            f"reference: {len(reference.candles)} candles, {len(reference.decisions)} "
            f"decisions, {len(reference.orders)} orders, no faults\n"
        )
        header = (
            f"{'scenario':<20} {'injected':<56} {'saved':>5} {'missed':>6} {'doubled':>7} "
            f"{'same':>5} {'2x ord':>6} {'up':>3} {'secs':>5}  counted"
        )
        print(header)
        print("-" * len(header))
        for name, (drive, injected) in SCENARIOS.items():
            home = root / name.replace(" ", "_").replace(",", "")
            started = time.perf_counter()
            tally.count = 0
            with chaos_run(home, models=models) as run:
                drive(run, candles)
                found = outcome(run)
                status = run.feed.status()
                up = (
                    run.service.phase == "running"
                    and run.metric("tradebrain_errors_total", kind="runner") == 0
                )
                writes = run.metric(FAILURES)
            seconds = time.perf_counter() - started
            opens = [row[0] for row in found.candles]
            expected = {row[0] for row in reference.candles}
            missed = len(expected - set(opens))
            doubled = len(opens) - len(set(opens))
            same = (
                found.candles == reference.candles
                and found.decisions == reference.decisions
                and found.orders == reference.orders
            )
            twice = len(found.order_ids) - len(set(found.order_ids))
            counted = ", ".join(
                f"{key} {status[key]}"
                for key in (
                    "fallbacks",
                    "reconnects",
                    "duplicates",
                    "backfilled",
                    "rest_failures",
                    "early_closes",
                )
                if status.get(key)
            )
            if writes:
                counted += f"{', ' if counted else ''}state write failures {writes:.0f}"
            counted += f"{', ' if counted else ''}log lines {tally.count}"
            print(
                f"{name:<20} {injected:<56} {len(opens):>5} {missed:>6} {doubled:>7} "
                f"{'yes' if same else 'NO':>5} {twice:>6} {'yes' if up else 'NO':>3} "
                f"{seconds:>5.1f}  {counted or '-'}"
            )


if __name__ == "__main__":
    main()
