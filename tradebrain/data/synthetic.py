"""The synthetic market: tradebrain's embedded default data, with a known, planted edge.

The generator makes candles with the stylized facts of crypto markets, and optionally the
order flow around them (trades, order-book snapshots, funding rates):

* **Fat tails.** Innovations are Student-t with ``tail_dof`` degrees of freedom, scaled to
  unit variance.
* **Volatility clustering.** A GARCH(1,1) variance ``h`` (long-run mean 1) multiplies the base
  volatility: ``h[t+1] = (1 - a - b) + a * h[t] * eps[t]**2 + b * h[t]``.
* **Regimes.** A Markov chain over ``trend_up``, ``trend_down``, ``range`` and ``high_vol``
  with geometric durations; each regime has a small drift (a few hundredths of a base sigma,
  too small to make returns autocorrelated) and a volatility scale.
* **Flash crashes.** About ``flash_crashes_per_year`` times a year the price drops 8-12 % over
  1-3 candles, with volume x50 and spread x4 on those candles, then recovers 30-60 % of the
  drop over the next 4-12 candles; volatility doubles after the crash and decays.
* **Volume** is lognormal around a level that rises with ``|r| / sigma_base``.

The planted edge, the expected next return an oracle who knows the formula can predict, lives
in :mod:`tradebrain.data.planted_edge`; it is the ``oracle_expected_return`` column of
:attr:`SyntheticMarket.regimes`, and the oracle's report is :attr:`SyntheticMarket.oracle`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradebrain.core.atomic_write import write_parquet_atomic, write_text_atomic
from tradebrain.data._synthetic_orderflow import make_book, make_funding, make_trades
from tradebrain.data.planted_edge import EDGE_KINDS, EdgeKind, PlantedEdge, oracle_report
from tradebrain.data.schemas import TIMESTAMP, Kind, conform
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.exceptions import ConfigError, UserInputError

__all__ = ["REGIMES", "SyntheticConfig", "SyntheticMarket", "generate_market", "write_market"]

#: Market regimes, in the order of their integer codes.
REGIMES = ("trend_up", "trend_down", "range", "high_vol")
_DRIFT_SIGMAS = (0.03, -0.03, 0.0, -0.01)  # drift per candle, in base sigmas
_VOL_SCALE = (0.9, 1.1, 0.7, 1.8)
_SPREAD_SCALE = (1.0, 1.2, 0.8, 2.0)
_DURATION_SCALE = (1.0, 1.0, 1.2, 0.5)  # x mean_regime_bars
_TRANSITIONS = (  # rows: from; columns: to (diagonal unused: a regime ends when it ends)
    (0.0, 0.2, 0.5, 0.3),
    (0.2, 0.0, 0.4, 0.4),
    (0.4, 0.4, 0.0, 0.2),
    (0.2, 0.3, 0.5, 0.0),
)
_GARCH_ALPHA = 0.08
_GARCH_BETA = 0.90
_SECONDS_PER_YEAR = 365 * 86_400
_CRASH_VOLUME = 50.0
_CRASH_SPREAD = 4.0
_CRASH_VOL_BOOST = 4.0  # variance multiplier after a crash


@dataclass(frozen=True)
class SyntheticConfig:
    """Settings of one synthetic market; validated on construction.

    Parameters
    ----------
    bars
        Number of candles, >= 2.
    timeframe
        Candle length, e.g. ``"1m"``, ``"1h"``, ``"1d"``.
    seed
        Seed of every random draw; the same config gives the same market, byte for byte.
    signal
        ``rho`` in ``[0, 1)``: strength of the planted predictable component (0 = none).
    start
        Open time of the first candle (UTC, on the timeframe grid).
    start_price
        Open price of the first candle (quote currency).
    orderflow
        Also make trades, order-book snapshots and funding rates.
    annual_volatility
        Base volatility of log returns per year; the base sigma per candle is
        ``annual_volatility * sqrt(timeframe / 365 days)``.
    tail_dof
        Degrees of freedom of the Student-t innovations (> 2; lower is fatter).
    mean_regime_bars
        Mean length of a regime, in candles.
    flash_crashes_per_year
        Expected number of flash crashes per 365 days of candles.
    volume_per_hour
        Typical traded volume per hour (base currency) in a quiet market.
    base_spread
        Typical relative bid-ask spread (``2e-4`` = 2 basis points).
    signal_lookback
        ``k``: number of past log returns the ``reversal`` edge reverses.
    edge
        Kind of planted edge: ``"reversal"`` or ``"shock"`` (one candle), ``"trend"`` or
        ``"revert"`` (persistent; see :mod:`tradebrain.data.planted_edge`).
    half_life
        Candles over which a ``trend`` or ``revert`` edge forgets half of its past.
    trades_per_candle
        Mean number of trades per candle at typical volume (orderflow only).
    book_levels
        Order-book levels per side in each snapshot (orderflow only).
    """

    bars: int = 5000
    timeframe: str = "1h"
    seed: int = 7
    signal: float = 0.0
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    start_price: float = 30_000.0
    orderflow: bool = False
    annual_volatility: float = 0.6
    tail_dof: float = 5.0
    mean_regime_bars: float = 200.0
    flash_crashes_per_year: float = 4.0
    volume_per_hour: float = 1_000.0
    base_spread: float = 2e-4
    signal_lookback: int = 1
    trades_per_candle: float = 20.0
    book_levels: int = 10
    edge: EdgeKind = "reversal"
    half_life: int = 48

    def __post_init__(self) -> None:
        _check_int("bars", self.bars, 2)
        _check_int("seed", self.seed, 0)
        _check_int("signal_lookback", self.signal_lookback, 1)
        _check_int("book_levels", self.book_levels, 1)
        _check_int("half_life", self.half_life, 1)
        if self.edge not in EDGE_KINDS:
            raise ConfigError(f"edge must be one of {', '.join(EDGE_KINDS)}; got {self.edge!r}")
        try:
            timeframe_seconds(self.timeframe)
        except UserInputError as error:
            raise ConfigError(f"timeframe: {error}") from None
        _check_range("signal", self.signal, 0.0, 1.0, "in [0, 1)", upper_open=True)
        _check_range("start_price", self.start_price, 0.0, math.inf, "> 0", lower_open=True)
        _check_range("annual_volatility", self.annual_volatility, 0.0, 10.0, "in (0, 10]", True)
        _check_range("tail_dof", self.tail_dof, 2.0, math.inf, "> 2", lower_open=True)
        _check_range("mean_regime_bars", self.mean_regime_bars, 1.0, math.inf, ">= 1")
        _check_range("flash_crashes_per_year", self.flash_crashes_per_year, 0.0, 1e4, "in [0, 1e4]")
        _check_range("volume_per_hour", self.volume_per_hour, 0.0, math.inf, "> 0", True)
        _check_range("base_spread", self.base_spread, 0.0, 0.01, "in (0, 0.01]", True)
        _check_range("trades_per_candle", self.trades_per_candle, 1.0, 1e4, "in [1, 1e4]")
        if self.start.tzinfo is None or self.start.utcoffset() != UTC.utcoffset(None):
            raise ConfigError(
                f"start {self.start.isoformat()} must be timezone-aware UTC, "
                "e.g. datetime(2024, 1, 1, tzinfo=UTC)"
            )
        if (
            int(self.start.timestamp()) % timeframe_seconds(self.timeframe)
            or self.start.microsecond
        ):
            raise ConfigError(
                f"start {self.start.isoformat()} is not on the {self.timeframe} grid; "
                "pick a start that is a whole number of candles after 1970-01-01 00:00 UTC"
            )

    @property
    def sigma_base(self) -> float:
        """Base volatility of one candle's log return (before regime and GARCH scaling)."""
        return self.annual_volatility * math.sqrt(
            timeframe_seconds(self.timeframe) / _SECONDS_PER_YEAR
        )


