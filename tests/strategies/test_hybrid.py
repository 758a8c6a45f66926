"""The hybrid strategy: walk-forward retraining without look-ahead, through one engine, to JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tradebrain.brain.decision import Action, Decision
from tradebrain.cli import app
from tradebrain.core.events import CandleClosed
from tradebrain.core.market import MarketType
from tradebrain.core.orders import OrderIntent, Side
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.engine.backtest import BacktestConfig, run_backtest
from tradebrain.engine.strategy import StrategyContext
from tradebrain.exceptions import UserInputError
from tradebrain.features import compute_features
from tradebrain.models.forecast import ForecastSettings
from tradebrain.research.hybrid_request import HybridRequest
from tradebrain.research.walk_forward_backtest import (
    hybrid_backtest_report,
    plan_segments,
    walk_forward_votes,
)
from tradebrain.risk.manager import RiskManager
from tradebrain.strategies.builtin import make_strategy
from tradebrain.strategies.hybrid import HybridSignals, HybridStrategy
from tradebrain.strategies.hybrid_config import HybridConfig

CONFIG = HybridConfig(
    retrain_every=400,
    min_train=1200,
    max_train=None,
    model_params={"lightgbm": {"n_estimators": 30, "n_jobs": 1}},
    forecast=ForecastSettings(horizons=(6, 12)),
)
WORLD = SyntheticConfig(bars=2600, signal=0.3, seed=12, edge="trend", half_life=24)


@pytest.fixture(scope="module")
def planted() -> pl.DataFrame:
    return generate_market(WORLD).candles


@pytest.fixture(scope="module")
def planted_features(planted: pl.DataFrame) -> pl.DataFrame:
    return compute_features(planted, list(CONFIG.feature_sets))


def test_segments_start_after_min_train_and_cover_the_rest() -> None:
    assert plan_segments(2600, 400, 1200) == [(1200, 1600), (1600, 2000), (2000, 2400),
                                              (2400, 2600)]  # fmt: skip
    with pytest.raises(UserInputError, match="--min-train"):
        plan_segments(1000, 400, 1200)


def test_each_bundle_trains_only_on_candles_before_its_segment(
    planted: pl.DataFrame, planted_features: pl.DataFrame
) -> None:
    plan = walk_forward_votes(planted, planted_features, CONFIG)
    stamps = planted["timestamp"]
    purge = max(CONFIG.forecast.horizons)
    for segment in plan.segments:
        assert segment.train_candles == segment.start - purge
        assert datetime.fromisoformat(segment.train_end) < stamps[segment.start]
        assert str(stamps[segment.start]) == segment.test_start
        rows = slice(segment.start, segment.end)
        assert np.isfinite(plan.forecast[rows]).all()
        horizon = segment.forecast["calibration"]["horizon"]
        assert horizon in CONFIG.forecast.horizons
        assert (plan.forecast[rows, 2] == horizon).all()
        for name, votes in plan.votes.items():
            voting = name in segment.forecast["voters"]
            assert np.isfinite(votes[rows]).all() if voting else np.isnan(votes[rows]).all()
    assert np.isnan(plan.forecast[: CONFIG.min_train]).all()
    for votes in plan.votes.values():
        assert np.isnan(votes[: CONFIG.min_train]).all()


def test_changing_later_candles_does_not_change_earlier_votes(
    planted: pl.DataFrame, planted_features: pl.DataFrame
) -> None:
    start = 1600  # the second segment
    noise = np.ones(planted.height)
    noise[start + 1 :] = np.random.default_rng(3).uniform(0.9, 1.1, planted.height - start - 1)
    altered = planted.with_columns(
        *(pl.col(c) * noise for c in ("open", "high", "low", "close")),
        pl.col("volume") * noise**2,
    )
    features = compute_features(altered, list(CONFIG.feature_sets))
    original = walk_forward_votes(planted, planted_features, CONFIG)
    changed = walk_forward_votes(altered, features, CONFIG)
    for name, votes in original.votes.items():
        np.testing.assert_array_equal(votes[: start + 1], changed.votes[name][: start + 1])
        assert not np.allclose(votes[start + 1 :], changed.votes[name][start + 1 :])


class RecordingRisk:
    """The app's risk manager, remembering every intent it approved."""

    def __init__(self) -> None:
        self.manager = RiskManager()
        self.approved: list[OrderIntent] = []

    def review(self, intent, account, market):  # type: ignore[no-untyped-def]
        verdict = self.manager.review(intent, account, market)
        if isinstance(verdict, OrderIntent):
            self.approved.append(verdict)
        return verdict


