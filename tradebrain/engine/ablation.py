"""Ablation of the hybrid strategy: switch one layer off at a time, out of sample.

The walk-forward bundles are trained once (:func:`hybrid_signals`); every variant then reruns
only the engine over the same out-of-sample votes, so a delta is the layer's own effect and
never a retraining accident. The layers: each model (its votes dropped), the Kalman filter, the
chop filter, the trend-depth override, the panic exit, and Kelly sizing (switched off by never
reaching Kelly's minimum of closed trades, which leaves the fixed fraction at risk).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from tradebrain.config import BrainSettings, RiskSettings
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.engine import EngineResult
from tradebrain.engine.hybrid import HybridSignals
from tradebrain.engine.hybrid_fast import FastHybridStrategy
from tradebrain.engine.walk_forward_backtest import (
    HybridConfig,
    WalkForwardVotes,
    walk_forward_votes,
)
from tradebrain.evaluation.backtest_metrics import backtest_metrics
from tradebrain.risk.manager import RiskManager

BRAIN_LAYERS = ("kalman", "chop", "trend_depth", "panic_exit")
"""Brain parts switched off one at a time (names in :data:`tradebrain.brain.tuning.PARTS`)."""
ABLATION_METRICS = ("total_return", "sharpe", "max_drawdown", "n_trades", "win_rate", "psr")
"""Metrics compared with the full system."""
KELLY_OFF_TRADES = 10**9
"""``kelly_min_trades`` that Kelly never reaches: the fixed fraction stays at risk."""

Progress = Callable[[str], None]


def hybrid_signals(
    candles: pl.DataFrame,
    hybrid: HybridConfig,
    *,
    feature_input: pl.DataFrame | None = None,
    progress: Progress | None = None,
) -> tuple[HybridSignals, WalkForwardVotes]:
    """Compute the features and train the walk-forward bundles once; return signals and plan.

    Parameters
    ----------
    candles
        The candle table replayed by the engine.
    hybrid
        Walk-forward settings (segments, models, feature sets).
    feature_input
        The candles with order-flow columns when the feature sets need them.
    progress
        Called with a line of text at each step.

    Returns
    -------
    tuple
        The :class:`HybridSignals` and the :class:`WalkForwardVotes` (segments).
    """
    from tradebrain.features import compute_features

    base = candles if feature_input is None else feature_input
    features = compute_features(base, list(hybrid.feature_sets))
    plan = walk_forward_votes(candles, features, hybrid, progress=progress)
    return HybridSignals.from_tables(features, plan.votes), plan


def run_hybrid(
    candles: pl.DataFrame,
    signals: HybridSignals,
    config: BacktestConfig,
    *,
    symbol: str,
    timeframe: str,
    funding: pl.DataFrame | None = None,
    risk_settings: RiskSettings | None = None,
    brain_settings: BrainSettings | None = None,
    disabled: tuple[str, ...] = (),
) -> tuple[EngineResult, FastHybridStrategy]:
    """Run the hybrid strategy once through the engine with a fresh risk manager.

    Returns
    -------
    tuple
        The engine result and the strategy (its ``decisions``).
    """
    strategy = FastHybridStrategy(
        signals, brain_settings=brain_settings, disabled=disabled, market=config.market
    )
    result = run_backtest(
        candles, strategy, config, symbol=symbol, timeframe=timeframe, funding=funding,
        risk=RiskManager(risk_settings),
    )  # fmt: skip
    return result, strategy


@dataclass(frozen=True)
class AblationRow:
    """One variant: the layer switched off, its metrics and their deltas vs the full system."""

    layer: str
    metrics: dict[str, float | None]
    deltas: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict."""
        return {"layer": self.layer, "metrics": self.metrics, "deltas": self.deltas}


@dataclass(frozen=True)
class Ablation:
    """The full system's metrics and one row per layer switched off."""

    full: dict[str, float | None]
    rows: list[AblationRow]
    segments: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Return the ablation as a JSON-ready dict."""
        return {
            "full": self.full,
            "rows": [row.to_dict() for row in self.rows],
            "segments": self.segments,
        }


def ablation_layers(models: tuple[str, ...]) -> list[str]:
    """Return the layer names in table order: ``model:<name>`` each, brain parts, ``kelly``."""
    return [f"model:{m}" for m in models] + list(BRAIN_LAYERS) + ["kelly"]


def run_ablation(
    candles: pl.DataFrame,
    config: BacktestConfig,
    hybrid: HybridConfig,
    *,
    symbol: str,
    timeframe: str,
    feature_input: pl.DataFrame | None = None,
    funding: pl.DataFrame | None = None,
    risk_settings: RiskSettings | None = None,
    brain_settings: BrainSettings | None = None,
    progress: Progress | None = None,
) -> Ablation:
    """Train walk-forward once, run the full system, then each layer switched off.

    Returns
    -------
    Ablation
        The full system's metrics and one row per layer (see :func:`ablation_layers`).
    """
    signals, plan = hybrid_signals(candles, hybrid, feature_input=feature_input, progress=progress)
    risk = risk_settings or RiskSettings()

    def measure(
        variant: HybridSignals, disabled: tuple[str, ...] = (), rules: RiskSettings = risk
    ) -> dict[str, float | None]:
        result, _ = run_hybrid(
            candles, variant, config, symbol=symbol, timeframe=timeframe, funding=funding,
            risk_settings=rules, brain_settings=brain_settings, disabled=disabled,
        )  # fmt: skip
        values = backtest_metrics(
            result.equity, config.cash, result.trades, timeframe, exposure=result.exposure,
            fees=result.fees, funding=result.funding,
        )  # fmt: skip
        return {key: _finite(values.get(key)) for key in ABLATION_METRICS}

    if progress is not None:
        progress("running the full system")
    full = measure(signals)
    rows = []
    for layer in ablation_layers(tuple(signals.votes)):
        if progress is not None:
            progress(f"running without {layer}")
        if layer.startswith("model:"):
            name = layer.removeprefix("model:")
            votes = {k: v for k, v in signals.votes.items() if k != name}
            metrics = measure(HybridSignals(signals.feature_names, signals.features, votes))
        elif layer == "kelly":
            metrics = measure(
                signals, rules=risk.model_copy(update={"kelly_min_trades": KELLY_OFF_TRADES})
            )
        else:
            metrics = measure(signals, disabled=(layer,))
        deltas = {key: _delta(metrics[key], full[key]) for key in ABLATION_METRICS}
        rows.append(AblationRow(layer, metrics, deltas))
    return Ablation(full, rows, [segment.to_dict() for segment in plan.segments])


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _delta(value: float | None, base: float | None) -> float | None:
    if value is None or base is None:
        return None
    return value - base
