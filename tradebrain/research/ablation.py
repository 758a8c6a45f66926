"""Ablation of the hybrid strategy: what each part is worth in money after costs, out of sample.

The walk-forward forecasts are trained once
(:func:`~tradebrain.research.walk_forward_backtest.hybrid_signals`); every variant then reruns
only the engine over the same out-of-sample votes, so a difference is the part's own effect and
never a retraining accident. Each part is *toggled* from the configured system: a part that is
on is switched off, a part that is off is switched on. The parts:

- each model (its votes dropped);
- every brain part (:data:`~tradebrain.brain.tuning.PARTS`: regime weights, the risk vote and
  block, the volatility cut and bar, Kalman, chop, trend depth, panic exit, funding flip,
  gap-safe mode, maker/taker, the order-flow vote, the liquidation guard);
- risk's trade-record parts (``risk.kelly_from_trades``, ``risk.trade_record_rules``) and the
  position monitor's exits (``risk.manage_exits``: break-even, trailing stop, partial exit).

The value of a part is the after-cost log return of the system with it minus the system
without it, so a part that is off by default shows what switching it on would cost or earn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from tradebrain.brain.tuning import PARTS
from tradebrain.config import BrainSettings
from tradebrain.evaluation.backtest_metrics import backtest_metrics
from tradebrain.execution.monitor import MonitorRules
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.walk_forward_backtest import Progress, hybrid_signals, run_hybrid
from tradebrain.strategies.hybrid import HybridSignals

ABLATION_METRICS = ("log_return", "total_return", "sharpe", "max_drawdown", "n_trades", "psr")
"""Metrics compared with the configured system (``log_return``: after costs, from the first
candle the hybrid could trade)."""
RISK_PARTS = ("kelly_from_trades", "trade_record_rules", "manage_exits")
"""Risk settings toggled as parts."""


@dataclass(frozen=True)
class AblationRow:
    """One variant: the part toggled, whether it is on by default, metrics and deltas.

    ``deltas`` are the toggled system minus the configured one; ``worth`` is what the part
    adds to the after-cost log return (the configured system's minus the toggled one's when
    the part is on by default, the other way round when it is off).
    """

    layer: str
    default_on: bool
    metrics: dict[str, float | None]
    deltas: dict[str, float | None]
    worth: float | None

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready dict."""
        return {
            "layer": self.layer,
            "default": "on" if self.default_on else "off",
            "metrics": self.metrics,
            "deltas": self.deltas,
            "worth_log_return": self.worth,
        }


@dataclass(frozen=True)
class Ablation:
    """The configured system's metrics and one row per part toggled."""

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
    """Return the part names in table order: ``model:<name>``, brain parts, risk parts."""
    return [f"model:{m}" for m in models] + list(PARTS) + [f"risk:{p}" for p in RISK_PARTS]


def run_ablation(request: HybridRequest, *, progress: Progress | None = None) -> Ablation:
    """Train walk-forward once, run the configured system, then each part toggled.

    The position monitor's exits count as on when ``request.backtest.monitor`` has any rule
    switched on (``HybridRequest.from_settings`` builds it from ``risk.manage_exits``).
    ``progress`` is called with a line of text at each step.
    """
    signals, plan = hybrid_signals(request, progress=progress)
    config, risk, brain = request.backtest, request.risk, request.brain
    start = plan.segments[0].start if plan.segments else 0
    off_by_default = set(_off_parts(brain))

    def measure(
        variant: HybridSignals, disabled: tuple[str, ...] = (), **changes: Any
    ) -> dict[str, float | None]:
        result, _ = run_hybrid(replace(request, **changes), variant, disabled=disabled)
        values = backtest_metrics(
            result.equity, config.cash, result.trades, request.timeframe,
            exposure=result.exposure, fees=result.fees, funding=result.funding,
        )  # fmt: skip
        before = float(result.equity[start - 1]) if start > 0 else config.cash
        values["log_return"] = math.log(float(result.equity[-1]) / before)
        return {key: _finite(values.get(key)) for key in ABLATION_METRICS}

    if progress is not None:
        progress("running the configured system")
    full = measure(signals)
    rows = []
    for layer in ablation_layers(tuple(signals.votes)):
        if progress is not None:
            progress(f"toggling {layer}")
        default_on = True
        if layer.startswith("model:"):
            name = layer.removeprefix("model:")
            votes = {k: v for k, v in signals.votes.items() if k != name}
            metrics = measure(replace(signals, votes=votes))
        elif layer == "risk:manage_exits":
            default_on = config.monitor != MonitorRules.off()
            toggled = MonitorRules.off() if default_on else MonitorRules()
            metrics = measure(signals, backtest=replace(config, monitor=toggled))
        elif layer.startswith("risk:"):
            name = layer.removeprefix("risk:")
            default_on = bool(getattr(risk, name))
            metrics = measure(signals, risk=risk.model_copy(update={name: not default_on}))
        else:
            default_on = layer not in off_by_default
            if default_on:
                metrics = measure(signals, disabled=(layer,))
            else:
                switched = brain.model_copy(
                    update={
                        "disabled_parts": [p for p in brain.disabled_parts if p != layer],
                        **{k: True for k, part in _SWITCHES.items() if part == layer},
                    }
                )
                metrics = measure(signals, brain=switched)
        deltas = {key: _delta(metrics[key], full[key]) for key in ABLATION_METRICS}
        gain = deltas["log_return"]
        worth = None if gain is None else (-gain if default_on else gain)
        rows.append(AblationRow(layer, default_on, metrics, deltas, worth))
    return Ablation(full, rows, [segment.to_dict() for segment in plan.segments])


_SWITCHES = {
    "kalman": "kalman",
    "chop_filter": "chop",
    "panic_exit": "panic_exit",
    "funding_flip_filter": "funding_flip",
}


def _off_parts(brain: BrainSettings) -> list[str]:
    """Return the brain parts the settings switch off."""
    off = list(brain.disabled_parts)
    off += [part for key, part in _SWITCHES.items() if not getattr(brain, key)]
    return off


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _delta(value: float | None, base: float | None) -> float | None:
    if value is None or base is None:
        return None
    return value - base
