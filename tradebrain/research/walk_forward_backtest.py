"""The hybrid backtest: walk-forward retraining, precomputed votes, one engine run per report row.

The history is cut into segments: the first starts after ``min_train`` candles, each lasts
``retrain_every`` candles. Segment k's forecast is trained only on candles before its start (at
most the newest ``max_train``), with the longest label horizon purged (it sees candles up to
``start - horizon``, so every training label resolved before the segment starts; see
:func:`~tradebrain.learning.forecaster.train_forecaster` for the horizon, features, skill
weights and calibration it chooses), and votes on the segment's candles. Features are computed
once over the whole history: they are causal (row ``t`` uses candles ``0..t``), so a prefix of
the table equals the table of the prefix. No vote, no trade: nothing happens before the first
segment.

Every run takes a :class:`~tradebrain.research.hybrid_request.HybridRequest` (the market and
the settings). :func:`hybrid_signals` computes the features and trains the segments once;
:func:`run_hybrid` replays the compiled strategy over those signals (the ablation and the
stress scenarios rerun only this); :func:`hybrid_backtest_report` runs the hybrid strategy
(its compiled form, :class:`~tradebrain.strategies.hybrid_fast.FastHybridStrategy`) through
:func:`~tradebrain.research.backtest_report.backtest_report` with a fresh
:class:`~tradebrain.risk.manager.RiskManager` per run, the buy-and-hold benchmark (no risk
gate: it is the market) and the cost sensitivity (the same votes: costs do not change them),
and adds ``decisions_summary`` and ``segments``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from tradebrain.brain.regime import BRAIN_FEATURE_SETS
from tradebrain.engine.backtest import BacktestConfig
from tradebrain.engine.engine import EngineResult
from tradebrain.exceptions import UserInputError
from tradebrain.research.backtest_report import BacktestReport, backtest_report, finite
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy
from tradebrain.strategies.hybrid_config import HybridConfig
from tradebrain.strategies.hybrid_fast import FastHybridStrategy

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Segment:
    """One retrain: candles ``[start, end)`` voted on by a bundle trained before ``start``."""

    index: int
    start: int
    end: int
    train_candles: int
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    forecast: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the segment as a JSON-ready dict (with its forecast's calibration)."""
        return {
            "index": self.index,
            "train": {"start": self.train_start, "end": self.train_end,
                      "candles": self.train_candles},
            "test": {"start": self.test_start, "end": self.test_end,
                     "candles": self.end - self.start},
            "forecast": self.forecast,
        }  # fmt: skip


@dataclass(frozen=True)
class WalkForwardVotes:
    """Votes of every model for every candle (NaN before the first segment), and the segments.

    A model without out-of-sample skill in a segment's training window does not vote there
    (NaN); ``forecast`` holds each candle's calibration (beta, sigma_h, horizon).
    """

    votes: dict[str, np.ndarray]
    segments: list[Segment]
    forecast: np.ndarray


def plan_segments(n: int, retrain_every: int, min_train: int) -> list[tuple[int, int]]:
    """Return ``[(start, end), ...]`` covering candles ``min_train .. n`` in steps."""
    if retrain_every < 1 or min_train < 1:
        raise UserInputError("--retrain-every and --min-train must be at least 1")
    if n <= min_train:
        raise UserInputError(
            f"the hybrid strategy trains on the first {min_train:,} candles before it trades; "
            f"the data has only {n:,} — give a longer history or a smaller --min-train"
        )
    starts = range(min_train, n, retrain_every)
    return [(start, min(start + retrain_every, n)) for start in starts]