@dataclass(frozen=True)
class SyntheticMarket:
    """One generated market.

    Attributes
    ----------
    candles
        ``(bars, 6)`` frame with exactly the candle schema.
    regimes
        ``(bars, 7)`` frame: ``timestamp``, ``regime`` (one of :data:`REGIMES`), ``spread``
        (relative bid-ask spread), ``flash_crash`` (bool), ``volatility`` (the true sigma of
        the candle's log return), ``garch_variance`` (``h``, long-run mean 1) and
        ``oracle_expected_return`` (mean of the NEXT candle's log return, known at this close).
    oracle
        What the oracle knows: formula, ``rho``, and its directional accuracy with its count
        and standard error. Written as the ``.oracle.json`` sidecar.
    trades, book, funding
        Order flow in the trades, book and funding schemas; ``None`` unless ``orderflow``.
    """

    config: SyntheticConfig
    candles: pl.DataFrame
    regimes: pl.DataFrame
    oracle: dict[str, Any]
    trades: pl.DataFrame | None = None
    book: pl.DataFrame | None = None
    funding: pl.DataFrame | None = None


def generate_market(config: SyntheticConfig) -> SyntheticMarket:
    """Generate the candles (and, if asked, the order flow) of one synthetic market.

    Each ingredient draws from its own child of ``SeedSequence(seed)``, one value per candle in
    candle order, so the first ``n`` candles of a longer run equal a run of ``n`` candles, and
    switching ``orderflow`` on never changes the candles.
    """
    n = config.bars
    streams = [np.random.Generator(np.random.PCG64(s)) for s in _seed_streams(config.seed, 8)]
    regime = _regime_path(n, config.mean_regime_bars, streams[0])
    crash = _crash_schedule(n, config, streams[1])
    dof = config.tail_dof
    shocks = streams[2].standard_t(dof, n) * math.sqrt((dof - 2.0) / dof)
    path = _simulate_returns(shocks, regime, crash, config)

    close = config.start_price * np.exp(np.cumsum(path["returns"]))
    open_ = np.concatenate(([config.start_price], close[:-1]))
    high, low = _wicks(open_, close, path["returns"], path["sigma"], crash, streams[3])
    volume = _volume(path["returns"] - crash["returns"], crash["flag"], config, streams[4])
    stamps = _timestamps(config, n)

    candles = conform(
        pl.DataFrame(
            {"timestamp": stamps, "open": open_, "high": high, "low": low}
            | {"close": close, "volume": volume}
        ),
        Kind.CANDLES,
    )
    spread = (
        config.base_spread
        * np.asarray(_SPREAD_SCALE)[regime]
        * np.clip(np.sqrt(path["variance"]), 0.5, 3.0)
        * np.where(crash["flag"], _CRASH_SPREAD, 1.0)
    )
    regimes = pl.DataFrame(
        {
            "timestamp": stamps,
            "regime": pl.Series(np.asarray(REGIMES)[regime], dtype=pl.String),
            "spread": spread,
            "flash_crash": crash["flag"],
            "volatility": path["sigma"],
            "garch_variance": path["variance"],
            "oracle_expected_return": path["expected"],
        }
    )
    market = SyntheticMarket(config, candles, regimes, oracle_report(config, candles, regimes))
    if not config.orderflow:
        return market
    return SyntheticMarket(
        config,
        candles,
        regimes,
        market.oracle,
        trades=make_trades(candles, config.timeframe, config.trades_per_candle, streams[5]),
        book=make_book(candles, spread, config.book_levels, streams[6]),
        funding=make_funding(candles, config.timeframe, config.sigma_base, streams[7]),
    )


