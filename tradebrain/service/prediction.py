"""A decision on candles a caller sends (``POST /predict/single``), apart from the live run.

The candles are validated like an imported file, their features computed, the service's models
vote on every row, and a fresh brain (so the live run's memory is never touched) walks through
the rows; the decision on the last candle is returned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tradebrain.brain.brain import Brain
from tradebrain.brain.positioning import Forecast
from tradebrain.brain.regime import BRAIN_FEATURE_SETS
from tradebrain.brain.tuning import BrainTuning, PositionContext
from tradebrain.config import Settings
from tradebrain.data.validation import ROW, validate
from tradebrain.exceptions import UserInputError
from tradebrain.strategies.hybrid import stands_aside

MAX_CANDLES = 5000
API_GAP_FIX = "send every candle of the span: the API accepts no gaps (rows are candles[i])"


def min_candles(bundle: Any) -> int:
    """Return how many candles a decision on sent candles needs: the longest warm-up of the
    bundle's features, plus the sequence models' window, plus the candle decided on."""
    from tradebrain.features import list_features

    used = set(bundle.feature_names) | set(bundle.sequence_names)
    sets = bundle.manifest.get("feature_sets")
    warmup = max(
        (int(str(f["warmup"])) for f in list_features(sets) if f["name"] in used), default=0
    )
    sequence = any(m.input_kind == "sequence" for m in bundle.models.values())
    return warmup + (bundle.window if sequence else 0) + 1


def decide_on_candles(
    bundle: Any, candles: pl.DataFrame, symbol: str, timeframe: str, settings: Settings
) -> dict[str, Any]:
    """Return the decision dict for the last of ``candles`` (candle schema, oldest first)."""
    from tradebrain.features import compute_features

    needed = min_candles(bundle)
    if not needed <= candles.height <= MAX_CANDLES:
        raise UserInputError(
            f"send between {needed} and {MAX_CANDLES} candles (the models' features need "
            f"{needed - 1} candles of history before the last one); got {candles.height}"
        )
    frame, report = validate(
        candles, "candles", timeframe, source="request body", gap_fix=API_GAP_FIX
    )
    if not report.ok:
        raise UserInputError("the candles are not clean:\n" + report.summary())
    frame = frame.drop(ROW)
    sets = bundle.manifest.get("feature_sets")
    if sets is not None:  # the brain reads its regime features besides the models' sets
        sets = list(dict.fromkeys([*sets, *BRAIN_FEATURE_SETS]))
    features = compute_features(frame, sets)
    voters = set(bundle.voters())
    votes = {m: p for m, p in bundle.predict_proba(features).items() if m in voters}
    forecasts = bundle.forecast_inputs(features)
    names = [c for c in features.columns if c != "timestamp"]
    matrix = features.select(names).to_numpy().astype(np.float64)
    closes = frame["close"].to_numpy()
    times = frame["timestamp"].to_list()
    brain = Brain(settings.brain, tuning=BrainTuning.from_settings(settings))
    decision = None
    for row in range(frame.height):
        row_votes = {
            name: (float(p[row, 0]), float(p[row, 1]), float(p[row, 2]))
            for name, p in votes.items()
            if not np.isnan(p[row, 0])
        }
        beta, sigma, horizon = forecasts[row].tolist()
        if not row_votes and not stands_aside(beta):
            continue
        market = PositionContext(price=float(closes[row]), position=0.0)
        features_row = dict(zip(names, matrix[row].tolist(), strict=True))
        forecast = None if horizon != horizon else Forecast(beta, sigma, int(horizon))
        decision = brain.decide(times[row], symbol, features_row, row_votes, market, forecast)
    if decision is None or decision.timestamp != times[-1]:
        raise UserInputError(
            "the models could not vote on the last candle: send more history "
            f"(sequence models need {bundle.window} rows after the features' warm-up)"
        )
    return {**decision.to_dict(), "price": float(closes[-1]), "timeframe": timeframe}
