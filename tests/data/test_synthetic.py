"""Tests of the synthetic market: stylized facts, the planted edge, order flow, determinism."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.data.planted_edge import EDGE_KINDS, EdgeKind, oracle_expected_returns
from tradebrain.data.schemas import Kind, conform, schema_for
from tradebrain.data.synthetic import (
    REGIMES,
    SyntheticConfig,
    SyntheticMarket,
    generate_market,
    write_market,
)
from tradebrain.exceptions import UserInputError

LONG_BARS = 20_000


def log_returns(candles: pl.DataFrame) -> np.ndarray:
    """Close-to-close log returns, the first one from the first open."""
    closes = np.concatenate(([candles["open"][0]], candles["close"].to_numpy()))
    return np.diff(np.log(closes))


def autocorrelation(values: np.ndarray, lag: int) -> float:
    centred = values - values.mean()
    return float(np.sum(centred[:-lag] * centred[lag:]) / np.sum(centred**2))


def robust_autocorrelation_z(returns: np.ndarray, lag: int) -> float:
    """Autocorrelation over its heteroskedasticity-consistent standard error.

    Under volatility clustering 1/sqrt(n) understates the standard error of a sample
    autocorrelation; this is the White-style one, sqrt(sum r_t^2 r_{t+l}^2) / sum r_t^2.
    """
    centred = returns - returns.mean()
    products = centred[:-lag] * centred[lag:]
    return float(products.sum() / math.sqrt(np.sum(products**2)))


def crash_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) candle indexes of each run of flash-crash candles."""
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def quiet_market() -> SyntheticMarket:
    return generate_market(SyntheticConfig(bars=LONG_BARS, seed=11))


@pytest.fixture(scope="module")
def signal_market() -> SyntheticMarket:
    return generate_market(SyntheticConfig(bars=LONG_BARS, seed=12, signal=0.3))


@pytest.fixture(scope="module")
def flow_market() -> SyntheticMarket:
    return generate_market(SyntheticConfig(bars=3_000, seed=13, signal=0.3, orderflow=True))


def test_candles_have_the_candle_schema_on_the_grid_without_gaps(
    quiet_market: SyntheticMarket,
) -> None:
    candles = quiet_market.candles
    assert candles.schema == conform(candles, Kind.CANDLES).schema
    assert candles.columns == schema_for(Kind.CANDLES).names
    assert candles.height == LONG_BARS
    assert candles["timestamp"][0] == datetime(2024, 1, 1, tzinfo=UTC)
    steps = candles["timestamp"].diff().drop_nulls().dt.total_seconds()
    assert (steps == 3600).all()
    assert candles.null_count().sum_horizontal().item() == 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bars=st.integers(2, 400),
    timeframe=st.sampled_from(["1m", "5m", "1h", "4h", "1d"]),
    signal=st.floats(0.0, 0.95),
)
def test_ohlc_is_consistent_for_any_seed_size_and_timeframe(
    seed: int, bars: int, timeframe: str, signal: float
) -> None:
    config = SyntheticConfig(bars=bars, seed=seed, timeframe=timeframe, signal=signal)
    candles = generate_market(config).candles
    o, h, low, c, v = (
        candles[name].to_numpy() for name in ("open", "high", "low", "close", "volume")
    )
    assert np.all(np.isfinite(np.stack([o, h, low, c, v])))
    assert np.all(low > 0) and np.all(v > 0)
    assert np.all(h >= np.maximum(o, c)) and np.all(low <= np.minimum(o, c))
    assert o[0] == config.start_price
    assert np.array_equal(o[1:], c[:-1])


def test_returns_have_fat_tails(quiet_market: SyntheticMarket) -> None:
    returns = log_returns(quiet_market.candles)
    centred = returns - returns.mean()
    kurtosis = np.mean(centred**4) / np.mean(centred**2) ** 2
    assert kurtosis > 3


def test_absolute_returns_cluster(quiet_market: SyntheticMarket) -> None:
    size = np.abs(log_returns(quiet_market.candles))
    assert autocorrelation(size, 1) > 0.1
    assert autocorrelation(size, 5) > 0.05


@pytest.mark.parametrize("lag", [1, 2, 3, 4, 5])
def test_returns_without_signal_are_serially_uncorrelated(
    quiet_market: SyntheticMarket, lag: int
) -> None:
    returns = log_returns(quiet_market.candles)
    assert abs(robust_autocorrelation_z(returns, lag)) < 4.0