def test_hybrid_trades_the_planted_signal_with_reasons_stops_and_no_shorts(
    planted: pl.DataFrame, planted_features: pl.DataFrame
) -> None:
    plan = walk_forward_votes(planted, planted_features, CONFIG)
    strategy = HybridStrategy(
        HybridSignals.from_tables(planted_features, plan.votes, plan.forecast)
    )
    risk = RecordingRisk()
    config = BacktestConfig(market=MarketType.SPOT)
    result = run_backtest(planted, strategy, config, symbol="SYN", timeframe="1h", risk=risk)
    assert result.trades, "the hybrid strategy never traded on a planted signal"
    assert all(trade.side > 0 for trade in result.trades)
    first = planted["timestamp"][CONFIG.min_train]
    assert all(trade.entry_time > first for trade in result.trades)
    entries = [i for i in risk.approved if not i.reduce_only]
    assert entries and all(i.side is Side.BUY for i in entries)
    for intent in entries:
        assert intent.stop_price is not None and intent.stop_price < planted["close"].max()
        assert intent.target_price is None  # no take-profit: held while the forecast holds
        assert intent.quantity > 0 and intent.reasons
    decisions = strategy.decisions
    assert 0 < len(decisions) <= planted.height - CONFIG.min_train
    assert all(d.reasons for d in decisions)
    assert {d.action for d in decisions} & {Action.BUY, Action.SELL}
    assert all(d.target_position >= 0.0 for d in decisions)  # spot: never short
    assert all(d.target_position <= 1.0 for d in decisions if d.action is Action.BUY)
    frame = strategy.decisions_frame()
    assert frame.columns == ["timestamp", "action", "confidence", "target_position",
                             "expected_return", "horizon", "regime", "filters", "reasons",
                             "votes"]  # fmt: skip
    assert set(json.loads(frame["votes"][0])) <= set(CONFIG.models)


def _candle() -> CandleClosed:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    return CandleClosed("SYN", t, t, 100.0, 101.0, 99.0, 100.0, 5.0)


@pytest.mark.parametrize(
    ("action", "position", "target", "expected"),
    [
        (Action.HOLD, 0.0, 0.0, []),
        (Action.BUY, 0.0, 1.0, [(Side.BUY, False, 100.0)]),  # open: 1.0 x 10,000 / 100
        (Action.BUY, 50.0, 1.0, [(Side.BUY, False, 50.0)]),  # grow the long by the gap
        (Action.SELL, 100.0, 0.25, [(Side.SELL, True, 75.0)]),  # shrink it, reduce-only
        (Action.EXIT, 100.0, 0.0, [(Side.SELL, True, 0.0)]),  # close all (0: all held)
        (Action.EXIT, 0.0, 0.0, []),
        (Action.SELL, 0.0, -0.5, [(Side.SELL, False, 50.0)]),  # open a short
        (Action.SELL, 100.0, -1.0, [(Side.SELL, True, 0.0)]),  # a flip closes first
        (Action.BUY, -50.0, 0.5, [(Side.BUY, True, 0.0)]),
    ],
)
def test_a_target_position_becomes_the_intents_that_reach_it(
    action: Action, position: float, target: float, expected: list[tuple[Side, bool, float]]
) -> None:
    signals = HybridSignals(("x",), np.zeros((1, 1)), {})
    strategy = HybridStrategy(signals, market=MarketType.PERP)
    decision = Decision(
        datetime(2024, 1, 1, tzinfo=UTC), "SYN", action, 0.7, size=0.03, stop=95.0,
        reasons=("because",), target_position=target,
    )  # fmt: skip
    intents = strategy.intents(decision, position, _candle(), 10_000.0)
    assert [(i.side, i.reduce_only, pytest.approx(i.quantity)) for i in intents] == expected
    for intent in intents:
        assert intent.reasons == ("because",)
        if not intent.reduce_only:
            assert intent.stop_price == 95.0 and intent.target_price is None
            assert intent.risk_fraction == 0.03


