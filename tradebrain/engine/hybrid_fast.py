"""The ``hybrid`` strategy on the compiled brain: the same trades, decided in one pass up front.

:class:`FastHybridStrategy` takes the same precomputed :class:`HybridSignals` as
:class:`~tradebrain.engine.hybrid.HybridStrategy` and gives the same orders, candle for candle.
In ``init`` it asks :func:`~tradebrain.brain.compiled.compiled_decisions` for every decision of
the replay at once (a numba pass, well under a microsecond per candle); on each closed candle
it only looks the action up, applies the one rule that reads the position — the liquidation
guard, through the brain's own :func:`~tradebrain.brain.guards.liquidation_guard` — and turns
the action into intents exactly as :meth:`HybridStrategy.intents` does.

What differs, by design:

- :attr:`FastHybridStrategy.decisions` are rebuilt lazily from the arrays on first access
  (tens of microseconds each); their reasons are *reconstructed* from the stored numbers in the
  brain's words (``tests/brain/test_compiled.py`` compares them with the brain's own).
- The intents carry one terse reason (action, confidence, bar) instead of the decision's
  full story, which stays in :attr:`~FastHybridStrategy.decisions`; risk adds its own reasons
  as usual. Quantities, stops, targets and confidences are the decision's.
- Only replays: the stops and targets are computed from ``context.history.close``, so the
  strategy needs the history in ``init`` and checks, on every entry, that the candle's close
  is the one it planned with. Bundles and live inputs go through ``HybridStrategy``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl

from tradebrain.brain.brain import Brain
from tradebrain.brain.compiled import (
    ACTIONS,
    BUY,
    EXIT,
    FILTERS,
    HOLD,
    REGIMES,
    SELL,
    DecisionArrays,
    compiled_decisions,
)
from tradebrain.brain.decision import Decision
from tradebrain.brain.guards import liquidation_guard
from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import BrainSettings
from tradebrain.engine.events import CandleClosed
from tradebrain.engine.hybrid import HybridSignals, decisions_frame, entry_intent
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.execution.orders import OrderIntent, Side
from tradebrain.risk.market import MarketType


class FastHybridStrategy:
    """``hybrid`` with precomputed signals, decided by the compiled brain.

    Parameters
    ----------
    signals
        Precomputed features and votes for the replayed history (one row per candle).
    brain_settings, disabled, tuning
        As for :class:`~tradebrain.brain.brain.Brain` (``disabled`` for ablations).
    market
        Spot never shorts: a SELL only closes a long.
    """

    name = "hybrid"

    def __init__(
        self,
        signals: HybridSignals | None = None,
        *,
        brain_settings: BrainSettings | None = None,
        disabled: Iterable[str] = (),
        market: MarketType = MarketType.SPOT,
        tuning: BrainTuning | None = None,
    ) -> None:
        if signals is None:
            raise UserInputError(
                "the fast hybrid strategy needs precomputed signals (HybridSignals); "
                "with a trained bundle or live inputs use HybridStrategy"
            )
        brain = Brain(brain_settings, disabled=disabled, tuning=tuning)  # checks ``disabled``
        self.signals = signals
        self.brain_settings = brain.settings
        self.tuning = brain.tuning
        self.disabled = tuple(disabled)
        self.market = market
        self.arrays: DecisionArrays | None = None
        self._guard = "liquidation_guard" in brain.enabled
        self._codes: list[int] = []
        self._atr_pct: list[float] = []
        self._symbol = ""
        self._last_bar = -1
        self._liquidations: dict[int, str] = {}
        self._decisions: tuple[int, list[Decision]] | None = None

    def init(self, context: StrategyContext) -> None:
        """Decide on every candle of the history at once (the compiled brain)."""
        history = context.history
        if history is None:
            raise UserInputError(
                "the fast hybrid strategy decides every candle up front and needs the replayed "
                "history; use HybridStrategy for live trading"
            )
        if len(self.signals) != len(history):
            raise UserInputError(
                f"hybrid signals cover {len(self.signals)} candles; the feed has {len(history)}"
            )
        self.arrays = compiled_decisions(
            self.signals,
            history.close,
            history.open_time,
            self.brain_settings,
            self.disabled,
            self.tuning,
        )
        self._codes = self.arrays.action.tolist()
        self._atr_pct = self.arrays.atr_pct.tolist()
        self._symbol = context.symbol
        self._last_bar = -1
        self._liquidations = {}
        self._decisions = None

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        """Look up the decision on the closed candle; return the intents that carry it out."""
        bar = context.bar
        codes = self._codes
        if bar >= len(codes):
            return []
        self._last_bar = bar
        code = codes[bar]
        if code < 0:
            return []
        position = context.position
        if position and self._guard and code != EXIT:
            liquidation = context.liquidation_price
            if liquidation:
                close = candle.close
                reason = liquidation_guard(
                    abs(close - liquidation) / close, self._atr_pct[bar], self.tuning.guards
                )
                if reason:
                    self._liquidations[bar] = reason
                    code = EXIT
        if code == HOLD:
            return []
        if code == EXIT:
            return [self._exit(bar, position, candle)] if position else []
        if code == BUY:
            if position < 0:
                return [self._exit(bar, position, candle)]
            return [self._entry(bar, Side.BUY, candle)] if position == 0 else []
        if code == SELL:
            if position > 0:
                return [self._exit(bar, position, candle)]
            if position == 0 and self.market is not MarketType.SPOT:
                return [self._entry(bar, Side.SELL, candle)]
        return []

    @property
    def decisions(self) -> list[Decision]:
        """Every decision made so far, rebuilt from the arrays on first access (then cached)."""
        arrays = self.arrays
        if arrays is None:
            return []
        if self._decisions is None or self._decisions[0] != self._last_bar:
            decided = np.flatnonzero(arrays.action[: self._last_bar + 1] >= 0).tolist()
            built = [
                arrays.decision(bar, self._symbol, self._liquidations.get(bar)) for bar in decided
            ]
            self._decisions = (self._last_bar, built)
        return self._decisions[1]

    def decisions_frame(self) -> pl.DataFrame:
        """Return one row per decision, as :meth:`HybridStrategy.decisions_frame` does."""
        return decisions_frame(self.decisions)

    def decisions_summary(self) -> dict[str, Any]:
        """Return counts per action, regime and filter, straight from the arrays (no rebuild).

        The same numbers as :func:`~tradebrain.engine.hybrid.decisions_summary` of
        :attr:`decisions`, without building a Decision per candle.
        """
        arrays = self.arrays
        if arrays is None:
            return {"n_decisions": 0, "actions": {}, "regimes": {}, "filters_fired": {},
                    "mean_confidence": None}  # fmt: skip
        seen = slice(0, self._last_bar + 1)
        decided = arrays.action[seen] >= 0
        codes = arrays.action[seen][decided].copy()
        masks = arrays.filters[seen][decided].copy()
        bars = np.flatnonzero(decided)
        liquidation_bit = 1 << FILTERS.index("liquidation_guard")
        for bar in self._liquidations:
            j = int(np.searchsorted(bars, bar))
            codes[j] = EXIT
            masks[j] = int(arrays.early_filters[bar]) | liquidation_bit
        confidence = arrays.confidence[seen][decided].copy()
        confidence[np.searchsorted(bars, list(self._liquidations))] = 1.0
        return {
            "n_decisions": int(decided.sum()),
            "actions": {
                ACTIONS[c].value: int(m) for c, m in sorted(Counter(codes.tolist()).items())
            },
            "regimes": {
                REGIMES[r].value: int(m)
                for r, m in sorted(Counter(arrays.regime[seen][decided].tolist()).items())
            },
            "filters_fired": {
                name: int(((masks >> j) & 1).sum())
                for j, name in enumerate(FILTERS)
                if ((masks >> j) & 1).any()
            },
            "mean_confidence": float(confidence.mean()) if confidence.size else None,
        }

    def _reasons(self, bar: int, action: str) -> tuple[str, ...]:
        arrays = self.arrays
        assert arrays is not None
        if bar in self._liquidations:
            return (self._liquidations[bar],)
        return (
            f"{action}: confidence {arrays.confidence[bar]:.2f}, bar "
            f"{arrays.number('threshold', bar):.2f} (compiled brain; the full reasons are in "
            "the strategy's decisions)",
        )

    def _confidence(self, bar: int) -> float:
        if bar in self._liquidations:
            return 1.0
        assert self.arrays is not None
        return float(self.arrays.confidence[bar])

    def _exit(self, bar: int, held: float, candle: CandleClosed) -> OrderIntent:
        side = Side.SELL if held > 0 else Side.BUY
        return OrderIntent(
            candle.close_time, candle.symbol, side, reduce_only=True, tag="exit",
            confidence=self._confidence(bar), reasons=self._reasons(bar, "exit"),
        )  # fmt: skip

    def _entry(self, bar: int, side: Side, candle: CandleClosed) -> OrderIntent:
        arrays = self.arrays
        assert arrays is not None
        if candle.close != arrays.closes[bar]:
            raise UserInputError(
                f"candle {bar} closed at {candle.close}, but the fast hybrid strategy planned "
                f"with {arrays.closes[bar]} from the history; replay the same candles it was "
                "given in init"
            )
        stop, target = float(arrays.stop[bar]), float(arrays.target[bar])
        return entry_intent(
            candle, side,
            stop=None if stop != stop else stop,
            target=None if target != target else target,
            confidence=float(arrays.confidence[bar]),
            reasons=self._reasons(bar, side.value),
            size=float(arrays.size[bar]),
            maker=bool(arrays.maker[bar]),
        )  # fmt: skip
