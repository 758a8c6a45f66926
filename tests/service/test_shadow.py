"""Shadow mode: paper scoreboards of two bundles, paired candle for candle, rebuilt on restart."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.brain.decision import Decision
from tradebrain.config import Settings
from tradebrain.core.atomic_write import write_parquet_atomic
from tradebrain.core.events import CandleClosed, make_candle
from tradebrain.core.market import MarketType
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.learning.fan_out import TrainJob, train_job
from tradebrain.models.bundle import ModelBundle
from tradebrain.service.shadow import Scoreboard, ShadowBook

SYMBOL, OTHER = "BTC/USDT:USDT", "ETH/USDT:USDT"
HOUR = timedelta(hours=1)
TRAINED = 1_500  # candles the bundle learns from, then the warm-up of every scoreboard
TRACK = 120  # candles the scoreboards trade
CASH = 10_000.0
SETTINGS = Settings.model_validate({"models": {"enabled": ["logistic"]}})


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    config = SyntheticConfig(bars=TRAINED + TRACK, seed=1, signal=0.4, edge="trend")
    return generate_market(config).candles


@pytest.fixture(scope="module")
def bundle(market: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    folder = tmp_path_factory.mktemp("bundle")
    write_parquet_atomic(market.head(TRAINED), folder / "candles.parquet")
    dump = SETTINGS.model_dump(mode="json")
    job = TrainJob(SYMBOL, folder / "candles.parquet", dump, folder / "bundle")
    return ModelBundle.load(train_job(job).bundle_dir)


@pytest.fixture(scope="module")
def flat(bundle: ModelBundle) -> ModelBundle:
    """The same models trained without skill: forecast beta 0, no voter (it stands aside)."""
    assert bundle.calibration is not None
    calibration = dataclasses.replace(bundle.calibration, beta=0.0, weights={})
    return dataclasses.replace(bundle, calibration=calibration)


def candles(frame: pl.DataFrame, symbol: str = SYMBOL) -> list[CandleClosed]:
    prices = frame.select("timestamp", "open", "high", "low", "close", "volume").iter_rows()
    return [make_candle(symbol, t, t + HOUR, *ohlcv) for t, *ohlcv in prices]


def new_book() -> ShadowBook:
    return ShadowBook(SETTINGS, "1h", MarketType.PERP, CASH, 1.0)


def live_book(
    production: ModelBundle, candidate: ModelBundle, market: pl.DataFrame
) -> tuple[ShadowBook, list[Decision | None]]:
    """A book started on the candle after the warm-up and stepped through the track live."""
    book = new_book()
    since = market["timestamp"][TRAINED]
    book.start((1, production), (2, candidate), {SYMBOL: market.head(TRAINED)}, since)
    decisions = [book.step(candle) for candle in candles(market.slice(TRAINED))]
    return book, decisions


@pytest.fixture(scope="module")
def twins(bundle: ModelBundle, market: pl.DataFrame) -> tuple[ShadowBook, list[Decision | None]]:
    """Production against a candidate that is the very same bundle."""
    return live_book(bundle, bundle, market)


def test_a_bundle_shadowed_against_itself_has_a_paired_difference_of_exactly_zero(
    twins: tuple[ShadowBook, list[Decision | None]],
) -> None:
    book, _ = twins
    candidate, incumbent = book.paired_returns()
    assert len(candidate) == len(incumbent) == TRACK
    assert np.array_equal(np.subtract(candidate, incumbent), np.zeros(TRACK))
    assert np.count_nonzero(candidate) > TRACK // 2, "it must trade, or the pairing proves little"


def test_the_candidates_decision_on_each_candle_is_returned(
    twins: tuple[ShadowBook, list[Decision | None]], market: pl.DataFrame
) -> None:
    _, decisions = twins
    served = candles(market.slice(TRAINED))
    assert all(d is not None for d in decisions)
    assert [d.timestamp for d in decisions if d is not None] == [c.open_time for c in served]
    assert {d.symbol for d in decisions if d is not None} == {SYMBOL}


def test_the_returns_are_the_log_growth_of_the_paper_account(
    twins: tuple[ShadowBook, list[Decision | None]],
) -> None:
    book, _ = twins
    assert book.candidate is not None
    assert CASH * math.exp(math.fsum(book.candidate.returns)) == pytest.approx(
        book.candidate.equity, rel=1e-9
    )


@pytest.fixture(scope="module")
def against_flat(
    bundle: ModelBundle, flat: ModelBundle, market: pl.DataFrame
) -> tuple[ShadowBook, list[Decision | None]]:
    """Production against a candidate that stands aside, stepped live through the track."""
    return live_book(bundle, flat, market)


def test_a_candidate_that_stands_aside_earns_nothing_on_the_same_candles(
    against_flat: tuple[ShadowBook, list[Decision | None]],
) -> None:
    book, decisions = against_flat
    candidate, incumbent = book.paired_returns()
    assert len(candidate) == len(incumbent) == TRACK
    assert candidate == [0.0] * TRACK
    assert any(incumbent)
    assert all(d is not None and d.expected_return == 0.0 for d in decisions)


@settings(max_examples=4)
@given(served=st.integers(0, TRACK))
def test_a_book_restarted_from_the_same_candles_reproduces_the_live_one(
    served: int,
    bundle: ModelBundle,
    flat: ModelBundle,
    market: pl.DataFrame,
    against_flat: tuple[ShadowBook, list[Decision | None]],
) -> None:
    """Stepped live for ``served`` candles, restarted (replaying them), then live again."""
    live, _ = against_flat
    since = market["timestamp"][TRAINED]
    restarted = new_book()
    held = {SYMBOL: market.head(TRAINED + served)}  # what the restarted service reads
    restarted.start((1, bundle), (2, flat), held, since)
    for candle in candles(market.slice(TRAINED + served)):
        restarted.step(candle)
    assert restarted.paired_returns() == live.paired_returns()
    assert restarted.since == live.since == since


def test_only_the_primary_symbols_candles_add_returns(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    other = generate_market(SyntheticConfig(bars=TRAINED + TRACK, seed=2)).candles
    book = new_book()
    since = market["timestamp"][TRAINED]
    histories = {SYMBOL: market.head(TRAINED), OTHER: other.head(TRAINED)}
    book.start((1, bundle), (2, bundle), histories, since)
    stepped = 10
    served = candles(market.slice(TRAINED, stepped))
    for primary, second in zip(served, candles(other.slice(TRAINED, stepped), OTHER), strict=True):
        assert book.step(primary) is not None
        decision = book.step(second)
        assert decision is not None and decision.symbol == OTHER
    candidate, incumbent = book.paired_returns()
    assert len(candidate) == len(incumbent) == stepped


def test_a_candle_of_a_symbol_the_book_does_not_trade_changes_nothing(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    board = Scoreboard.build(
        1,
        bundle,
        {SYMBOL: market.head(TRAINED)},
        SETTINGS,
        timeframe="1h",
        market=MarketType.PERP,
        cash=CASH,
        leverage=1.0,
    )
    [stranger] = candles(market.slice(TRAINED, 1), OTHER)
    assert board.step(stranger) is None
    assert board.returns == [] and board.equity == CASH


def test_a_book_before_its_start_or_after_its_stop_steps_nothing(
    bundle: ModelBundle, market: pl.DataFrame
) -> None:
    book = new_book()
    [candle] = candles(market.slice(TRAINED, 1))
    assert not book.active
    assert book.step(candle) is None and book.paired_returns() == ([], [])
    book.start((1, bundle), (2, bundle), {SYMBOL: market.head(TRAINED)}, candle.open_time)
    assert book.active
    book.stop()
    assert not book.active and book.since is None
    assert book.step(candle) is None and book.paired_returns() == ([], [])
