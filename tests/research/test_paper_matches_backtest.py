"""``serve`` on the default synthetic feed trades as the backtest does on the same world.

The paper service runs in-process — the real :class:`TradingService`, runner, simulated broker
and models trained once on its warm-up, no test double — for ``CANDLES`` candles after a
20,000-candle warm-up. The candles it recorded in its state store are then replayed by a
backtest (:func:`~tradebrain.research.bundle_replay.replay_with_bundle`: the engine, simulated
broker and risk manager of ``tradebrain backtest``, deciding with the compiled brain) on the
model folder the service saved beside its state — no retraining — with the costs, cash,
leverage, market and settings built as ``tradebrain backtest`` builds them. Every decision,
fill, closed trade and equity point must agree.

What the replay mirrors by design: a new service starts flat, with its cash, on the first
candle after the warm-up, and its engine, broker, brain and risk manager start fresh there;
the warm-up history only warms the features up. The replay therefore trades exactly the
recorded candles and computes its features over the warm-up plus those candles.

Floats agree within a stated tolerance, not to the bit: the service folds each candle into an
incremental feature engine, the backtest computes the features over the whole history at once,
and the two agree to about 1e-9 relative (sums kept in another order). A size that is the
difference of two close exposures (a partial exit) carries that as about 5e-10 of the
quantity, i.e. about a millionth of a quote unit: amounts must agree within a cent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest

from tradebrain.config import Settings
from tradebrain.exceptions import UserInputError
from tradebrain.models.bundle import ModelBundle
from tradebrain.research.bundle_replay import BundleReplay, replay_with_bundle
from tradebrain.research.hybrid_request import HybridRequest, backtest_config
from tradebrain.service.feeds import synthetic_feed
from tradebrain.service.options import ServeOptions
from tradebrain.service.service import TradingService
from tradebrain.state import FillRecord, TradeRecord

WARMUP = 20_000
CANDLES = 1_000
"""Candles traded after the warm-up: the default world closes several trades in them."""
RUN = "paper"
PRICE_TOLERANCE = 1e-9
"""Relative tolerance on prices (they agree to about 1e-12: fills at the open, stops from the
brain's ATR feature)."""
CENT = 0.01
"""Absolute tolerance on amounts, in quote currency (USDT): a cent on a 10,000 USDT account."""


@dataclass(frozen=True)
class PaperRun:
    """A finished paper service, what it was given and the model folder it saved."""

    service: TradingService
    options: ServeOptions
    settings: Settings
    history: pl.DataFrame
    candles: pl.DataFrame
    bundle: ModelBundle


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> PaperRun:
    """The paper service, trained on its warm-up, after trading ``CANDLES`` candles."""
    home = tmp_path_factory.mktemp("paper")
    # `serve --mode paper --feed synthetic` as it defaults, on a tape of WARMUP + CANDLES.
    options = ServeOptions(warmup=WARMUP, speed=0, state=str(home / "state.db"))
    assert (options.mode, options.feed, options.symbols) == ("paper", "synthetic", ("BTC/USDT",))
    feed = synthetic_feed(
        list(options.symbols), options.timeframe, seed=options.seed, warmup=WARMUP, speed=0,
        bars=WARMUP + CANDLES,
    )  # fmt: skip
    settings = Settings.model_validate(
        {"home": home, "models": {"enabled": ["logistic", "lightgbm"]}}
    )
    service = TradingService(options, settings, feed=feed)
    service.start()
    deadline = time.monotonic() + 300
    while service.phase in ("starting", "warming_up", "running"):
        assert time.monotonic() < deadline, "the service did not finish its tape"
        time.sleep(0.02)
    assert service.phase == "finished", service.error
    symbol = options.symbols[0]
    return PaperRun(
        service=service,
        options=options,
        settings=settings,
        history=feed.history(symbol, WARMUP, None),  # what the runner warmed up on
        candles=service.store.candles(RUN, symbol, options.timeframe),
        bundle=ModelBundle.load(service.runner.model_dir),  # the folder beside the state
    )


def replay(paper: PaperRun, *, compiled: bool = True) -> BundleReplay:
    """Backtest the recorded candles on the saved models, configured as `backtest` does."""
    options, settings = paper.options, paper.settings
    request = HybridRequest.from_settings(
        settings, paper.candles, symbol=options.symbols[0], timeframe=options.timeframe,
        backtest=backtest_config(
            settings, cash=options.cash, market=options.market, leverage=options.leverage
        ),
    )  # fmt: skip
    return replay_with_bundle(paper.bundle, paper.history, request, compiled=compiled)


@pytest.fixture(scope="module")
def backtest(paper: PaperRun) -> BundleReplay:
    """The backtest replay of the paper run's candles (compiled brain)."""
    return replay(paper)


def recorded_trades(paper: PaperRun) -> list[TradeRecord]:
    """The paper run's closed trades in the order they closed (their run number)."""
    trades = paper.service.store.trades(RUN, limit=None)
    return sorted(trades, key=lambda t: int(t.trade_id.rsplit("|", 1)[1]))


def recorded_fills(paper: PaperRun) -> list[FillRecord]:
    """The paper run's fills in the order they happened (time, then order within a candle)."""
    fills = paper.service.store.fills(RUN, limit=None)
    return sorted(fills, key=lambda f: (f.timestamp, int(f.fill_id.rsplit("|", 1)[1])))


def same_price(a: float, b: float) -> bool:
    return a == pytest.approx(b, rel=PRICE_TOLERANCE)


def same_amount(a: float, b: float) -> bool:
    return a == pytest.approx(b, rel=0, abs=CENT)


def assert_same_trades(paper: PaperRun, replayed: BundleReplay) -> None:
    """Assert the paper run's closed trades are the replay's, trade for trade."""
    ours, theirs = recorded_trades(paper), replayed.result.trades
    assert len(ours) == len(theirs) >= 3
    for n, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        where = f"trade {n + 1}: paper {a} / backtest {b}"
        assert (a.symbol, a.side) == (b.symbol, "long" if b.side > 0 else "short"), where
        assert (a.entry_time, a.exit_time) == (b.entry_time, b.exit_time), where
        assert a.exit_reason == b.exit_reason, where
        assert same_price(a.entry_price, b.entry_price), where
        assert same_price(a.exit_price, b.exit_price), where
        assert same_amount(a.quantity * a.entry_price, b.quantity * b.entry_price), where
        assert same_amount(a.fees, b.fees), where
        assert same_amount(a.funding, b.funding), where
        assert same_amount(a.pnl, b.pnl), where


def test_the_paper_service_trades_every_candle_after_its_warm_up_and_closes_several_trades(
    paper: PaperRun,
) -> None:
    counts = paper.service.store.counts(RUN)
    assert counts["candles"] == counts["decisions"] == counts["equity"] == CANDLES
    step = paper.candles["timestamp"][1] - paper.candles["timestamp"][0]
    assert paper.candles["timestamp"][0] == paper.history["timestamp"][-1] + step
    assert paper.history.height == WARMUP
    assert counts["trades"] >= 3
    assert paper.service.runner.bundle_dir == paper.service.runner.model_dir  # trained once


def test_paper_trades_match_a_backtest_replay_of_the_same_candles(
    paper: PaperRun, backtest: BundleReplay
) -> None:
    assert_same_trades(paper, backtest)


def test_paper_trades_match_the_replay_on_the_python_brain_too(paper: PaperRun) -> None:
    assert_same_trades(paper, replay(paper, compiled=False))


def test_paper_fills_match_the_backtests_fill_for_fill_with_the_same_fees(
    paper: PaperRun, backtest: BundleReplay
) -> None:
    ours, theirs = recorded_fills(paper), backtest.result.fills
    assert len(ours) == len(theirs) > 0
    for n, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        where = f"fill {n + 1}: paper {a} / backtest {b}"
        # Both brokers number their orders alike: the same order fills in both.
        assert (a.client_id, a.timestamp, a.side, a.tag) == (
            b.order_id, b.timestamp, b.side.value, b.tag
        ), where  # fmt: skip
        assert a.liquidity == b.liquidity.value, where
        assert same_price(a.price, b.price), where
        assert same_amount(a.quantity * a.price, b.quantity * b.price), where
        assert same_amount(a.fee, b.fee), where
        assert same_amount(a.slippage, b.slippage), where
    assert same_amount(sum(f.fee for f in ours), backtest.result.fees)


def test_paper_equity_matches_the_backtests_at_every_close_and_at_the_end(
    paper: PaperRun, backtest: BundleReplay
) -> None:
    points = paper.service.store.equity(RUN)
    equity = backtest.result.equity
    assert len(points) == equity.size == CANDLES
    step = paper.candles["timestamp"][1] - paper.candles["timestamp"][0]
    opens = paper.candles["timestamp"].to_list()
    assert [p.timestamp for p in points] == [t + step for t in opens]  # marked at each close
    ours = np.array([p.equity for p in points])
    assert np.max(np.abs(ours - equity)) <= CENT
    assert ours[-1] == pytest.approx(equity[-1], rel=0, abs=CENT)
    assert ours[-1] != pytest.approx(paper.options.cash, abs=1.0)  # it did trade
    held = {p.symbol: p.quantity for p in paper.service.store.positions(RUN)}
    open_positions = backtest.result.open_positions
    assert held.keys() == open_positions.keys()
    last = paper.candles["close"][-1]
    assert all(same_amount(held[s] * last, open_positions[s] * last) for s in held)


def test_paper_decisions_match_the_backtests_decision_for_decision(
    paper: PaperRun, backtest: BundleReplay
) -> None:
    ours = paper.service.store.decisions(RUN, limit=None)[::-1]
    theirs = backtest.strategy.decisions
    assert len(ours) == len(theirs) == CANDLES
    for a, b in zip(ours, theirs, strict=True):
        where = f"decision at {a['timestamp']}"
        assert (a["timestamp"], a["action"], a["regime"]) == (
            b.timestamp.isoformat(), b.action.value, str(b.regime)
        ), where  # fmt: skip
        assert a["target_position"] == pytest.approx(b.target_position, abs=1e-9), where
        assert a["confidence"] == pytest.approx(b.confidence, abs=1e-9), where
    actions = {d["action"] for d in ours}
    assert {"buy", "hold"} <= actions


def test_a_replay_refuses_a_history_that_does_not_end_before_its_candles(
    paper: PaperRun,
) -> None:
    overlapping = pl.concat([paper.history, paper.candles.head(1)])
    with pytest.raises(UserInputError, match="not before the first replayed candle"):
        replay(PaperRun(**{**vars(paper), "history": overlapping}))
