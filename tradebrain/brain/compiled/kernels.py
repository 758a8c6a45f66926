"""Numba kernels of the compiled brain: ``Brain.decide`` over whole arrays in one pass.

Every step repeats the arithmetic of the Python brain (``regime.py``, ``fusion.py``,
``guards.py``, ``filters.py``, ``panic.py``, ``_state.py``, ``brain.py``) operation for
operation and in the same order, so the floats agree bit for bit wherever the C library's
``tanh`` and ``log1p`` do. The Python brain stays the one definition of the rules: the numbers
arrive here as parameter arrays filled from :class:`~tradebrain.brain.tuning.BrainTuning` and
the settings (:mod:`tradebrain.brain.compiled.brain`), and ``tests/brain/test_compiled.py`` proves
that both brains agree.

Codes (regimes, families, actions, filters) are local to this module, so a cached compilation
never reads a table that another module has since changed; :mod:`tradebrain.brain.compiled.brain`
maps them to the brain's names.

Two places where numpy's order of operations is copied on purpose: a panic head sums its
strongest points as numpy's ``sum`` does (sequentially), and the robust statistics use the
median of numpy (``(low + high) / 2`` for an even count). The panic score (numpy's ``dot``,
which may use fused multiply-adds) is recomputed with numpy in Python when it lies within
1e-12 of the threshold.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from tradebrain.brain.decision import Action
from tradebrain.brain.regime import Regime
from tradebrain.models.forecast import score_of

KERNEL_REGIMES = (
    Regime.TRENDING_UP,
    Regime.TRENDING_DOWN,
    Regime.RANGING,
    Regime.CHOPPY,
    Regime.BREAKOUT,
    Regime.HIGH_VOLATILITY,
    Regime.LOW_VOLATILITY,
    Regime.UNKNOWN,
)
R_UP, R_DOWN, R_RANGING, R_CHOPPY, R_BREAKOUT, R_HIGH_VOL, R_LOW_VOL, R_UNKNOWN = range(8)

KERNEL_FAMILIES = ("sequence", "tabular", "cnn", "order_flow", "rl", "risk")
FAM_SEQUENCE, FAM_TABULAR, FAM_CNN, FAM_ORDER_FLOW, FAM_RL, FAM_RISK = range(6)
N_FAMILIES = len(KERNEL_FAMILIES)

KERNEL_ACTIONS = (Action.HOLD, Action.BUY, Action.SELL, Action.EXIT)
A_NONE = -1  # the brain was not asked: no model voted and no skill-less forecast
A_HOLD, A_BUY, A_SELL, A_EXIT = range(4)

FILTER_ORDER = (
    "gap_safe",
    "order_flow_vote",
    "regime_weights",
    "risk_vote",
    "kalman",
    "volatility_threshold",
    "trend_depth",
    "chop",
    "volatility_cut",
    "panic_exit",
    "liquidation_guard",
    "risk_block",
    "funding_flip",
    "maker_taker",
)
"""Every part, in the order ``Brain.decide`` fires them; bit ``k`` of a filter mask is part k."""
(
    B_GAP_SAFE, B_ORDER_FLOW_VOTE, B_REGIME_WEIGHTS, B_RISK_VOTE, B_KALMAN,
    B_VOLATILITY_THRESHOLD, B_TREND_DEPTH, B_CHOP, B_VOLATILITY_CUT, B_PANIC_EXIT,
    B_LIQUIDATION_GUARD, B_RISK_BLOCK, B_FUNDING_FLIP, B_MAKER_TAKER,
) = range(len(FILTER_ORDER))  # fmt: skip

FEATURES = (
    "adx_14",
    "atr_ratio_14_96",
    "ema_alignment",
    "range_width_20",
    "range_width_60",
    "cycle_power_64",
    "atr_pct_14",
    "efficiency_ratio_20",
    "spread_bps",
    "funding_rate_bps",
)
"""Feature columns the kernel reads (``columns[k]`` is the column of ``FEATURES[k]``, -1 absent)."""
(
    C_ADX, C_ATR_RATIO, C_ALIGNMENT, C_RANGE_SHORT, C_RANGE_LONG, C_CYCLE_POWER, C_ATR_PCT,
    C_EFFICIENCY, C_SPREAD, C_FUNDING,
) = range(len(FEATURES))  # fmt: skip

FLOAT_PARAMETERS = (
    "kelly_fraction", "max_position", "entry_cost_multiple", "exit_cost_multiple",
    "cost_per_side", "trend_adx", "stacked_alignment", "breakout_atr_ratio", "breakout_range_share",
    "high_volatility_atr_ratio", "low_volatility_atr_ratio", "dominant_cycle_power",
    "box_range_atr",
    "danger_atr_start", "danger_atr_full", "danger_spread_start", "danger_spread_full",
    "block_atr_ratio", "block_spread_ratio", "cut_atr_ratio", "cut_floor",
    "kalman_process_variance", "kalman_measurement_variance", "volatility_start",
    "volatility_slope", "volatility_max_raise", "chop_atr_ratio", "chop_cycle_power",
    "chop_raise", "deep_trend_adx", "deep_trend_alignment", "deep_trend_efficiency",
    "gap_size_factor", "wide_spread_ratio",
    "panic_z_start", "panic_z_full", "mad_to_sigma", "min_strength",
)  # fmt: skip
"""Names of the float parameters, in the order of the kernel's ``p`` array."""
(
    P_KELLY, P_MAX_POSITION, P_ENTRY_MULTIPLE, P_EXIT_MULTIPLE, P_COST,
    P_TREND_ADX, P_STACKED, P_BREAKOUT_ATR, P_BREAKOUT_SHARE, P_HIGH_VOL, P_LOW_VOL,
    P_CYCLE_POWER, P_BOX_ATR,
    P_DANGER_ATR_START, P_DANGER_ATR_FULL, P_DANGER_SPREAD_START, P_DANGER_SPREAD_FULL,
    P_BLOCK_ATR, P_BLOCK_SPREAD, P_CUT_ATR, P_CUT_FLOOR,
    P_KALMAN_Q, P_KALMAN_R, P_VOL_START, P_VOL_SLOPE, P_VOL_MAX, P_CHOP_ATR, P_CHOP_POWER,
    P_CHOP_RAISE, P_DEEP_ADX, P_DEEP_ALIGNMENT, P_DEEP_EFFICIENCY, P_GAP_FACTOR,
    P_WIDE_SPREAD,
    P_Z_START, P_Z_FULL, P_MAD_TO_SIGMA, P_MIN_STRENGTH,
) = range(len(FLOAT_PARAMETERS))  # fmt: skip

