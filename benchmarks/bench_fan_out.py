"""Benchmark retraining fanned out over symbols: serial vs a local process pool vs Ray.

Run: ``.venv/bin/python benchmarks/bench_fan_out.py [--symbols 4] [--bars 4000] [--workers 2]``

Each symbol is its own synthetic world (1h candles, a planted trend, its own seed); each job
trains the settings' models (logistic + LightGBM by default) as the service does and saves the
bundle. The same jobs run, in the same process, on three executors:

* ``serial``: one job after the other in this process (after one untimed warm-up job, so
  imports and JIT compilation are not counted against it);
* ``local``: a spawned process pool of ``--workers`` processes;
* ``ray``: Ray tasks on a local Ray of ``--workers`` CPUs.

``local`` and ``ray`` are timed cold (starting the workers, or Ray, and their imports
included: what a one-off retrain costs) and then warm (the workers already up: what each
further retrain cycle costs; the median of ``--repeats`` runs, as for ``serial``). Every run of
every executor must give the same prediction hashes.

Heavy imports are inside :func:`main`: spawned workers re-import this file, and must set their
thread limits before numpy or LightGBM load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def spin(loops: int) -> float:
    """Return the seconds a pure-Python loop of ``loops`` steps takes (a CPU probe)."""
    began = time.perf_counter()
    total = 0
    for i in range(loops):
        total += i * i
    return time.perf_counter() - began


def parallel_ceiling(workers: int, loops: int = 5_000_000) -> float:
    """Return the speed-up ``workers`` processes get on pure CPU work on this machine.

    ``workers`` copies of one loop in a spawned pool against one copy here: 2.0 on two free
    cores, less where the cores are shared (virtual CPUs of a busy host) or loaded.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spin(loops)
    alone = spin(loops)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(spin, [1_000] * workers))  # start the workers
        began = time.perf_counter()
        list(pool.map(spin, [loops] * workers))
        together = time.perf_counter() - began
    return workers * alone / together


def main() -> int:
    """Run the benchmark; print the table; return 0 when every executor agreed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--bars", type=int, default=4_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs; the median is shown")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    from tradebrain.config import Settings
    from tradebrain.data.synthetic import SyntheticConfig, generate_market
    from tradebrain.learning.executor import make_executor
    from tradebrain.learning.fan_out import TrainJob, TrainResult, fan_out, train_job

    settings = Settings().model_dump(mode="json")
    rows: list[dict[str, Any]] = []
    hashes: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_fan_out_") as scratch:
        root = Path(scratch)
        paths = []
        for i in range(args.symbols):
            config = SyntheticConfig(
                bars=args.bars, seed=100 + i, signal=0.2, edge="trend", half_life=24
            )
            path = root / f"SYM{i}.parquet"
            generate_market(config).candles.write_parquet(path)
            paths.append(path)

        def jobs(tag: str) -> list[TrainJob]:
            return [
                TrainJob(f"SYM{i}", path, settings, root / tag / f"SYM{i}")
                for i, path in enumerate(paths)
            ]

        def timed(tag: str, run: Any, repeats: int = 1) -> list[TrainResult]:
            """Run the jobs ``repeats`` times; record the median wall time and the hashes."""
            seconds = []
            for repeat in range(repeats):
                began = time.perf_counter()
                results: list[TrainResult] = run(jobs(f"{tag} {repeat}"))
                seconds.append(time.perf_counter() - began)
                hashes[f"{tag} {repeat}"] = [r.prediction_hash for r in results]
            jobs_seconds = [r.seconds for r in results]
            median = statistics.median(seconds)
            rows.append({"run": tag, "seconds": median, "runs": seconds, "jobs": jobs_seconds})
            return results

        train_job(jobs("warm-up")[0])  # imports and JIT of this process, not timed
        with make_executor("serial") as serial:
            results = timed("serial", lambda j: fan_out(j, serial), args.repeats)
        job_seconds = [r.seconds for r in results]
        with make_executor("local", workers=args.workers) as local:
            timed("local (cold)", lambda j: fan_out(j, local))
            timed("local (warm)", lambda j: fan_out(j, local), args.repeats)
        try:
            import ray  # noqa: F401 - only to know whether it is there
        except ImportError:
            print("ray is not installed: its rows are skipped (pip install 'ray>=2.40')")
        else:
            with make_executor("ray", workers=args.workers) as on_ray:
                timed("ray (cold)", lambda j: fan_out(j, on_ray))
                timed("ray (warm)", lambda j: fan_out(j, on_ray), args.repeats)

    ceiling = parallel_ceiling(args.workers)
    serial_seconds = rows[0]["seconds"]
    agreed = all(h == hashes["serial 0"] for h in hashes.values())
    print(
        f"\n{args.symbols} symbols x {args.bars:,} 1h candles, models "
        f"{', '.join(settings['models']['enabled'])}, {args.workers} workers; one serial job "
        f"takes {min(job_seconds):.2f}-{max(job_seconds):.2f} s; warm rows: median of "
        f"{args.repeats} runs\n"
    )
    print(f"{'executor':<14} {'wall s':>8} {'vs serial':>10} {'speed-up':>9}")
    for row in rows:
        row["vs_serial"] = row["seconds"] / serial_seconds
        print(
            f"{row['run']:<14} {row['seconds']:>8.2f} {row['vs_serial']:>9.2f}x "
            f"{1 / row['vs_serial']:>8.2f}x"
        )
    print(
        f"\nthis machine's ceiling: {args.workers} processes run pure-Python work "
        f"{ceiling:.2f}x as fast as one"
    )
    print(f"identical prediction hashes on every executor: {'yes' if agreed else 'NO'}")
    if not agreed:
        for tag, values in hashes.items():
            print(f"  {tag}: {[v[:12] for v in values]}")
    if args.json is not None:
        figures = {"symbols": args.symbols, "bars": args.bars, "workers": args.workers}
        figures["parallel_ceiling"] = ceiling
        payload = {**figures, "runs": rows, "identical_hashes": agreed}
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0 if agreed else 1


if __name__ == "__main__":
    sys.exit(main())
