"""The compiled brain decides every candle as Brain.decide does, one candle at a time.

Discrete outcomes (action, regime, filters, reasons, order type, horizon) must be identical;
floats agree within 1e-9 relative: numba and CPython may round a transcendental function
differently in the last bit depending on the CPU (AVX-512 machines do), and the project
promises equality to that tolerance, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from builders import assert_same_decision
from conftest import CrashMarket
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.brain.brain import Brain
from tradebrain.brain.compiled import codes
from tradebrain.brain.compiled.brain import (
    ACTIONS,
    FAMILY_NAMES,
    FILTERS,
    REGIMES,
    compiled_decisions,
)
from tradebrain.brain.decision import Action, Decision
from tradebrain.brain.fusion import FAMILIES
from tradebrain.brain.panic import PanicSettings
from tradebrain.brain.positioning import PositionRules
from tradebrain.brain.regime import Regime
from tradebrain.brain.tuning import PARTS, BrainTuning, PositionContext
from tradebrain.config import BrainSettings, FusionWeights
from tradebrain.exceptions import ConfigError
from tradebrain.strategies.hybrid import HybridSignals

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MODELS = ("logistic", "lstm_small", "cnn", "ppo_agent", "orderflow_net")


def assert_same_decisions(
    signals: HybridSignals,
    closes: np.ndarray,
    open_times: np.ndarray,
    *,
    settings: BrainSettings | None = None,
    disabled: Iterable[str] = (),
    tuning: BrainTuning | None = None,
    shorts: bool = True,
) -> dict[int, Decision]:
    """Decide with both brains, candle by candle, a book following the decisions' targets."""
    brain = Brain(settings, disabled=disabled, tuning=tuning)
    arrays = compiled_decisions(signals, closes, open_times, settings, disabled, tuning)
    decisions: dict[int, Decision] = {}
    exposure = 0.0
    for bar in range(len(signals)):
        votes = {
            name: (float(row[0]), float(row[1]), float(row[2]))
            for name, proba in signals.votes.items()
            if not np.isnan((row := proba[bar])[0])
        }
        if not votes:
            assert not arrays.asked[bar], bar
            continue
        assert arrays.asked[bar], bar
        features = dict(zip(signals.feature_names, signals.features[bar].tolist(), strict=True))
        when = EPOCH + timedelta(microseconds=int(open_times[bar]))
        market = PositionContext(
            price=float(closes[bar]), position=exposure, exposure=exposure, shorts=shorts
        )
        expected = brain.decide(when, "SYN", features, votes, market, signals.forecast_at(bar))
        assert_same_decision(expected, arrays.decision(bar, "SYN", exposure, shorts=shorts), bar)
        assert REGIMES[arrays.regime[bar]].value == expected.regime
        decisions[bar] = expected
        exposure = expected.target_position
    return decisions


def forecasts(n: int, seed: int) -> np.ndarray:
    """Calibrations per candle: beta in [0, 2], sigma 1-5 %, horizons 12-48, some missing."""
    rng = np.random.default_rng(seed)
    out = np.column_stack(
        (rng.uniform(0.0, 2.0, n), rng.uniform(0.01, 0.05, n), rng.choice([12, 24, 48], n))
    ).astype(np.float64)
    out[rng.random(n) < 0.1] = np.nan
    return out


def random_votes(
    n: int, seed: int, models: Iterable[str] = MODELS, concentration: float = 0.6
) -> dict[str, np.ndarray]:
    """Dirichlet votes (low concentration: decisive), with NaN gaps and a few unusable rows."""
    rng = np.random.default_rng(seed)
    votes = {}
    for name in models:
        proba = rng.dirichlet(np.full(3, concentration), n)
        proba[rng.random(n) < 0.15] = np.nan
        broken = rng.random(n) < 0.02
        proba[broken, 1] = rng.choice([-0.1, np.inf, np.nan], broken.sum())
        proba[rng.random(n) < 0.01] = 0.0
        votes[name] = proba
    return votes