def test_volatility_scaled_returns_without_crashes_are_uncorrelated_within_naive_errors() -> None:
    market = generate_market(SyntheticConfig(bars=LONG_BARS, seed=21, flash_crashes_per_year=0.0))
    scaled = log_returns(market.candles) / market.regimes["volatility"].to_numpy()
    bound = 5.0 / math.sqrt(scaled.size)
    assert all(abs(autocorrelation(scaled, lag)) < bound for lag in range(1, 6))


def test_volume_rises_with_the_size_of_the_move(quiet_market: SyntheticMarket) -> None:
    size = np.abs(log_returns(quiet_market.candles))
    volume = quiet_market.candles["volume"].to_numpy()
    ranks = np.corrcoef(np.argsort(np.argsort(size)), np.argsort(np.argsort(volume)))[0, 1]
    assert ranks > 0.3


def test_every_regime_occurs_and_high_vol_is_the_wildest(quiet_market: SyntheticMarket) -> None:
    regimes = quiet_market.regimes.with_columns(move=np.abs(log_returns(quiet_market.candles)))
    typical = dict(regimes.group_by("regime").agg(pl.col("move").median()).iter_rows())
    assert set(typical) == set(REGIMES)
    assert typical["high_vol"] > 1.5 * typical["range"]


def test_flash_crashes_drop_ten_percent_with_volume_and_spread_spikes(
    quiet_market: SyntheticMarket,
) -> None:
    candles, regimes = quiet_market.candles, quiet_market.regimes
    runs = crash_runs(regimes["flash_crash"].to_numpy())
    assert len(runs) >= 2
    assert quiet_market.oracle["flash_crashes"] == len(runs)
    returns = log_returns(candles)
    close, volume = candles["close"].to_numpy(), candles["volume"].to_numpy()
    spread = regimes["spread"].to_numpy()
    runs = [(first, end) for first, end in runs if first >= 24 and end + 12 < candles.height]
    drops = np.array([returns[first:end].sum() for first, end in runs])
    volume_jumps = np.array(
        [volume[first] / np.median(volume[first - 24 : first]) for first, _ in runs]
    )
    spread_jumps = np.array([spread[first] / spread[first - 1] for first, _ in runs])
    rebounds = np.array([math.log(close[end + 11] / close[end - 1]) for _, end in runs])
    assert np.all(drops < -0.04) and -0.14 < np.median(drops) < -0.07
    assert 20 < np.median(volume_jumps) < 150
    assert 3.0 < np.median(spread_jumps) < 5.5
    assert np.median(rebounds) > 0


def test_signal_gives_the_oracle_an_edge_of_several_standard_errors(
    signal_market: SyntheticMarket,
) -> None:
    oracle = signal_market.oracle
    assert oracle["rho"] == 0.3
    assert oracle["accuracy"] > 0.5 + 5 * oracle["accuracy_stderr"]
    assert 0.55 < oracle["accuracy"] < 0.63


def test_oracle_accuracy_matches_a_recount_from_the_frames(
    signal_market: SyntheticMarket,
) -> None:
    expected = signal_market.regimes["oracle_expected_return"].to_numpy()[:-1]
    following = log_returns(signal_market.candles)[1:]
    scored = (expected != 0) & (following != 0)
    hits = np.sign(expected[scored]) == np.sign(following[scored])
    assert signal_market.oracle["accuracy_count"] == scored.sum()
    assert signal_market.oracle["accuracy"] == pytest.approx(hits.mean(), abs=1e-12)
    assert signal_market.oracle["accuracy_stderr"] == pytest.approx(0.5 / math.sqrt(scored.sum()))


def test_oracle_without_signal_reports_no_edge(quiet_market: SyntheticMarket) -> None:
    oracle = quiet_market.oracle
    assert oracle["rho"] == 0.0
    assert oracle["accuracy"] == 0.5
    assert oracle["best_possible_accuracy_without_signal"] == 0.5
    assert (quiet_market.regimes["oracle_expected_return"] == 0).all()


def test_planted_component_is_recomputed_from_candles_alone(
    signal_market: SyntheticMarket,
) -> None:
    recomputed = oracle_expected_returns(signal_market.candles, signal_market.config)
    planted = signal_market.regimes["oracle_expected_return"].to_numpy()
    np.testing.assert_allclose(recomputed, planted, rtol=1e-9, atol=1e-15)


@settings(max_examples=20, deadline=None)
@given(cut=st.integers(1, 999), lookback=st.integers(1, 6))
def test_planted_component_at_t_reads_no_candle_after_t(cut: int, lookback: int) -> None:
    config = SyntheticConfig(bars=1_000, seed=5, signal=0.5, signal_lookback=lookback)
    candles = generate_market(config).candles
    whole = oracle_expected_returns(candles, config)
    past_only = oracle_expected_returns(candles.head(cut), config)
    np.testing.assert_array_equal(past_only, whole[:cut])