def test_the_exposure_the_brain_is_told_is_notional_over_equity() -> None:
    from tradebrain.strategies.hybrid import exposure_of

    assert exposure_of(2.0, 100.0, 400.0) == 0.5
    assert exposure_of(-2.0, 100.0, 400.0) == -0.5
    assert exposure_of(2.0, 100.0, 0.0) == 0.0
    assert exposure_of(0.0, 100.0, 400.0) == 0.0


def test_a_perp_long_near_its_liquidation_price_is_closed_by_the_brain() -> None:
    signals = HybridSignals(
        ("atr_pct_14",), np.array([[0.01]]), {"lightgbm": np.array([[0.1, 0.2, 0.7]])}
    )
    strategy = HybridStrategy(signals, market=MarketType.PERP)
    far = StrategyContext("SYN", "1h", bar=0, position=1.0, liquidation_price=60.0, equity=100.0)
    strategy.on_candle(far, _candle())
    assert "liquidation_guard" not in strategy.decisions[-1].filters
    near = StrategyContext("SYN", "1h", bar=0, position=1.0, liquidation_price=99.0, equity=100.0)
    intents = strategy.on_candle(near, _candle())
    decision = strategy.decisions[-1]
    assert decision.action is Action.EXIT
    assert "liquidation_guard" in decision.filters
    assert any("liquidation" in reason for reason in decision.reasons)
    assert [(i.side, i.reduce_only) for i in intents] == [(Side.SELL, True)]


def test_hybrid_without_votes_explains_itself() -> None:
    with pytest.raises(UserInputError, match="needs model votes"):
        make_strategy("hybrid")


def test_report_has_decisions_summary_segments_and_the_oracle(planted: pl.DataFrame) -> None:
    expected = generate_market(WORLD).regimes["oracle_expected_return"].to_numpy()
    request = HybridRequest(planted, "SYN", "1h", hybrid=CONFIG)
    run = hybrid_backtest_report(request, planted=expected)
    report = run.report
    summary = report["decisions_summary"]
    assert sum(summary["actions"].values()) == summary["n_decisions"] > 0
    assert summary["regimes"] and summary["filters_fired"]
    assert len(report["segments"]) == 4
    assert all("calibration" in s["forecast"] for s in report["segments"])
    assert report["metrics"]["n_trades"] == len(report["trades"])
    assert run.result.decisions is not None and run.result.decisions.height > 0
    oracle = report["oracle"]
    assert oracle["strategy"]["log_return"] > 0
    equity = run.result.equity
    ours = float(np.log(equity[-1] / equity[CONFIG.min_train - 1]))
    assert oracle["hybrid_log_return"] == pytest.approx(ours)
    assert oracle["capture_ratio"] == pytest.approx(ours / oracle["strategy"]["log_return"])
    assert report["hybrid"]["horizons"] == [6, 12]


def test_cli_hybrid_writes_every_section(
    planted: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEBRAIN_HOME", str(tmp_path / "home"))
    data, out = tmp_path / "SYN_USDT-1h.parquet", tmp_path / "report.json"
    planted.write_parquet(data)
    args = ["backtest", "--data", str(data), "--strategy", "hybrid", "--retrain-every", "700",
            "--min-train", "1200", "--models", "logistic", "--horizons", "6,12",
            "--json", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    for section in ("metrics", "benchmark", "cost_sensitivity", "trades", "decisions_summary",
                    "segments"):  # fmt: skip
        assert section in report
    assert set(report["cost_sensitivity"]) == {"0x", "1x", "2x"}
    assert [s["test"]["candles"] for s in report["segments"]] == [700, 700]
    assert report["settings"]["models"] == ["logistic"]
    assert all(trade["side"] == "long" for trade in report["trades"])
