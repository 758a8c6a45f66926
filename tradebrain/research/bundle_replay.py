"""A hybrid backtest on ONE trained bundle: given candles replayed with fixed models.

The walk-forward backtest (:mod:`~tradebrain.research.walk_forward_backtest`) retrains as it
goes; a paper or live service trains once (or loads a folder) and keeps its models.
:func:`replay_with_bundle` is the backtest of the latter: it replays a request's ``candles``
through the engine, the simulated broker and a fresh risk manager with the votes and forecast
of a fixed :class:`~tradebrain.models.bundle.ModelBundle`, no retraining.

``history`` (the candles before ``candles``: a service's warm-up) only warms the features up:
features are computed over ``history + candles`` (they are causal, so each row equals what a
live feature engine fed candle by candle gives), then the models vote on the rows of
``candles``. The engine, the broker, the brain and risk see ``candles`` alone and start fresh,
flat, with ``request.backtest.cash``: exactly where a new service stands on its first candle
after the warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tradebrain.brain.regime import BRAIN_FEATURE_SETS
from tradebrain.engine.engine import EngineResult
from tradebrain.exceptions import UserInputError
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy
from tradebrain.strategies.hybrid_fast import FastHybridStrategy

if TYPE_CHECKING:
    from tradebrain.models.bundle import ModelBundle

_CANDLE = ("timestamp", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class BundleReplay:
    """A replay's engine result, the strategy that traded it (its decisions) and its inputs."""

    result: EngineResult
    strategy: FastHybridStrategy | HybridStrategy
    signals: HybridSignals


def bundle_signals(
    bundle: ModelBundle,
    history: pl.DataFrame,
    candles: pl.DataFrame,
    feature_sets: list[str] | None = None,
) -> HybridSignals:
    """Return the features, votes and forecast of every row of ``candles`` from ``bundle``.

    Parameters
    ----------
    bundle
        The trained models; only its voters vote (as in a live run).
    history
        Candles right before ``candles`` (candle schema, oldest first): they warm the
        features up and get no row of their own.
    candles
        The candles to give signals to.
    feature_sets
        Feature sets to compute; by default the bundle's own (its manifest), plus the brain's
        regime sets, as :class:`~tradebrain.strategies.live_signals.LiveSignals` computes.

    Raises
    ------
    UserInputError
        When ``history`` does not end before ``candles`` start.
    """
    from tradebrain.features import compute_features

    if history.height and candles.height and history["timestamp"][-1] >= candles["timestamp"][0]:
        raise UserInputError(
            f"the history ends at {history['timestamp'][-1]}, not before the first replayed "
            f"candle ({candles['timestamp'][0]})"
        )
    sets = feature_sets if feature_sets is not None else bundle.manifest.get("feature_sets")
    if sets is not None:
        sets = list(dict.fromkeys([*sets, *BRAIN_FEATURE_SETS]))
    frame = pl.concat([history.select(_CANDLE), candles.select(_CANDLE)], how="vertical_relaxed")
    features = compute_features(frame, sets)
    start = history.height
    # The sequence models read the window - 1 rows before the first replayed one.
    rows = features.slice(max(0, start - bundle.window + 1))
    skip = rows.height - candles.height
    voters = set(bundle.voters())
    votes = {
        name: np.asarray(proba)[skip:]
        for name, proba in bundle.predict_proba(rows).items()
        if name in voters
    }
    forecast = bundle.forecast_inputs(rows)[skip:]
    return HybridSignals.from_tables(features.slice(start), votes, forecast)


def replay_with_bundle(
    bundle: ModelBundle,
    history: pl.DataFrame,
    request: HybridRequest,
    *,
    compiled: bool = True,
    feature_sets: list[str] | None = None,
) -> BundleReplay:
    """Backtest the hybrid strategy on ``request.candles`` with ``bundle``'s votes (see the module).

    Parameters
    ----------
    bundle, history, feature_sets
        See :func:`bundle_signals`.
    request
        The candles to replay (their market, funding) and the run's settings: cash, costs,
        market, leverage and exit management, the risk manager's rules (a fresh manager for
        the run), the brain and its tuning. Its walk-forward settings (``request.hybrid``)
        are not used: the bundle is trained already.
    compiled
        Decide with the compiled brain (:class:`FastHybridStrategy`, the backtest's) or, when
        False, with the Python brain (:class:`HybridStrategy`, the live path's).
    """
    signals = bundle_signals(bundle, history, request.candles, feature_sets)
    strategy = request.strategy(signals, compiled=compiled)
    return BundleReplay(request.replay(strategy), strategy, signals)