@pytest.mark.parametrize("edge", EDGE_KINDS)
def test_a_shorter_run_is_the_start_of_a_longer_one_crashes_included(edge: EdgeKind) -> None:
    config = SyntheticConfig(bars=12_000, seed=7, signal=0.2, edge=edge)
    longer = generate_market(config)
    shorter = generate_market(replace(config, bars=9_000))
    crashes = longer.regimes.head(9_000)["flash_crash"]
    assert crashes.sum() > 0, "the test needs a flash crash in the shorter run"
    assert shorter.candles.equals(longer.candles.head(9_000))
    assert shorter.regimes.equals(longer.regimes.head(9_000))


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    config = SyntheticConfig(bars=500, seed=9, signal=0.2, orderflow=True)
    first = write_market(generate_market(config), tmp_path / "a" / "market.parquet")
    second = write_market(generate_market(config), tmp_path / "b" / "market.parquet")
    assert [p.name for p in first] == [p.name for p in second]
    assert [sha256(p) for p in first] == [sha256(p) for p in second]


def test_different_seed_writes_different_candles(tmp_path: Path) -> None:
    one = write_market(generate_market(SyntheticConfig(bars=500, seed=1)), tmp_path / "1.parquet")
    two = write_market(generate_market(SyntheticConfig(bars=500, seed=2)), tmp_path / "2.parquet")
    assert sha256(one[0]) != sha256(two[0])


