"""The ``hybrid`` strategy: features and model votes -> Brain -> order intents -> risk -> broker.

On each closed candle the strategy reads the candle's feature row and the models' votes at
that candle, asks the :class:`~tradebrain.brain.brain.Brain` for a
:class:`~tradebrain.brain.decision.Decision` and turns it into order intents:

- EXIT closes what is open (a reduce-only exit);
- BUY opens a long when flat (quantity 0: risk sizes it, with the brain's suggested size as
  an upper bound) with the decision's stop, target, confidence and reasons — a market order,
  or a one-candle limit at the close when the brain chose a maker fill; a short is closed
  first;
- SELL closes a long; on a perpetual it opens a short when flat; on spot it never shorts.

Features and votes are precomputed causally (:class:`HybridSignals`): the walk-forward runner
(:mod:`tradebrain.engine.walk_forward_backtest`) trains one bundle per segment on data before
the segment and writes its votes; a live run can instead hand over a trained bundle, whose
votes are computed over the history the engine gives in ``init``. Candles without a vote are
not decided on (no trading before the first segment). Every decision is kept in
:attr:`HybridStrategy.decisions` for the report.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl

from tradebrain.brain.brain import Brain
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.tuning import PositionContext
from tradebrain.config import BrainSettings
from tradebrain.engine.events import CandleClosed
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.execution.orders import OrderIntent, OrderType, Side
from tradebrain.risk.market import MarketType


class LiveInputs(Protocol):
    """Features and votes of each new candle, computed incrementally (the live path)."""

    def update(
        self, candle: CandleClosed
    ) -> tuple[dict[str, float], dict[str, tuple[float, float, float]]] | None:
        """Fold ``candle`` in; return its feature row and the models' votes (None: warming up)."""
        ...


@dataclass(frozen=True)
class HybridSignals:
    """Feature rows and model votes, one per candle of the replayed history.

    Attributes
    ----------
    feature_names
        Column names of ``features``.
    features
        (n, f) float64 feature values; row ``t`` uses candles ``0..t`` only.
    votes
        Model name -> (n, 3) probabilities (p_down, p_flat, p_up) decided at candle ``t``'s
        close by a model trained before ``t``'s segment; NaN rows are candles with no vote.
    """

    feature_names: tuple[str, ...]
    features: np.ndarray
    votes: dict[str, np.ndarray]

    @classmethod
    def from_tables(cls, features: pl.DataFrame, votes: dict[str, np.ndarray]) -> HybridSignals:
        """Build from a feature table (``timestamp`` + features) and vote arrays."""
        names = tuple(c for c in features.columns if c != "timestamp")
        matrix = features.select(names).to_numpy().astype(np.float64)
        return cls(names, matrix, {k: np.asarray(v, dtype=np.float64) for k, v in votes.items()})

    def __len__(self) -> int:
        return int(self.features.shape[0])


