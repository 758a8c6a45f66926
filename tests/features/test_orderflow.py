"""Order-flow and sentiment features read only what was known at each candle's close."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from builders import skip_without_real_data
from hypothesis import given, settings
from hypothesis import strategies as st
from lookahead import as_matrix, column_scales, cut_points, mismatched

from tradebrain.data.importing import read_market_file
from tradebrain.data.schemas import TIMESTAMP, Kind, conform
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.features import CANDLE_INPUTS, LiveFeatureEngine, compute_features, list_features
from tradebrain.features.orderflow_inputs import ORDERFLOW_COLUMNS, orderflow_columns

SETS = ["orderflow", "sentiment"]
REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
Aggregate = Callable[..., pl.DataFrame]


@dataclass(frozen=True)
class Flow:
    """Candles with the raw order flow around them."""

    candles: pl.DataFrame
    timeframe: str
    trades: pl.DataFrame | None = None
    book: pl.DataFrame | None = None
    funding: pl.DataFrame | None = None

    def close_of(self, row: int) -> datetime:
        step = timedelta(seconds=timeframe_seconds(self.timeframe))
        return self.candles["timestamp"][row] + step

    def up_to(self, row: int) -> Flow:
        """Return the data known when candle ``row`` closes."""
        close = self.close_of(row)
        return Flow(
            self.candles.head(row + 1),
            self.timeframe,
            _before(self.trades, close, strict=True),
            _before(self.book, close, strict=True),
            _before(self.funding, close, strict=False),
        )

    def randomized_after(self, row: int, seed: int) -> Flow:
        """Return this flow with every candle, trade, book and funding row after ``row`` random."""
        rng = np.random.default_rng(seed)
        close = self.close_of(row)
        later = pl.col("timestamp") >= close
        candles = self.candles.with_row_index("_i").with_columns(
            [
                pl.when(pl.col("_i") > row).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
                for c, v in zip(CANDLE_INPUTS, rng.uniform(1.0, 1e5, 5), strict=True)
            ]
        )
        noise = {
            c: pl.lit(float(v))
            for c, v in zip(("price", "amount"), rng.uniform(0.1, 9e4, 2), strict=True)
        }
        trades = book = funding = None
        if self.trades is not None:
            trades = self.trades.with_columns(
                price=pl.when(later)
                .then(noise["price"] * (1 + pl.col("amount")))
                .otherwise("price"),
                amount=pl.when(later).then(noise["amount"]).otherwise("amount"),
                side=pl.when(later).then(pl.lit("sell")).otherwise("side"),
            )
        if self.book is not None:
            book = self.book.with_columns(
                amount=pl.when(later).then(noise["amount"] / pl.col("price")).otherwise("amount")
            )
        if self.funding is not None:
            funding = self.funding.with_columns(
                funding_rate=pl.when(pl.col("timestamp") > close)
                .then(pl.lit(-0.01))
                .otherwise("funding_rate")
            )
        return Flow(candles.drop("_i"), self.timeframe, trades, book, funding)

    def inputs(self, aggregate: Aggregate = orderflow_columns) -> pl.DataFrame:
        return aggregate(
            self.candles, self.timeframe, trades=self.trades, book=self.book, funding=self.funding
        )

    def features(self, aggregate: Aggregate = orderflow_columns) -> pl.DataFrame:
        return compute_features(self.inputs(aggregate), SETS, threads=1)


def _before(frame: pl.DataFrame | None, close: datetime, *, strict: bool) -> pl.DataFrame | None:
    if frame is None:
        return None
    stamp = pl.col("timestamp")
    return frame.filter(stamp < close if strict else stamp <= close)


def leaky_columns(candles: pl.DataFrame, timeframe: str, **flow: pl.DataFrame) -> pl.DataFrame:
    """CANARY: the buy volume of candle t sums the trades of [t, t + 2 tf) — one candle too many."""
    frame = orderflow_columns(candles, timeframe, **flow)
    trades = flow["trades"].sort("timestamp")
    stamps = trades["timestamp"].dt.epoch("us").to_numpy()
    bought = np.concatenate(
        ([0.0], np.cumsum(trades["amount"].to_numpy() * (trades["side"] == "buy").to_numpy()))
    )
    opens = candles["timestamp"].dt.epoch("us").to_numpy()
    step = timeframe_seconds(timeframe) * 1_000_000
    span = np.searchsorted(stamps, opens + 2 * step) - np.searchsorted(stamps, opens)
    first = np.searchsorted(stamps, opens)
    return frame.with_columns(buy_volume=bought[first + span] - bought[first])


def prefix_leaks(flow: Flow, cuts: list[int], aggregate: Aggregate = orderflow_columns) -> set[str]:
    """Return features whose values up to a cut change when all data stops at the cut."""
    full = flow.features(aggregate)
    reference, names = as_matrix(full), np.array(full.columns[1:])
    scale = column_scales(reference)
    leaks: set[str] = set()
    for cut in cuts:
        got = as_matrix(flow.up_to(cut).features(aggregate))
        leaks.update(names[mismatched(got, reference[: cut + 1], scale)].tolist())
    return leaks


def future_leaks(flow: Flow, cuts: list[int], aggregate: Aggregate = orderflow_columns) -> set[str]:
    """Return features whose values up to a cut change when all data after it is randomized."""
    full = flow.features(aggregate)
    reference, names = as_matrix(full), np.array(full.columns[1:])
    scale = column_scales(reference)
    leaks: set[str] = set()
    for number, cut in enumerate(cuts):
        got = as_matrix(flow.randomized_after(cut, seed=number).features(aggregate))[: cut + 1]
        leaks.update(names[mismatched(got, reference[: cut + 1], scale)].tolist())
    return leaks


@pytest.fixture(scope="module")
def synthetic_flow() -> Flow:
    """400 synthetic 1h candles with trades, one book snapshot per candle and 8h funding."""
    market = generate_market(
        SyntheticConfig(bars=400, seed=5, orderflow=True, trades_per_candle=12)
    )
    return Flow(market.candles, "1h", market.trades, market.book, market.funding)


@pytest.fixture(scope="module")
def real_trade_flow() -> Flow:
    """Real BTCUSDT trades of one ~11-minute capture, on 1s candles built from them."""
    path = REAL / "hftbacktest__BTC-ETH_USDT_multi__trades.parquet"
    if not path.is_file():
        skip_without_real_data(f"real trades not found at {path} (../shared/data/real)")
    trades = conform(
        read_market_file(path, Kind.TRADES, source_symbol="btcusdt").frame, Kind.TRADES
    )
    trades = trades.sort("timestamp").filter(
        pl.col("timestamp") >= datetime(2024, 8, 8, tzinfo=UTC)
    )
    return Flow(_candles_from_trades(trades, "1s"), "1s", trades)


def _candles_from_trades(trades: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    return (
        trades.group_by_dynamic("timestamp", every=f"{timeframe_seconds(timeframe)}s")
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("amount").sum(),
        )
        .with_columns(pl.col("timestamp").cast(TIMESTAMP))
    )


@pytest.fixture(scope="module")
def real_funding_flow() -> Flow:
    """Real BTC/USDT perpetual 1h candles (first 1,200) with the venue's funding settlements."""
    candles_path = REAL / "marketlab__BTC_USDT-PERP__1h_futures.parquet"
    funding_path = REAL / "marketlab__BTC_USDT-PERP__funding_rate.parquet"
    if not (candles_path.is_file() and funding_path.is_file()):
        skip_without_real_data(f"real perpetual candles or funding not found in {REAL}")
    candles = conform(read_market_file(candles_path).frame, Kind.CANDLES).head(1200)
    funding = conform(read_market_file(funding_path, Kind.FUNDING).frame, Kind.FUNDING)
    return Flow(candles, "1h", funding=funding)