def write_market(market: SyntheticMarket, out: Path) -> list[Path]:
    """Write the market beside ``out``, each file atomically; return the written paths.

    ``out`` gets the candles (Parquet); ``<stem>.oracle.json`` the oracle report;
    ``<stem>.regimes.parquet`` the regimes; and, with order flow, ``<stem>.trades.parquet``,
    ``<stem>.book.parquet`` and ``<stem>.funding.parquet``. The same market always gives the
    same bytes.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.name.removesuffix(".parquet")
    frames = {
        out: market.candles,
        out.with_name(f"{stem}.regimes.parquet"): market.regimes,
        out.with_name(f"{stem}.trades.parquet"): market.trades,
        out.with_name(f"{stem}.book.parquet"): market.book,
        out.with_name(f"{stem}.funding.parquet"): market.funding,
    }
    written = []
    for path, frame in frames.items():
        if frame is not None:
            write_parquet_atomic(frame, path)
            written.append(path)
    oracle_path = out.with_name(f"{stem}.oracle.json")
    text = json.dumps(market.oracle, indent=2, sort_keys=True) + "\n"
    write_text_atomic(text, oracle_path)
    written.insert(1, oracle_path)
    return written


def _seed_streams(seed: int, count: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(count)


def _regime_path(n: int, mean_bars: float, rng: np.random.Generator) -> np.ndarray:
    """Return ``(n,)`` int8 regime codes from a Markov chain with geometric durations."""
    codes = np.empty(n, dtype=np.int8)
    cumulative = np.cumsum(_TRANSITIONS, axis=1)
    state, filled = REGIMES.index("range"), 0
    while filled < n:
        length = int(rng.geometric(1.0 / max(mean_bars * _DURATION_SCALE[state], 1.0)))
        codes[filled : filled + length] = state
        filled += length
        state = int(np.searchsorted(cumulative[state], rng.random(), side="right"))
    return codes


def _crash_schedule(
    n: int, config: SyntheticConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Return per-candle crash log returns, crash flags and variance boosts, each ``(n,)``."""
    per_bar = config.flash_crashes_per_year * timeframe_seconds(config.timeframe)
    # One row of five uniforms per candle, drawn in candle order: the schedule of the first
    # n candles does not depend on how many candles follow (five arrays of length n drawn one
    # after the other would shift every draw after the first when n changes).
    uniforms = rng.random((n, 5))
    starts = uniforms[:, 0] < per_bar / _SECONDS_PER_YEAR
    depth = 0.08 + 0.04 * uniforms[:, 1]
    crash_bars = 1 + np.searchsorted(np.array([0.7, 0.9]), uniforms[:, 2], side="right")
    recovered = 0.3 + 0.3 * uniforms[:, 3]
    recovery_bars = 4 + np.minimum((uniforms[:, 4] * 9).astype(np.int64), 8)
    returns, flag, boost = np.zeros(n), np.zeros(n, dtype=bool), np.ones(n)
    free_from = 0
    for t in np.flatnonzero(starts).tolist():
        if t < free_from:
            continue
        drop = math.log1p(-depth[t])
        end = t + int(crash_bars[t])
        returns[t:end] += drop / crash_bars[t]
        flag[t:end] = True
        rebound_end = end + int(recovery_bars[t])
        returns[end:rebound_end] -= drop * recovered[t] / recovery_bars[t]
        boost[end : end + 1] = _CRASH_VOL_BOOST
        free_from = rebound_end
    return {"returns": returns, "flag": flag, "boost": boost}


