"""The ``hybrid`` strategy: features and model votes -> Brain -> order intents -> risk -> broker.

On each closed candle the strategy reads the candle's feature row, the models' votes and
their forecast calibration at that candle, tells the :class:`~tradebrain.brain.brain.Brain` the
exposure it holds (position notional over equity), and turns the
:class:`~tradebrain.brain.decision.Decision`'s target position into order intents
(:func:`target_intents`):

- a target of 0, or one on the other side, closes what is open (a reduce-only exit; a flip
  opens the other side on a later candle, once flat);
- a larger target on the same side (or any target when flat) buys or sells the difference,
  with the decision's stop, confidence, reasons and the fraction of equity it risks (risk has
  the last word on the size) — a market order, or a one-candle limit at the close when the
  brain chose a maker fill;
- a smaller target on the same side sells or buys back the difference (reduce-only).

Features and votes are precomputed causally (:class:`HybridSignals`): the walk-forward runner
(:mod:`tradebrain.research.walk_forward_backtest`) trains one bundle per segment on data before
the segment and writes its votes; a live run can instead hand over a trained bundle, whose
votes are computed over the history the engine gives in ``init``. Candles without a vote are
not decided on (no trading before the first segment). Every decision is kept in
:attr:`HybridStrategy.decisions` for the report.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import polars as pl

from tradebrain.brain.brain import Brain
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.positioning import Forecast
from tradebrain.brain.tuning import BrainTuning, PositionContext
from tradebrain.config import BrainSettings
from tradebrain.core.events import CandleClosed, DecisionMade
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent, OrderType, Side
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.strategies.agent_port import AgentView, PositionAgent, adjusted_target


class LiveInputs(Protocol):
    """Features and votes of each new candle, computed incrementally (the live path)."""

    def update(
        self, candle: CandleClosed
    ) -> tuple[dict[str, float], dict[str, tuple[float, float, float]], Forecast | None] | None:
        """Fold ``candle`` in; return its features, the votes and their calibration.

        None while warming up.
        """
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
    forecast
        (n, 3) the votes' calibration per candle: ``beta``, ``sigma`` over the horizon and the
        horizon (see :class:`~tradebrain.brain.positioning.Forecast`); NaN rows have none.
    """

    feature_names: tuple[str, ...]
    features: np.ndarray
    votes: dict[str, np.ndarray]
    forecast: np.ndarray | None = None

    @classmethod
    def from_tables(
        cls,
        features: pl.DataFrame,
        votes: dict[str, np.ndarray],
        forecast: np.ndarray | None = None,
    ) -> HybridSignals:
        """Build from a feature table (``timestamp`` + features), vote and forecast arrays."""
        names = tuple(c for c in features.columns if c != "timestamp")
        matrix = features.select(names).to_numpy().astype(np.float64)
        calibration = None if forecast is None else np.asarray(forecast, dtype=np.float64)
        return cls(
            names,
            matrix,
            {k: np.asarray(v, dtype=np.float64) for k, v in votes.items()},
            calibration,
        )

    def stands_aside(self, bar: int) -> bool:
        """Whether a model without skill stands behind candle ``bar`` (see :func:`stands_aside`)."""
        return self.forecast is not None and stands_aside(float(self.forecast[bar, 0]))

    def forecast_at(self, bar: int) -> Forecast | None:
        """Return candle ``bar``'s forecast calibration, or None when it has none."""
        if self.forecast is None:
            return None
        beta, sigma, horizon = self.forecast[bar].tolist()
        if not (beta == beta and sigma == sigma and horizon == horizon):
            return None
        return Forecast(beta, sigma, int(horizon))

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
    brain_settings, disabled, tuning
        Passed to the :class:`~tradebrain.brain.brain.Brain` (``disabled`` for ablations).
    market
        Spot never shorts: the target position is never below 0.
    agent
        An RL agent (:mod:`tradebrain.strategies.agent_port`) asked on every decision to scale
        or veto the new exposure the brain wants; None trades the brain's target as it is.
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
        tuning: BrainTuning | None = None,
        agent: PositionAgent | None = None,
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
        self.brain = Brain(brain_settings, disabled=disabled, tuning=tuning)
        self.market = market
        self.signals: HybridSignals | None = signals
        self.decisions: list[Decision] = []
        self.agent = agent
        positions = self.brain.tuning.positions
        self._round_trip = 2.0 * positions.cost_per_side
        self._max_position = positions.max_position
        self.equity_peak = math.nan  # the agent's drawdown is measured from it

    def init(self, context: StrategyContext) -> None:
        """Reset the brain; compute features and votes from a bundle when one was given."""
        self.brain.reset()
        self.decisions = []
        self.equity_peak = math.nan
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
        decision = self.decide(context, candle)
        if decision is None:
            return []
        if self.agent is not None:
            view = self.view(decision, context, candle)
            decision = self.with_agent(decision, view, self.agent.adjust(view), self.agent.name)
        return self.carry(decision, context, candle)

    def decide(self, context: StrategyContext, candle: CandleClosed) -> Decision | None:
        """The brain's decision on the candle (None where no model covers it), no agent yet."""
        signals = self.signals
        bar = context.bar
        equity = context.equity
        if equity == equity:
            self.equity_peak = equity if not (self.equity_peak >= equity) else self.equity_peak
        forecast: Forecast | None = None
        if signals is not None and bar < len(signals):
            votes = {
                name: (float(row[0]), float(row[1]), float(row[2]))
                for name, proba in signals.votes.items()
                if not np.isnan((row := proba[bar])[0])
            }
            if not votes and not signals.stands_aside(bar):
                return None
            features = dict(zip(signals.feature_names, signals.features[bar].tolist(), strict=True))
            forecast = signals.forecast_at(bar)
        elif self.live is not None:
            inputs = self.live.update(candle)
            if inputs is None:
                return None
            features, votes, forecast = inputs
        else:
            return None
        liquidation = context.liquidation_price
        distance = abs(candle.close - liquidation) / candle.close if liquidation else None
        market = PositionContext(
            price=candle.close,
            position=context.position,
            liquidation_distance=distance,
            exposure=exposure_of(context.position, candle.close, context.equity),
            shorts=self.market is not MarketType.SPOT,
        )
        return self.brain.decide(candle.open_time, candle.symbol, features, votes, market, forecast)

    def view(self, decision: Decision, context: StrategyContext, candle: CandleClosed) -> AgentView:
        """What an agent sees of ``decision`` (see :class:`AgentView`)."""
        equity = context.equity
        drawdown = (
            1.0 - equity / self.equity_peak if self.equity_peak > 0 and equity == equity else 0.0
        )
        exposure = exposure_of(context.position, candle.close, equity)
        return AgentView.of(decision, exposure, drawdown, self._round_trip)

    def with_agent(
        self, decision: Decision, view: AgentView, multiplier: float, name: str
    ) -> Decision:
        """``decision`` with its target scaled by an agent's ``multiplier`` (and said why)."""
        target = adjusted_target(view, multiplier, self._max_position)
        if target == decision.target_position or decision.action is Action.EXIT:
            return decision
        before = decision.target_position
        reason = f"rl {name}: new exposure x{multiplier:.2f} ({before:+.3f} -> {target:+.3f})"
        action = decision.action if target != view.exposure else Action.HOLD
        return replace(
            decision, target_position=target, action=action,
            reasons=(*decision.reasons, reason), filters=(*decision.filters, "rl_agent"),
        )  # fmt: skip

    def carry(
        self, decision: Decision, context: StrategyContext, candle: CandleClosed
    ) -> list[OrderIntent]:
        """Keep ``decision``, announce it, and return the intents that carry it out."""
        self.decisions.append(decision)
        if context.publish is not None:
            context.publish(DecisionMade(candle.symbol, candle.close_time, decision))
        return self.intents(decision, context.position, candle, context.equity)

    def intents(
        self, decision: Decision, position: float, candle: CandleClosed, equity: float
    ) -> list[OrderIntent]:
        """Return the order intents that carry ``decision`` out from the signed ``position``."""
        return target_intents(
            candle,
            position,
            equity,
            decision.action,
            decision.target_position,
            reasons=tuple(decision.reasons),
            confidence=decision.confidence,
            stop=decision.stop,
            target=decision.target,
            risk_fraction=decision.size,
            maker=decision.maker,
        )

    def decisions_summary(self) -> dict[str, Any]:
        """Counts of the decisions made so far (see :func:`decisions_summary`)."""
        return decisions_summary(self.decisions)

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
        bundle = self._bundle
        votes = {m: p for m, p in bundle.predict_proba(features).items() if m in bundle.voters()}
        return HybridSignals.from_tables(features, votes, bundle.forecast_inputs(features))


