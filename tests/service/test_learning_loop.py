"""The learning loop's parts, one at a time: policy, candle window, production watch, settling.

The end-to-end story (a promotion, a refusal, a rollback, ``kill -9`` at each) is told by
``test_learning_scenario.py``; here each rule is checked on its own, on real bundles and a real
MLflow registry (SQLite in temporary folders). Registries that no test changes are made once
per module and shared through ``learning.registry_uri``; a test that promotes, refuses or rolls
back gets a registry of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebrain.config import LearningSettings, Settings
from tradebrain.core.atomic_write import write_parquet_atomic
from tradebrain.core.events import CandleClosed, make_candle
from tradebrain.data.schemas import SCHEMAS, Kind
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.learning.fan_out import TrainJob, train_job
from tradebrain.models.bundle import ModelBundle
from tradebrain.service.learning_loop import (
    SUPERVISE_BARS,
    CandleWindow,
    LearningLoop,
    LearningPolicy,
    ProductionWatch,
)
from tradebrain.service.options import ServeOptions
from tradebrain.state import StateStore
from tradebrain.state.records import CandleRecord, Step

SYMBOL = "BTC/USDT:USDT"
HOUR = timedelta(hours=1)
TRAINED = 1_500  # candles of warm-up history (the first production learns from them)
LIVE = 300  # candles served after it
CASH = 10_000.0

# --- what every loop test stands on ----------------------------------------------------------


@dataclass(frozen=True)
class Trained:
    """The market, the first production's bundle and the folder it was saved to."""

    market: pl.DataFrame
    bundle: ModelBundle
    folder: Path

    @property
    def history(self) -> pl.DataFrame:
        return self.market.head(TRAINED)

    def live(self, count: int) -> list[CandleClosed]:
        """The first ``count`` candles served after the warm-up."""
        return [candle_of(row) for row in self.market.slice(TRAINED, count).iter_rows(named=True)]

    def history_through(self, served: int) -> pl.DataFrame:
        """The history a restarted service reads: warm-up plus the candles already served."""
        return self.market.head(TRAINED + served)


def candle_of(row: dict[str, Any], shift: timedelta = timedelta(0)) -> CandleClosed:
    opened = row["timestamp"] + shift
    prices = (row[name] for name in ("open", "high", "low", "close", "volume"))
    return make_candle(SYMBOL, opened, opened + HOUR, *prices)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("trained")
    config = SyntheticConfig(bars=TRAINED + LIVE, seed=1, signal=0.4, edge="trend")
    market = generate_market(config).candles
    write_parquet_atomic(market.head(TRAINED), folder / "candles.parquet")
    dump = Settings.model_validate({"models": {"enabled": ["logistic"]}}).model_dump(mode="json")
    result = train_job(TrainJob(SYMBOL, folder / "candles.parquet", dump, folder / "bundle"))
    return Trained(market, ModelBundle.load(result.bundle_dir), result.bundle_dir)


def loop_settings(home: Path, **learning: Any) -> Settings:
    return Settings.model_validate(
        {
            "home": home,
            "models": {"enabled": ["logistic"]},
            "learning": {"enabled": True, "experience_every_bars": 100_000, **learning},
        }
    )


LoopMaker = Callable[..., LearningLoop]


@pytest.fixture
def make_loop(tmp_path: Path) -> Iterator[LoopMaker]:
    """``make_loop(store=None, **learning)``: a loop as the runner builds it, home ``tmp_path``."""
    made: list[LearningLoop] = []

    def make(store: StateStore | None = None, **learning: Any) -> LearningLoop:
        state = tmp_path / "state.db"
        options = ServeOptions(symbols=(SYMBOL,), state=str(state), warmup=TRAINED)
        loop = LearningLoop(
            loop_settings(tmp_path, **learning),
            options,
            store or StateStore.for_path(state),
            timeframe="1h",
            source="synthetic",
        )
        made.append(loop)
        return loop

    yield make
    for loop in made:
        loop.close()


