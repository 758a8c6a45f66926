"""The tables of the compiled brain: codes, parameter slots and the columns of its numbers.

The numba kernels (:mod:`tradebrain.brain.compiled.kernels` and the ``_*_kernels`` modules next
to it) speak in small integers: regime, family, action and filter codes, the slot of each
parameter in the float array ``p`` and the integer array ``q``, the column of each feature they
read and of each intermediate number they keep for the reasons. This module names every code
once; :mod:`tradebrain.brain.compiled.brain` fills the arrays in these orders and maps the codes
back to the brain's names.

numba freezes these constants into the compiled kernels, and its on-disk cache is keyed on each
kernel's own source file only: after changing a table here, delete the cached kernels
(``tradebrain/brain/compiled/__pycache__/*.nb[ci]``) so that they compile again.
"""

from __future__ import annotations

from tradebrain.brain.decision import Action
from tradebrain.brain.regime import Regime

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
