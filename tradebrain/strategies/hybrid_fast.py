"""The ``hybrid`` strategy on the compiled brain: the same trades, planned in one pass up front.

:class:`FastHybridStrategy` takes the same precomputed :class:`HybridSignals` as
:class:`~tradebrain.strategies.hybrid.HybridStrategy` and gives the same orders, candle for candle.
In ``init`` it asks :func:`~tradebrain.brain.compiled.brain.compiled_decisions` for every candle's
plan at once (a numba pass, well under a microsecond per candle). On each closed candle it
applies what reads the position — the panic exit, the liquidation guard (through the brain's
own :func:`~tradebrain.brain.guards.liquidation_guard`) and the move toward the target
(through the brain's own :func:`~tradebrain.brain.brain.carry_out`) — and turns the move into
intents exactly as :meth:`HybridStrategy.intents` does.

What differs, by design:

- :attr:`FastHybridStrategy.decisions` are rebuilt lazily from the arrays and the exposures
  recorded on each candle (tens of microseconds each); their reasons are *reconstructed* from
  the stored numbers in the brain's words (``tests/brain/test_compiled.py`` compares them with
  the brain's own).
- The intents carry one terse reason (the move and the expected return) instead of the
  decision's full story, which stays in :attr:`~FastHybridStrategy.decisions`; risk adds its
  own reasons as usual. Quantities, stops, targets and confidences are the decision's.
- Only replays: the strategy needs the history in ``init`` and checks, on every candle, that
  its close is the one it planned with. Bundles and live inputs go through ``HybridStrategy``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl

from tradebrain.brain.brain import Brain, Move, carry_out
from tradebrain.brain.compiled.brain import (
    FILTERS,
    REGIMES,
    DecisionArrays,
    compiled_decisions,
)
from tradebrain.brain.compiled.codes import NUMBERS
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.guards import liquidation_guard
from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import BrainSettings
from tradebrain.core.events import CandleClosed
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.strategies.hybrid import HybridSignals, decisions_frame, exposure_of, target_intents

_EXIT = Move(Action.EXIT, 0.0)


class FastHybridStrategy:
    """``hybrid`` with precomputed signals, planned by the compiled brain.

    Parameters
    ----------
    signals
        Precomputed features, votes and forecasts for the replayed history (one row per candle).
    brain_settings, disabled, tuning
        As for :class:`~tradebrain.brain.brain.Brain` (``disabled`` for ablations).
    market
        Spot never shorts: the target position is never below 0.
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
        self.enabled = brain.enabled
        self.disabled = tuple(disabled)
        self.market = market
        self.shorts = market is not MarketType.SPOT
        self.arrays: DecisionArrays | None = None
        self._guard = "liquidation_guard" in brain.enabled
        self._symbol = ""
        self._last_bar = -1
        self._seen: dict[int, tuple[float, str | None, Action, bool]] = {}
        self._decisions: tuple[int, list[Decision]] | None = None

    def init(self, context: StrategyContext) -> None:
        """Plan every candle of the history at once (the compiled brain)."""
        history = context.history
        if history is None:
            raise UserInputError(
                "the fast hybrid strategy plans every candle up front and needs the replayed "
                "history; use HybridStrategy for live trading"
            )
        if len(self.signals) != len(history):
            raise UserInputError(
                f"hybrid signals cover {len(self.signals)} candles; the feed has {len(history)}"
            )
        arrays = compiled_decisions(
            self.signals,
            history.close,
            history.open_time,
            self.brain_settings,
            self.disabled,
            self.tuning,
        )
        self.arrays = arrays
        self._asked = arrays.asked.tolist()
        self._panic = arrays.panic.tolist()
        self._atr_pct = arrays.atr_pct.tolist()
        self._regimes = [REGIMES[code] for code in arrays.regime.tolist()]
        self._trend_up = (arrays.numbers[:, list(NUMBERS).index("alignment")] > 0).tolist()
        self._spread = arrays.numbers[:, list(NUMBERS).index("spread_ratio")].tolist()
        self._deep = arrays.deep.tolist()
        self._closes = arrays.closes.tolist()
        self._symbol = context.symbol
        self._last_bar = -1
        self._seen = {}
        self._decisions = None

    def on_candle(self, context: StrategyContext, candle: CandleClosed) -> list[OrderIntent]:
        """Make the planned move from the position held; return the intents that carry it out."""
        bar = context.bar
        arrays = self.arrays
        if arrays is None or bar >= len(self._asked):
            return []
        self._last_bar = bar
        if not self._asked[bar]:
            return []
        if candle.close != self._closes[bar]:
            raise UserInputError(
                f"candle {bar} closed at {candle.close}, but the fast hybrid strategy planned "
                f"with {self._closes[bar]} from the history; replay the same candles it was "
                "given in init"
            )
        position, equity = context.position, context.equity
        exposure = exposure_of(position, candle.close, equity)
        liquidation = None
        if self._panic[bar]:
            done = _EXIT
        elif position and self._guard and context.liquidation_price:
            close = candle.close
            liquidation = liquidation_guard(
                abs(close - context.liquidation_price) / close,
                self._atr_pct[bar],
                self.tuning.guards,
            )
        if liquidation is not None:
            done = _EXIT
        elif not self._panic[bar]:
            done = carry_out(
                arrays.plan(bar), exposure, self.tuning, self.enabled,
                shorts=self.shorts, price=candle.close, atr_pct=self._atr_pct[bar],
                regime=self._regimes[bar], deep=self._deep[bar], trend_up=self._trend_up[bar],
                spread_ratio=self._spread[bar],
            )  # fmt: skip
        self._seen[bar] = (exposure, liquidation, done.action, done.maker_chosen)
        confidence = 1.0 if liquidation is not None else float(arrays.confidence[bar])
        reason = liquidation or (
            f"{done.action.value} to {done.target_position:+.2f} of equity: expected "
            f"{arrays.expected[bar]:+.2%} (compiled brain; the full reasons are in the "
            "strategy's decisions)"
        )
        return target_intents(
            candle, position, equity, done.action, done.target_position,
            reasons=(reason,), confidence=confidence, stop=done.stop, target=done.target,
            risk_fraction=done.size, maker=done.maker,
        )  # fmt: skip

    @property
    def decisions(self) -> list[Decision]:
        """Every decision made so far, rebuilt from the arrays on first access (then cached)."""
        arrays = self.arrays
        if arrays is None:
            return []
        if self._decisions is None or self._decisions[0] != self._last_bar:
            built = [
                arrays.decision(
                    bar, self._symbol, exposure, shorts=self.shorts, liquidation=liquidation
                )
                for bar, (exposure, liquidation, _, _) in sorted(self._seen.items())
            ]
            self._decisions = (self._last_bar, built)
        return self._decisions[1]

    def decisions_frame(self) -> pl.DataFrame:
        """Return one row per decision, as :meth:`HybridStrategy.decisions_frame` does."""
        return decisions_frame(self.decisions)

    def decisions_summary(self) -> dict[str, Any]:
        """Return counts per action, regime and filter, straight from the run (no rebuild).

        The same numbers as :func:`~tradebrain.strategies.hybrid.decisions_summary` of
        :attr:`decisions`, without building a Decision per candle.
        """
        arrays = self.arrays
        seen = self._seen
        if arrays is None or not seen:
            return {"n_decisions": 0, "actions": {}, "regimes": {}, "filters_fired": {},
                    "mean_confidence": None}  # fmt: skip
        bars = np.fromiter(sorted(seen), dtype=np.int64)
        masks = arrays.filters[bars].copy()
        confidence = arrays.confidence[bars].copy()
        liquidation_bit = 1 << FILTERS.index("liquidation_guard")
        maker_bit = 1 << FILTERS.index("maker_taker")
        actions: Counter[str] = Counter()
        for j, bar in enumerate(bars.tolist()):
            _, liquidation, action, maker = seen[bar]
            actions[action.value] += 1
            if liquidation is not None:
                masks[j] = int(arrays.early_filters[bar]) | liquidation_bit
                confidence[j] = 1.0
            elif maker:
                masks[j] |= maker_bit
        return {
            "n_decisions": int(bars.size),
            "actions": dict(actions),
            "regimes": {
                REGIMES[r].value: int(m)
                for r, m in sorted(Counter(arrays.regime[bars].tolist()).items())
            },
            "filters_fired": {
                name: int(((masks >> j) & 1).sum())
                for j, name in enumerate(FILTERS)
                if ((masks >> j) & 1).any()
            },
            "mean_confidence": float(confidence.mean()),
        }