@pytest.fixture(scope="module")
def crash_signals(crash_market: CrashMarket) -> tuple[HybridSignals, np.ndarray, np.ndarray]:
    names = sorted({name for row in crash_market.rows for name in row})
    features = np.array([[row.get(name, np.nan) for name in names] for row in crash_market.rows])
    n = len(crash_market.rows)
    votes = random_votes(n, seed=3)
    votes["orderflow_net"][: n // 2] = np.nan  # the brain derives its own order-flow vote there
    times = np.array([(t - EPOCH) // timedelta(microseconds=1) for t in crash_market.timestamps])
    signals = HybridSignals(tuple(names), features, votes, forecasts(n, seed=4))
    return signals, crash_market.close, times


def test_kernel_codes_name_every_action_regime_family_and_part() -> None:
    assert set(ACTIONS) == set(Action)  # the codes the kernel module names
    assert set(REGIMES) == set(Regime)
    assert set(FAMILY_NAMES) == set(FAMILIES)
    assert set(FILTERS) == set(PARTS) and len(FILTERS) == len(PARTS)


@pytest.mark.parametrize(
    "disabled",
    [
        (),
        ("kalman",),
        ("chop", "trend_depth", "panic_exit"),
        ("risk_vote", "order_flow_vote", "regime_weights", "volatility_cut"),
        ("volatility_threshold", "risk_block", "funding_flip", "maker_taker", "gap_safe"),
    ],
)
def test_compiled_brain_equals_python_brain_on_a_market_with_crashes(
    crash_signals: tuple[HybridSignals, np.ndarray, np.ndarray], disabled: tuple[str, ...]
) -> None:
    signals, closes, times = crash_signals
    expected = assert_same_decisions(signals, closes, times, disabled=disabled)
    actions = {d.action for d in expected.values()}
    assert {Action.BUY, Action.SELL, Action.HOLD, Action.EXIT} <= actions
    fired = {name for d in expected.values() for name in d.filters}
    assert "panic_exit" in fired or "panic_exit" in disabled
    assert "funding_flip" in fired or "funding_flip" in disabled


def test_spot_decisions_equal_the_python_brains_and_never_go_short(
    crash_signals: tuple[HybridSignals, np.ndarray, np.ndarray],
) -> None:
    signals, closes, times = crash_signals
    expected = assert_same_decisions(signals, closes, times, shorts=False)
    assert min(d.target_position for d in expected.values()) == 0.0
    assert max(d.target_position for d in expected.values()) > 0.5


def test_data_gaps_cut_size_and_widen_kalman_as_in_the_python_brain(
    crash_signals: tuple[HybridSignals, np.ndarray, np.ndarray],
) -> None:
    signals, closes, times = crash_signals
    hour = 3_600_000_000
    bars = np.arange(times.size)
    gapped = times + hour * (bars >= 700) + 5 * hour * (bars >= 1900)
    expected = assert_same_decisions(signals, closes, gapped)
    assert any("gap_safe" in d.filters for d in expected.values())


def test_other_settings_and_tuning_are_followed_as_in_the_python_brain(
    crash_signals: tuple[HybridSignals, np.ndarray, np.ndarray],
) -> None:
    signals, closes, times = crash_signals
    brain_settings = BrainSettings(
        fusion_weights=FusionWeights(order_flow=0.1, sequence=0.4, cnn=0.3, rl=0.1, risk=0.1),
        chop_filter=False,
    )
    tuning = BrainTuning(
        panic=PanicSettings(window=120, min_history=40, strongest=3, refresh_every=7),
        positions=PositionRules(
            kelly_fraction=0.2, max_position=2.0, entry_cost_multiple=0.5,
            exit_cost_multiple=0.1, rebalance_band=0.1, trade_rate=0.6, cost_per_side=0.002,
        ),
        stop_atr_multiple=2.0,
        take_profit=True,
        default_reward_risk=1.7,
        max_risk=0.01,
    )  # fmt: skip
    assert_same_decisions(signals, closes, times, settings=brain_settings, tuning=tuning)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    models=st.lists(st.sampled_from(MODELS), min_size=1, max_size=4, unique=True),
    concentration=st.floats(0.2, 3.0),
    start=st.integers(0, 2000),
)
def test_random_votes_with_nan_gaps_give_the_python_brains_decisions(
    crash_signals: tuple[HybridSignals, np.ndarray, np.ndarray],
    seed: int,
    models: list[str],
    concentration: float,
    start: int,
) -> None:
    signals, closes, times = crash_signals
    window = slice(start, start + 160)
    votes = random_votes(160, seed, models, concentration)
    part = HybridSignals(
        signals.feature_names, signals.features[window], votes, forecasts(160, seed)
    )
    tuning = BrainTuning(panic=PanicSettings(window=60, min_history=30, refresh_every=4))
    assert_same_decisions(part, closes[window], times[window], tuning=tuning)


def test_a_candle_without_votes_is_not_decided_on_and_the_brain_skips_it() -> None:
    features = np.array([[20.0, 1.0, 1.0]] * 6)
    votes = np.array([[0.1, 0.1, 0.8]] * 6)
    votes[2:4] = np.nan
    signals = HybridSignals(("adx_14", "atr_ratio_14_96", "ema_alignment"), features,
                            {"logistic": votes}, forecasts(6, 1))  # fmt: skip
    times = np.arange(6, dtype=np.int64) * 3_600_000_000
    arrays = compiled_decisions(signals, np.full(6, 100.0), times)
    assert not arrays.asked[2] and not arrays.asked[3]
    expected = assert_same_decisions(signals, np.full(6, 100.0), times)
    assert "gap_safe" in expected[4].filters  # the skipped candles look like a gap


def test_an_unknown_part_to_disable_is_refused_with_the_choices() -> None:
    signals = HybridSignals(("adx_14",), np.zeros((2, 1)), {})
    with pytest.raises(ConfigError, match="choose from"):
        compiled_decisions(signals, np.ones(2), np.arange(2), disabled=("kalmann",))


def test_every_kernel_parameter_is_read_from_the_brains_tuning() -> None:
    from tradebrain.brain.compiled.brain import _tables

    floats, ints, *_ = _tables(BrainSettings(), BrainTuning())
    assert floats.shape == (len(codes.FLOAT_PARAMETERS),)
    assert ints.shape == (len(codes.INT_PARAMETERS),)
    assert floats[codes.P_CHOP_RAISE] == BrainTuning().filters.chop_raise
    assert ints[codes.Q_PANIC_WINDOW] == BrainTuning().panic.window