FLOWS = ["synthetic_flow", "real_trade_flow", "real_funding_flow"]


@pytest.mark.parametrize("source", FLOWS)
def test_features_up_to_a_cut_do_not_change_when_all_data_stops_there(
    source: str, request: pytest.FixtureRequest
) -> None:
    flow: Flow = request.getfixturevalue(source)
    cuts = cut_points(flow.candles.height, 200, seed=1)
    assert prefix_leaks(flow, cuts) == set()


@pytest.mark.parametrize("source", FLOWS)
def test_features_up_to_a_cut_do_not_change_when_later_candles_and_flow_are_randomized(
    source: str, request: pytest.FixtureRequest
) -> None:
    flow: Flow = request.getfixturevalue(source)
    cuts = cut_points(flow.candles.height, 60, seed=2)
    assert future_leaks(flow, cuts) == set()


def test_a_canary_that_reads_the_next_candles_trades_is_caught_by_both_checks(
    synthetic_flow: Flow,
) -> None:
    cuts = cut_points(synthetic_flow.candles.height, 20, seed=3)
    assert "volume_delta_share" in prefix_leaks(synthetic_flow, cuts, leaky_columns)
    assert "volume_delta_share" in future_leaks(synthetic_flow, cuts, leaky_columns)


@pytest.mark.parametrize("source", ["synthetic_flow", "real_trade_flow"])
def test_feeding_candles_with_their_flow_one_at_a_time_reproduces_the_batch_features(
    source: str, request: pytest.FixtureRequest
) -> None:
    flow: Flow = request.getfixturevalue(source)
    inputs = flow.inputs()
    batch = as_matrix(compute_features(inputs, SETS, threads=1))
    engine = LiveFeatureEngine(SETS, inputs=[*CANDLE_INPUTS, *ORDERFLOW_COLUMNS])
    rows = [engine.update(candle) for candle in inputs.iter_rows(named=True)]
    live = np.array([[np.nan if v is None else v for v in row.values()] for row in rows])
    assert list(rows[0]) == [row["name"] for row in list_features(SETS)]
    assert not mismatched(live, batch, column_scales(batch)).any()