INT_PARAMETERS = (
    "funding_cooldown_bars", "gap_safe_bars", "spread_window", "spread_min_history",
    "panic_window", "panic_min_history", "panic_strongest", "panic_refresh_every",
    "gap_ratio_numerator", "gap_ratio_denominator",
)  # fmt: skip
"""Names of the integer parameters, in the order of the kernel's ``q`` array."""
(
    Q_FUNDING_COOLDOWN, Q_GAP_BARS, Q_SPREAD_WINDOW, Q_SPREAD_MIN, Q_PANIC_WINDOW,
    Q_PANIC_MIN, Q_PANIC_STRONGEST, Q_PANIC_REFRESH, Q_GAP_NUMERATOR, Q_GAP_DENOMINATOR,
) = range(len(INT_PARAMETERS))  # fmt: skip

NUMBERS = (
    "confidence", "fused_down", "fused_up", "smoothed_edge", "danger",
    "spread_ratio", "size_factor", "gap_candles", "gap_last", "gap_left",
    "funding_left", "funding_flip_rate", "adx", "atr_ratio", "alignment", "cycle_power",
    "atr_pct", "z", "beta", "sigma", "horizon", "kelly_target", "raise_by",
)  # fmt: skip
"""Columns of the numbers kept per candle to rebuild the reasons (see ``compiled.reasons``)."""
(
    N_CONFIDENCE, N_FUSED_DOWN, N_FUSED_UP, N_SMOOTHED, N_DANGER,
    N_SPREAD_RATIO, N_SIZE_FACTOR, N_GAP_CANDLES, N_GAP_LAST, N_GAP_LEFT,
    N_FUNDING_LEFT, N_FUNDING_FLIP_RATE, N_ADX, N_ATR_RATIO, N_ALIGNMENT, N_CYCLE_POWER,
    N_ATR_PCT, N_Z, N_BETA, N_SIGMA, N_HORIZON, N_KELLY_TARGET, N_RAISE,
) = range(len(NUMBERS))  # fmt: skip
_FLOAT_MAX = float(np.finfo(np.float64).max)  # what np.nan_to_num makes of +inf