def walk_forward_votes(
    candles: pl.DataFrame,
    features: pl.DataFrame,
    config: HybridConfig,
    *,
    source: str = "backtest",
    progress: Progress | None = None,
) -> WalkForwardVotes:
    """Train one bundle per segment on earlier candles only; return every segment's votes."""
    from tradebrain.features import list_features
    from tradebrain.learning.forecaster import train_forecaster

    offered = {row["name"] for row in list_features(config.feature_sets)}
    inputs = features.select(["timestamp", *(c for c in features.columns if c in offered)])
    n = candles.height
    settings = config.evaluation_settings()
    votes: dict[str, np.ndarray] = {m: np.full((n, 3), np.nan) for m in config.models}
    forecast = np.full((n, 3), np.nan)
    segments: list[Segment] = []
    stamps = candles["timestamp"]
    plan = plan_segments(n, config.retrain_every, config.min_train)
    for index, (start, end) in enumerate(plan):
        if progress is not None:
            progress(f"segment {index + 1}/{len(plan)}: training on {start:,} candles")
        cut = start - max(config.forecast.horizons)
        first_row = 0 if config.max_train is None else max(0, cut - config.max_train)
        bundle = train_forecaster(
            candles.slice(first_row, cut - first_row),
            inputs.slice(first_row, cut - first_row),
            settings,
            config.forecast,
            feature_sets=list(config.feature_sets),
            source=source,
        )
        first = max(0, start - config.window + 1)
        rows = features.slice(first, end - first)
        proba = bundle.predict_proba(rows)
        for name in bundle.voters():
            votes[name][start:end] = proba[name][start - first :]
        forecast[start:end] = bundle.forecast_inputs(rows)[start - first :]
        segments.append(
            Segment(
                index=index,
                start=start,
                end=end,
                train_candles=cut - first_row,
                train_start=bundle.manifest["data_start"],
                train_end=bundle.manifest["data_end"],
                test_start=str(stamps[start]),
                test_end=str(stamps[end - 1]),
                forecast={
                    "calibration": bundle.manifest["calibration"],
                    "selection": bundle.manifest["selection"],
                    "voters": list(bundle.voters()),
                },
            )
        )
    return WalkForwardVotes(votes, segments, forecast)


@dataclass
class HybridResult(EngineResult):
    """The engine result of a hybrid run, with its decisions (see ``decisions_frame``)."""

    decisions: pl.DataFrame | None = None


@dataclass(frozen=True)
class HybridRun(BacktestReport):
    """A hybrid backtest: the engine result, the report, the strategy (decisions) and votes."""

    strategy: FastHybridStrategy | HybridStrategy
    plan: WalkForwardVotes


def hybrid_signals(
    request: HybridRequest, *, progress: Progress | None = None
) -> tuple[HybridSignals, WalkForwardVotes]:
    """Compute the features and train the walk-forward forecasts once; return signals and plan.

    The features are those of ``request.hybrid.feature_sets`` plus the brain's regime sets,
    computed from ``request.feature_candles`` (with order flow when the request has it);
    ``progress`` is called with a line of text at each step.
    """
    from tradebrain.features import compute_features

    if progress is not None:
        progress(f"computing features for {request.candles.height:,} candles")
    sets = list(dict.fromkeys([*request.hybrid.feature_sets, *BRAIN_FEATURE_SETS]))
    features = compute_features(request.feature_candles, sets)
    plan = walk_forward_votes(request.candles, features, request.hybrid, progress=progress)
    return HybridSignals.from_tables(features, plan.votes, plan.forecast), plan


def run_hybrid(
    request: HybridRequest, signals: HybridSignals, *, disabled: tuple[str, ...] = ()
) -> tuple[EngineResult, FastHybridStrategy]:
    """Run the compiled hybrid strategy once through the engine with a fresh risk manager.

    ``disabled`` switches brain parts off. Returns the engine result and the strategy (its
    ``decisions``).
    """
    strategy = request.strategy(signals, disabled=disabled)
    return request.replay(strategy), strategy