def _registry(
    home: Path, trained: Trained, production: tuple[ModelBundle, Path], candidate: Path | None
) -> str:
    """Make a registry with a first production (and a candidate); return its URI."""
    options = ServeOptions(symbols=(SYMBOL,), state=str(home / "state.db"), warmup=TRAINED)
    store = StateStore.for_path(home / "state.db")
    loop = LearningLoop(loop_settings(home), options, store, timeframe="1h", source="synthetic")
    loop.adopt(*production, trained.history)
    registry = loop.registry
    if candidate is not None:
        first = registry.get(1)
        assert first is not None
        registry.register(candidate, replace(first.lineage, parent=1, source="retrained"), {})
    return str(registry.tracking_uri)


@pytest.fixture(scope="module")
def with_candidate(tmp_path_factory: pytest.TempPathFactory, trained: Trained) -> str:
    """A registry no test changes: v1 in production, v2 (the same bundle) the candidate."""
    home = tmp_path_factory.mktemp("with-candidate")
    return _registry(home, trained, (trained.bundle, trained.folder), trained.folder)


@pytest.fixture(scope="module")
def production_only(tmp_path_factory: pytest.TempPathFactory, trained: Trained) -> str:
    """A registry no test changes: v1 in production, nothing else."""
    home = tmp_path_factory.mktemp("production-only")
    return _registry(home, trained, (trained.bundle, trained.folder), None)


@pytest.fixture(scope="module")
def better_candidate(tmp_path_factory: pytest.TempPathFactory, trained: Trained) -> str:
    """A registry no test changes: v1 stands aside (trained without skill), v2 the skilled
    bundle: on the trending candles served, v2 passes the gates."""
    home = tmp_path_factory.mktemp("better-candidate")
    calibration = trained.bundle.calibration
    assert calibration is not None
    flat = replace(trained.bundle, calibration=replace(calibration, beta=0.0, weights={}))
    return _registry(home, trained, (flat, flat.save(home / "flat")), trained.folder)


def adopted(loop: LearningLoop, trained: Trained) -> LearningLoop:
    """Adopt the registry's production (the trained bundle when the registry is empty)."""
    loop.adopt(trained.bundle, trained.folder, trained.history)
    return loop


def ready(
    loop: LearningLoop, trained: Trained, saved: dict[str, Any] | None = None, served: int = 0
) -> LearningLoop:
    """Adopt production and restore ``saved`` (after ``served`` candles) as ``prepare`` does."""
    adopted(loop, trained).restore(saved, {SYMBOL: trained.history_through(served)})
    return loop


def registered_candidate(loop: LearningLoop, trained: Trained) -> int:
    """Register the trained bundle again as a candidate (as a retraining would); its version."""
    production = loop.registry.production()
    assert production is not None
    lineage = replace(production.lineage, parent=production.version, source="retrained")
    return int(loop.registry.register(trained.folder, lineage, {}).version)


def saved_after(loop: LearningLoop) -> dict[str, Any]:
    """The loop's state as the runner saves it with a candle (through JSON)."""
    return json.loads(json.dumps(loop.state()))


# --- the policy ------------------------------------------------------------------------------


def test_the_significance_is_split_over_the_planned_looks() -> None:
    learning = LearningSettings(min_track_bars=300, max_track_bars=1_200, gate_alpha=0.05)
    policy = LearningPolicy.from_settings(learning)
    assert policy.looks == 4
    assert policy.gates.alpha == pytest.approx(0.05 / 4)
    assert (policy.gates.min_track, policy.gates.max_track) == (300, 1_200)


def test_a_max_track_shorter_than_min_track_is_one_look_at_min_track() -> None:
    learning = LearningSettings(min_track_bars=500, max_track_bars=200, gate_alpha=0.05)
    policy = LearningPolicy.from_settings(learning)
    assert policy.looks == 1
    assert policy.gates.alpha == pytest.approx(0.05)
    assert policy.gates.max_track == policy.gates.min_track == 500


