"""The compiled brain's per-candle loop: ``Brain.decide`` over whole arrays in one numba pass.

Every step repeats the arithmetic of the Python brain (``regime.py``, ``fusion.py``,
``guards.py``, ``filters.py``, ``panic.py``, ``_state.py``, ``brain.py``) operation for
operation and in the same order, so the floats agree bit for bit wherever the C library's
``tanh`` and ``log1p`` do. The Python brain stays the one definition of the rules: the numbers
arrive here as parameter arrays filled from :class:`~tradebrain.brain.tuning.BrainTuning` and
the settings (:mod:`tradebrain.brain.compiled.brain`), and
``tests/brain/compiled/test_compiled_brain.py`` proves that both brains agree.

:func:`decide_all` carries the brain's memory from candle to candle and calls the steps, each
an njit function of its own module:

- :mod:`~tradebrain.brain.compiled.codes`: the codes and array layouts (regimes, families,
  filters, parameter slots, feature and number columns);
- :mod:`~tradebrain.brain.compiled._market_kernels`: regime, spread regime, gaps, funding flip;
- :mod:`~tradebrain.brain.compiled._panic_kernels`: the panic model;
- :mod:`~tradebrain.brain.compiled._fusion_kernels`: the fusion of the votes and the Kalman
  smoother;
- :mod:`~tradebrain.brain.compiled._plan_kernels`: danger, expected return, target, filters
  and the overrides that do not read the position;
- :mod:`~tradebrain.brain.compiled._window_kernels`: sorted windows, numpy's median, Python's
  ``round``.

Two places where numpy's order of operations is copied on purpose: a panic head sums its
strongest points as numpy's ``sum`` does (sequentially), and the robust statistics use the
median of numpy (``(low + high) / 2`` for an even count). The panic score (numpy's ``dot``,
which may use fused multiply-adds) is recomputed with numpy in Python when it lies within
1e-12 of the threshold.

numba's on-disk cache (``cache=True``) is keyed on each function's own file: a change to a
step or a table in another module does not recompile :func:`decide_all`. After editing any of
these modules, delete ``tradebrain/brain/compiled/__pycache__/*.nb[ci]``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from tradebrain.brain.compiled._fusion_kernels import fuse, fusion_scratch, kalman_step
from tradebrain.brain.compiled._market_kernels import (
    feature_value,
    funding_flip_step,
    gap_safe_step,
    missing_candles,
    regime_code,
    spread_ratio_step,
)
from tradebrain.brain.compiled._panic_kernels import (
    panic_points,
    panic_score,
    read_panic_row,
    refresh_robust_scale,
    remember_panic_row,
)
from tradebrain.brain.compiled._plan_kernels import (
    filter_plan,
    kelly_plan,
    market_danger,
    overrides,
)
from tradebrain.brain.compiled.codes import (
    B_GAP_SAFE,
    B_KALMAN,
    B_PANIC_EXIT,
    B_RISK_VOTE,
    C_ATR_PCT,
    C_FUNDING,
    C_SPREAD,
    N_ADX,
    N_ALIGNMENT,
    N_ATR_PCT,
    N_ATR_RATIO,
    N_CONFIDENCE,
    N_CYCLE_POWER,
    N_DANGER,
    N_FUNDING_FLIP_RATE,
    N_FUNDING_LEFT,
    N_FUSED_DOWN,
    N_FUSED_UP,
    N_GAP_CANDLES,
    N_GAP_LAST,
    N_GAP_LEFT,
    N_RAISE,
    N_SIZE_FACTOR,
    N_SMOOTHED,
    N_SPREAD_RATIO,
    P_COST,
    P_ENTRY_MULTIPLE,
    P_EXIT_MULTIPLE,
    P_KALMAN_Q,
    P_KALMAN_R,
    Q_PANIC_MIN,
    Q_PANIC_REFRESH,
    Q_PANIC_STRONGEST,
    Q_PANIC_WINDOW,
    Q_SPREAD_WINDOW,
)


@numba.njit(cache=True)
def decide_all(  # type: ignore[no-untyped-def]
    features, columns, flow_columns, flow_scales, votes, families, open_us, forecast,
    enabled, p, q, tilt, tilted, weights, sorted_families,
    panic_columns, panic_signs, panic_log, head_bounds, head_weights,
    out_asked, out_confidence, out_expected, out_target, out_entry, out_exit, out_hold_only,
    out_no_new_long, out_deep, out_regime, out_proba, out_weights, out_early, out_late,
    out_numbers, out_heads, out_score, out_scored, out_z,
):  # fmt: skip  # pragma: no cover - jitted
    """Plan every candle; see :func:`tradebrain.brain.compiled.brain.compiled_decisions`.

    Everything up to the position rules: the expected return, the target, the bars and the
    flags of the risk block and the funding cool-down. The panic override (the caller may
    recompute a borderline panic score with numpy), the liquidation guard and the step from
    the position held are the caller's.
    """
    n = forecast.shape[0]
    n_models = votes.shape[0]
    # spread history (SpreadRegime): a ring of the last values and the same values sorted
    spread_ring = np.empty(max(q[Q_SPREAD_WINDOW], 1))
    spread_sorted = np.empty(max(q[Q_SPREAD_WINDOW], 1))
    spread_count = 0
    spread_next = 0
    # gap tracker (SymbolMemory.gap_before) and gap-safe mode
    last_time = np.int64(0)
    seen_any = False
    usual = np.int64(-1)
    gap_left = 0
    gap_last = 0
    # funding-flip cool-down
    funding_sign = 0
    funding_left = 0
    funding_rate = np.nan
    # Kalman smoother
    level = np.nan
    variance = p[P_KALMAN_R]
    # panic model: a ring of past rows and, per feature, its non-NaN values sorted
    window = q[Q_PANIC_WINDOW]
    n_panic = panic_columns.shape[0]
    history = np.full((max(window, 1), n_panic), np.nan)
    ordered = np.empty((n_panic, max(window, 1)))
    counts = np.zeros(n_panic, dtype=np.int64)
    panic_seen = 0
    median = np.zeros(n_panic)
    scale = np.zeros(n_panic)
    row = np.empty(n_panic)
    points = np.empty(n_panic)
    top = np.empty(n_panic)
    scratch = fusion_scratch()

    for i in range(n):
        asked = False
        for m in range(n_models):
            if not math.isnan(votes[m, i, 0]):
                asked = True
                break
        if forecast[i, 0] == 0.0:  # a model without skill: stand aside (engine.hybrid)
            asked = True
        out_asked[i] = asked
        if not asked:
            continue
        early = 0
        numbers = out_numbers[i]

        regime, adx, atr_ratio, alignment, power = regime_code(features, i, columns, p)
        out_regime[i] = regime
        numbers[N_ADX] = adx
        numbers[N_ATR_RATIO] = atr_ratio
        numbers[N_ALIGNMENT] = alignment
        numbers[N_CYCLE_POWER] = power
        numbers[N_ATR_PCT] = feature_value(features, i, columns[C_ATR_PCT])

        spread = feature_value(features, i, columns[C_SPREAD])
        spread_ratio, spread_count, spread_next = spread_ratio_step(
            spread, spread_ring, spread_sorted, spread_count, spread_next, q
        )
        numbers[N_SPREAD_RATIO] = spread_ratio

        gap, usual = missing_candles(open_us[i], last_time, seen_any, usual, q)
        last_time = open_us[i]
        seen_any = True
        numbers[N_GAP_CANDLES] = gap
        if gap and enabled[B_KALMAN]:
            variance += p[P_KALMAN_Q] * max(0, gap)
        size_factor = 1.0
        if enabled[B_GAP_SAFE]:
            size_factor, gap_left, gap_last = gap_safe_step(gap, gap_left, gap_last, p, q)
            if gap_left:
                early |= 1 << B_GAP_SAFE
        numbers[N_GAP_LAST] = gap_last
        numbers[N_GAP_LEFT] = gap_left
        numbers[N_SIZE_FACTOR] = size_factor

        funding_sign, funding_left, funding_rate = funding_flip_step(
            feature_value(features, i, columns[C_FUNDING]),
            funding_sign,
            funding_left,
            funding_rate,
            q,
        )
        numbers[N_FUNDING_LEFT] = funding_left
        numbers[N_FUNDING_FLIP_RATE] = funding_rate

        # panic model: score against the past, then remember this candle
        out_scored[i] = False
        out_score[i] = 0.0
        if enabled[B_PANIC_EXIT]:
            read_panic_row(features, i, panic_columns, panic_log, row)
            if panic_seen >= q[Q_PANIC_MIN]:
                if (panic_seen - q[Q_PANIC_MIN]) % q[Q_PANIC_REFRESH] == 0:
                    refresh_robust_scale(ordered, counts, p, median, scale)
                panic_points(row, median, scale, panic_signs, p, out_z[i], points)
                out_score[i] = panic_score(
                    points, head_bounds, head_weights, q[Q_PANIC_STRONGEST], top, out_heads[i]
                )
                out_scored[i] = True
            remember_panic_row(row, panic_seen, window, history, ordered, counts)
            panic_seen += 1

        danger = 0.0
        if enabled[B_RISK_VOTE]:
            danger = market_danger(atr_ratio, spread_ratio, p)
        numbers[N_DANGER] = danger

        p_down, p_flat, p_up, n_votes, fired = fuse(
            features, i, votes, families, flow_columns, flow_scales, danger, regime, enabled,
            p, tilt, tilted, weights, sorted_families, scratch, out_weights,
        )  # fmt: skip
        early |= fired
        numbers[N_FUSED_DOWN] = p_down
        numbers[N_FUSED_UP] = p_up
        numbers[N_SMOOTHED] = np.nan
        if enabled[B_KALMAN] and n_votes:
            level, variance = kalman_step(p_up - p_down, level, variance, p)
            room = 1.0 - p_flat
            clipped = min(room, max(-room, level))
            p_down = (room - clipped) / 2.0
            p_up = (room + clipped) / 2.0
            numbers[N_SMOOTHED] = level
            early |= 1 << B_KALMAN
        out_proba[i, 0] = p_down
        out_proba[i, 1] = p_flat
        out_proba[i, 2] = p_up

        # the plan: expected return over the horizon, target position, entry and exit bars
        confidence, expected, target = kelly_plan(p_down, p_up, forecast, i, p, numbers)
        target, raise_by, deep, fired = filter_plan(
            features, i, columns, enabled, p, adx, atr_ratio, alignment, power, target
        )
        early |= fired
        target *= size_factor
        round_trip = 2.0 * p[P_COST]
        out_entry[i] = p[P_ENTRY_MULTIPLE] * round_trip * (1.0 + raise_by)
        out_exit[i] = p[P_EXIT_MULTIPLE] * round_trip
        numbers[N_RAISE] = raise_by

        out_hold_only[i], out_no_new_long[i], out_late[i] = overrides(
            enabled, p, atr_ratio, spread_ratio, funding_left
        )
        out_expected[i] = expected
        out_target[i] = target
        out_deep[i] = deep
        out_confidence[i] = confidence
        numbers[N_CONFIDENCE] = confidence
        out_early[i] = early
