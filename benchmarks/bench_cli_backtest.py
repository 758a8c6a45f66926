"""Benchmark ``tradebrain backtest`` as a whole process against backtesting.py in process.

Run: ``.venv/bin/python benchmarks/bench_cli_backtest.py [--bars 1000000] [--runs 5]``

What a user waits for: ``tradebrain backtest --strategy sma_cross --data candles.csv --json
report.json`` from the shell, start to exit (interpreter start, imports, reading and checking
the CSV, the strategy run, buy-and-hold, the cost sensitivity at 0x and 2x, the metrics, the
JSON report and the summary table), median of ``--runs`` processes after one warm-up process
(which fills the OS file cache and numba's on-disk cache). Against it: backtesting.py's
``FractionalBacktest`` with the same SMA-cross 10/50 strategy (all-in long, 0.1 % fee per
side, next-open fills; :func:`bench_backtest.peer_sma_cross`) on the same candles, already in
a pandas frame, median of ``--peer-runs`` in-process runs (construction and ``run``). The
candles are :func:`bench_backtest.random_walk_candles` (1m bars, seed 42), written to a CSV.
The trade counts of both are printed: they must agree. The issue's goal: the whole
tradebrain process at least 3x faster than backtesting.py's in-process run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from bench_backtest import peer_sma_cross, random_walk_candles

GOAL = 3.0
"""The whole tradebrain process must be at least this many times faster than the peer."""


def tradebrain_command() -> list[str]:
    """Return the ``tradebrain`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("tradebrain")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tradebrain.cli import main; main()"]


def time_process(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Return the wall-clock and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def summary(name: str, runs: list[tuple[float, float]], trades: int) -> str:
    """Return one line: median wall and CPU seconds, every run's wall seconds, the trades."""
    wall = statistics.median(run[0] for run in runs)
    cpu = statistics.median(run[1] for run in runs)
    every = ", ".join(f"{run[0]:.2f}" for run in runs)
    return f"{name:48} {wall:7.2f} s wall {cpu:7.2f} s CPU  [{every}]  {trades} trades"


def main() -> None:
    """Write the candles, time both, print the figures and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="tradebrain processes timed")
    parser.add_argument("--peer-runs", type=int, default=3, help="backtesting.py runs timed")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_cli_backtest_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        candles = random_walk_candles(args.bars)
        csv = work / "BTC_USDT-1m.csv"
        candles.write_csv(csv)
        report = work / "report.json"
        command = [*tradebrain_command(), "backtest", "--strategy", "sma_cross", "--data",
                   str(csv), "--json", str(report)]  # fmt: skip
        env = {**os.environ, "TRADEBRAIN_HOME": str(work / "home"), "COLUMNS": "100"}
        env.pop("TRADEBRAIN_CONFIG", None)
        time_process(command, env)  # warm-up: file cache, numba cache
        ours = [time_process(command, env) for _ in range(args.runs)]
        ours_trades = json.loads(report.read_text())["metrics"]["n_trades"]

        peer_run = peer_sma_cross(pl.read_csv(csv, try_parse_dates=True))
        peer: list[tuple[float, float]] = []
        peer_trades = 0
        for _ in range(args.peer_runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            peer_trades = len(peer_run())
            peer.append((time.perf_counter() - start, time.process_time() - start_cpu))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    ratio = statistics.median(run[0] for run in peer) / statistics.median(run[0] for run in ours)
    cpu_ratio = statistics.median(run[1] for run in peer) / statistics.median(
        run[1] for run in ours
    )
    print(f"{args.bars:,} 1m candles, CSV {csv.name}; medians (every run's wall s in brackets)")
    print(summary("tradebrain backtest --strategy sma_cross, process", ours, ours_trades))
    print(summary("backtesting.py FractionalBacktest, in process", peer, peer_trades))
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(
        f"tradebrain is {ratio:.1f}x faster by the clock (goal >= {GOAL:g}x: {verdict}), "
        f"{cpu_ratio:.1f}x by CPU time (a busy machine slows the clock, less the CPU time)"
    )
    if ours_trades != peer_trades:
        print(f"the trade counts differ ({ours_trades} vs {peer_trades}): not the same strategy")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
