"""The brain's working state: its memory of each symbol and the decision being drafted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.filters import FundingFlipGuard, GapSafeMode, KalmanSmoother, SpreadRegime
from tradebrain.brain.fusion import Vote
from tradebrain.brain.panic import PanicExitModel
from tradebrain.brain.regime import RegimeReading
from tradebrain.brain.tuning import BrainTuning

GAP_STEP_RATIO = 1.5
"""A step between candles longer than this many times the shortest step seen is a gap."""


@dataclass
class SymbolMemory:
    """What the brain remembers about one symbol between candles."""

    kalman: KalmanSmoother
    funding: FundingFlipGuard
    gap: GapSafeMode
    spread: SpreadRegime
    panic: PanicExitModel
    last_timestamp: datetime | None = None
    usual_step: timedelta | None = None

    @classmethod
    def fresh(cls, tuning: BrainTuning) -> SymbolMemory:
        """Return an empty memory with the thresholds of ``tuning``."""
        f = tuning.filters
        return cls(
            kalman=KalmanSmoother(f.kalman_process_variance, f.kalman_measurement_variance),
            funding=FundingFlipGuard(f.funding_cooldown_bars),
            gap=GapSafeMode(f.gap_safe_bars, f.gap_size_factor),
            spread=SpreadRegime(f.spread_window, f.spread_min_history),
            panic=PanicExitModel(tuning.panic),
        )

    def gap_before(self, timestamp: datetime, told: int = 0) -> int:
        """Return the candles missing before ``timestamp``: ``told`` by the engine or seen.

        A step between candles longer than 1.5x the shortest step seen so far is a gap of
        ``round(step / shortest) - 1`` candles.
        """
        seen = 0
        if self.last_timestamp is not None:
            step = timestamp - self.last_timestamp
            usual = self.usual_step
            if usual is not None and step > GAP_STEP_RATIO * usual:
                seen = round(step / usual) - 1
            if step > timedelta(0) and (usual is None or step < usual):
                self.usual_step = step
        self.last_timestamp = timestamp
        return max(told, seen)


@dataclass
class Draft:
    """The decision as it takes shape, step by step."""

    timestamp: datetime
    symbol: str
    reading: RegimeReading
    votes: dict[str, Vote] = field(default_factory=dict)
    proba: Vote = (1 / 3, 1 / 3, 1 / 3)
    family_weights: dict[str, float] = field(default_factory=dict)
    filters: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def fire(self, name: str, reason: str) -> None:
        """Record that the part ``name`` fired, and why."""
        self.filters.append(name)
        self.reasons.append(reason)

    def finish(
        self,
        action: Action,
        confidence: float,
        *,
        size: float = 0.0,
        stop: float | None = None,
        target: float | None = None,
        maker: bool = False,
        target_position: float = 0.0,
        expected_return: float = 0.0,
        horizon: int = 0,
    ) -> Decision:
        """Return the frozen Decision (confidence clipped to [0, 1], filters de-duplicated)."""
        return Decision(
            timestamp=self.timestamp,
            symbol=self.symbol,
            action=action,
            confidence=min(1.0, max(0.0, confidence)),
            size=size,
            stop=stop,
            target=target,
            regime=self.reading.regime.value,
            votes=self.votes,
            filters=tuple(dict.fromkeys(self.filters)),
            reasons=tuple(self.reasons),
            maker=maker,
            proba=self.proba,
            family_weights=self.family_weights,
            target_position=target_position,
            expected_return=expected_return,
            horizon=horizon,
        )