@given(
    min_track=st.integers(50, 5_000),
    max_track=st.integers(100, 30_000),
    alpha=st.floats(0.001, 0.49),
)
def test_the_looks_share_exactly_the_configured_significance(
    min_track: int, max_track: int, alpha: float
) -> None:
    learning = LearningSettings(
        min_track_bars=min_track, max_track_bars=max_track, gate_alpha=alpha
    )
    policy = LearningPolicy.from_settings(learning)
    assert policy.looks >= 1
    assert policy.gates.alpha * policy.looks == pytest.approx(alpha)
    gates = policy.gates  # a look every min_track bars, and one at max_track
    assert (policy.looks - 1) * gates.min_track < gates.max_track <= policy.looks * gates.min_track


def test_a_production_showing_no_edge_gets_no_monitor() -> None:
    policy = LearningPolicy.from_settings(LearningSettings())
    assert policy.monitor(0.0, 0.01) is None
    assert policy.monitor(-0.002, 0.01) is None


# --- the candle window -----------------------------------------------------------------------


@given(held=st.integers(0, 60), size=st.integers(1, 40), tail=st.none() | st.integers(1, 70))
def test_a_window_holds_the_newest_candles_up_to_its_size(
    held: int, size: int, tail: int | None
) -> None:
    history = generate_market(SyntheticConfig(bars=60, seed=3)).candles.head(held)
    window = CandleWindow(history, size)
    kept = history.tail(size)
    assert window.frame().equals(kept)
    assert window.frame(tail).equals(kept if tail is None else kept.tail(tail))


def test_a_window_takes_a_newer_candle_and_drops_its_oldest() -> None:
    market = generate_market(SyntheticConfig(bars=11, seed=3)).candles
    window = CandleWindow(market.head(10), size=10)
    window.append(candle_of(market.row(10, named=True)))
    assert window.frame().equals(market.tail(10))


def test_a_window_ignores_a_candle_it_already_holds_or_an_older_one() -> None:
    market = generate_market(SyntheticConfig(bars=10, seed=3)).candles
    window = CandleWindow(market, size=20)
    window.append(candle_of(market.row(9, named=True)))  # replayed after a restart
    window.append(candle_of(market.row(4, named=True), timedelta(minutes=30)))  # out of order
    assert window.frame().equals(market)


def test_a_window_frame_has_the_candle_schema_even_when_empty() -> None:
    schema = SCHEMAS[Kind.CANDLES]
    market = generate_market(SyntheticConfig(bars=5, seed=3)).candles
    empty = CandleWindow(market.head(0), size=5)
    assert empty.frame().schema == pl.Schema(schema.columns)
    assert empty.frame().height == 0
    empty.append(
        candle_of(market.row(0, named=True))
    )  # a window that started empty, then got a candle
    assert empty.frame().schema == pl.Schema(schema.columns)
    assert empty.frame().equals(market.head(1))


# --- the production watch --------------------------------------------------------------------


def watch_policy(block: int = 4, burn_in: int = 20, false_alarm: float = 200.0) -> LearningPolicy:
    learning = LearningSettings(
        monitor_block_bars=block,
        monitor_burn_in_blocks=burn_in,
        monitor_false_alarm_blocks=false_alarm,
    )
    return LearningPolicy.from_settings(learning)


def feed(watch: ProductionWatch, returns: np.ndarray, policy: LearningPolicy) -> list[bool]:
    return [watch.add(float(r), policy) for r in returns]


EDGE, NOISE = 0.001, 0.001  # per-bar mean and standard deviation of a production's log return


def bars(rng: np.random.Generator, mean: float, count: int) -> np.ndarray:
    return rng.normal(mean, NOISE, count)


def test_a_production_that_never_trades_never_gets_a_profile() -> None:
    policy = watch_policy()
    watch = ProductionWatch(1)
    alarms = feed(watch, np.zeros(4_000), policy)
    assert not any(alarms)
    assert watch.cusum is None
    assert len(watch.burn_in) <= policy.burn_in_blocks  # the burn-in slides, it does not grow


