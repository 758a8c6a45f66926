"""Promotion gates and degradation alarms: when a candidate replaces production, when to roll back.

In shadow mode the production model and a candidate trade the *same* candles through the same
simulated broker and costs; each yields a per-candle after-cost log-return series. The gate
judges the candle-by-candle difference of the two:

* a **paired test** of ``mean(candidate - production) > 0`` with a Newey-West (Bartlett) HAC
  variance, because positions last many candles and the differences autocorrelate;
* the candidate's **deflated Sharpe ratio**, counting every trial ever run to find it;
* a **minimum track length** before any verdict and a maximum after which a candidate that has
  not passed is refused. Win rates are never consulted.

Production is then watched by a lower-side **CUSUM** (Page, 1954) of its realised per-candle
log returns against the profile it showed when it was promoted; an alarm latches and asks for a
rollback.

Caveats
-------
The gate is a fixed-threshold test: judging the same growing record again on every candle
raises the chance of promoting a candidate no better than production above ``alpha`` (the
problem of repeated looks). Judge at a few fixed checkpoints, or lower ``alpha`` to pay for
the looks. The CUSUM's run lengths assume independent standardized returns; autocorrelated
returns alarm sooner than :func:`cusum_average_run_length` says.

References
----------
Newey, W. K. and West, K. D. (1987). A simple, positive semi-definite, heteroskedasticity and
autocorrelation consistent covariance matrix. Econometrica 55(3).
Newey, W. K. and West, K. D. (1994). Automatic lag selection in covariance matrix estimation.
Review of Economic Studies 61(4). (the default lag ``floor(4 (n/100)^(2/9))``)
Page, E. S. (1954). Continuous inspection schemes. Biometrika 41(1/2).
Siegmund, D. (1985). Sequential Analysis. Springer. (the run-length approximation)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradebrain.evaluation.statistics import (
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    sharpe_statistics,
)
from tradebrain.exceptions import ConfigError, UserInputError

MIN_STD = 1e-12
"""The smallest per-candle standard deviation :func:`expected_profile` returns (log return)."""

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the promotion gate, validated when built.

    Attributes
    ----------
    min_track
        Candles of paired record before any verdict (>= 2).
    max_track
        Candles after which a candidate that has not passed is refused (>= ``min_track``).
    alpha
        One-sided significance level of the paired test, in (0, 1).
    min_dsr
        Deflated Sharpe ratio the candidate must reach, counting every trial, in [0, 1].
    min_active
        Candles on which the two models' returns differ before there is anything to judge.
    """

    min_track: int = 500
    max_track: int = 3000
    alpha: float = 0.05
    min_dsr: float = 0.95
    min_active: int = 30

    def __post_init__(self) -> None:
        if self.min_track < 2:
            raise ConfigError(f"min_track must be >= 2 candles; got {self.min_track}")
        if self.max_track < self.min_track:
            raise ConfigError(
                f"max_track ({self.max_track}) must be >= min_track ({self.min_track})"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), e.g. 0.05; got {self.alpha}")
        if not 0.0 <= self.min_dsr <= 1.0:
            raise ConfigError(f"min_dsr is a probability in [0, 1], e.g. 0.95; got {self.min_dsr}")
        if self.min_active < 1:
            raise ConfigError(f"min_active must be >= 1 candle; got {self.min_active}")


@dataclass(frozen=True)
class PairedTest:
    """A one-sided paired test that the candidate earns more per candle than production.

    Attributes
    ----------
    n
        Candles in the paired record.
    mean_difference
        ``mean(candidate - production)``, log return per candle.
    t_stat
        ``mean_difference`` over its HAC standard error (0 when the difference never varies).
    p_value
        One-sided p-value of ``mean_difference > 0`` from Student's t with ``n - 1`` degrees
        of freedom (0.5 when the difference never varies).
    lags
        Autocovariance lags in the Bartlett-weighted (Newey-West) variance.
    """

    n: int
    mean_difference: float
    t_stat: float
    p_value: float
    lags: int


def default_lags(n: int) -> int:
    """Return the Newey-West (1994) lag count ``floor(4 (n/100)^(2/9))``, at most ``n - 1``."""
    if n < 2:
        return 0
    return min(n - 1, int(4.0 * (n / 100.0) ** (2.0 / 9.0)))