class HybridStrategy:
    """The full AI pipeline as an engine strategy.

    Parameters
    ----------
    signals
        Precomputed features and votes for the replayed history.
    bundle, feature_sets
        Alternatively a trained :class:`~tradebrain.models.bundle.ModelBundle`: features and
        votes are then computed in ``init`` from the history the engine hands over.
    live
        Alternatively (paper and live trading) an incremental source of features and votes,
        asked on every candle the precomputed signals do not cover.
    brain_settings, disabled
        Passed to the :class:`~tradebrain.brain.brain.Brain` (``disabled`` for ablations).
    market
        Spot never shorts: a SELL only closes a long.
    """

    name = "hybrid"

    def __init__(
        self,
        signals: HybridSignals | None = None,
        *,
        bundle: Any = None,
        feature_sets: list[str] | None = None,
        brain_settings: BrainSettings | None = None,
        disabled: tuple[str, ...] = (),
        market: MarketType = MarketType.SPOT,
        live: LiveInputs | None = None,
    ) -> None:
        if signals is None and bundle is None and live is None:
            raise UserInputError(
                "strategy 'hybrid' needs model votes: run it with `tradebrain backtest "
                "--strategy hybrid` (it retrains walk-forward) or give it a trained bundle"
            )
        self._given = signals
        self._bundle = bundle
        self._feature_sets = feature_sets
        self.live = live
        self.brain = Brain(brain_settings, disabled=disabled)
        self.market = market
        self.signals: HybridSignals | None = signals
        self.decisions: list[Decision] = []

    def init(self, context: StrategyContext) -> None:
        """Reset the brain; compute features and votes from a bundle when one was given."""
        self.brain.reset()
        self.decisions = []
        if self._given is None and self._bundle is not None:
            self.signals = self._signals_from_bundle(context)
        signals = self.signals
        history = context.history
        if signals is not None and history is not None and len(signals) != len(history):
            raise UserInputError(
                f"hybrid signals cover {len(signals)} candles; the feed has {len(history)}"
            )

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        """Decide on the closed candle and return the intents that carry the decision out."""
        signals = self.signals
        bar = context.bar
        if signals is not None and bar < len(signals):
            votes = {
                name: (float(row[0]), float(row[1]), float(row[2]))
                for name, proba in signals.votes.items()
                if not np.isnan((row := proba[bar])[0])
            }
            features = dict(
                zip(signals.feature_names, signals.features[bar].tolist(), strict=True)
            )
        elif self.live is not None:
            inputs = self.live.update(candle)
            if inputs is None:
                return []
            features, votes = inputs
        else:
            return []
        if not votes:
            return []
        liquidation = context.liquidation_price
        distance = abs(candle.close - liquidation) / candle.close if liquidation else None
        market = PositionContext(
            price=candle.close, position=context.position, liquidation_distance=distance
        )
        decision = self.brain.decide(candle.open_time, candle.symbol, features, votes, market)
        self.decisions.append(decision)
        return self.intents(decision, context.position, candle)

    def intents(
        self, decision: Decision, position: float, candle: CandleClosed
    ) -> list[OrderIntent]:
        """Return the order intents for ``decision`` given the signed open ``position``."""
        when = candle.close_time
        reasons = tuple(decision.reasons)

        def exit_(held: float) -> OrderIntent:
            side = Side.SELL if held > 0 else Side.BUY
            return OrderIntent(
                when, candle.symbol, side, reduce_only=True, tag="exit",
                confidence=decision.confidence, reasons=reasons,
            )  # fmt: skip

        def entry(side: Side) -> OrderIntent:
            return entry_intent(
                candle, side, stop=decision.stop, target=decision.target,
                confidence=decision.confidence, reasons=reasons, size=decision.size,
                maker=decision.maker,
            )  # fmt: skip

        action = decision.action
        if action is Action.EXIT:
            return [exit_(position)] if position else []
        if action is Action.BUY:
            if position < 0:
                return [exit_(position)]
            return [entry(Side.BUY)] if position == 0 else []
        if action is Action.SELL:
            if position > 0:
                return [exit_(position)]
            if position == 0 and self.market is not MarketType.SPOT:
                return [entry(Side.SELL)]
        return []

    def decisions_frame(self) -> pl.DataFrame:
        """Return one row per decision (see :func:`decisions_frame`)."""
        return decisions_frame(self.decisions)

    def _signals_from_bundle(self, context: StrategyContext) -> HybridSignals | None:
        from tradebrain.features import compute_features

        history = context.history
        if history is None:
            return None
        candles = pl.DataFrame(
            {
                "timestamp": pl.Series(history.open_time).cast(pl.Datetime("us", "UTC")),
                "open": history.open,
                "high": history.high,
                "low": history.low,
                "close": history.close,
                "volume": history.volume,
            }
        )
        features = compute_features(candles, self._feature_sets)
        return HybridSignals.from_tables(features, self._bundle.predict_proba(features))


def entry_intent(
    candle: CandleClosed,
    side: Side,
    *,
    stop: float | None,
    target: float | None,
    confidence: float,
    reasons: tuple[str, ...],
    size: float,
    maker: bool,
) -> OrderIntent:
    """Return the entry that carries out a BUY or SELL decided at ``candle``'s close.

    The brain's suggested size becomes the intent's ``risk_fraction`` (risk sizes with the
    smaller of it and its own limit). A maker choice becomes a limit order at the close that
    rests for one candle: it fills only if the next candle trades through it, else it expires.
    A taker choice is a market order for the next candle's open.
    """
    if maker:
        one_candle = candle.close_time - candle.open_time
        return OrderIntent(
            candle.close_time, candle.symbol, side, order_type=OrderType.LIMIT,
            limit_price=candle.close, stop_price=stop, target_price=target, tag="entry",
            confidence=confidence, reasons=(*reasons, "maker: a limit at the close for 1 candle"),
            risk_fraction=size, expires_at=candle.close_time + one_candle,
        )  # fmt: skip
    return OrderIntent(
        candle.close_time, candle.symbol, side, stop_price=stop, target_price=target,
        tag="entry", confidence=confidence, reasons=reasons, risk_fraction=size,
    )  # fmt: skip


def decisions_frame(decisions: list[Decision]) -> pl.DataFrame:
    """Return ``decisions`` as a table (filters and reasons joined by ``"; "``, votes as JSON)."""
    return pl.DataFrame(
        {
            "timestamp": [d.timestamp for d in decisions],
            "action": [d.action.value for d in decisions],
            "confidence": [d.confidence for d in decisions],
            "regime": [str(d.regime) for d in decisions],
            "filters": ["; ".join(d.filters) for d in decisions],
            "reasons": ["; ".join(d.reasons) for d in decisions],
            "votes": [json.dumps({k: list(v) for k, v in d.votes.items()}) for d in decisions],
        },
        schema={
            "timestamp": pl.Datetime("us", "UTC"),
            "action": pl.String,
            "confidence": pl.Float64,
            "regime": pl.String,
            "filters": pl.String,
            "reasons": pl.String,
            "votes": pl.String,
        },
    )


def decisions_summary(decisions: list[Decision]) -> dict[str, Any]:
    """Return counts per action, per regime and per filter fired, for the report."""
    return {
        "n_decisions": len(decisions),
        "actions": dict(Counter(d.action.value for d in decisions)),
        "regimes": dict(Counter(str(d.regime) for d in decisions)),
        "filters_fired": dict(Counter(f for d in decisions for f in d.filters)),
        "mean_confidence": (
            float(np.mean([d.confidence for d in decisions])) if decisions else None
        ),
    }
