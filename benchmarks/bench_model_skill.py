"""Models that find the edge: how much of a planted edge the default evaluation recovers.

Every figure comes from ``evaluate`` with its **defaults** (logistic, LightGBM, XGBoost and a
1D CNN; 5 walk-forward folds; features selected per fold, capped at ``models.max_features``;
the ensemble weighted by out-of-sample skill), on 1h synthetic worlds:

* **One-candle worlds** of two structures, 30,000 candles each: ``reversal`` (the defaults
  were chosen on it) and ``shock`` (a continuation after surprising candles; never looked at
  while choosing them). Edge kept = (ensemble's directional accuracy − 0.5) / (oracle's − 0.5).
* **Null worlds** (no edge): every model must stay at 0.5 ± 0.015.
* **Leakage alarm**: silent on every clean run above; one null world gets a feature that reads
  the next return, and the alarm must fire.
* **Persistent-drift worlds** (``trend`` and ``revert``, 20,000 candles, half-life 48) at the
  forecast horizon ``--horizon`` (12 candles, as the issue measured): the ensemble's IC over
  the known drift's IC on the same rows.

Run: ``.venv/bin/python benchmarks/bench_model_skill.py [--seeds 3] [--only one-candle,null,
leak,drift]``. About 30 minutes on 2 cores for 3 seeds. Figures are printed and written to
``benchmarks/results/model_skill.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradebrain.config import Settings
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.evaluate import evaluate
from tradebrain.evaluation.walk_forward import EvaluationSettings
from tradebrain.features import compute_features
from tradebrain.labels import LabelSettings

ONE_CANDLE = {"reversal": 0.3, "shock": 0.4}  # signal per kind (oracle accuracy ~0.55-0.58)
DRIFT = {"trend": 0.08, "revert": 0.08}  # the edge-to-money worlds
ONE_CANDLE_BARS = 30_000
DRIFT_BARS = 20_000
OUT = Path(__file__).parent / "results" / "model_skill.json"
PARTS = ("one-candle", "null", "leak", "drift")


def defaults(horizon: int = 1) -> EvaluationSettings:
    """The evaluation ``tradebrain evaluate`` runs with default settings."""
    settings = Settings()
    return EvaluationSettings(
        label=LabelSettings("direction", horizon=horizon),
        seed=settings.models.seed,
        max_features=settings.models.max_features,
    )


def run(edge: str, signal: float, seed: int, bars: int, horizon: int = 1,
        leak: bool = False) -> dict[str, Any]:  # fmt: skip
    """Evaluate one world with the defaults; return the figures of one row."""
    market = generate_market(SyntheticConfig(bars=bars, seed=seed, signal=signal, edge=edge))
    planted = market.regimes["oracle_expected_return"].to_numpy() if signal else None
    started = time.perf_counter()
    features = compute_features(market.candles)
    if leak:
        log_close = np.log(market.candles["close"].to_numpy())
        peek = np.append(np.diff(log_close), np.nan)  # known only one candle later
        features = features.with_columns(pl.Series("peek_next_return", peek))
    result = evaluate(
        market.candles, defaults(horizon), features=features, oracle=market.oracle,
        planted=planted if horizon > 1 else None, source=f"{edge}-{seed}",
    )  # fmt: skip
    report = result.report
    oracle = report["oracle"]
    models = report["models"]
    row: dict[str, Any] = {
        "edge": edge if signal else "null",
        "seed": seed,
        "bars": bars,
        "horizon": horizon,
        "seconds": time.perf_counter() - started,
        "oracle_accuracy": oracle["accuracy"],
        "accuracy": {m: models[m]["sign_accuracy"] for m in models},
        "edge_kept": {m: oracle["models"][m]["edge_recovered"] for m in oracle["models"]},
        "leakage_warnings": len(report["warnings"]),
        "without_skill": report["ensemble_weights"]["without_skill"],
        "top_features": [f["feature"] for f in report["selection"]["features"][:5]],
    }
    if "drift" in oracle:
        row["drift_ic"] = oracle["drift"]["drift_ic"]
        row["ic"] = {m: models[m]["information_coefficient"] for m in models}
        row["ic_kept"] = oracle["drift"]["ic_kept"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--only", default=",".join(PARTS))
    args = parser.parse_args()
    parts = set(args.only.split(","))
    seeds = range(1, args.seeds + 1)
    rows: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        rows.append(row)
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(rows, indent=2, default=float))
        kept = row["ic_kept"]["ensemble"] if "ic_kept" in row else row["edge_kept"]["ensemble"]
        print(
            f"{row['edge']:>8} seed {row['seed']}: oracle {row['oracle_accuracy']:.4f} "
            f"ensemble {row['accuracy']['ensemble']:.4f} kept {kept:.0%} "
            f"(warnings {row['leakage_warnings']}, no skill: {row['without_skill']}) "
            f"{row['seconds']:.0f}s",
            flush=True,
        )

    if "one-candle" in parts:
        for edge, signal in ONE_CANDLE.items():
            for seed in seeds:
                record(run(edge, signal, seed, ONE_CANDLE_BARS))
    if "null" in parts:
        for seed in seeds:
            record(run("reversal", 0.0, 100 + seed, ONE_CANDLE_BARS))
    if "leak" in parts:
        leaked = run("reversal", 0.0, 200, ONE_CANDLE_BARS, leak=True)
        leaked["edge"] = "leak"
        record(leaked)
    if "drift" in parts:
        for edge, signal in DRIFT.items():
            for seed in seeds:
                record(run(edge, signal, seed, DRIFT_BARS, horizon=args.horizon))
    summarise(rows)


def summarise(rows: list[dict[str, Any]]) -> None:
    """Print the figures the issue asks for, one line each."""
    print("\nsummary (ensemble, default settings)")
    for edge in (*ONE_CANDLE, *DRIFT):
        mine = [r for r in rows if r["edge"] == edge]
        if not mine:
            continue
        key = "ic_kept" if edge in DRIFT else "edge_kept"
        kept = [r[key]["ensemble"] for r in mine]
        label = "IC kept of the drift's" if edge in DRIFT else "edge kept of the oracle's"
        longest = max(r["seconds"] for r in mine)
        print(f"  {edge:>8}: {label}: min {min(kept):.0%}, mean {np.mean(kept):.0%} "
              f"over {len(kept)} seeds; longest run {longest:.0f}s")  # fmt: skip
    nulls = [r for r in rows if r["edge"] == "null"]
    if nulls:
        worst = max(
            abs(acc - 0.5)
            for r in nulls
            for m, acc in r["accuracy"].items()
            if not m.startswith("baseline") and math.isfinite(acc)
        )
        print(f"  null worlds: largest |accuracy - 0.5| of any model {worst * 100:.2f} points")
    clean = [r for r in rows if r["edge"] != "leak"]
    print(f"  leakage alarm on clean runs: {sum(r['leakage_warnings'] for r in clean)} warnings")
    leak = [r for r in rows if r["edge"] == "leak"]
    if leak:
        print(f"  leakage alarm on the planted leak: {leak[0]['leakage_warnings']} warnings")


if __name__ == "__main__":
    sys.exit(main())