def paired_test(
    candidate: np.ndarray, production: np.ndarray, lags: int | None = None
) -> PairedTest:
    """Test whether ``candidate`` beats ``production`` on the same candles, HAC-corrected.

    With ``d = candidate - production`` and autocovariances ``γ_j = Σ_t (d_t - d̄)(d_{t-j} - d̄)
    / n``, the long-run variance is ``σ² = n / (n - 1) (γ_0 + 2 Σ_{j=1..L} (1 - j/(L+1)) γ_j)``
    (Bartlett weights; the ``n / (n - 1)`` factor makes ``lags=0`` the ordinary paired t) and
    ``t = d̄ / √(σ² / n)``.

    Parameters
    ----------
    candidate, production
        (n,) float64 per-candle after-cost log returns of the two models on the same candles.
    lags
        Autocovariance lags ``L`` (0 <= L < n); ``None`` for :func:`default_lags`.

    Returns
    -------
    PairedTest
        The one-sided test of ``mean(candidate - production) > 0``.

    Raises
    ------
    UserInputError
        Unequal lengths, non-finite values, fewer than 2 candles or a bad ``lags``.
    """
    first, second = _paired_returns(candidate, production)
    n = first.size
    if n < 2:
        raise UserInputError(f"a paired test needs at least 2 candles; got {n}")
    if lags is None:
        lags = default_lags(n)
    if isinstance(lags, bool) or not isinstance(lags, int | np.integer) or not 0 <= lags < n:
        raise UserInputError(f"lags must be an integer in [0, {n - 1}] for {n} candles; got {lags}")
    lags = int(lags)
    difference = first - second
    mean = float(np.mean(difference))
    variance = _long_run_variance(difference, lags)
    scale = float(np.max(np.abs(difference)))
    if np.ptp(difference) == 0.0 or variance <= (4.0 * _EPS * scale) ** 2:
        return PairedTest(n, mean, 0.0, 0.5, lags)
    t_stat = mean / math.sqrt(variance / n)
    return PairedTest(n, mean, t_stat, _student_t_sf(t_stat, n - 1), lags)


def _long_run_variance(difference: np.ndarray, lags: int) -> float:
    """Return the Bartlett-weighted long-run variance of (n,) ``difference`` (n/(n-1) scaled)."""
    n = difference.size
    deviations = difference - np.mean(difference)
    variance = float(deviations @ deviations) / n
    for lag in range(1, lags + 1):
        weight = 1.0 - lag / (lags + 1.0)
        variance += 2.0 * weight * float(deviations[lag:] @ deviations[:-lag]) / n
    return max(variance, 0.0) * n / (n - 1)