def test_a_production_that_trades_gets_a_profile_right_after_its_burn_in() -> None:
    policy = watch_policy(block=4, burn_in=20)
    returns = bars(np.random.default_rng(5), EDGE, 80)
    watch = ProductionWatch(1)
    feed(watch, returns[:79], policy)
    assert watch.cusum is None
    feed(watch, returns[79:], policy)
    assert watch.cusum is not None
    blocks = returns.reshape(20, 4).sum(axis=1)
    assert watch.cusum.expected_mean == pytest.approx(blocks.mean() / 2)  # half the edge shown
    assert watch.cusum.unit == "4-bar block"


@pytest.mark.parametrize(
    ("blocks", "trading"),
    [
        (6, 3),
        (5, 3),
        (6, 2),
        (5, 2),
    ],
)
def test_the_burn_in_profiles_only_a_production_trading_in_at_least_half_its_blocks(
    blocks: int, trading: int
) -> None:
    policy = watch_policy(block=1, burn_in=blocks)
    returns = np.zeros(blocks)
    returns[:trading] = [0.01 + 0.001 * i for i in range(trading)]
    watch = ProductionWatch(1)
    feed(watch, returns, policy)
    assert (watch.cusum is not None) == (2 * trading >= blocks)


def test_a_production_losing_in_its_burn_in_is_profiled_once_its_last_blocks_show_an_edge() -> None:
    policy = watch_policy(block=4, burn_in=20)
    rng = np.random.default_rng(8)
    watch = ProductionWatch(1)
    feed(watch, bars(rng, -EDGE, 200), policy)
    assert watch.cusum is None  # nothing to defend
    assert len(watch.burn_in) == 20
    feed(watch, bars(rng, EDGE, 80), policy)  # the 20 newest blocks alone set the profile
    assert watch.cusum is not None and watch.cusum.expected_mean > 0


BURN_IN = 200  # blocks: enough to pin the edge shown and its noise down to a few percent


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_production_whose_edge_is_gone_raises_the_alarm(seed: int) -> None:
    policy = watch_policy(block=4, burn_in=BURN_IN, false_alarm=1_000.0)
    rng = np.random.default_rng(seed)
    watch = ProductionWatch(1)
    assert not any(feed(watch, bars(rng, EDGE, 4 * BURN_IN), policy))
    alarms = feed(watch, bars(rng, 0.0, 4 * 60), policy)  # 60 blocks without an edge
    assert any(alarms)
    assert all(alarms[alarms.index(True) :])  # the alarm latches, even mid-block


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_production_keeping_most_of_its_edge_keeps_quiet_for_a_long_run(seed: int) -> None:
    policy = watch_policy(block=4, burn_in=BURN_IN, false_alarm=1_000.0)
    rng = np.random.default_rng(seed)
    watch = ProductionWatch(1)
    feed(watch, bars(rng, EDGE, 4 * BURN_IN), policy)
    alarms = feed(watch, bars(rng, 0.8 * EDGE, 4 * 1_000), policy)  # the false-alarm run
    assert watch.cusum is not None and watch.cusum.n == 1_000
    assert not any(alarms)


@settings(max_examples=40)
@given(split=st.integers(0, 80 + 4 * 40))
def test_a_watch_saved_and_restored_at_any_bar_goes_on_as_if_never_stopped(split: int) -> None:
    policy = watch_policy()
    rng = np.random.default_rng(11)
    returns = np.concatenate([bars(rng, EDGE, 80), bars(rng, -EDGE, 4 * 40)])
    straight = ProductionWatch(3)
    expected = feed(straight, returns, policy)
    first = ProductionWatch(3)
    before = feed(first, returns[:split], policy)
    restored = ProductionWatch.from_dict(json.loads(json.dumps(first.to_dict())))
    after = feed(restored, returns[split:], policy)
    assert before + after == expected
    assert restored.to_dict() == straight.to_dict()
    assert any(expected)  # the series does reach the alarm, so the CUSUM state was exercised


