"""The compiled brain: what :class:`~tradebrain.brain.brain.Brain` plans, for every candle at once.

With precomputed features, votes and forecast calibrations
(:class:`~tradebrain.strategies.hybrid.HybridSignals`) almost everything ``Brain.decide`` does
depends only on the sequence of feature rows and votes: the regime, the spread history, the gap
tracker, the funding cool-down, the panic model, the fusion, the Kalman smoother, the expected
return, the target position and its scaling, the entry and exit bars and the risk block.
:func:`compiled_decisions` computes all of it in one numba pass
(:mod:`tradebrain.brain.compiled.kernels`) and returns :class:`DecisionArrays`.

Left out are the rules that read the position: the **liquidation guard** (a caller with an open
leveraged position applies :func:`~tradebrain.brain.guards.liquidation_guard` itself, after the
panic exit) and the **move** from the exposure held toward the target, which the caller makes
with the brain's own :func:`~tradebrain.brain.brain.carry_out`, as
:class:`~tradebrain.strategies.hybrid_fast.FastHybridStrategy` does on every candle.

The Python brain stays the one definition of the rules: every threshold comes from
:class:`~tradebrain.brain.tuning.BrainTuning` and the settings, and
``tests/brain/compiled/test_compiled_brain.py`` proves the two brains agree on random and
synthetic markets: the same actions, regimes, filters, reasons and target positions, every float
equal to 1e-9 relative (numba and CPython may round a transcendental function differently in the
last bit, depending on the CPU).

>>> arrays = compiled_decisions(signals, closes, open_times)  # doctest: +SKIP
>>> arrays.plan(-1), arrays.decision(len(arrays) - 1, "BTC/USDT", exposure=0.5)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import numpy as np

from tradebrain.brain._state import GAP_STEP_RATIO
from tradebrain.brain.brain import Brain
from tradebrain.brain.compiled import codes, kernels
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.fusion import (
    _MIN_STRENGTH,
    ORDER_FLOW_SIGNALS,
    REGIME_TILTS,
    base_family_weights,
    family_of,
)
from tradebrain.brain.panic import _LOG_SCALED, _MAD_TO_SIGMA, HEADS
from tradebrain.brain.positioning import Plan
from tradebrain.brain.regime import Regime
from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import BrainSettings
from tradebrain.exceptions import UserInputError

if TYPE_CHECKING:
    from tradebrain.strategies.hybrid import HybridSignals

ACTIONS: tuple[Action, ...] = codes.KERNEL_ACTIONS
"""``ACTIONS[code]`` is the action of an action code."""
REGIMES: tuple[Regime, ...] = codes.KERNEL_REGIMES
"""``REGIMES[code]`` is the regime of a regime code."""
FILTERS: tuple[str, ...] = codes.FILTER_ORDER
"""Bit ``j`` of a filter mask is ``FILTERS[j]``, in the order ``Brain.decide`` fires them."""
FAMILY_NAMES: tuple[str, ...] = codes.KERNEL_FAMILIES
"""Columns of :attr:`DecisionArrays.family_weights`."""
PANIC_BORDER = 1e-12
"""A panic score this close to the threshold is recomputed with numpy's own ``dot``."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class DecisionArrays:
    """What the brain plans on every candle, as arrays; all (n,) unless said otherwise.

    The plan is everything ``Brain.decide`` works out before it looks at the position: the
    move itself comes from :func:`~tradebrain.brain.brain.carry_out` with the exposure held
    (the strategy's job, candle by candle), and so does the Decision (:meth:`decision`).

    Attributes
    ----------
    asked
        bool: some model voted, or a model without skill stands behind the candle (forecast
        beta 0, see :func:`~tradebrain.strategies.hybrid.stands_aside`); the brain is asked
        only then.
    confidence
        As ``Decision.confidence`` (before a panic or liquidation exit), in [0, 1].
    expected, target, entry_bar, exit_bar, hold_only, no_new_long
        The :class:`~tradebrain.brain.positioning.Plan` of each candle.
    deep
        bool: a deep trend (taker fills with it).
    panic
        bool: the panic exit fired (the decision is an EXIT whatever the position).
    regime
        int8 code into :data:`REGIMES`.
    proba
        (n, 3) fused (p_down, p_flat, p_up) after smoothing.
    family_weights
        (n, 6) weight of each family of :data:`FAMILY_NAMES` in the fusion, NaN when absent.
    filters
        int64 bit mask over :data:`FILTERS`: what fired before the move (the maker/taker
        choice is the move's).
    early_filters
        The filters that fired before the overrides (panic, liquidation, risk block, funding
        flip): a liquidation exit carries these plus ``liquidation_guard``.
    panic_score, panic_heads, panic_z
        The panic model's score (0 while warming up or switched off), its (n, 3) head scores
        and its (n, 10) robust z-scores, for the reasons.
    numbers
        (n, len(codes.NUMBERS)) the intermediate numbers the reasons quote.
    signals, open_times, closes, enabled, settings, tuning
        The inputs, kept to rebuild full :class:`Decision` objects on request.
    """

    asked: np.ndarray
    confidence: np.ndarray
    expected: np.ndarray
    target: np.ndarray
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    hold_only: np.ndarray
    no_new_long: np.ndarray
    deep: np.ndarray
    panic: np.ndarray
    regime: np.ndarray
    proba: np.ndarray
    family_weights: np.ndarray
    filters: np.ndarray
    early_filters: np.ndarray
    panic_score: np.ndarray
    panic_heads: np.ndarray
    panic_z: np.ndarray
    numbers: np.ndarray
    signals: HybridSignals
    open_times: np.ndarray
    closes: np.ndarray
    enabled: frozenset[str]
    settings: BrainSettings
    tuning: BrainTuning

    def __len__(self) -> int:
        return int(self.asked.shape[0])

    @property
    def atr_pct(self) -> np.ndarray:
        """(n,) ATR(14) over the close (NaN when unknown), what the liquidation guard reads."""
        column: np.ndarray = self.numbers[:, codes.NUMBERS.index("atr_pct")]
        return column

    def number(self, name: str, bar: int) -> float:
        """Return the intermediate number ``name`` (see ``codes.NUMBERS``) at ``bar``."""
        return float(self.numbers[bar, codes.NUMBERS.index(name)])

    def plan(self, bar: int) -> Plan:
        """Return candle ``bar``'s plan (as ``Brain.decide`` hands it to ``carry_out``)."""
        return Plan(
            float(self.expected[bar]),
            float(self.target[bar]),
            float(self.entry_bar[bar]),
            float(self.exit_bar[bar]),
            hold_only=bool(self.hold_only[bar]),
            no_new_long=bool(self.no_new_long[bar]),
            horizon=int(self.numbers[bar, codes.N_HORIZON]),
        )

    def fired(self, bar: int) -> tuple[str, ...]:
        """Return the names of the filters that fired at ``bar``, in firing order."""
        mask = int(self.filters[bar])
        return tuple(name for j, name in enumerate(FILTERS) if mask >> j & 1)

    def timestamp(self, bar: int) -> datetime:
        """Return the open time of candle ``bar`` (UTC)."""
        return _EPOCH + timedelta(microseconds=int(self.open_times[bar]))

    def decision(
        self,
        bar: int,
        symbol: str,
        exposure: float = 0.0,
        *,
        shorts: bool = True,
        liquidation: str | None = None,
    ) -> Decision:
        """Return the full :class:`Decision` of candle ``bar``, reasons rebuilt from the numbers.

        Parameters
        ----------
        bar
            A candle on which the brain was asked (``asked[bar]``).
        symbol
            The market, as ``Brain.decide`` was told.
        exposure, shorts
            The exposure held when the brain decided, and whether shorts were allowed.
        liquidation
            The liquidation guard's reason when it fired on this candle (the caller applies the
            guard): the decision is then an EXIT with confidence 1, as in ``Brain.decide``.
        """
        from tradebrain.brain.compiled.reasons import rebuild_decision

        return rebuild_decision(self, bar, symbol, exposure, shorts, liquidation)


