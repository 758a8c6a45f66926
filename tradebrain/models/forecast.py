"""From probabilities to an expected return: skill weights, calibration and horizon value.

The models say how likely the price is to be higher ``h`` candles from now (``p_up`` against
``p_down``). A trader needs more: how much is expected, in return units, to weigh against what
trading costs. With ``z = Φ⁻¹(p_up / (p_up + p_down))`` — the standard-normal score of the
forecast (0 for a coin flip) — the expected log return over the horizon is read as::

    E[r_h] = beta * z * sigma_h,        sigma_h = volatility per candle * sqrt(h)

``beta`` is learned out of sample, on validation rows the models never trained on: the slope of
the realized ``r_h / sigma_h`` on ``z``. If the forecasts had no skill there, the slope is about
zero and so is every expected return: a system without an edge stands aside. The slope must be
significant — a t statistic of at least :data:`MIN_T` (2), the standard error widened by
``sqrt(h)`` because overlapping ``h``-candle returns are not independent — and is then shrunk by
its own uncertainty, ``beta = slope * (1 - (2/t)²)``; a weaker or negative slope counts as no
skill — a model is never traded on luck, nor backwards.

The same measurement, made per model, gives the **skill weights**. In the trading forecast a
model votes only with significant skill (:func:`voter_weights`); ``evaluate``'s ensemble,
which averages probabilities itself, weighs every model by its evidence instead
(:func:`evidence_weights`: ``t / 2`` capped at 1 for a positive slope, 0 otherwise), so a
model is not dropped or kept by which side of the bar it happens to fall.

:func:`policy_value` scores a forecast in money: the after-cost log growth of trading it with
the brain's entry and exit bars. It is how the horizon is chosen on training data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

VOLATILITY_FEATURE = "rv_std_60"
"""Feature that gives the volatility per candle (std of 1-candle log returns, 60 candles)."""
HORIZONS = (12, 24, 48)
"""Default forecast horizons (candles) tried in each training window."""
MIN_T = 2.0
"""t statistic a validation slope needs before it counts as skill (see the module docstring)."""
Z_LIMIT = 3.0
"""Scores are clipped to ±3 (probabilities beyond 0.9987 carry no more information)."""
MIN_ROWS = 30


@dataclass(frozen=True)
class ForecastSettings:
    """How a training window turns models into an expected-return forecast.

    Attributes
    ----------
    horizons
        Horizons (candles) tried; the one whose forecast is worth most after costs on the
        validation rows is kept. One value fixes the horizon.
    max_features, cluster_corr
        Feature selection inside the window (see :mod:`tradebrain.models.selection`);
        ``max_features`` None keeps every feature.
    validation_fraction, folds
        Share of the window's newest rows predicted out of sample, in ``folds`` consecutive
        blocks each by a model trained on the rows before it (purged): they give the skill
        weights, the calibration and the choice of horizon.
    min_independent
        A horizon is tried only when the scored rows hold this many non-overlapping returns
        over it: a 96-candle forecast cannot be judged on 1,000 candles.
    cost_per_side, entry_cost_multiple, exit_cost_multiple
        What trading costs and the brain's bars, to value each horizon in money.
    volatility_feature
        The feature that gives the volatility per candle.
    """

    horizons: tuple[int, ...] = HORIZONS
    max_features: int | None = 8
    cluster_corr: float = 0.9
    validation_fraction: float = 0.5
    folds: int = 3
    min_independent: int = 20
    cost_per_side: float = 0.0011
    entry_cost_multiple: float = 1.5
    exit_cost_multiple: float = -0.5
    volatility_feature: str = VOLATILITY_FEATURE


@dataclass(frozen=True)
class ForecastCalibration:
    """How one trained bundle's probabilities become expected returns.

    Attributes
    ----------
    horizon
        Candles the forecast looks ahead.
    beta
        Shrunk slope: expected ``r_h / sigma_h`` per unit of ``z``; 0 means no skill.
    slope, t_stat, rows
        The raw validation slope, its t statistic (overlap-corrected) and the rows behind it.
    weights
        Model -> skill weight in the combined vote (0: no out-of-sample skill).
    skill
        Model -> ``{"slope", "t_stat"}`` on the validation rows.
    volatility_feature
        Feature giving the volatility per candle.
    horizon_values
        Horizon -> after-cost log growth per candle of trading its forecast on the
        validation rows (how the horizon was chosen).
    """

    horizon: int
    beta: float
    slope: float
    t_stat: float
    rows: int
    weights: dict[str, float] = field(default_factory=dict)
    skill: dict[str, dict[str, float]] = field(default_factory=dict)
    volatility_feature: str = VOLATILITY_FEATURE
    horizon_values: dict[int, float] = field(default_factory=dict)

    def sigma(self, volatility: np.ndarray | float) -> np.ndarray | float:
        """Return the volatility over the horizon from the volatility per candle."""
        return volatility * math.sqrt(self.horizon)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "horizon": self.horizon,
            "beta": self.beta,
            "slope": self.slope,
            "t_stat": self.t_stat,
            "rows": self.rows,
            "weights": dict(self.weights),
            "skill": {m: dict(v) for m, v in self.skill.items()},
            "volatility_feature": self.volatility_feature,
            "horizon_values": {str(h): v for h, v in self.horizon_values.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ForecastCalibration:
        """Rebuild a calibration saved with :meth:`to_dict`."""
        return cls(
            horizon=int(data["horizon"]),
            beta=float(data["beta"]),
            slope=float(data["slope"]),
            t_stat=float(data["t_stat"]),
            rows=int(data["rows"]),
            weights={str(k): float(v) for k, v in data.get("weights", {}).items()},
            skill={str(k): dict(v) for k, v in data.get("skill", {}).items()},
            volatility_feature=str(data.get("volatility_feature", VOLATILITY_FEATURE)),
            horizon_values={int(k): float(v) for k, v in data.get("horizon_values", {}).items()},
        )


@numba.njit(cache=True)
def inverse_normal(p):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Return Φ⁻¹(p) for p in (0, 1): Acklam's approximation refined by one Halley step.

    Compiled once and used by the brain, the compiled brain and the calibration alike, so all
    three get the same bits.
    """
    a = (
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.3577518672690,
        -30.66479806614716,
        2.506628277459239,
    )
    b = (
        -54.47609879822406,
        161.5858368580409,
        -155.6989798598866,
        66.80131188771972,
        -13.28068155288572,
    )
    c = (
        -0.007784894002430293,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    )
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    elif p <= 1.0 - low:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        )
    else:
        q = math.sqrt(-2.0 * math.log(1.0 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)  # fmt: skip


@numba.njit(cache=True)
def score_of(p_down, p_up):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Return ``z`` of one vote, in ±3; 0 when there is no mass on up or down (or NaN)."""
    mass = p_down + p_up
    if not (mass > 0.0 and math.isfinite(mass)):
        return 0.0
    share = min(1.0 - 1e-12, max(1e-12, p_up / mass))
    return min(3.0, max(-3.0, inverse_normal(share)))


def probit_scores(proba: np.ndarray) -> np.ndarray:
    """Return ``z = Φ⁻¹(p_up / (p_up + p_down))`` per row of (n, 3) probabilities, in ±3.

    Rows without a usable vote (NaN, or no mass on up or down) give NaN.
    """
    proba = np.asarray(proba, dtype=np.float64)
    out: np.ndarray = _scores(np.ascontiguousarray(proba[:, 0]), np.ascontiguousarray(proba[:, 2]))
    return out


def probit_score(p_down: float, p_up: float) -> float:
    """Return ``z`` of one vote (see :func:`probit_scores`); 0 when there is no up/down mass."""
    return float(score_of(p_down, p_up))


@numba.njit(cache=True)
def _scores(down, up):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    out = np.empty(down.shape[0])
    for i in range(down.shape[0]):
        mass = down[i] + up[i]
        out[i] = score_of(down[i], up[i]) if mass > 0.0 and math.isfinite(mass) else np.nan
    return out


def combine_votes(probas: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Return the (n, 3) skill- and confidence-weighted average of the models' probabilities.

    Each model counts with ``weight × (confidence + 1e-6)``, confidence being
    ``(max p − 1/3) / (2/3)`` as in the brain's fusion; models of weight 0 are left out. Rows
    where no weighted model voted are NaN.
    """
    names = [m for m in probas if weights.get(m, 0.0) > 0]
    if not names:
        n = next(iter(probas.values())).shape[0] if probas else 0
        return np.full((n, 3), np.nan)
    total = np.zeros(next(iter(probas.values())).shape[0])
    mixed = np.zeros((total.size, 3))
    for name in names:
        proba = np.asarray(probas[name], dtype=np.float64)
        confidence = np.clip((proba.max(axis=1) - 1.0 / 3.0) * 1.5, 0.0, 1.0)
        strength = weights[name] * (confidence + 1e-6)
        strength = np.where(np.isnan(strength), 0.0, strength)
        mixed += strength[:, None] * np.nan_to_num(proba)
        total += strength
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(total[:, None] > 0, mixed / total[:, None], np.nan)
    return out


@dataclass(frozen=True)
class Slope:
    """The validation slope of realized returns (in sigma_h) on the forecast's z."""

    slope: float
    t_stat: float
    beta: float
    rows: int


def fit_slope(z: np.ndarray, realized: np.ndarray, horizon: int) -> Slope:
    """Return the slope of ``realized`` on ``z`` through the origin, its t and the shrunk beta.

    Parameters
    ----------
    z
        (n,) forecast scores.
    realized
        (n,) realized ``r_h / sigma_h`` of the same rows.
    horizon
        Overlapping returns over ``h`` candles: the standard error is widened by ``sqrt(h)``.
    """
    ok = np.isfinite(z) & np.isfinite(realized)
    n = int(ok.sum())
    if n < MIN_ROWS:
        return Slope(0.0, 0.0, 0.0, n)
    x, y = z[ok], realized[ok]
    spread = float(x @ x)
    if spread <= 0:
        return Slope(0.0, 0.0, 0.0, n)
    slope = float(x @ y) / spread
    residual = y - slope * x
    se = math.sqrt(float(residual @ residual) / (n - 1) / spread) * math.sqrt(max(horizon, 1))
    t = slope / se if se > 0 else 0.0
    beta = slope * (1.0 - (MIN_T / t) ** 2) if t > MIN_T else 0.0
    return Slope(slope, t, beta, n)


def voter_weights(slopes: Mapping[str, Slope]) -> dict[str, float]:
    """Return who votes in the trading forecast: 1 for a model with significant skill, else 0.

    Significant: ``beta > 0`` (a positive slope with t of at least :data:`MIN_T`). A model
    with less evidence does not vote, so the brain's fusion (which weighs votes by family and
    confidence, not by evidence) is never diluted by it, and a world without an edge has no
    voter at all.
    """
    return {name: 1.0 if slope.beta > 0 else 0.0 for name, slope in slopes.items()}


def evidence_weights(slopes: Mapping[str, Slope]) -> dict[str, float]:
    """Return each model's weight in an averaged forecast: its evidence of skill, in [0, 1].

    ``t / MIN_T`` capped at 1 for a model whose out-of-sample slope is positive, 0 otherwise:
    a significant model counts fully, a weaker one in proportion to its evidence, so no model
    is dropped or kept on which side of the significance bar it happens to fall. It is the
    weighting of ``evaluate``'s ensemble, which averages the probabilities itself; the trading
    brain fuses votes by family and takes :func:`voter_weights` (who votes) instead.
    """
    return {
        name: min(1.0, slope.t_stat / MIN_T) if slope.slope > 0 and slope.t_stat > 0 else 0.0
        for name, slope in slopes.items()
    }


def policy_value(
    expected: np.ndarray,
    next_return: np.ndarray,
    cost_per_side: float,
    entry_cost_multiple: float,
    exit_cost_multiple: float,
    long_short: bool = True,
) -> float:
    """Return the after-cost log growth per candle of trading ``expected`` with the brain's bars.

    Enter (all of the equity) when the expected return over the horizon beats
    ``entry_cost_multiple`` round trips, hold while it stays above ``exit_cost_multiple``
    round trips on the position's side. ``next_return[t]`` is the log return earned by a
    position decided at ``t``; rows must be consecutive candles.
    """
    growth, _ = _run_policy(
        expected, next_return, cost_per_side, entry_cost_multiple, exit_cost_multiple, long_short
    )
    return growth / max(len(expected), 1)


def policy_returns(
    expected: np.ndarray,
    next_return: np.ndarray,
    cost_per_side: float,
    entry_cost_multiple: float,
    exit_cost_multiple: float,
    long_short: bool = True,
) -> np.ndarray:
    """Return the (n,) after-cost log return of each candle of trading ``expected``.

    The per-candle form of :func:`policy_value` (whose value is the mean of these); a
    candle's return includes the cost of the trade decided on it. NaN forecasts count as 0.
    """
    _, returns = _run_policy(
        expected, next_return, cost_per_side, entry_cost_multiple, exit_cost_multiple, long_short
    )
    return returns


def _run_policy(
    expected: np.ndarray,
    next_return: np.ndarray,
    cost_per_side: float,
    entry_cost_multiple: float,
    exit_cost_multiple: float,
    long_short: bool,
) -> tuple[float, np.ndarray]:
    values = np.asarray(expected, dtype=np.float64)
    returns = np.empty(values.size)
    round_trip = 2.0 * cost_per_side
    growth = _policy(
        values,
        np.asarray(next_return, dtype=np.float64),
        cost_per_side,
        entry_cost_multiple * round_trip,
        exit_cost_multiple * round_trip,
        long_short,
        returns,
    )
    return float(growth), returns


@numba.njit(cache=True)
def _policy(expected, next_return, cost, enter, leave, long_short, out):  # type: ignore[no-untyped-def]  # pragma: no cover - jitted
    """Trade ``expected`` with the bars; write each candle's log return into ``out`` and
    return their sum (accumulated candle by candle, trade cost first)."""
    position = 0
    total = 0.0
    for t in range(expected.shape[0]):
        m = expected[t]
        r = next_return[t]
        if m != m:
            m = 0.0
        new = position
        if position == 0:
            if m >= enter:
                new = 1
            elif long_short and m <= -enter:
                new = -1
        elif position * m < leave:
            new = 0
            if long_short and -position * m >= enter:
                new = -position
        out[t] = 0.0
        if new != position:
            paid = math.log(1.0 - abs(new - position) * cost)
            total += paid
            out[t] += paid
            position = new
        if position != 0 and r == r:
            earned = math.log(1.0 + position * (math.exp(r) - 1.0))
            total += earned
            out[t] += earned
    return total
