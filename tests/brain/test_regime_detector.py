"""The regime detector names each regime from hand-made feature rows, with its numbers."""

from __future__ import annotations

import pytest
from conftest import RowMaker

from tradebrain.brain.regime import Regime, detect_regime


@pytest.mark.parametrize(
    ("overrides", "regime", "words"),
    [
        (
            {"adx_14": 31.0, "ema_alignment": 1.0},
            Regime.TRENDING_UP,
            "ADX 31 >= 25 and EMAs stacked up",
        ),
        ({"adx_14": 31.0, "ema_alignment": -1.0}, Regime.TRENDING_DOWN, "EMAs stacked down"),
        (
            {"atr_ratio_14_96": 1.4, "ema_alignment": 1.0, "range_width_20": 0.085},
            Regime.BREAKOUT,
            "ATR ratio 1.40 >= 1.3",
        ),
        ({"atr_ratio_14_96": 1.8}, Regime.HIGH_VOLATILITY, "ATR ratio 1.80 >= 1.5"),
        ({"atr_ratio_14_96": 0.6}, Regime.LOW_VOLATILITY, "ATR ratio 0.60 <= 0.7"),
        ({"cycle_power_64": 0.25}, Regime.RANGING, "dominant cycle of 16 candles holds 25%"),
        ({"range_width_20": 0.03}, Regime.RANGING, "20-candle range of 3.0 ATR"),
        ({}, Regime.CHOPPY, "no dominant cycle (12%"),
    ],
)
def test_each_regime_is_named_from_its_features_with_the_numbers_in_words(
    row: RowMaker, overrides: dict[str, float], regime: Regime, words: str
) -> None:
    reading = detect_regime(row(**overrides))
    assert reading.regime is regime
    assert any(words in reason for reason in reading.reasons), reading.reasons


def test_a_strong_adx_without_stacked_emas_is_not_a_trend(row: RowMaker) -> None:
    reading = detect_regime(row(adx_14=35.0, ema_alignment=1 / 3))
    assert not reading.regime.is_trend
    assert "EMAs mixed" in reading.reasons[0]


def test_a_breakout_needs_price_to_leave_its_old_box(row: RowMaker) -> None:
    inside_the_box = row(atr_ratio_14_96=1.4, ema_alignment=1.0, range_width_20=0.04)
    assert detect_regime(inside_the_box).regime is not Regime.BREAKOUT


def test_a_missing_required_feature_gives_unknown_and_names_it(row: RowMaker) -> None:
    features = row()
    del features["adx_14"]
    reading = detect_regime(features | {"ema_alignment": float("nan")})
    assert reading.regime is Regime.UNKNOWN
    assert "adx_14, ema_alignment missing" in reading.reasons[0]


def test_direction_follows_the_ema_alignment(row: RowMaker) -> None:
    assert detect_regime(row(ema_alignment=1.0)).direction == 1
    assert detect_regime(row(ema_alignment=-1 / 3)).direction == -1
    assert detect_regime(row(ema_alignment=0.0)).direction == 0