# --- settling the registry changes -----------------------------------------------------------


def test_settling_with_nothing_decided_does_nothing(make_loop: LoopMaker) -> None:
    step = make_loop().settle()
    assert (step.events, step.swap, step.mute, step.shadow_decisions) == ([], None, None, [])


def test_a_promotion_made_before_a_restart_is_not_made_again(
    make_loop: LoopMaker, trained: Trained
) -> None:
    loop = adopted(make_loop(), trained)
    version = registered_candidate(loop, trained)
    decided = {
        "action": "promote",
        "version": version,
        "reason": "beat production in shadow",
        "evidence": {"t_stat": 3.1},
        "profile": [0.004, 0.002],
    }
    loop.restore({"pending": decided}, {SYMBOL: trained.history})
    saved = saved_after(loop)  # what the runner saved with the candle that decided it

    step = loop.settle()
    assert step.swap is not None and step.swap[0] == version
    assert step.events == [f"production is now v{version} (promoted: beat production in shadow)"]
    assert loop.watch is not None and loop.watch.version == version
    assert loop.watch.cusum is not None
    assert loop.watch.cusum.expected_mean == pytest.approx(0.002)  # half the shadow's mean
    audit = loop.registry.audit()
    assert (audit[0].action, audit[0].version) == ("promoted", version)

    restarted = ready(make_loop(), trained, saved)
    assert restarted.production == version  # the registry says so, whatever was saved
    again = restarted.settle()
    assert (again.events, again.swap) == ([], None)
    assert len(restarted.registry.audit()) == len(audit)


def test_a_refusal_made_before_a_restart_is_not_made_again(
    make_loop: LoopMaker, trained: Trained
) -> None:
    loop = adopted(make_loop(), trained)
    version = registered_candidate(loop, trained)
    decided = {
        "action": "refuse",
        "version": version,
        "reason": "production is better",
        "evidence": {"t_stat": -2.9},
    }
    loop.restore({"pending": decided}, {SYMBOL: trained.history})
    saved = saved_after(loop)

    step = loop.settle()
    assert step.events == [f"candidate v{version} refused: production is better"]
    refused = loop.registry.get(version)
    assert refused is not None and refused.status == "refused"
    audit = loop.registry.audit()

    restarted = ready(make_loop(), trained, saved)
    again = restarted.settle()
    assert again.swap is None
    assert len(restarted.registry.audit()) == len(audit)
    still = restarted.registry.get(version)
    assert still is not None and still.tags == refused.tags  # not even refused_at moved
    production = restarted.registry.production()
    assert production is not None and production.version == 1


def test_a_rollback_with_no_earlier_production_is_reported_not_raised(
    make_loop: LoopMaker, trained: Trained, production_only: str
) -> None:
    reason = "production v1 degraded: CUSUM 9.1 > 8.0"
    decided = {"action": "rollback", "from": 1, "reason": reason, "evidence": {"cusum": 9.1}}
    loop = ready(make_loop(registry_uri=production_only), trained, {"pending": decided})
    audit = loop.registry.audit()
    step = loop.settle()
    assert step.swap is None
    assert len(step.events) == 1
    assert step.events[0].startswith(f"{reason}; the registry refused to rollback (cannot roll")
    assert loop.production == 1 and loop.pending is None
    assert len(loop.registry.audit()) == len(audit)


def test_a_production_changed_while_the_service_was_down_starts_with_a_fresh_watch(
    make_loop: LoopMaker, trained: Trained
) -> None:
    loop = ready(make_loop(), trained)
    saved = {
        **saved_after(loop),
        "production_since": trained.history["timestamp"][-1].isoformat(),
        "muted": ["logistic"],
        "watch": {"version": 1, "block": [0.001], "burn_in": [0.01, 0.02], "cusum": None},
    }
    version = registered_candidate(loop, trained)
    loop.registry.promote(version, reason="operator: promote", evidence={})  # the CLI's change

    restarted = ready(make_loop(), trained, saved)
    assert restarted.production == version
    assert restarted.watch == ProductionWatch(version)
    assert restarted.muted == frozenset() and restarted.production_since is None


