"""Statistics that keep a backtest honest: PSR, DSR, minimum track record, PBO, trial ledger.

Sharpe ratios here are *per period* (per candle, per day...: mean over standard deviation of
the period returns, not annualized); kurtosis is *raw* (3 for a normal distribution).

References
----------
Bailey, D. H. and López de Prado, M. (2012). The Sharpe ratio efficient frontier. Journal of
Risk 15(2). (PSR, MinTRL)
Bailey, D. H. and López de Prado, M. (2014). The deflated Sharpe ratio: correcting for
selection bias, backtest overfitting and non-normality. Journal of Portfolio Management 40(5).
Bailey, D. H., Borwein, J., López de Prado, M. and Zhu, Q. J. (2017). The probability of
backtest overfitting. Journal of Computational Finance 20(4). (CSCV, PBO)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from tradebrain.exceptions import StoreError, UserInputError

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True)
class SharpeStatistics:
    """Per-period Sharpe ratio of a return series with the moments PSR needs."""

    sharpe: float
    n_observations: int
    skewness: float
    kurtosis: float


def sharpe_statistics(returns: np.ndarray) -> SharpeStatistics:
    """Return the per-period Sharpe ratio, length, skewness and raw kurtosis of ``returns``.

    ``returns`` is (T,) float64 period returns (NaN rows are dropped). Moments are the sample
    (biased) moments used by Bailey and López de Prado; a flat series has Sharpe NaN.
    """
    values = np.asarray(returns, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size < 2:
        return SharpeStatistics(math.nan, int(values.size), math.nan, math.nan)
    std = float(np.std(values, ddof=1))
    if std == 0.0:
        return SharpeStatistics(math.nan, int(values.size), math.nan, math.nan)
    skewness, kurtosis = _skewness_and_kurtosis(values)
    return SharpeStatistics(
        sharpe=float(np.mean(values)) / std,
        n_observations=int(values.size),
        skewness=skewness,
        kurtosis=kurtosis,
    )


def _skewness_and_kurtosis(values: np.ndarray) -> tuple[float, float]:
    """Return the biased sample skewness and raw kurtosis of (T,) ``values``.

    The same moments as ``scipy.stats.skew`` and ``scipy.stats.kurtosis(fisher=False)``
    (NaN when the variance is lost to rounding), without importing scipy (about 1 s).
    """
    mean = float(np.mean(values))
    deviations = values - mean
    squares = deviations * deviations
    m2 = float(np.mean(squares))
    m3 = float(np.mean(squares * deviations))
    m4 = float(np.mean(squares * squares))
    if m2 <= (np.finfo(np.float64).eps * mean) ** 2:
        return math.nan, math.nan
    return m3 / m2**1.5, m4 / m2**2


def _normal_cdf(z: float) -> float:
    """Return Φ(z), the standard normal distribution function, as scipy's ``ndtr``."""
    x = z * math.sqrt(0.5)
    if abs(x) < math.sqrt(0.5):
        return 0.5 + 0.5 * math.erf(x)
    tail = 0.5 * math.erfc(abs(x))
    return 1.0 - tail if x > 0 else tail


def _normal_quantile(p: float) -> float:
    """Return Φ⁻¹(p) for p in (0, 1) (Wichura's AS241, accurate to about 1e-16)."""
    return NormalDist().inv_cdf(p)


def probabilistic_sharpe_ratio(
    sharpe: float,
    n_observations: float,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    benchmark: float = 0.0,
) -> float:
    """Return PSR(SR*): the probability that the true Sharpe ratio exceeds ``benchmark``.

    ``PSR = Φ((SR - SR*) √(T - 1) / √(1 - γ3 SR + (γ4 - 1) / 4 SR²))`` with per-period Sharpe
    ratios, ``T = n_observations`` (a count; fractional values such as a MinTRL are accepted),
    skewness ``γ3`` and raw kurtosis ``γ4``.
    """
    if n_observations < 2:
        raise UserInputError(f"PSR needs at least 2 observations; got {n_observations}")
    spread = _sharpe_variance_factor(sharpe, skewness, kurtosis)
    z = (sharpe - benchmark) * math.sqrt(n_observations - 1) / math.sqrt(spread)
    return _normal_cdf(z)