@numba.njit(cache=True)
def _value(features, i, column):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """``regime.feature``: the value, or NaN when absent or not finite."""
    if column < 0:
        return np.nan
    x = features[i, column]
    return x if math.isfinite(x) else np.nan


@numba.njit(cache=True)
def _regime(features, i, columns, p):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``regime.detect_regime``: (code, adx, atr_ratio, alignment, cycle power)."""
    adx = _value(features, i, columns[C_ADX])
    atr_ratio = _value(features, i, columns[C_ATR_RATIO])
    alignment = _value(features, i, columns[C_ALIGNMENT])
    if math.isnan(adx) or math.isnan(atr_ratio) or math.isnan(alignment):
        return R_UNKNOWN, np.nan, np.nan, 0.0, 0.0
    power = _value(features, i, columns[C_CYCLE_POWER])
    if math.isnan(power):
        power = 0.0
    stacked = abs(alignment) >= p[P_STACKED]
    short_range = _value(features, i, columns[C_RANGE_SHORT])
    long_range = _value(features, i, columns[C_RANGE_LONG])
    share = short_range / long_range if long_range > 0 else np.nan
    trend_adx = p[P_TREND_ADX]
    if (
        atr_ratio >= p[P_BREAKOUT_ATR]
        and stacked
        and adx < trend_adx
        and share >= p[P_BREAKOUT_SHARE]
    ):
        code = R_BREAKOUT
    elif adx >= trend_adx and stacked:
        code = R_UP if alignment > 0 else R_DOWN
    elif atr_ratio >= p[P_HIGH_VOL]:
        code = R_HIGH_VOL
    elif atr_ratio <= p[P_LOW_VOL]:
        code = R_LOW_VOL
    else:
        atr_pct = _value(features, i, columns[C_ATR_PCT])
        box = short_range / atr_pct if atr_pct > 0 else np.nan
        if adx < trend_adx and (power >= p[P_CYCLE_POWER] or box <= p[P_BOX_ATR]):
            code = R_RANGING
        else:
            code = R_CHOPPY
    return code, adx, atr_ratio, alignment, power


@numba.njit(cache=True)
def _insert(values, count, x):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Insert ``x`` into the sorted ``values[:count]`` (room for one more)."""
    k = count
    while k > 0 and values[k - 1] > x:
        values[k] = values[k - 1]
        k -= 1
    values[k] = x


@numba.njit(cache=True)
def _remove(values, count, x):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Remove one copy of ``x`` from the sorted ``values[:count]``."""
    k = np.searchsorted(values[:count], x)
    for j in range(k, count - 1):
        values[j] = values[j + 1]


@numba.njit(cache=True)
def _median(values, count):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """numpy's median of the sorted ``values[:count]`` (NaN when empty)."""
    if count == 0:
        return np.nan
    h = count // 2
    if count % 2 == 1:
        return values[h]
    return (values[h - 1] + values[h]) / 2.0


@numba.njit(cache=True)
def _median_deviation(values, count, m):  # type: ignore[no-untyped-def]  # pragma: no cover
    """numpy's median of ``|values[:count] - m|`` with ``m`` their median (sorted input)."""
    if count == 0:
        return np.nan
    right = np.searchsorted(values[:count], m, side="right")
    left = right - 1
    h = count // 2
    previous = 0.0
    current = 0.0
    for _ in range(h + 1):
        if left >= 0 and (right >= count or m - values[left] <= values[right] - m):
            deviation = m - values[left]  # == abs(values[left] - m), exactly
            left -= 1
        else:
            deviation = values[right] - m
            right += 1
        previous = current
        current = deviation
    if count % 2 == 1:
        return current
    return (previous + current) / 2.0


@numba.njit(cache=True)
def _round_half_even(x):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Python's ``round(x)`` of a finite float."""
    floor = math.floor(x)
    rest = x - floor
    if rest > 0.5:
        return int(floor) + 1
    if rest < 0.5:
        return int(floor)
    return int(floor) + (int(floor) % 2)