# --- one candle at a time --------------------------------------------------------------------


def serve(loop: LearningLoop, candles: list[CandleClosed], equity: float = CASH) -> list[Any]:
    return [loop.on_candle(candle, equity) for candle in candles]


def test_the_shadow_starts_on_the_candle_after_a_candidate_appears(
    make_loop: LoopMaker, trained: Trained, with_candidate: str
) -> None:
    loop = ready(make_loop(registry_uri=with_candidate), trained)
    assert loop.status()["pending_candidate"] == 2 and loop.status()["shadow"] is None
    first, second, third = serve(loop, trained.live(3))
    assert first.shadow_decisions == []
    assert first.events == [
        f"shadow started: candidate v2 against production v1 from "
        f"{trained.live(1)[0].close_time.isoformat()}"
    ]
    for step, candle in ((second, trained.live(2)[1]), (third, trained.live(3)[2])):
        [(run, document)] = step.shadow_decisions
        assert run == "paper:shadow:v2"
        assert document["shadow"] is True and document["model_version"] == 2
        assert document["timestamp"] == candle.open_time.isoformat()
    status = loop.status()
    assert status["candidate_version"] == 2 and status["pending_candidate"] is None
    assert status["shadow"]["bars"] == 2


def test_a_restarted_loop_saves_the_same_state_and_shows_the_same_status(
    make_loop: LoopMaker, trained: Trained, with_candidate: str
) -> None:
    served = 40
    loop = ready(make_loop(registry_uri=with_candidate), trained)
    closes = trained.market["close"].slice(TRAINED, served).to_numpy()
    for candle, equity in zip(trained.live(served), CASH * closes / closes[0], strict=True):
        loop.on_candle(candle, float(equity))  # an account that moves: the watch gets returns
    saved = saved_after(loop)
    assert saved["watch"]["burn_in"] and saved["watch"]["block"]
    assert saved["shadow"]["version"] == 2

    restarted = ready(make_loop(registry_uri=with_candidate), trained, saved, served=served)
    assert saved_after(restarted) == saved
    assert restarted.status() == loop.status()


def judged(loop: LearningLoop, candles: list[CandleClosed]) -> list[int]:
    """Serve ``candles``; return the shadow bars at which the candidate was judged."""
    looks: list[int] = []
    for candle in candles:
        loop.on_candle(candle, CASH)
        verdict = loop.last_verdict
        if verdict is not None and (not looks or looks[-1] != verdict["bars"]):
            looks.append(verdict["bars"])
    return looks


@pytest.mark.parametrize(
    ("min_track", "max_track"),
    [
        (50, 100),
        (60, 100),  # judged at 60 and at max_track 100: two looks planned
    ],
)
def test_a_candidate_is_judged_no_more_often_than_the_looks_alpha_was_split_over(
    make_loop: LoopMaker, trained: Trained, with_candidate: str, min_track: int, max_track: int
) -> None:
    loop = make_loop(
        registry_uri=with_candidate, min_track_bars=min_track, max_track_bars=max_track
    )
    looks = judged(ready(loop, trained), trained.live(max_track + 5))
    assert looks[-1] == max_track  # the same bundle twice: no better, refused at max_track
    assert loop.pending is not None and loop.pending["action"] == "refuse"
    assert len(looks) <= loop.policy.looks


def test_a_candidate_awaiting_approval_is_not_judged_again_after_max_track(
    make_loop: LoopMaker, trained: Trained, better_candidate: str
) -> None:
    loop = make_loop(registry_uri=better_candidate, min_track_bars=50, max_track_bars=100)
    looks = judged(ready(loop, trained), trained.live(150))
    assert loop.awaiting_approval == 2  # it passed: auto_promote is off, so it waits
    assert loop.last_verdict is not None and loop.last_verdict["decision"] == "promote"
    assert len(looks) <= loop.policy.looks