def minimum_track_record_length(
    sharpe: float,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    benchmark: float = 0.0,
    confidence: float = 0.95,
) -> float:
    """Return MinTRL: the observations needed for PSR(``benchmark``) to reach ``confidence``.

    ``MinTRL = 1 + (1 - γ3 SR + (γ4 - 1) / 4 SR²) (z_α / (SR - SR*))²``, in periods; ``inf``
    when the Sharpe ratio does not exceed the benchmark.
    """
    if not 0.0 < confidence < 1.0:
        raise UserInputError(f"confidence must be in (0, 1); got {confidence}")
    if sharpe <= benchmark:
        return math.inf
    spread = _sharpe_variance_factor(sharpe, skewness, kurtosis)
    z = _normal_quantile(confidence)
    return 1.0 + spread * (z / (sharpe - benchmark)) ** 2


def expected_maximum_sharpe(n_trials: int, trials_variance: float) -> float:
    """Return E[max SR] of ``n_trials`` independent zero-skill trials (per-period Sharpe).

    ``√V [(1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e))]`` with ``V`` the variance of the trials'
    Sharpe ratios and ``γ`` the Euler-Mascheroni constant; 0 for a single trial.
    """
    if n_trials < 1:
        raise UserInputError(f"n_trials must be >= 1; got {n_trials}")
    if trials_variance < 0:
        raise UserInputError(f"trials_variance must be >= 0; got {trials_variance}")
    if n_trials == 1:
        return 0.0
    quantiles = (1 - EULER_GAMMA) * _normal_quantile(1 - 1 / n_trials) + EULER_GAMMA * (
        _normal_quantile(1 - 1 / (n_trials * math.e))
    )
    return float(math.sqrt(trials_variance) * quantiles)