def compiled_decisions(
    signals: HybridSignals,
    closes: np.ndarray,
    open_times: np.ndarray,
    settings: BrainSettings | None = None,
    disabled: Iterable[str] = (),
    tuning: BrainTuning | None = None,
) -> DecisionArrays:
    """Decide on every candle of ``signals`` as ``Brain.decide`` would, one candle after another.

    Parameters
    ----------
    signals
        Feature rows and model votes, (n, f) and model -> (n, 3); a candle whose every vote
        starts with NaN is not decided on (as in ``HybridStrategy``).
    closes
        (n,) float64 candle closes, quote currency: the price of stops (kept for the moves).
    open_times
        (n,) int64 candle open times, epoch microseconds (UTC): the gap tracker reads them.
    settings, disabled, tuning
        As for :class:`~tradebrain.brain.brain.Brain` (``disabled`` names parts in ``PARTS``).

    Returns
    -------
    DecisionArrays
        Every candle's plan; the move from the position held (and the liquidation guard) is
        left to the caller.
    """
    brain = Brain(settings, disabled=disabled, tuning=tuning)  # validates ``disabled``
    n = len(signals)
    closes = np.ascontiguousarray(closes, dtype=np.float64)
    open_times = np.ascontiguousarray(open_times, dtype=np.int64)
    if closes.shape != (n,) or open_times.shape != (n,):
        raise UserInputError(
            f"closes {closes.shape} and open times {open_times.shape} must both be ({n},): "
            "one per candle of the signals"
        )
    models = list(signals.votes)
    votes = np.empty((len(models), n, 3))
    for m, name in enumerate(models):
        proba = np.asarray(signals.votes[name], dtype=np.float64)
        if proba.shape != (n, 3):
            raise UserInputError(f"votes of {name} have shape {proba.shape}; expected ({n}, 3)")
        votes[m] = proba
    features = np.ascontiguousarray(signals.features, dtype=np.float64)
    column = {name: j for j, name in enumerate(signals.feature_names)}
    tables = _tables(brain.settings, brain.tuning)
    out = _Outputs(n)
    forecast = (
        np.full((n, 3), np.nan)
        if signals.forecast is None
        else np.ascontiguousarray(signals.forecast, dtype=np.float64)
    )
    if forecast.shape != (n, 3):
        raise UserInputError(f"the forecast has shape {forecast.shape}; expected ({n}, 3)")
    panic = brain.tuning.panic
    decide_all = cast("Callable[..., None]", kernels.decide_all)  # a numba dispatcher
    decide_all(
        features,
        np.array([column.get(name, -1) for name in codes.FEATURES], dtype=np.int64),
        np.array([column.get(name, -1) for name, _ in ORDER_FLOW_SIGNALS], dtype=np.int64),
        np.array([scale for _, scale in ORDER_FLOW_SIGNALS], dtype=np.float64),
        votes,
        np.array([FAMILY_NAMES.index(family_of(m)) for m in models], dtype=np.int64),
        open_times,
        forecast,
        np.array([part in brain.enabled for part in FILTERS], dtype=np.bool_),
        *tables,
        np.array([column.get(name, -1) for name in _PANIC_FEATURES], dtype=np.int64),
        np.array([sign for head in HEADS.values() for _, sign in head], dtype=np.float64),
        np.array([name in _LOG_SCALED for name in _PANIC_FEATURES], dtype=np.bool_),
        np.cumsum([0] + [len(head) for head in HEADS.values()]).astype(np.int64),
        np.asarray(panic.head_weights, dtype=np.float64),
        *out.kernel_arguments(),
    )
    return out.finish(brain, signals, open_times, closes)