def stands_aside(beta: float) -> bool:
    """Whether a trained forecast found no skill (``beta == 0``): the brain is then asked anyway.

    Without a vote there is nothing to fuse, but the brain still decides: its expected return
    is 0, so it opens nothing and steps out of a position an earlier model opened, and the
    decision says why. Candles no trained model covers (NaN ``beta``) get no decision.
    """
    return beta == 0.0


def exposure_of(position: float, price: float, equity: float) -> float:
    """Return the signed exposure: position notional over equity (0 without equity)."""
    if not position or not (equity > 0) or not math.isfinite(equity):
        return 0.0
    return position * price / equity


def target_intents(
    candle: CandleClosed,
    position: float,
    equity: float,
    action: Action,
    target_position: float,
    *,
    reasons: tuple[str, ...],
    confidence: float,
    stop: float | None,
    target: float | None,
    risk_fraction: float,
    maker: bool,
) -> list[OrderIntent]:
    """Return the intents that move ``position`` toward ``target_position`` (see the module).

    Quantities are worked out at the candle's close: the exposure difference times equity over
    the close. An EXIT, a target of 0 or a target on the other side closes the position
    (reduce-only); the other side opens on a later candle, once flat.
    """
    when = candle.close_time
    if action is Action.HOLD:
        return []

    def exit_(quantity: float = 0.0) -> OrderIntent:
        side = Side.SELL if position > 0 else Side.BUY
        return OrderIntent(
            when, candle.symbol, side, quantity, reduce_only=True, tag="exit",
            confidence=confidence, reasons=reasons,
        )  # fmt: skip

    if action is Action.EXIT:
        return [exit_()] if position else []
    if position and target_position * position <= 0:
        return [exit_()]
    if not (equity > 0) or not math.isfinite(equity):
        return []
    current = exposure_of(position, candle.close, equity)
    difference = abs(target_position) - abs(current)
    quantity = abs(difference) * equity / candle.close
    if quantity <= 0:
        return []
    if position and difference < 0:
        return [exit_(quantity)]
    side = Side.BUY if target_position > 0 else Side.SELL
    return [
        entry_intent(
            candle, side, quantity=quantity, stop=stop, target=target, confidence=confidence,
            reasons=reasons, size=risk_fraction, maker=maker,
        )
    ]  # fmt: skip


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
    quantity: float = 0.0,
) -> OrderIntent:
    """Return the entry that opens or grows a position, decided at ``candle``'s close.

    ``quantity`` (base units; 0 lets risk size it) is an upper bound: risk may cut it. The
    brain's ``size`` becomes the intent's ``risk_fraction`` (risk sizes with the smaller of it
    and its own limit). A maker choice becomes a limit order at the close that rests for one
    candle: it fills only if the next candle trades through it, else it expires. A taker
    choice is a market order for the next candle's open.
    """
    if maker:
        one_candle = candle.close_time - candle.open_time
        return OrderIntent(
            candle.close_time, candle.symbol, side, quantity, order_type=OrderType.LIMIT,
            limit_price=candle.close, stop_price=stop, target_price=target, tag="entry",
            confidence=confidence, reasons=(*reasons, "maker: a limit at the close for 1 candle"),
            risk_fraction=size, expires_at=candle.close_time + one_candle,
        )  # fmt: skip
    return OrderIntent(
        candle.close_time, candle.symbol, side, quantity, stop_price=stop, target_price=target,
        tag="entry", confidence=confidence, reasons=reasons, risk_fraction=size,
    )  # fmt: skip


def decisions_frame(decisions: list[Decision]) -> pl.DataFrame:
    """Return ``decisions`` as a table (filters and reasons joined by ``"; "``, votes as JSON)."""
    return pl.DataFrame(
        {
            "timestamp": [d.timestamp for d in decisions],
            "action": [d.action.value for d in decisions],
            "confidence": [d.confidence for d in decisions],
            "target_position": [d.target_position for d in decisions],
            "expected_return": [d.expected_return for d in decisions],
            "horizon": [d.horizon for d in decisions],
            "regime": [str(d.regime) for d in decisions],
            "filters": ["; ".join(d.filters) for d in decisions],
            "reasons": ["; ".join(d.reasons) for d in decisions],
            "votes": [json.dumps({k: list(v) for k, v in d.votes.items()}) for d in decisions],
        },
        schema={
            "timestamp": pl.Datetime("us", "UTC"),
            "action": pl.String,
            "confidence": pl.Float64,
            "target_position": pl.Float64,
            "expected_return": pl.Float64,
            "horizon": pl.Int64,
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