def test_write_market_puts_every_file_beside_out(
    flow_market: SyntheticMarket, tmp_path: Path
) -> None:
    out = tmp_path / "btc.parquet"
    written = write_market(flow_market, out)
    names = {path.name for path in written}
    assert names == {
        "btc.parquet",
        "btc.oracle.json",
        "btc.regimes.parquet",
        "btc.trades.parquet",
        "btc.book.parquet",
        "btc.funding.parquet",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temp files left
    assert pl.read_parquet(out).equals(flow_market.candles)
    assert pl.read_parquet(tmp_path / "btc.regimes.parquet").equals(flow_market.regimes)
    assert json.loads((tmp_path / "btc.oracle.json").read_text()) == flow_market.oracle


def test_without_orderflow_only_candles_regimes_and_oracle_are_written(
    tmp_path: Path,
) -> None:
    market = generate_market(SyntheticConfig(bars=50))
    assert market.trades is None and market.book is None and market.funding is None
    written = write_market(market, tmp_path / "m.parquet")
    assert [p.name for p in written] == ["m.parquet", "m.oracle.json", "m.regimes.parquet"]


def test_orderflow_does_not_change_the_candles(flow_market: SyntheticMarket) -> None:
    plain = generate_market(SyntheticConfig(bars=3_000, seed=13, signal=0.3))
    assert plain.candles.equals(flow_market.candles)
    assert plain.regimes.equals(flow_market.regimes)


def test_orderflow_frames_have_their_schemas(flow_market: SyntheticMarket) -> None:
    for frame, kind in (
        (flow_market.trades, Kind.TRADES),
        (flow_market.book, Kind.BOOK),
        (flow_market.funding, Kind.FUNDING),
    ):
        assert frame is not None
        assert frame.schema == schema_for(kind).empty().schema
        assert frame.null_count().sum_horizontal().item() == 0


def test_trades_lie_inside_their_candle(flow_market: SyntheticMarket) -> None:
    trades, candles = flow_market.trades, flow_market.candles
    assert trades is not None
    assert trades["id"].n_unique() == trades.height
    assert trades["timestamp"].is_sorted()
    assert trades.height / candles.height > 15
    joined = trades.sort("timestamp").join_asof(
        candles.rename({"timestamp": "candle_open"}),
        left_on="timestamp",
        right_on="candle_open",
    )
    assert joined["candle_open"].null_count() == 0
    assert (joined["timestamp"] < joined["candle_open"] + timedelta(hours=1)).all()
    assert (joined["price"] >= joined["low"]).all() and (joined["price"] <= joined["high"]).all()
    per_candle = joined.group_by("candle_open").agg(
        pl.col("amount").sum(), pl.col("volume").first()
    )
    assert per_candle.height == candles.height
    np.testing.assert_allclose(per_candle["amount"], per_candle["volume"], rtol=1e-9)


def test_buyers_dominate_up_candles(flow_market: SyntheticMarket) -> None:
    trades = flow_market.trades
    assert trades is not None
    candles = flow_market.candles.with_columns(up=pl.col("close") > pl.col("open"))
    joined = trades.join_asof(candles, on="timestamp")
    buy_share = dict(
        joined.group_by("up").agg((pl.col("side") == "buy").mean().alias("share")).iter_rows()
    )
    assert buy_share[True] > 0.55 > 0.45 > buy_share[False]


def test_book_snapshots_straddle_the_open_with_the_regime_spread(
    flow_market: SyntheticMarket,
) -> None:
    book = flow_market.book
    assert book is not None
    assert book["is_snapshot"].all()
    assert book.height == flow_market.candles.height * 2 * flow_market.config.book_levels
    touch = book.group_by("timestamp").agg(
        pl.col("price").filter(pl.col("side") == "bid").max().alias("best_bid"),
        pl.col("price").filter(pl.col("side") == "ask").min().alias("best_ask"),
    )
    frame = touch.join(flow_market.candles, on="timestamp").join(
        flow_market.regimes, on="timestamp"
    )
    assert (frame["best_bid"] < frame["open"]).all() and (frame["open"] < frame["best_ask"]).all()
    relative = (frame["best_ask"] - frame["best_bid"]) / frame["open"]
    np.testing.assert_allclose(relative, frame["spread"], rtol=1e-9)
    assert (book["amount"] > 0).all()


def test_funding_settles_every_eight_hours_and_follows_the_trend(
    flow_market: SyntheticMarket,
) -> None:
    funding = flow_market.funding
    assert funding is not None
    stamps = funding["timestamp"]
    assert (stamps.dt.hour() % 8 == 0).all() and (stamps.dt.minute() == 0).all()
    assert (stamps.diff().drop_nulls().dt.total_hours() == 8).all()
    assert funding.height == pytest.approx(3_000 / 8, abs=1)
    closes = flow_market.candles.select(
        pl.col("timestamp") + pl.duration(hours=1), pl.col("close").log().diff(24).alias("trend")
    )
    frame = funding.join(closes, on="timestamp").drop_nulls()
    assert np.corrcoef(frame["funding_rate"], frame["trend"])[0, 1] > 0.5
    rates = funding["funding_rate"]
    assert (rates > 0).any() and (rates < 0).any()
    assert rates.abs().max() <= 0.0075


@pytest.mark.parametrize(
    ("settings_", "argument"),
    [
        ({"bars": 1}, "bars"),
        ({"bars": 2.5}, "bars"),
        ({"signal": 1.0}, "signal"),
        ({"signal": -0.1}, "signal"),
        ({"signal": float("nan")}, "signal"),
        ({"timeframe": "7x"}, "timeframe"),
        ({"start": datetime(2024, 1, 1, 0, 30, tzinfo=UTC)}, "start"),
        ({"start": datetime(2024, 1, 1)}, "start"),
        ({"start_price": 0.0}, "start_price"),
    ],
)
def test_bad_settings_raise_a_user_error_naming_the_setting(
    settings_: dict[str, object], argument: str
) -> None:
    value = settings_[argument]
    shown = value.isoformat() if isinstance(value, datetime) else str(value)
    with pytest.raises(UserInputError, match=rf"^{argument}\b") as caught:
        SyntheticConfig(**settings_)  # type: ignore[arg-type]
    assert shown in str(caught.value)


def test_the_shock_edge_continues_surprising_candles_and_barely_moves_after_ordinary_ones() -> None:
    config = SyntheticConfig(bars=20_000, seed=3, signal=0.4, edge="shock")
    market = generate_market(config)
    planted = market.regimes["oracle_expected_return"].to_numpy()
    returns = log_returns(market.candles)
    volatility = np.sqrt(np.asarray(_ewma_variance(returns, config.sigma_base**2)))
    z = returns / volatility
    surprising = np.abs(z) > 2
    assert np.all(np.sign(planted[surprising]) == np.sign(returns[surprising]))
    ordinary = np.abs(z) < 0.5
    assert np.abs(planted[ordinary] / volatility[ordinary]).max() < 0.4 * 0.13
    assert market.oracle["edge"] == "shock" and market.oracle["half_life"] is None
    assert market.oracle["accuracy"] > 0.5 + 5 * market.oracle["accuracy_stderr"]


def _ewma_variance(returns: np.ndarray, start: float) -> list[float]:
    variance, out = start, []
    for r in returns.tolist():
        variance = 0.94 * variance + 0.06 * r * r
        out.append(variance)
    return out