@pytest.fixture(scope="module")
def voted_up(tmp_path_factory: pytest.TempPathFactory, trained: Trained) -> StateStore:
    """A state store whose production voted 'up' on the 300 last warm-up candles, which fell."""
    store = StateStore.for_path(tmp_path_factory.mktemp("voted") / "state.db")
    voted = trained.market.slice(TRAINED - 300, 300)
    for opened, *prices in voted.select(
        "timestamp", "open", "high", "low", "close", "volume"
    ).rows():
        candle = CandleRecord(SYMBOL, "1h", opened, *prices)
        decision = {
            "timestamp": opened.isoformat(),
            "symbol": SYMBOL,
            "price": candle.close,
            "horizon": 12,
            "action": "hold",
            "votes": {"logistic": [0.05, 0.05, 0.9]},
        }
        store.record_step(Step("paper", SYMBOL, "1h", candle, decision=decision))
    return store


def test_a_production_model_voting_up_on_a_falling_market_is_weighed_to_zero(
    make_loop: LoopMaker, trained: Trained, with_candidate: str, voted_up: StateStore
) -> None:
    since = trained.market["timestamp"][TRAINED - 300].isoformat()
    saved = {"production": 1, "production_since": since, "bars": SUPERVISE_BARS - 1}
    loop = ready(make_loop(registry_uri=with_candidate, store=voted_up), trained, saved)
    [step] = serve(loop, trained.live(1))
    assert step.mute == frozenset({"logistic"})
    assert any(e.startswith("model logistic of v1 weighed to zero: ") for e in step.events)
    assert loop.health["logistic"]["status"] == "failing"
    assert loop.retrain_wanted.startswith("retrain: 1 model failing on live decisions")
    assert saved_after(loop)["muted"] == ["logistic"]


def test_votes_made_before_this_production_traded_are_not_held_against_it(
    make_loop: LoopMaker, trained: Trained, with_candidate: str, voted_up: StateStore
) -> None:
    since = trained.live(1)[0].open_time.isoformat()  # it started trading after those votes
    saved = {"production": 1, "production_since": since, "bars": SUPERVISE_BARS - 1}
    loop = ready(make_loop(registry_uri=with_candidate, store=voted_up), trained, saved)
    [step] = serve(loop, trained.live(1))
    assert step.mute is None
    assert loop.muted == frozenset() and loop.retrain_wanted == ""


# --- retraining after a restart --------------------------------------------------------------


def interrupted(trained: Trained) -> dict[str, Any]:
    since = trained.history["timestamp"][-1] + HOUR
    return {"retraining": {"since": since.isoformat(), "reason": "schedule: 2000 bars"}}


def test_an_interrupted_retraining_is_started_again_after_a_restart(
    make_loop: LoopMaker, trained: Trained, production_only: str, tmp_path: Path
) -> None:
    saved = interrupted(trained)
    loop = ready(make_loop(registry_uri=production_only), trained, saved, served=10)
    step = loop.resume_retraining()
    reason = "schedule: 2000 bars (started again after an interruption)"
    assert step.events == [f"retraining started ({reason})"]
    assert loop.worker.busy
    assert saved_after(loop)["retraining"]["reason"] == reason
    [written] = (tmp_path / "learning" / "datasets").glob("*.parquet")
    # the very candles it was started on, not the 10 served since
    assert pl.read_parquet(written).equals(trained.history)
    loop.close()
    assert not loop.worker.busy
    assert loop.resume_retraining().events == []  # started again once, not twice


def test_an_interrupted_retraining_whose_candidate_was_registered_is_not_started_again(
    make_loop: LoopMaker, trained: Trained, with_candidate: str
) -> None:
    loop = ready(make_loop(registry_uri=with_candidate), trained, interrupted(trained))
    assert loop.resume_retraining().events == []
    assert not loop.worker.busy