@numba.njit(cache=True)
def _vote_confidence(v0, v1, v2):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``fusion.vote_confidence``."""
    top = max(v0, v1, v2)
    return min(1.0, max(0.0, (top - 1.0 / 3.0) * 1.5))


@numba.njit(cache=True)
def _ramp(value, start, full):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """``guards._ramp``."""
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, (value - start) / (full - start)))


@numba.njit(cache=True)
def _panic_points(  # type: ignore[no-untyped-def]
    values, median, scale, signs, p, z_out, points
):  # pragma: no cover - jitted
    """``PanicExitModel._score`` up to the points: z-scores to ``z_out``, points to ``points``."""
    span = p[P_Z_FULL] - p[P_Z_START]
    for k in range(values.shape[0]):
        z = signs[k] * (values[k] - median[k]) / scale[k] if scale[k] > 0 else 0.0
        if math.isnan(z):
            z = 0.0
        elif math.isinf(z):
            z = _FLOAT_MAX if z > 0 else -_FLOAT_MAX
        z_out[k] = z
        points[k] = min(1.0, max(0.0, (z - p[P_Z_START]) / span))


@numba.njit(cache=True)
def _head(points, start, stop, strongest, top):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Mean of the ``strongest`` largest points of one head, summed largest first as numpy does.

    ``top`` is scratch room for the head's points, sorted here from the largest down.
    """
    size = stop - start
    for j in range(size):
        x = points[start + j]
        slot = j
        while slot > 0 and top[slot - 1] < x:
            top[slot] = top[slot - 1]
            slot -= 1
        top[slot] = x
    total = top[0]
    for j in range(1, min(strongest, size)):
        total += top[j]
    return total / strongest


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
    spread_window = q[Q_SPREAD_WINDOW]
    spread_ring = np.empty(max(spread_window, 1))
    spread_sorted = np.empty(max(spread_window, 1))
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
    # per-candle fusion scratch
    strength_sum = np.zeros(N_FAMILIES)
    vote_sum = np.zeros((N_FAMILIES, 3))
    order = np.zeros(N_FAMILIES, dtype=np.int64)
    present = np.zeros(N_FAMILIES, dtype=np.bool_)
    family_vote = np.zeros((N_FAMILIES, 3))
    raw = np.zeros(N_FAMILIES)
    clean = np.zeros(3)

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
        late = 0
        numbers = out_numbers[i]

        regime, adx, atr_ratio, alignment, power = _regime(features, i, columns, p)
        out_regime[i] = regime
        numbers[N_ADX] = adx
        numbers[N_ATR_RATIO] = atr_ratio
        numbers[N_ALIGNMENT] = alignment
        numbers[N_CYCLE_POWER] = power
        atr_pct = _value(features, i, columns[C_ATR_PCT])
        numbers[N_ATR_PCT] = atr_pct

        # spread regime: this spread over the median of the past ones
        spread = _value(features, i, columns[C_SPREAD])
        spread_median = 0.0
        if spread_count >= q[Q_SPREAD_MIN]:
            spread_median = _median(spread_sorted, spread_count)
        spread_ratio = np.nan
        if spread_median > 0 and math.isfinite(spread):
            spread_ratio = spread / spread_median
        if math.isfinite(spread) and spread_window > 0:
            if spread_count == spread_window:
                _remove(spread_sorted, spread_count, spread_ring[spread_next])
                spread_count -= 1
            spread_ring[spread_next] = spread
            spread_next = (spread_next + 1) % spread_window
            _insert(spread_sorted, spread_count, spread)
            spread_count += 1
        numbers[N_SPREAD_RATIO] = spread_ratio

        # data gaps: the candles missing before this one
        gap = 0
        stamp = open_us[i]
        if seen_any:
            step = stamp - last_time
            if usual >= 0:
                scaled = usual * q[Q_GAP_NUMERATOR]
                bound = scaled // q[Q_GAP_DENOMINATOR]
                rest = scaled - bound * q[Q_GAP_DENOMINATOR]
                if 2 * rest > q[Q_GAP_DENOMINATOR] or (
                    2 * rest == q[Q_GAP_DENOMINATOR] and bound % 2 == 1
                ):
                    bound += 1
                if step > bound:
                    gap = _round_half_even(float(step) / float(usual)) - 1
            if step > 0 and (usual < 0 or step < usual):
                usual = step
        last_time = stamp
        seen_any = True
        gap = max(0, gap)
        numbers[N_GAP_CANDLES] = gap
        if gap and enabled[B_KALMAN]:
            variance += p[P_KALMAN_Q] * max(0, gap)
        size_factor = 1.0
        if enabled[B_GAP_SAFE]:
            if gap > 0:
                gap_left = q[Q_GAP_BARS]
                gap_last = gap
            elif gap_left:
                gap_left -= 1
            if gap_left:
                size_factor = p[P_GAP_FACTOR]
                early |= 1 << B_GAP_SAFE
        numbers[N_GAP_LAST] = gap_last
        numbers[N_GAP_LEFT] = gap_left
        numbers[N_SIZE_FACTOR] = size_factor

        # funding flip cool-down
        funding = _value(features, i, columns[C_FUNDING])
        funding_left = max(0, funding_left - 1)
        if not (math.isnan(funding) or funding == 0):
            sign = 1 if funding > 0 else -1
            if funding_sign and sign != funding_sign:
                funding_left = q[Q_FUNDING_COOLDOWN]
                funding_rate = funding
            funding_sign = sign
        numbers[N_FUNDING_LEFT] = funding_left
        numbers[N_FUNDING_FLIP_RATE] = funding_rate

        # panic model: score against the past, then remember this candle
        out_scored[i] = False
        out_score[i] = 0.0
        if enabled[B_PANIC_EXIT]:
            for k in range(n_panic):
                x = _value(features, i, panic_columns[k])
                if panic_log[k] and not math.isnan(x):
                    x = math.log1p(max(x, 0.0))
                row[k] = x
            if panic_seen >= q[Q_PANIC_MIN]:
                if (panic_seen - q[Q_PANIC_MIN]) % q[Q_PANIC_REFRESH] == 0:
                    for k in range(n_panic):
                        m = _median(ordered[k], counts[k])
                        s = p[P_MAD_TO_SIGMA] * _median_deviation(ordered[k], counts[k], m)
                        median[k] = 0.0 if math.isnan(m) else m
                        scale[k] = 0.0 if math.isnan(s) else s
                _panic_points(row, median, scale, panic_signs, p, out_z[i], points)
                score = 0.0
                for h in range(head_weights.shape[0]):
                    head = _head(
                        points, head_bounds[h], head_bounds[h + 1], q[Q_PANIC_STRONGEST], top
                    )
                    out_heads[i, h] = head
                    score += head_weights[h] * head
                out_score[i] = score
                out_scored[i] = True
            slot = panic_seen % window
            if panic_seen >= window:
                for k in range(n_panic):
                    old = history[slot, k]
                    if not math.isnan(old):
                        _remove(ordered[k], counts[k], old)
                        counts[k] -= 1
            for k in range(n_panic):
                history[slot, k] = row[k]
                if not math.isnan(row[k]):
                    _insert(ordered[k], counts[k], row[k])
                    counts[k] += 1
            panic_seen += 1

        danger = 0.0
        if enabled[B_RISK_VOTE]:
            danger = max(
                _ramp(atr_ratio, p[P_DANGER_ATR_START], p[P_DANGER_ATR_FULL]),
                _ramp(spread_ratio, p[P_DANGER_SPREAD_START], p[P_DANGER_SPREAD_FULL]),
            )
        numbers[N_DANGER] = danger

        # fusion: clean the votes and group them by family, in the order they come
        n_present = 0
        for f in range(N_FAMILIES):
            present[f] = False
            strength_sum[f] = 0.0
            vote_sum[f, 0] = 0.0
            vote_sum[f, 1] = 0.0
            vote_sum[f, 2] = 0.0
        n_votes = 0
        for m in range(n_models):
            if math.isnan(votes[m, i, 0]):
                continue
            usable = True
            for k in range(3):
                x = votes[m, i, k]
                if not (math.isfinite(x) and x >= 0):
                    usable = False
            if not usable:
                continue
            total = votes[m, i, 0] + votes[m, i, 1] + votes[m, i, 2]
            if total <= 0:
                continue
            for k in range(3):
                clean[k] = votes[m, i, k] / total
            n_votes += 1
            f = families[m]
            if not present[f]:
                present[f] = True
                order[n_present] = f
                n_present += 1
            strength = _vote_confidence(clean[0], clean[1], clean[2]) + p[P_MIN_STRENGTH]
            strength_sum[f] += strength
            for k in range(3):
                vote_sum[f, k] += strength * clean[k]
        if enabled[B_ORDER_FLOW_VOTE] and not present[FAM_ORDER_FLOW]:
            parts = 0
            flow = 0.0
            for k in range(flow_columns.shape[0]):
                x = _value(features, i, flow_columns[k])
                if not math.isnan(x):
                    flow += math.tanh(x / flow_scales[k])
                    parts += 1
            if parts:
                flow_score = flow / parts
                buying = max(flow_score, 0.0)
                selling = max(-flow_score, 0.0)
                clean[0] = 1.0 / 3.0 + selling / 3.0 - buying / 6.0
                clean[1] = 1.0 / 3.0 - abs(flow_score) / 6.0
                clean[2] = 1.0 / 3.0 + buying / 3.0 - selling / 6.0
                early |= 1 << B_ORDER_FLOW_VOTE
                n_votes += 1
                present[FAM_ORDER_FLOW] = True
                order[n_present] = FAM_ORDER_FLOW
                n_present += 1
                strength = _vote_confidence(clean[0], clean[1], clean[2]) + p[P_MIN_STRENGTH]
                strength_sum[FAM_ORDER_FLOW] = strength
                for k in range(3):
                    vote_sum[FAM_ORDER_FLOW, k] = strength * clean[k]
        danger = min(1.0, max(0.0, danger))
        if danger > 0:
            present[FAM_RISK] = True
            order[n_present] = FAM_RISK
            n_present += 1
            strength = danger + p[P_MIN_STRENGTH]
            strength_sum[FAM_RISK] = strength
            vote_sum[FAM_RISK, 0] = strength * ((1.0 - danger) / 3.0)
            vote_sum[FAM_RISK, 1] = strength * ((1.0 + 2.0 * danger) / 3.0)
            vote_sum[FAM_RISK, 2] = strength * ((1.0 - danger) / 3.0)
        for j in range(n_present):
            f = order[j]
            for k in range(3):
                family_vote[f, k] = vote_sum[f, k] / strength_sum[f]
        shared = weights[FAM_SEQUENCE]
        if present[FAM_SEQUENCE] and present[FAM_TABULAR]:
            shared = shared / 2
        total = 0.0
        any_tilt = False
        for j in range(n_present):
            f = order[j]
            base = shared if f in (FAM_SEQUENCE, FAM_TABULAR) else weights[f]
            factor = 1.0
            if enabled[B_REGIME_WEIGHTS] and tilted[regime, f]:
                factor = tilt[regime, f]
                any_tilt = True
            confidence = _vote_confidence(family_vote[f, 0], family_vote[f, 1], family_vote[f, 2])
            raw[f] = base * factor * (confidence + p[P_MIN_STRENGTH])
            total += raw[f]
        for f in range(N_FAMILIES):
            out_weights[i, f] = np.nan
        p_down = 1.0 / 3.0
        p_flat = 1.0 / 3.0
        p_up = 1.0 / 3.0
        if total > 0:
            if any_tilt:
                early |= 1 << B_REGIME_WEIGHTS
            p_down = 0.0
            p_flat = 0.0
            p_up = 0.0
            for f in sorted_families:
                if not present[f]:
                    continue
                used = raw[f] / total
                out_weights[i, f] = used
                p_down += used * family_vote[f, 0]
                p_flat += used * family_vote[f, 1]
                p_up += used * family_vote[f, 2]
        if danger > 0:
            early |= 1 << B_RISK_VOTE
        edge = p_up - p_down
        numbers[N_FUSED_DOWN] = p_down
        numbers[N_FUSED_UP] = p_up
        numbers[N_SMOOTHED] = np.nan
        if enabled[B_KALMAN] and n_votes:
            if math.isnan(level):
                level = edge
                variance = p[P_KALMAN_R]
            else:
                predicted = variance + p[P_KALMAN_Q]
                gain = predicted / (predicted + p[P_KALMAN_R])
                level += gain * (edge - level)
                variance = (1.0 - gain) * predicted
            smoothed = level
            room = 1.0 - p_flat
            clipped = min(room, max(-room, smoothed))
            p_down = (room - clipped) / 2.0
            p_up = (room + clipped) / 2.0
            numbers[N_SMOOTHED] = smoothed
            early |= 1 << B_KALMAN
        out_proba[i, 0] = p_down
        out_proba[i, 1] = p_flat
        out_proba[i, 2] = p_up

        # the plan: expected return over the horizon, target position, entry and exit bars
        mass = p_down + p_up
        confidence = 0.5
        if mass > 0:
            confidence = max(p_up, p_down) / mass
        z = score_of(p_down, p_up)
        beta = forecast[i, 0]
        sigma = forecast[i, 1]
        horizon = forecast[i, 2]
        expected = 0.0
        target = 0.0
        numbers[N_BETA] = beta
        numbers[N_SIGMA] = sigma
        numbers[N_HORIZON] = horizon
        if (
            math.isfinite(beta) and beta >= 0 and math.isfinite(sigma) and sigma > 0
            and horizon >= 1
        ):  # fmt: skip
            expected = beta * z * sigma
            if sigma > 0 and math.isfinite(expected):
                kelly_raw = p[P_KELLY] * expected / (sigma * sigma)
                target = min(p[P_MAX_POSITION], max(-p[P_MAX_POSITION], kelly_raw))
        else:
            numbers[N_HORIZON] = 0.0
        numbers[N_Z] = z
        numbers[N_KELLY_TARGET] = target
        raise_by = 0.0
        if enabled[B_VOLATILITY_THRESHOLD] and not (
            math.isnan(atr_ratio) or atr_ratio <= p[P_VOL_START]
        ):
            raise_by += min(p[P_VOL_MAX], p[P_VOL_SLOPE] * (atr_ratio - p[P_VOL_START]))
            early |= 1 << B_VOLATILITY_THRESHOLD
        efficiency = _value(features, i, columns[C_EFFICIENCY])
        deep = not (
            math.isnan(adx) or adx < p[P_DEEP_ADX] or abs(alignment) < p[P_DEEP_ALIGNMENT]
        ) and (math.isnan(efficiency) or not efficiency < p[P_DEEP_EFFICIENCY])
        deep = deep and enabled[B_TREND_DEPTH]
        if deep:
            early |= 1 << B_TREND_DEPTH
        if (
            enabled[B_CHOP]
            and not deep
            and not (math.isnan(atr_ratio) or atr_ratio > p[P_CHOP_ATR] or power >= p[P_CHOP_POWER])
        ):
            raise_by += p[P_CHOP_RAISE]
            early |= 1 << B_CHOP
        if enabled[B_VOLATILITY_CUT] and not (math.isnan(atr_ratio) or atr_ratio <= p[P_CUT_ATR]):
            factor = max(p[P_CUT_FLOOR], p[P_CUT_ATR] / atr_ratio)
            target *= factor
            early |= 1 << B_VOLATILITY_CUT
        target *= size_factor
        round_trip = 2.0 * p[P_COST]
        out_entry[i] = p[P_ENTRY_MULTIPLE] * round_trip * (1.0 + raise_by)
        out_exit[i] = p[P_EXIT_MULTIPLE] * round_trip
        numbers[N_RAISE] = raise_by

        # overrides that do not depend on the position (panic: by the caller)
        out_hold_only[i] = False
        if enabled[B_RISK_BLOCK] and (
            atr_ratio >= p[P_BLOCK_ATR] or spread_ratio >= p[P_BLOCK_SPREAD]
        ):
            late |= 1 << B_RISK_BLOCK
            out_hold_only[i] = True
        out_no_new_long[i] = False
        if enabled[B_FUNDING_FLIP] and funding_left:
            late |= 1 << B_FUNDING_FLIP
            out_no_new_long[i] = True
        out_expected[i] = expected
        out_target[i] = target
        out_deep[i] = deep
        out_confidence[i] = confidence
        numbers[N_CONFIDENCE] = confidence
        out_early[i] = early
        out_late[i] = late