_PANIC_FEATURES = tuple(name for head in HEADS.values() for name, _ in head)


def _tables(settings: BrainSettings, tuning: BrainTuning) -> tuple[np.ndarray, ...]:
    """Return the kernel's parameters and tables, every number read from the brain's own."""
    named: dict[str, float] = {
        "mad_to_sigma": _MAD_TO_SIGMA,
        "min_strength": _MIN_STRENGTH,
        **asdict(tuning.positions),
        **asdict(tuning.regime),
        **asdict(tuning.guards),
        **asdict(tuning.filters),
        **{f"panic_{key}": value for key, value in asdict(tuning.panic).items()},
    }
    numerator, denominator = GAP_STEP_RATIO.as_integer_ratio()
    named |= {"gap_ratio_numerator": numerator, "gap_ratio_denominator": denominator}
    floats = np.array([float(named[name]) for name in codes.FLOAT_PARAMETERS])
    ints = np.array([int(named[name]) for name in codes.INT_PARAMETERS], dtype=np.int64)
    tilt = np.ones((len(REGIMES), len(FAMILY_NAMES)))
    tilted = np.zeros((len(REGIMES), len(FAMILY_NAMES)), dtype=np.bool_)
    for r, regime in enumerate(REGIMES):
        for family, multiplier in REGIME_TILTS.get(regime, {}).items():
            tilt[r, FAMILY_NAMES.index(family)] = multiplier
            tilted[r, FAMILY_NAMES.index(family)] = True
    base = base_family_weights(settings.fusion_weights, set())
    weights = np.array([base[family] for family in FAMILY_NAMES])
    order = np.array([FAMILY_NAMES.index(f) for f in sorted(FAMILY_NAMES)], dtype=np.int64)
    return floats, ints, tilt, tilted, weights, order