@dataclass(frozen=True)
class GateVerdict:
    """What the gate decided, why, and the numbers behind it.

    Attributes
    ----------
    decision
        ``"promote"``, ``"refuse"`` or ``"wait"`` (keep collecting paired candles).
    reasons
        Plain-English sentences, each with the number it rests on.
    numbers
        ``n``, ``active``, ``mean_difference``, ``t_stat``, ``p_value``, ``worse_p_value``,
        ``lags``, ``candidate_log_return``, ``production_log_return``, ``candidate_sharpe``,
        ``production_sharpe`` (per candle), ``sharpe_benchmark`` (the best Sharpe ratio of
        ``n_trials`` by luck), ``dsr`` and ``n_trials``; NaN where undefined.
    """

    decision: str
    reasons: tuple[str, ...]
    numbers: dict[str, float] = field(hash=False)

    @property
    def passed(self) -> bool:
        """Return whether the candidate is promoted."""
        return self.decision == "promote"

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain JSON-ready values."""
        return {
            "decision": self.decision,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "numbers": dict(self.numbers),
        }


def promotion_verdict(
    candidate: np.ndarray,
    production: np.ndarray,
    *,
    n_trials: int,
    trials_sharpe_variance: float,
    settings: GateSettings = GateSettings(),
) -> GateVerdict:
    """Decide whether ``candidate`` replaces ``production`` from their shadow-mode record.

    Rules, in order:

    1. fewer than ``min_track`` candles: wait;
    2. promote when the candidate differs from production on at least ``min_active`` candles,
       the paired test's p < ``alpha``, the mean difference and the total log-return edge are
       positive, and the candidate's DSR (``n_trials``, ``trials_sharpe_variance``) reaches
       ``min_dsr``;
    3. refuse when, on at least ``min_active`` differing candles, production is significantly
       better (one-sided p of ``mean(production - candidate) > 0`` below ``alpha``);
    4. refuse once the record reaches ``max_track`` candles without a promotion;
    5. otherwise wait.

    Parameters
    ----------
    candidate, production
        (n,) float64 per-candle after-cost log returns of the two models on the same candles.
    n_trials
        Every configuration ever evaluated to find candidates (>= 1), e.g.
        :attr:`~tradebrain.evaluation.statistics.TrialLedger.n_trials`.
    trials_sharpe_variance
        Variance (>= 0) of those trials' per-candle Sharpe ratios.
    settings
        The gate's thresholds.

    Raises
    ------
    UserInputError
        Unequal lengths, non-finite returns, ``n_trials < 1`` or a negative variance.
    """
    first, second = _paired_returns(candidate, production)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise UserInputError(
            f"n_trials must be an integer >= 1 counting every trial ever run; got {n_trials!r}"
        )
    if not math.isfinite(trials_sharpe_variance) or trials_sharpe_variance < 0:
        raise UserInputError(
            f"trials_sharpe_variance must be finite and >= 0; got {trials_sharpe_variance}"
        )
    numbers = _gate_numbers(first, second, int(n_trials), float(trials_sharpe_variance))
    n, active = first.size, int(numbers["active"])
    if n < settings.min_track:
        return GateVerdict(
            "wait",
            (f"paired record of {n} candles is shorter than min_track {settings.min_track}",),
            numbers,
        )
    if active < settings.min_active:
        idle = (
            f"the models differ on only {active} of {n} candles, fewer than min_active "
            f"{settings.min_active}: nothing to judge"
        )
        if n >= settings.max_track:
            return GateVerdict("refuse", (idle, _max_track_reason(n, settings)), numbers)
        return GateVerdict("wait", (idle,), numbers)

    alpha = settings.alpha
    t_stat, p_value, lags = numbers["t_stat"], numbers["p_value"], int(numbers["lags"])
    significant = p_value < alpha
    ahead = (
        numbers["mean_difference"] > 0
        and numbers["candidate_log_return"] > numbers["production_log_return"]
    )
    dsr = numbers["dsr"]
    deflated_enough = math.isfinite(dsr) and dsr >= settings.min_dsr
    reasons = [
        f"the models differ on {active} of {n} candles (min_active {settings.min_active})",
        f"paired t {t_stat:.2f} (p {p_value:.3g}, {lags} HAC lags) "
        + ("beats" if significant else "does not beat")
        + f" alpha {alpha:g}",
        f"mean difference {numbers['mean_difference']:+.3g} log return per candle; total "
        f"{numbers['candidate_log_return']:.4g} (candidate) vs "
        f"{numbers['production_log_return']:.4g} (production): candidate "
        + ("ahead" if ahead else "not ahead"),
        _dsr_reason(numbers, settings.min_dsr, deflated_enough),
    ]
    if significant and ahead and deflated_enough:
        reasons.append("every condition holds: promote the candidate")
        return GateVerdict("promote", tuple(reasons), numbers)
    worse_p = numbers["worse_p_value"]
    if worse_p < alpha:
        reasons.append(
            f"production is significantly better: paired t {t_stat:.2f} (p {worse_p:.3g} "
            f"that production earns more) beats alpha {alpha:g}; refuse the candidate"
        )
        return GateVerdict("refuse", tuple(reasons), numbers)
    if n >= settings.max_track:
        reasons.append(_max_track_reason(n, settings))
        return GateVerdict("refuse", tuple(reasons), numbers)
    reasons.append(f"{n} of max_track {settings.max_track} candles: keep collecting")
    return GateVerdict("wait", tuple(reasons), numbers)


def _gate_numbers(
    candidate: np.ndarray, production: np.ndarray, n_trials: int, trials_variance: float
) -> dict[str, float]:
    """Return every number the verdict rests on (NaN where fewer than 2 candles)."""
    n = candidate.size
    numbers = {
        "n": float(n),
        "active": float(np.count_nonzero(candidate != production)),
        "mean_difference": math.nan,
        "t_stat": math.nan,
        "p_value": math.nan,
        "worse_p_value": math.nan,
        "lags": math.nan,
        "candidate_log_return": float(np.sum(candidate)),
        "production_log_return": float(np.sum(production)),
        "candidate_sharpe": math.nan,
        "production_sharpe": math.nan,
        "sharpe_benchmark": expected_maximum_sharpe(n_trials, trials_variance),
        "dsr": math.nan,
        "n_trials": float(n_trials),
    }
    if n < 2:
        return numbers
    test = paired_test(candidate, production)
    numbers.update(
        mean_difference=test.mean_difference,
        t_stat=test.t_stat,
        p_value=test.p_value,
        worse_p_value=_student_t_sf(-test.t_stat, n - 1),
        lags=float(test.lags),
    )
    mine = sharpe_statistics(candidate)
    numbers["candidate_sharpe"] = mine.sharpe
    numbers["production_sharpe"] = sharpe_statistics(production).sharpe
    if math.isfinite(mine.sharpe):
        try:
            numbers["dsr"] = deflated_sharpe_ratio(
                mine.sharpe, n, n_trials, trials_variance, mine.skewness, mine.kurtosis
            )
        except UserInputError:  # moments with no valid Sharpe variance: DSR undefined
            numbers["dsr"] = math.nan
    return numbers


def _dsr_reason(numbers: Mapping[str, float], min_dsr: float, deflated_enough: bool) -> str:
    dsr, trials = numbers["dsr"], int(numbers["n_trials"])
    if not math.isfinite(numbers["candidate_sharpe"]):
        return (
            f"the candidate never varies: no Sharpe ratio, so no DSR to reach min_dsr {min_dsr:g}"
        )
    head = (
        f"candidate Sharpe {numbers['candidate_sharpe']:.3g} per candle vs "
        f"{numbers['sharpe_benchmark']:.3g} expected from the best of {trials} trials by luck"
    )
    if not math.isfinite(dsr):
        return f"{head}: DSR undefined for these moments, below min_dsr {min_dsr:g}"
    verb = "reaches" if deflated_enough else "falls short of"
    return f"{head}: DSR {dsr:.3f} {verb} min_dsr {min_dsr:g}"


def _max_track_reason(n: int, settings: GateSettings) -> str:
    return (
        f"{n} candles reach max_track {settings.max_track} without the candidate passing: "
        "refuse the candidate"
    )


def _paired_returns(candidate: np.ndarray, production: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return both series as (n,) float64 after checking shape, length and finiteness."""
    first = _returns("candidate", candidate)
    second = _returns("production", production)
    if first.size != second.size:
        raise UserInputError(
            f"candidate has {first.size} candles but production has {second.size}; pass both "
            "models' returns over the same candles"
        )
    return first, second