def test_values_after_warmup_do_not_depend_on_where_the_data_started(synthetic_flow: Flow) -> None:
    begin = 37
    opened = synthetic_flow.candles["timestamp"][begin]
    late = Flow(
        synthetic_flow.candles.slice(begin),
        "1h",
        *(
            frame.filter(pl.col("timestamp") >= opened)
            for frame in (synthetic_flow.trades, synthetic_flow.book, synthetic_flow.funding)
        ),
    )
    full = as_matrix(synthetic_flow.features())[begin:]
    got = as_matrix(late.features())
    warmups = np.array([row["warmup"] for row in list_features(SETS)])
    after = np.arange(got.shape[0])[:, None] >= warmups[None, :]
    comparable = after & ~np.isnan(got)
    scale = column_scales(full)
    differs = np.abs(got - full) > 1e-8 * np.maximum(np.abs(full), scale)
    assert not (differs & comparable).any(axis=0).any()
    assert comparable.any(axis=0).all()


def _quiet_flow(bars: int, amounts: list[float], *, side: str = "buy") -> Flow:
    """Flat candles at 100 with ``amounts`` traded on ``side``, evenly spread over time."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    stamps = [start + timedelta(minutes=i) for i in range(bars)]
    candles = pl.DataFrame(
        {"timestamp": pl.Series(stamps, dtype=TIMESTAMP)}
        | {c: np.full(bars, 100.0) for c in ("open", "high", "low", "close")}
        | {"volume": np.full(bars, sum(amounts) / bars)}
    )
    span = bars * 60.0 / len(amounts)
    trades = pl.DataFrame(
        {
            "timestamp": pl.Series(
                [start + timedelta(seconds=span * i) for i in range(len(amounts))], dtype=TIMESTAMP
            ),
            "id": [str(i) for i in range(len(amounts))],
            "price": 100.0,
            "amount": amounts,
            "side": side,
        }
    )
    return Flow(candles, "1m", trades)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.01, 100.0), min_size=60, max_size=200))
def test_buy_only_trades_give_a_rising_volume_delta_and_full_buy_imbalance(
    amounts: list[float],
) -> None:
    features = _quiet_flow(40, amounts).features()
    assert features["cvd_slope_20"].drop_nulls().min() > 0.0
    assert features["cvd_ratio_20"].drop_nulls().to_list() == pytest.approx([1.0] * 21)
    assert features["volume_delta_share"].min() == pytest.approx(1.0)


def _book(rows: list[tuple[int, str, float, float]]) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return conform(
        pl.DataFrame(
            {
                "timestamp": [start + timedelta(minutes=m, seconds=1) for m, *_ in rows],
                "side": [side for _, side, _, _ in rows],
                "price": [price for *_, price, _ in rows],
                "amount": [amount for *_, amount in rows],
                "is_snapshot": True,
                "update_id": [m for m, *_ in rows],
            }
        ).with_columns(pl.col("timestamp").cast(TIMESTAMP)),
        Kind.BOOK,
    )


def _ladder(minute: int, wall: float | None = None) -> list[tuple[int, str, float, float]]:
    """A 5-level book around 100; ``wall`` puts that size on the bid at 99.6."""
    rows = []
    for level in range(5):
        bid_size = wall if (wall is not None and level == 3) else 1.0
        rows.append((minute, "bid", round(99.9 - 0.1 * level, 2), bid_size))
        rows.append((minute, "ask", round(100.1 + 0.1 * level, 2), 1.0))
    return rows


def test_a_wall_that_appears_and_vanishes_without_trades_raises_the_spoofing_score() -> None:
    flow = _quiet_flow(30, [0.5] * 60)
    calm = [row for m in range(30) for row in _ladder(m)]
    spoofed = [row for m in range(30) for row in _ladder(m, wall=50.0 if m == 15 else None)]
    quiet = replace(flow, book=_book(calm)).features()
    spoof = replace(flow, book=_book(spoofed)).features()
    assert spoof["spoofing_score_10"][16] == pytest.approx((50.0 - 1.0) / 10)
    assert spoof["spoofing_score_10"][16] > quiet["spoofing_score_10"][16] == 0.0
    assert spoof["cancel_to_trade_10"][16] > quiet["cancel_to_trade_10"][16]


def test_a_wall_eaten_by_trades_is_not_counted_as_spoofing() -> None:
    flow = _quiet_flow(30, [0.5] * 60, side="sell")
    trades = flow.trades.with_columns(  # sells sweep down to the wall's price in minute 16
        price=pl.when(pl.col("timestamp").dt.minute() == 16).then(99.6).otherwise(pl.col("price"))
    )
    spoofed = [row for m in range(30) for row in _ladder(m, wall=50.0 if m == 15 else None)]
    eaten = replace(flow, trades=trades, book=_book(spoofed)).features()
    assert eaten["spoofing_score_10"][16] == 0.0


def test_executed_volume_far_above_the_visible_size_raises_the_iceberg_score() -> None:
    flow = _quiet_flow(30, [0.5] * 60)
    book = _book([row for m in range(30) for row in _ladder(m)])
    hidden = flow.trades.with_columns(  # in minute 20, two buys of 10 at the ask, 1 visible each
        price=pl.when(pl.col("timestamp").dt.minute() == 20).then(100.1).otherwise(100.0),
        amount=pl.when(pl.col("timestamp").dt.minute() == 20).then(10.0).otherwise(0.5),
    )
    plain = replace(flow, book=book).features()
    iceberg = replace(flow, trades=hidden, book=book).features()
    assert iceberg["iceberg_fill_ratio"][20] == pytest.approx(np.log1p(10.0))
    assert iceberg["iceberg_score_20"][20] > 0.4 > plain["iceberg_score_20"][20] == 0.0


def test_flash_crash_candles_show_a_high_panic_proxy() -> None:
    config = SyntheticConfig(bars=3000, seed=3, orderflow=True, flash_crashes_per_year=40)
    market = generate_market(config)
    frame = orderflow_columns(market.candles, "1h", book=market.book, funding=market.funding)
    panic = compute_features(frame, ["sentiment"])["panic_proxy_20"].to_numpy()
    crash = market.regimes["flash_crash"].to_numpy() & ~np.isnan(panic)
    assert crash.sum() >= 5
    assert np.median(panic[crash]) > np.nanquantile(panic[~crash], 0.95)


def test_real_funding_features_follow_the_last_settled_rate(real_funding_flow: Flow) -> None:
    features = real_funding_flow.features()
    settled = real_funding_flow.funding.sort("timestamp")
    row = 500
    close = real_funding_flow.close_of(row)
    last = settled.filter(pl.col("timestamp") <= close)["funding_rate"][-1]
    assert features["funding_rate_bps"][row] == pytest.approx(last * 1e4)
    assert features["panic_proxy_20"].null_count() == features.height  # no book was given


def test_real_trades_fill_their_candles_volume_exactly(real_trade_flow: Flow) -> None:
    inputs = real_trade_flow.inputs()
    total = inputs["buy_volume"] + inputs["sell_volume"]
    assert np.allclose(total.to_numpy(), inputs["volume"].to_numpy(), rtol=1e-12)