class _Outputs:
    """The kernel's output arrays, and the last step done in Python: the panic exit."""

    def __init__(self, n: int) -> None:
        self.asked = np.zeros(n, dtype=np.bool_)
        self.confidence = np.zeros(n)
        self.expected = np.zeros(n)
        self.target = np.zeros(n)
        self.entry = np.full(n, np.nan)
        self.exit = np.full(n, np.nan)
        self.hold_only = np.zeros(n, dtype=np.bool_)
        self.no_new_long = np.zeros(n, dtype=np.bool_)
        self.deep = np.zeros(n, dtype=np.bool_)
        self.regime = np.full(n, codes.R_UNKNOWN, dtype=np.int8)
        self.proba = np.full((n, 3), np.nan)
        self.weights = np.full((n, len(FAMILY_NAMES)), np.nan)
        self.early = np.zeros(n, dtype=np.int64)
        self.late = np.zeros(n, dtype=np.int64)
        self.numbers = np.full((n, len(codes.NUMBERS)), np.nan)
        self.heads = np.zeros((n, len(HEADS)))
        self.score = np.zeros(n)
        self.scored = np.zeros(n, dtype=np.bool_)
        self.z = np.zeros((n, len(_PANIC_FEATURES)))

    def kernel_arguments(self) -> tuple[np.ndarray, ...]:
        return (
            self.asked, self.confidence, self.expected, self.target, self.entry, self.exit,
            self.hold_only, self.no_new_long, self.deep, self.regime, self.proba, self.weights,
            self.early, self.late, self.numbers, self.heads, self.score, self.scored, self.z,
        )  # fmt: skip

    def finish(
        self, brain: Brain, signals: HybridSignals, open_times: np.ndarray, closes: np.ndarray
    ) -> DecisionArrays:
        panic = brain.tuning.panic
        score = self.score
        for bar in np.flatnonzero(self.scored & (np.abs(score - panic.threshold) <= PANIC_BORDER)):
            score[bar] = float(np.dot(panic.head_weights, self.heads[bar].tolist()))
        fired = self.asked & self.scored & (score >= panic.threshold)
        confidence = np.where(fired, score, self.confidence)
        confidence = np.minimum(1.0, np.maximum(0.0, confidence))
        panic_bit = 1 << FILTERS.index("panic_exit")
        return DecisionArrays(
            asked=self.asked,
            confidence=confidence,
            expected=self.expected,
            target=self.target,
            entry_bar=self.entry,
            exit_bar=self.exit,
            hold_only=self.hold_only,
            no_new_long=self.no_new_long,
            deep=self.deep,
            panic=fired,
            regime=self.regime,
            proba=self.proba,
            family_weights=self.weights,
            filters=np.where(fired, self.early | panic_bit, self.early | self.late),
            early_filters=self.early,
            panic_score=score,
            panic_heads=self.heads,
            panic_z=self.z,
            numbers=self.numbers,
            signals=signals,
            open_times=open_times,
            closes=closes,
            enabled=brain.enabled,
            settings=brain.settings,
            tuning=brain.tuning,
        )
