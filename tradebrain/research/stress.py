"""Stress scenarios for the hybrid strategy on the synthetic market with order flow.

Flash crash: the generator's crashes (-8..-12 % over 1-3 candles, volume x50, spread x4) are
forced by a high crash rate. The hybrid runs with and without the panic exit over the same
out-of-sample votes; for each crash after the first segment the report says whether the panic
exit fired on the crash candles, whether the strategy held anything, and the equity change over
the crash window with and without it. Because the strategy is often flat when a crash hits, a
forced long is also replayed through a fresh brain: would the panic exit have got it out?

Data gap: a block of candles is dropped and the run restarts over the gapped history; the report
says whether gap-safe mode fired and cut the suggested size afterwards (vs gap-safe off).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from tradebrain.brain.brain import Brain
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.tuning import PositionContext
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.exceptions import UserInputError
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.walk_forward_backtest import Progress, hybrid_signals, run_hybrid
from tradebrain.strategies.hybrid import HybridSignals
from tradebrain.strategies.hybrid_config import DEFAULT_HYBRID_SETS

STRESS_SETS = (*DEFAULT_HYBRID_SETS, "orderflow", "sentiment")
"""Feature sets of the stress runs: the panic exit reads order-flow and sentiment features."""


@dataclass(frozen=True)
class CrashOutcome:
    """One flash crash: did the panic exit fire, and what did it save."""

    start: str
    candles: int
    price_change: float
    held_at_start: bool
    panic_fired: bool
    panic_exit_issued: bool
    equity_change_with_panic: float
    equity_change_without_panic: float
    loss_avoided: float
    forced_long_exited: bool
    forced_long_change_with_panic: float
    forced_long_change_held: float


@dataclass(frozen=True)
class GapOutcome:
    """Restart after a data gap: did gap-safe mode fire and cut the size."""

    dropped: int
    resumed_at: str
    gap_safe_fired: bool
    gap_safe_candles: int
    reason: str | None
    mean_size_gap_safe: float | None
    mean_size_without: float | None
    size_reduced: bool
    final_equity: float


@dataclass(frozen=True)
class StressReport:
    """Both scenarios and how they were set up."""

    settings: dict[str, Any]
    crashes: list[CrashOutcome] = field(default_factory=list)
    gap: GapOutcome | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return {
            "settings": self.settings,
            "crashes": [asdict(c) for c in self.crashes],
            "gap": None if self.gap is None else asdict(self.gap),
        }


@dataclass(frozen=True)
class StressWorld:
    """The synthetic market of the stress runs: 1h candles with order flow and forced crashes.

    Attributes
    ----------
    candles, orderflow
        The candles, and the same candles with order-flow columns (the request's market).
    flash_crash
        Whether each candle is part of a flash crash, shape ``(n,)``.
    seed, crashes_per_year
        How the market was generated.
    symbol, timeframe
        The market's name and candle length.
    """

    candles: pl.DataFrame
    orderflow: pl.DataFrame
    flash_crash: np.ndarray
    seed: int
    crashes_per_year: float
    symbol: str = "SYN/USDT"
    timeframe: str = "1h"


def stress_world(bars: int = 4000, seed: int = 7, crashes_per_year: float = 40.0) -> StressWorld:
    """Generate the stress market: ``bars`` 1h candles, order flow on, a high crash rate."""
    from tradebrain.features import orderflow_columns

    market = generate_market(
        SyntheticConfig(
            bars=bars, seed=seed, orderflow=True, flash_crashes_per_year=crashes_per_year
        )
    )
    candles = market.candles
    flow = orderflow_columns(
        candles, "1h", trades=market.trades, book=market.book, funding=market.funding
    )
    crash = market.regimes["flash_crash"].to_numpy()
    return StressWorld(candles, flow, crash, seed, crashes_per_year)


def run_stress(
    request: HybridRequest,
    world: StressWorld,
    *,
    gap_candles: int = 48,
    after: int = 6,
    progress: Progress | None = None,
) -> StressReport:
    """Run the flash-crash and data-gap scenarios on the stress market.

    Parameters
    ----------
    request
        The run on ``world``'s market (its candles and order flow), e.g.
        ``HybridRequest.from_settings(settings, world.candles, symbol=world.symbol,
        timeframe=world.timeframe, orderflow=world.orderflow, hybrid=...)``; its feature sets
        should include :data:`STRESS_SETS` (the panic exit reads order flow and sentiment).
    world
        The stress market (:func:`stress_world`): where the crashes are.
    gap_candles
        Candles dropped in the gap scenario, in the middle of the traded part.
    after
        Candles after a crash's last candle counted in its equity window (the rebound).
    progress
        Called with a line of text at each step.

    Returns
    -------
    StressReport
        One outcome per crash after the first segment, and the gap outcome.

    Raises
    ------
    UserInputError
        When the request's candles are not the world's.
    """
    candles, hybrid = request.candles, request.hybrid
    if candles.height != world.flash_crash.size or request.orderflow is None:
        raise UserInputError(
            "run_stress needs a request on the stress world's market: build it with "
            "HybridRequest.from_settings(settings, world.candles, ..., orderflow=world.orderflow)"
        )
    if progress is not None:
        progress("flash crash: training walk-forward")
    signals, _ = hybrid_signals(request, progress=progress)
    with_panic, strategy = run_hybrid(request, signals)
    without_panic, _ = run_hybrid(request, signals, disabled=("panic_exit",))
    forced = _forced_long(request, signals, world.flash_crash, hybrid.min_train, after)
    by_time = {d.timestamp: d for d in strategy.decisions}
    stamps = candles["timestamp"].to_list()
    close = candles["close"].to_numpy()
    crashes = []
    for start, end in _crash_runs(world.flash_crash, hybrid.min_train):
        stop = min(end - 1 + after, len(close) - 1)
        on_crash = [by_time[t] for t in stamps[start:end] if t in by_time]
        fired = any("panic_exit" in d.filters for d in on_crash)
        exited, change_exit, change_held = forced.get(start, (False, 0.0, 0.0))
        eq_with = _change(with_panic.equity, start - 1, stop)
        eq_without = _change(without_panic.equity, start - 1, stop)
        crashes.append(
            CrashOutcome(
                start=str(stamps[start]),
                candles=end - start,
                price_change=float(close[end - 1] / close[start - 1] - 1.0),
                held_at_start=bool(abs(with_panic.exposure[start - 1]) > 0),
                panic_fired=fired,
                panic_exit_issued=any(
                    "panic_exit" in d.filters and d.action is Action.EXIT for d in on_crash
                ),
                equity_change_with_panic=eq_with,
                equity_change_without_panic=eq_without,
                loss_avoided=eq_with - eq_without,
                forced_long_exited=exited,
                forced_long_change_with_panic=change_exit,
                forced_long_change_held=change_held,
            )
        )
    if progress is not None:
        progress("data gap: training walk-forward on the gapped history")
    gap = _gap_scenario(request, gap_candles, progress)
    settings = {"bars": candles.height, "seed": world.seed,
                "crashes_per_year": world.crashes_per_year,
                "gap_candles": gap_candles, "after": after, "models": list(hybrid.models),
                "sets": list(hybrid.feature_sets)}  # fmt: skip
    return StressReport(settings, crashes, gap)


def _crash_runs(flag: np.ndarray, first: int) -> list[tuple[int, int]]:
    """Return ``[(start, end), ...]`` of the runs of ``flag`` that start after ``first``."""
    edges = np.diff(np.concatenate(([0], flag.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True) if s > first]


def _change(equity: np.ndarray, first: int, last: int) -> float:
    return float(equity[last] / equity[first] - 1.0)


def _forced_long(
    request: HybridRequest,
    signals: HybridSignals,
    flash_crash: np.ndarray,
    first: int,
    after: int,
) -> dict[int, tuple[bool, float, float]]:
    """Replay a brain holding a long through each crash window; return start -> outcome.

    The outcome is (panic exit on a crash candle, change exiting at the next open, change
    holding to the window's end), both from the close before the crash.
    """
    runs = _crash_runs(flash_crash, first)
    if not runs:
        return {}
    candles, symbol = request.candles, request.symbol
    n = candles.height
    close, open_ = candles["close"].to_numpy(), candles["open"].to_numpy()
    stamps = candles["timestamp"].to_list()
    held = np.zeros(n, dtype=bool)
    for start, end in runs:
        held[start - 1 : min(end + after, n)] = True
    brain = Brain(request.brain, tuning=request.tuning)
    decisions: dict[int, Decision] = {}
    for bar in range(first, n):
        votes = {
            name: (float(row[0]), float(row[1]), float(row[2]))
            for name, proba in signals.votes.items()
            if not np.isnan((row := proba[bar])[0])
        }
        if not votes and not signals.stands_aside(bar):
            continue
        features = dict(zip(signals.feature_names, signals.features[bar].tolist(), strict=True))
        market = PositionContext(
            price=float(close[bar]),
            position=1.0 if held[bar] else 0.0,
            exposure=1.0 if held[bar] else 0.0,
        )
        decisions[bar] = brain.decide(
            stamps[bar], symbol, features, votes, market, signals.forecast_at(bar)
        )
    outcome = {}
    for start, end in runs:
        stop = min(end - 1 + after, n - 1)
        held_change = float(close[stop] / close[start - 1] - 1.0)
        exits = [
            bar for bar in range(start, end)
            if bar in decisions and decisions[bar].action is Action.EXIT
            and "panic_exit" in decisions[bar].filters
        ]  # fmt: skip
        if exits and exits[0] + 1 < n:
            outcome[start] = (
                True,
                float(open_[exits[0] + 1] / close[start - 1] - 1.0),
                held_change,
            )
        else:
            outcome[start] = (False, held_change, held_change)
    return outcome


def _gap_scenario(
    request: HybridRequest, gap_candles: int, progress: Progress | None
) -> GapOutcome:
    """Drop a block of candles mid-way through the traded part and rerun from scratch."""
    candles, flow, hybrid = request.candles, request.feature_candles, request.hybrid
    n = candles.height
    cut = hybrid.min_train + (n - hybrid.min_train) // 2
    keep = np.ones(n, dtype=bool)
    keep[cut : cut + gap_candles] = False
    mask = pl.Series(keep)
    gapped = replace(request, candles=candles.filter(mask), orderflow=flow.filter(mask))
    resumed = gapped.candles["timestamp"][cut]
    signals, _ = hybrid_signals(gapped, progress=progress)
    result, strategy = run_hybrid(gapped, signals)
    _, plain = run_hybrid(gapped, signals, disabled=("gap_safe",))
    after = [d for d in strategy.decisions if d.timestamp >= resumed]
    safe = [d for d in after if "gap_safe" in d.filters]
    safe_times = {d.timestamp for d in safe}
    trading = (Action.BUY, Action.SELL)
    sized = [d.size for d in safe if d.action in trading]
    unsized = [d.size for d in plain.decisions if d.timestamp in safe_times and d.action in trading]
    reason = next((r for d in safe for r in d.reasons if r.startswith("gap-safe")), None)
    mean_with = float(np.mean(sized)) if sized else None
    mean_without = float(np.mean(unsized)) if unsized else None
    reduced = mean_with is not None and mean_without is not None and mean_with < mean_without
    return GapOutcome(
        dropped=gap_candles,
        resumed_at=str(resumed),
        gap_safe_fired=bool(safe),
        gap_safe_candles=len(safe),
        reason=reason,
        mean_size_gap_safe=mean_with,
        mean_size_without=mean_without,
        size_reduced=reduced,
        final_equity=float(result.equity[-1]),
    )