def _simulate_returns(
    shocks: np.ndarray,
    regime: np.ndarray,
    crash: dict[str, np.ndarray],
    config: SyntheticConfig,
) -> dict[str, np.ndarray]:
    """Run the GARCH and planted-signal recursion; return ``(n,)`` arrays.

    Keys: ``returns`` (log), ``sigma`` (the candle's volatility), ``variance`` (GARCH ``h``)
    and ``expected`` (the oracle's expected next return). A plain loop: each step depends on
    the last, and 1M steps take about two seconds.
    """
    base = config.sigma_base
    drift = [d * base for d in _DRIFT_SIGMAS]
    scale = [s * base for s in _VOL_SCALE]
    omega = 1.0 - _GARCH_ALPHA - _GARCH_BETA
    alpha, beta = _GARCH_ALPHA, _GARCH_BETA
    n = shocks.size
    returns, sigmas, variances, expected = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    h, mean_next, sqrt = 1.0, 0.0, math.sqrt
    edge = PlantedEdge(config)
    for t, (eps, state, jump, boost) in enumerate(
        zip(
            shocks.tolist(),
            regime.tolist(),
            crash["returns"].tolist(),
            crash["boost"].tolist(),
            strict=True,
        )
    ):
        h *= boost
        sigma = scale[state] * sqrt(h)
        r = mean_next + drift[state] + sigma * eps + jump
        returns[t], sigmas[t], variances[t] = r, sigma, h
        h = omega + alpha * h * eps * eps + beta * h
        mean_next = edge.update(r)
        expected[t] = mean_next
    return {
        "returns": np.asarray(returns),
        "sigma": np.asarray(sigmas),
        "variance": np.asarray(variances),
        "expected": np.asarray(expected),
    }


def _wicks(
    open_: np.ndarray,
    close: np.ndarray,
    returns: np.ndarray,
    sigma: np.ndarray,
    crash: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(high, low)``: extremes of a Brownian bridge from open to close.

    For a bridge ending at ``b`` with variance ``s**2``, ``(b + sqrt(b**2 - 2 s**2 log U)) / 2``
    is its maximum; the minimum mirrors it. Crash candles get long wicks.
    """
    n = returns.size
    spread = np.maximum(sigma, np.abs(crash["returns"]) * 0.3 * crash["flag"])
    uniforms = 1.0 - rng.random((n, 2))  # in (0, 1]
    reach = np.sqrt(returns[:, None] ** 2 - 2.0 * spread[:, None] ** 2 * np.log(uniforms))
    high = open_ * np.exp((returns + reach[:, 0]) / 2.0)
    low = open_ * np.exp((returns - reach[:, 1]) / 2.0)
    return np.maximum.reduce([high, open_, close]), np.minimum.reduce([low, open_, close])


def _volume(
    returns: np.ndarray, crash_flag: np.ndarray, config: SyntheticConfig, rng: np.random.Generator
) -> np.ndarray:
    """Return ``(n,)`` volume (base currency): lognormal around a level rising with |r|/sigma."""
    typical = config.volume_per_hour * timeframe_seconds(config.timeframe) / 3600.0
    surprise = np.minimum(np.abs(returns) / config.sigma_base, 20.0)
    noise = np.exp(rng.normal(-0.08, 0.4, returns.size))
    crash = np.where(crash_flag, _CRASH_VOLUME, 1.0)
    result: np.ndarray = typical * (0.5 + 0.5 * surprise) * noise * crash
    return result


def _timestamps(config: SyntheticConfig, n: int) -> pl.Series:
    step = timeframe_seconds(config.timeframe) * 1_000_000
    first = int(config.start.timestamp()) * 1_000_000
    micros = first + step * np.arange(n, dtype=np.int64)
    return pl.Series("timestamp", micros, dtype=pl.Int64).cast(TIMESTAMP)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value}")


def _check_range(
    name: str,
    value: object,
    low: float,
    high: float,
    allowed: str,
    lower_open: bool = False,
    upper_open: bool = False,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = (number > low if lower_open else number >= low) and (
            number < high if upper_open else number <= high
        )
    if not ok:
        raise ConfigError(f"{name} must be a finite number {allowed}; got {value}")