def deflated_sharpe_ratio(
    sharpe: float,
    n_observations: int,
    n_trials: int,
    trials_variance: float,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Return DSR: PSR against the Sharpe ratio the best of ``n_trials`` would reach by luck.

    Parameters
    ----------
    sharpe
        Per-period Sharpe ratio of the selected strategy.
    n_observations
        Its number of return observations ``T``.
    n_trials
        Configurations evaluated to select it (:attr:`TrialLedger.n_trials`).
    trials_variance
        Variance of the per-period Sharpe ratios across those trials.
    skewness, kurtosis
        Skewness and raw kurtosis of the selected strategy's returns.
    """
    benchmark = expected_maximum_sharpe(n_trials, trials_variance)
    return probabilistic_sharpe_ratio(sharpe, n_observations, skewness, kurtosis, benchmark)


@dataclass(frozen=True)
class BacktestOverfitting:
    """The result of CSCV: PBO and the logit of each combination's out-of-sample rank."""

    probability: float
    logits: np.ndarray
    n_partitions: int


def probability_of_backtest_overfitting(
    trial_returns: np.ndarray, n_partitions: int = 16
) -> BacktestOverfitting:
    """Estimate PBO by combinatorially symmetric cross-validation (CSCV).

    The T rows are cut into ``n_partitions`` (S, even) contiguous blocks. For each of the
    C(S, S/2) ways to pick half of them as in-sample, the trial with the best in-sample Sharpe
    ratio is ranked among all N trials out of sample (the other half): ``ω = rank / (N + 1)``
    and ``λ = log(ω / (1 - ω))``. PBO is the share of combinations with ``λ <= 0``: how often
    the in-sample winner is at or below the out-of-sample median.

    Parameters
    ----------
    trial_returns
        (T, N) float64 period returns of N trials (configurations) over the same T periods.
    n_partitions
        Even number of blocks ``S >= 2``; C(16, 8) = 12,870 combinations by default.
    """
    returns = np.asarray(trial_returns, dtype=np.float64)
    if returns.ndim != 2 or returns.shape[1] < 2:
        raise UserInputError(f"trial_returns must be (T, N) with N >= 2; got {returns.shape}")
    if not np.isfinite(returns).all():
        raise UserInputError("trial_returns must be finite")
    if n_partitions < 2 or n_partitions % 2:
        raise UserInputError(f"n_partitions must be even and >= 2; got {n_partitions}")
    if returns.shape[0] < 2 * n_partitions:
        raise UserInputError(
            f"{returns.shape[0]} periods are too few for {n_partitions} partitions of >= 2 rows"
        )
    blocks = np.array_split(returns, n_partitions)
    count = np.array([len(b) for b in blocks], dtype=np.float64)[:, None]  # (S, 1)
    sums = np.stack([b.sum(axis=0) for b in blocks])  # (S, N)
    squares = np.stack([(b * b).sum(axis=0) for b in blocks])
    combos = np.array(
        list(itertools.combinations(range(n_partitions), n_partitions // 2)), dtype=np.int64
    )
    in_sample = np.zeros((len(combos), n_partitions))
    np.put_along_axis(in_sample, combos, 1.0, axis=1)
    is_sharpe = _pooled_sharpe(in_sample, count, sums, squares)
    oos_sharpe = _pooled_sharpe(1.0 - in_sample, count, sums, squares)
    best = np.argmax(is_sharpe, axis=1)
    from scipy.stats import rankdata  # ~1 s to import: only when PBO is asked for

    ranks = rankdata(oos_sharpe, axis=1)[np.arange(len(combos)), best]
    omega = ranks / (returns.shape[1] + 1)
    logits = np.log(omega / (1.0 - omega))
    return BacktestOverfitting(float(np.mean(logits <= 0.0)), logits, n_partitions)


def _pooled_sharpe(
    weights: np.ndarray, count: np.ndarray, sums: np.ndarray, squares: np.ndarray
) -> np.ndarray:
    """Return the (C, N) Sharpe ratios of the rows in the blocks selected by (C, S) weights."""
    n = weights @ count
    mean = (weights @ sums) / n
    variance = ((weights @ squares) - n * mean * mean) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = mean / np.sqrt(np.maximum(variance, 0.0))
    return np.asarray(np.nan_to_num(sharpe, nan=0.0, posinf=0.0, neginf=0.0))


def _sharpe_variance_factor(sharpe: float, skewness: float, kurtosis: float) -> float:
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0:
        raise UserInputError(
            f"skewness {skewness} and kurtosis {kurtosis} give a non-positive Sharpe variance "
            "for this Sharpe ratio; pass raw kurtosis (3 for a normal distribution)"
        )
    return spread


LEDGER_FILE = "trials.jsonl"
"""The trial ledger's file under ``TRADEBRAIN_HOME``: one ledger for every command and the
service, so the deflated Sharpe of anything chosen counts every trial made to choose it."""


def home_ledger(home: Path | str) -> TrialLedger:
    """Return the installation's trial ledger (``HOME/trials.jsonl``)."""
    return TrialLedger(Path(home) / LEDGER_FILE)


class TrialLedger:
    """An append-only JSON-lines file of every configuration evaluated, for DSR's trial count.

    Each line holds ``config_hash`` (the first 16 hex digits of the SHA-256 of the config as
    sorted JSON), ``config``, ``metric`` (a per-period Sharpe ratio, by convention), ``name``
    and ``recorded_at`` (UTC ISO time). A line is appended with one ``write`` and fsynced.
    Re-evaluating a configuration appends a line but is not a new trial: :attr:`n_trials`
    counts distinct hashes, and :meth:`trial_metrics` keeps each hash's latest metric.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def record(self, config: Mapping[str, Any], metric: float, name: str = "") -> str:
        """Append one evaluated configuration and its metric; return the config hash."""
        digest = config_hash(config)
        line = json.dumps(
            {
                "config_hash": digest,
                "config": config,
                "metric": float(metric),
                "name": name,
                "recorded_at": datetime.now(UTC).isoformat(),
            },
            sort_keys=True,
            default=str,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0 and not self._ends_with_newline():
            line = "\n" + line  # a crash tore the last line; start on a fresh one
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, (line + "\n").encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return digest

    def entries(self) -> list[dict[str, Any]]:
        """Return every complete recorded line, oldest first."""
        return self._read()[0]

    def trial_metrics(self) -> np.ndarray:
        """Return the latest metric of each distinct configuration, (k,) float64."""
        latest = {entry["config_hash"]: float(entry["metric"]) for entry in self.entries()}
        return np.array(list(latest.values()), dtype=np.float64)

    @property
    def n_trials(self) -> int:
        """Return the number of trials: distinct configurations plus torn lines.

        A line that cannot be parsed (an append interrupted by a crash) still stands for a
        configuration that was evaluated, so it counts: DSR errs towards more trials.
        """
        entries, torn = self._read()
        return len({entry["config_hash"] for entry in entries}) + torn

    def _read(self) -> tuple[list[dict[str, Any]], int]:
        if not self.path.exists():
            return [], 0
        entries: list[dict[str, Any]] = []
        torn = 0
        for line in self.path.read_text(encoding="utf-8", errors="replace").split("\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                torn += 1
                continue
            if not isinstance(entry, dict) or "config_hash" not in entry or "metric" not in entry:
                raise StoreError(f"{self.path} holds a line that is not a ledger entry: {line!r}")
            entries.append(entry)
        return entries, torn

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"


def config_hash(config: Mapping[str, Any]) -> str:
    """Return the first 16 hex digits of the SHA-256 of ``config`` as sorted, compact JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