def hybrid_backtest_report(
    request: HybridRequest,
    *,
    n_trials: int = 1,
    trials_variance: float | None = None,
    settings: dict[str, Any] | None = None,
    progress: Progress | None = None,
    planted: np.ndarray | None = None,
) -> HybridRun:
    """Retrain walk-forward, run the hybrid strategy, the benchmark and the cost sensitivity.

    Parameters
    ----------
    request
        The market and the settings of the run.
    n_trials, trials_variance
        Backtests tried so far and the variance of their Sharpe ratios (the deflated Sharpe
        ratio's correction, see :func:`~tradebrain.research.backtest_report.backtest_report`).
    settings
        What the report's ``settings`` section records.
    progress
        Called with a line of text at each step.
    planted
        A synthetic world's known expected return per candle (its ``oracle_expected_return``,
        shape ``(n,)``): the report then adds the oracle strategy on the candles the hybrid
        traded, at the same costs, and the capture ratio (see :func:`oracle_section`).
    """
    signals, plan = hybrid_signals(request, progress=progress)
    made: list[FastHybridStrategy | HybridStrategy] = []

    def make() -> FastHybridStrategy | HybridStrategy:
        # An RL agent decides through the Python brain (the compiled one has no agent port).
        strategy = request.strategy(signals, compiled=request.agent is None)
        made.append(strategy)
        return strategy

    if progress is not None:
        progress("running the hybrid strategy through the engine")
    config = request.backtest
    outcome = backtest_report(
        request.candles, make, config, symbol=request.symbol, timeframe=request.timeframe,
        funding=request.funding, make_risk=request.risk_manager, n_trials=n_trials,
        trials_variance=trials_variance, settings=settings,
    )  # fmt: skip
    strategy, result = made[0], outcome.result
    report = {
        **outcome.report,
        "hybrid": request.hybrid.to_dict(),
        "decisions_summary": strategy.decisions_summary(),
        "segments": [segment.to_dict() for segment in plan.segments],
    }
    if planted is not None:
        start = plan.segments[0].start if plan.segments else 0
        report["oracle"] = oracle_section(
            request.candles, planted, result.equity, config, start=start,
            timeframe=request.timeframe,
        )  # fmt: skip
    with_decisions = HybridResult(**vars(result), decisions=strategy.decisions_frame())
    return HybridRun(with_decisions, finite(report), strategy, plan)


def oracle_section(
    candles: pl.DataFrame,
    planted: np.ndarray,
    equity: np.ndarray,
    config: BacktestConfig,
    *,
    start: int,
    timeframe: str,
) -> dict[str, Any]:
    """Return the oracle strategy on the traded candles and the capture ratio.

    The oracle (:func:`~tradebrain.evaluation.oracle.oracle_strategy`) trades the planted
    expected return from candle ``start`` on — the first candle the hybrid could trade — at the
    backtest's fee and slippage, long-only on spot and long-short on a perpetual. The capture
    ratio is the hybrid's after-cost log return over the same candles (from the equity before
    its first decision to the last) divided by the oracle's; it is None when the oracle has
    nothing to gain (no strategy of that class could make money after costs).
    """
    from tradebrain.core.market import MarketType
    from tradebrain.evaluation.oracle import oracle_strategy
    from tradebrain.execution.costs import FlatCosts, fee_rate

    costs = config.costs
    fee = costs.fee_rate if isinstance(costs, FlatCosts) else fee_rate(costs)
    slippage = costs.slippage_bps if isinstance(costs, FlatCosts) else 0.0
    oracle = oracle_strategy(
        candles["close"].to_numpy(), np.asarray(planted, dtype=np.float64),
        fee=fee, slippage_bps=slippage, long_short=config.market is MarketType.PERP,
        timeframe=timeframe, start=start,
    )  # fmt: skip
    before = float(equity[start - 1]) if start > 0 else config.cash
    ours = math.log(float(equity[-1]) / before) if before > 0 and equity[-1] > 0 else -math.inf
    capture = ours / oracle.log_return if oracle.log_return > 1e-9 else None
    return {
        "strategy": oracle.to_dict(),
        "hybrid_log_return": ours,
        "capture_ratio": capture,
        "from": str(candles["timestamp"][start]),
        "note": "capture ratio = the hybrid's after-cost log return / the oracle's, same candles",
    }
