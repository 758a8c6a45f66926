"""Builders of small market-data frames for tests, and where the real data lives."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import polars as pl
import pytest

from tradebrain.data.schemas import TIMESTAMP
from tradebrain.data.timeframes import timeframe_seconds

if TYPE_CHECKING:
    from tradebrain.models.bundle import ModelBundle
    from tradebrain.rl.agents import QTableSizer

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
REAL_DATA_REQUIRED = "TRADEBRAIN_REAL_DATA_REQUIRED"
START = datetime(2024, 1, 1, tzinfo=UTC)

CandleMaker = Callable[..., pl.DataFrame]


def make_candles(
    n: int = 50, timeframe: str = "1h", start: datetime = START, seed: int = 0
) -> pl.DataFrame:
    """Return ``n`` valid candles on the ``timeframe`` grid: a small random walk."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    step = timedelta(seconds=timeframe_seconds(timeframe))
    return pl.DataFrame(
        {
            "timestamp": pl.Series([start + i * step for i in range(n)], dtype=TIMESTAMP),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )


def skip_without_real_data(reason: str) -> NoReturn:
    """Skip the test for want of real data, or fail it when ``TRADEBRAIN_REAL_DATA_REQUIRED=1``
    (set by CI, where the data must be there: a silent skip would hide ~40 tests)."""
    if os.environ.get(REAL_DATA_REQUIRED, "").strip() == "1":
        pytest.fail(f"{reason}; {REAL_DATA_REQUIRED}=1 says it must be there", pytrace=False)
    pytest.skip(reason)


def real_file(name: str) -> Path:
    """Return one real data file, skipping the test when it is absent (failing in CI)."""
    path = REAL_DATA / name
    if not path.exists():
        skip_without_real_data(f"real data file {name} not found in {REAL_DATA}")
    return path


FLOAT_TOLERANCE = 1e-9
"""Relative tolerance between the compiled brain's floats and the Python brain's: numba and
CPython may round a transcendental function differently in the last bit on some CPUs."""


def same_float(a: float | None, b: float | None) -> bool:
    """Whether two numbers agree within :data:`FLOAT_TOLERANCE` (None only equals None)."""
    if a is None or b is None:
        return a is b
    return bool(a == b or abs(a - b) <= FLOAT_TOLERANCE * max(abs(a), abs(b), 1e-300))


def assert_same_decision(expected: object, got: object, where: object = None) -> None:
    """Assert two Decisions agree: discrete fields exactly, floats within the tolerance."""
    discrete = ("timestamp", "symbol", "action", "regime", "filters", "reasons", "maker",
                "horizon", "votes")  # fmt: skip
    for name in discrete:
        assert getattr(got, name) == getattr(expected, name), (where, name)
    for name in ("confidence", "size", "stop", "target", "target_position", "expected_return"):
        assert same_float(getattr(got, name), getattr(expected, name)), (where, name)
    pairs = zip(got.proba, expected.proba, strict=True)  # type: ignore[attr-defined]
    assert all(same_float(a, b) for a, b in pairs), where
    weights, wanted = got.family_weights, expected.family_weights  # type: ignore[attr-defined]
    assert weights.keys() == wanted.keys(), where
    assert all(same_float(weights[f], w) for f, w in wanted.items()), where


def small_bundle() -> tuple[pl.DataFrame, ModelBundle]:
    """Return a 1,200-candle planted world and a small real bundle trained on it (one logistic
    model on the atomic features), not saved yet."""
    from tradebrain.data.synthetic import SyntheticConfig, generate_market
    from tradebrain.evaluation.walk_forward import EvaluationSettings
    from tradebrain.features import compute_features
    from tradebrain.learning.bundle_training import train_bundle

    candles = generate_market(SyntheticConfig(bars=1_200, seed=3, signal=0.3)).candles
    features = compute_features(candles, ["atomic"])
    settings = EvaluationSettings(models=("logistic",), window=4)
    bundle = train_bundle(candles, features, settings, feature_sets=["atomic"], source="test")
    return candles, bundle


def sizing_table(folder: Path, *, large: float = 1.5, small: float = 0.5) -> QTableSizer:
    """A Q-learning sizer, saved in ``folder`` and loaded back, whose table sizes entries with
    an edge of 2 round trips or more by ``large`` and the others by ``small``: every state
    visited, the best multiplier set by hand."""
    from tradebrain.rl.agents import N_STATES, QTableSizer, state_labels
    from tradebrain.rl.env import MULTIPLIERS

    sizer = QTableSizer()
    q = np.zeros((N_STATES, len(MULTIPLIERS)))
    for state in range(N_STATES):
        _, edge, _ = state_labels(state)
        q[state, MULTIPLIERS.index(large if edge in ("2-4", ">4") else small)] = 1.0
    sizer.q_, sizer.tries_ = q, np.ones((N_STATES, len(MULTIPLIERS)), dtype=np.int64)
    return QTableSizer.load(sizer.save(folder))