def _returns(name: str, values: Iterable[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise UserInputError(
            f"{name} must be a 1-D series of per-candle log returns; got shape {array.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise UserInputError(
            f"{name} holds {bad.size} non-finite value(s), the first ({array[bad[0]]}) at index "
            f"{bad[0]}; drop or fill those candles in both series"
        )
    return array


def _student_t_sf(t: float, df: int) -> float:
    """Return P(T > t) for Student's t with ``df`` degrees of freedom (as scipy's ``t.sf``)."""
    if math.isnan(t):
        return math.nan
    t_squared = t * t
    if math.isinf(t_squared):
        return 0.0 if t > 0 else 1.0
    # P(|T| > |t|) = I_x(df/2, 1/2) with x = df / (df + t²); 1 - x computed without cancelling.
    two_tailed = _regularized_beta(df / (df + t_squared), t_squared / (df + t_squared), df / 2, 0.5)
    return 0.5 * two_tailed if t >= 0 else 1.0 - 0.5 * two_tailed


def _regularized_beta(x: float, x_complement: float, a: float, b: float) -> float:
    """Return I_x(a, b), the regularized incomplete beta function.

    ``x_complement`` is ``1 - x`` computed without cancelling, so both tails stay accurate.
    """
    if x <= 0.0:
        return 0.0
    if x_complement <= 0.0:
        return 1.0
    log_front = (
        math.lgamma(a + b)
        - math.lgamma(a)
        - math.lgamma(b)
        + a * math.log(x)
        + b * math.log(x_complement)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(x_complement, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """Evaluate the incomplete beta continued fraction by the modified Lentz method."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 100_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            step = c * d
            result *= step
        if abs(step - 1.0) < 4.0 * _EPS:
            return result
    return result  # pragma: no cover - converges in O(√max(a, b)) terms


def expected_profile(returns: np.ndarray) -> tuple[float, float]:
    """Return the per-candle mean and standard deviation a :class:`CusumMonitor` expects.

    Parameters
    ----------
    returns
        (n,) float64 per-candle after-cost log returns production showed when it was promoted
        (n >= 2, finite).

    Returns
    -------
    tuple of float
        ``(mean, std)`` in log return per candle; ``std`` (``ddof=1``) is at least
        :data:`MIN_STD`, so a flat record still gives a usable monitor.
    """
    values = _returns("returns", returns)
    if values.size < 2:
        raise UserInputError(f"an expected profile needs at least 2 candles; got {values.size}")
    return float(np.mean(values)), max(float(np.std(values, ddof=1)), MIN_STD)


def cusum_average_run_length(k: float = 0.5, h: float = 5.0, shift: float = 0.0) -> float:
    """Return Siegmund's approximate average run length (candles) of a one-sided CUSUM.

    ``ARL ≈ (exp(-2Δb) + 2Δb - 1) / (2Δ²)`` with ``Δ = shift - k`` and ``b = h + 1.166``
    (``b²`` when ``Δ = 0``), for independent unit-variance standardized returns.

    Parameters
    ----------
    k, h
        Drift allowance and threshold, in standard deviations.
    shift
        Drop of the true mean below the expected one, in standard deviations; 0 gives the
        in-control run length between false alarms.
    """
    delta, b = shift - k, h + 1.166
    if delta == 0.0:
        return b * b
    return (math.exp(-2.0 * delta * b) + 2.0 * delta * b - 1.0) / (2.0 * delta * delta)


MIN_ALLOWANCE = 0.05
"""The smallest drift allowance :func:`lost_edge_monitor` uses (standard deviations)."""


def lost_edge_monitor(
    expected_mean: float, expected_std: float, *, false_alarm_run_length: float, unit: str
) -> CusumMonitor | None:
    """Return the CUSUM that asks "has the expected edge gone?", or None when none is expected.

    The likelihood-ratio CUSUM between the mean production showed (``expected_mean``) and no
    edge at all (mean 0) has the drift allowance ``k`` of half the edge in standard deviations
    (floored at :data:`MIN_ALLOWANCE`); the threshold ``h`` is the smallest whose in-control
    average run length (:func:`cusum_average_run_length`) reaches ``false_alarm_run_length``.
    A production that earns less than expected but clearly more than nothing does not alarm;
    one whose edge is gone does, after about ``(h + 1.166) / k`` observations.

    Parameters
    ----------
    expected_mean, expected_std
        The expected mean and standard deviation of one observation (e.g. a block's summed
        log return); nothing is watched when the mean is not positive.
    false_alarm_run_length
        Observations between false alarms, on average, when nothing has changed (> 1).
    unit
        What one observation is, for the alarm's reason (e.g. "block of 24 bars").
    """
    if not (math.isfinite(false_alarm_run_length) and false_alarm_run_length > 1):
        raise UserInputError(
            f"false_alarm_run_length must be a finite number above 1; got {false_alarm_run_length}"
        )
    if not (math.isfinite(expected_mean) and expected_mean > 0):
        return None
    k = max(expected_mean / (2.0 * expected_std), MIN_ALLOWANCE)
    low, high = 0.0, 1.0
    while cusum_average_run_length(k, high) < false_alarm_run_length:
        low, high = high, 2.0 * high
    for _ in range(60):
        middle = (low + high) / 2
        if cusum_average_run_length(k, middle) < false_alarm_run_length:
            low = middle
        else:
            high = middle
    return CusumMonitor(expected_mean, expected_std, k=k, h=high, unit=unit)


_CUSUM_FIELDS = (
    "expected_mean",
    "expected_std",
    "k",
    "h",
    "statistic",
    "n",
    "alarmed",
    "realised_sum",
    "run_length",
    "run_sum",
    "unit",
)


@dataclass
class CusumMonitor:
    """A lower-side CUSUM alarm on production's realised per-candle log returns.

    ``S_t = max(0, S_{t-1} + (expected_mean - r_t) / expected_std - k)``; the alarm sounds when
    ``S_t > h`` and latches: from then on the monitor ignores new returns and keeps the state
    of the alarm (make a new monitor after a rollback). With the defaults ``k = 0.5``, ``h = 5``
    a false alarm comes about every 940 candles of independent in-control returns, and a drop
    of one standard deviation is caught in about 10 (:func:`cusum_average_run_length`).

    Attributes
    ----------
    expected_mean, expected_std
        Per-candle log-return mean and standard deviation (> 0) production showed when it was
        promoted (:func:`expected_profile`).
    k, h
        Drift allowance (>= 0) and threshold (> 0), in standard deviations.
    statistic, n, alarmed
        The CUSUM, candles seen, and whether the alarm has sounded.
    realised_sum
        Sum of the realised log returns seen.
    run_length, run_sum
        Candles, and their summed log return, since the statistic last left zero: where the
        drift most likely began.
    """

    expected_mean: float
    expected_std: float
    k: float = 0.5
    h: float = 5.0
    statistic: float = 0.0
    n: int = 0
    alarmed: bool = False
    realised_sum: float = 0.0
    run_length: int = 0
    run_sum: float = 0.0
    unit: str = "candle"

    def __post_init__(self) -> None:
        if not math.isfinite(self.expected_mean):
            raise UserInputError(f"expected_mean must be finite; got {self.expected_mean}")
        if not (math.isfinite(self.expected_std) and self.expected_std > 0):
            raise UserInputError(
                f"expected_std must be a finite per-candle standard deviation > 0; got "
                f"{self.expected_std} (use expected_profile(returns), which floors it)"
            )
        if not (math.isfinite(self.k) and self.k >= 0):
            raise UserInputError(
                f"k is a drift allowance in standard deviations >= 0; got {self.k}"
            )
        if not (math.isfinite(self.h) and self.h > 0):
            raise UserInputError(f"h is a threshold in standard deviations > 0; got {self.h}")
        if not math.isfinite(self.statistic) or self.statistic < 0 or self.n < 0:
            raise UserInputError(
                f"statistic must be finite and >= 0 and n >= 0; got {self.statistic}, {self.n}"
            )

    def update(self, realised: float) -> bool:
        """Add one candle's realised log return; return whether the alarm has sounded."""
        if self.alarmed:
            return True
        realised = float(realised)
        if not math.isfinite(realised):
            raise UserInputError(
                f"realised log return must be finite; got {realised} at candle {self.n}"
            )
        self.n += 1
        self.realised_sum += realised
        statistic = self.statistic + (self.expected_mean - realised) / self.expected_std - self.k
        if statistic > 0.0:
            if self.statistic == 0.0:
                self.run_length, self.run_sum = 0, 0.0
            self.run_length += 1
            self.run_sum += realised
            self.statistic = statistic
        else:
            self.statistic, self.run_length, self.run_sum = 0.0, 0, 0.0
        self.alarmed = self.statistic > self.h
        return self.alarmed

    def update_many(self, values: Iterable[float] | np.ndarray) -> bool:
        """Add (m,) realised log returns in order; return whether the alarm has sounded."""
        for value in _returns("values", np.asarray(values, dtype=np.float64).reshape(-1)):
            if self.update(float(value)):
                break
        return self.alarmed

    def to_dict(self) -> dict[str, Any]:
        """Return the whole state as plain JSON-ready values."""
        return {name: getattr(self, name) for name in _CUSUM_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CusumMonitor:
        """Rebuild a monitor saved by :meth:`to_dict`."""
        unknown = sorted(set(data) - set(_CUSUM_FIELDS))
        if unknown:
            raise UserInputError(
                f"unknown CUSUM field(s) {unknown}; expected some of {list(_CUSUM_FIELDS)}"
            )
        missing = [name for name in ("expected_mean", "expected_std") if name not in data]
        if missing:
            raise UserInputError(f"a saved CUSUM needs {missing}; got {sorted(data)}")
        values: dict[str, Any] = dict(data)
        for name in ("n", "run_length"):
            if name in values:
                values[name] = int(values[name])
        if "alarmed" in values:
            values["alarmed"] = bool(values["alarmed"])
        return cls(**values)

    def reason(self) -> str:
        """Say where the CUSUM stands, with the realised and expected means per ``unit``."""
        unit = self.unit
        comparison = ">" if self.statistic > self.h else "<="
        head = f"CUSUM {self.statistic:.1f} {comparison} {self.h:.1f} after {self.n} {unit}s"
        if self.n == 0:
            return f"{head}: no realised returns yet (expected {self.expected_mean:.3g} per {unit})"
        text = (
            f"{head}: realised mean {self.realised_sum / self.n:.3g} vs expected "
            f"{self.expected_mean:.3g} per {unit}"
        )
        if self.run_length:
            text += (
                f" ({self.run_sum / self.run_length:.3g} over the last {self.run_length} "
                f"{unit}s, since the statistic left zero)"
            )
        return text
