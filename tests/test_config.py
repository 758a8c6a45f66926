"""Settings: defaults from the seed system, file and environment layers, errors that explain."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from pydantic import BaseModel, SecretStr
from typer.testing import CliRunner

from tradebrain.brain.brain import Brain
from tradebrain.brain.fusion import fuse
from tradebrain.brain.positioning import Forecast
from tradebrain.brain.regime import Regime
from tradebrain.brain.tuning import BrainTuning, PositionContext
from tradebrain.cli._shared import tracking_registry
from tradebrain.config import (
    NOTIFY_EVENTS,
    BrainSettings,
    ExecutionSettings,
    FusionWeights,
    NotifySettings,
    RiskSettings,
    Settings,
    load_settings,
    write_default_config,
)
from tradebrain.core.orders import Liquidity, OrderIntent, Side
from tradebrain.exceptions import ConfigError, UserInputError
from tradebrain.execution.account import AccountSnapshot, ClosedTrade, Position
from tradebrain.execution.costs import settings_costs
from tradebrain.execution.monitor import MonitorRules, PositionMonitor
from tradebrain.learning.executor import executor_kind
from tradebrain.risk import Denial, MarketState, MarketType, RiskManager
from tradebrain.risk.policy import PolicyRules
from tradebrain.risk.sizing import SizingRules
from tradebrain.rl.agents import N_STATES, QTableSizer, state_index
from tradebrain.rl.env import MULTIPLIERS
from tradebrain.rl.saved import AGENT_FOLDER, serving_agent
from tradebrain.service.learning_loop import LearningPolicy
from tradebrain.service.notify import Notifier
from tradebrain.strategies.agent_port import AgentView
from tradebrain.strategies.hybrid_config import HybridConfig


def test_defaults_are_the_seed_weights_and_the_edge_to_money_risk_limits() -> None:
    settings = load_settings(env={})
    weights = settings.brain.fusion_weights
    assert (weights.order_flow, weights.sequence, weights.cnn, weights.rl, weights.risk) == (
        0.30,
        0.25,
        0.20,
        0.15,
        0.10,
    )
    risk = settings.risk
    assert risk.risk_per_trade == 0.05
    assert risk.stop_atr_multiple == 6.0
    assert risk.reward_risk == 2.0
    assert risk.max_daily_drawdown == 0.10
    assert risk.max_drawdown == 0.40
    assert risk.margin_cap == 1.0
    assert risk.leverage_cap == 3
    assert settings.execution.taker_fee == settings.execution.maker_fee == 0.001
    assert settings.execution.slippage_bps == 1.0
    assert settings.home == Path("./tradebrain_data")


def test_the_rules_that_cost_money_after_costs_are_off_by_default() -> None:
    risk = load_settings(env={}).risk
    assert risk.take_profit is False
    assert risk.kelly_from_trades is False
    assert risk.trade_record_rules is False
    assert risk.defensive_min_confidence == 0.0
    assert risk.manage_exits is False


def test_the_file_overrides_defaults_and_the_environment_overrides_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tb.yaml"
    path.write_text(yaml.safe_dump({"risk": {"risk_per_trade": 0.01, "leverage_cap": 2}}))
    settings = load_settings(path, env={"TRADEBRAIN_RISK__LEVERAGE_CAP": "5"})
    assert settings.risk.risk_per_trade == 0.01
    assert settings.risk.leverage_cap == 5
    assert settings.risk.reward_risk == 2.0


def test_tradebrain_home_comes_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(env={"TRADEBRAIN_HOME": str(tmp_path / "home")})
    assert settings.home == tmp_path / "home"


def test_nested_environment_lists_are_read_as_json() -> None:
    settings = load_settings(env={"TRADEBRAIN_MODELS__ENABLED": '["lightgbm", "cnn"]'})
    assert settings.models.enabled == ["lightgbm", "cnn"]


def test_an_out_of_range_value_names_the_key_the_value_the_range_and_the_source() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env={"TRADEBRAIN_RISK__RISK_PER_TRADE": "0.5"})
    message = str(error.value)
    assert "risk.risk_per_trade = '0.5'" in message
    assert "0 < x <= 0.1" in message
    assert "TRADEBRAIN_RISK__RISK_PER_TRADE" in message


def test_a_bad_value_in_the_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tb.yaml"
    path.write_text("risk:\n  leverage_cap: 500\n")
    with pytest.raises(ConfigError, match=r"risk.leverage_cap = 500 \(from file .*tb.yaml\)"):
        load_settings(path, env={})


def test_fusion_weights_must_sum_to_one() -> None:
    with pytest.raises(ConfigError, match=r"sum to 1\.0"):
        load_settings(env={"TRADEBRAIN_BRAIN__FUSION_WEIGHTS__RL": "0.5"})


def test_an_unknown_setting_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "tb.yaml"
    path.write_text("risk:\n  risk_per_trad: 0.01\n")
    with pytest.raises(ConfigError, match=r"risk\.risk_per_trad: unknown setting"):
        load_settings(path, env={})


def test_a_missing_or_malformed_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("risk: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken, env={})


def test_init_writes_a_file_that_loads_back_to_the_defaults(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "tradebrain.yaml")
    assert load_settings(path, env={}) == Settings()
    with pytest.raises(ConfigError, match="already exists"):
        write_default_config(path)


def test_the_api_token_is_masked_when_shown() -> None:
    settings = load_settings(env={"TRADEBRAIN_API__TOKEN": "s3cret-token"})
    assert "s3cret-token" not in settings.to_yaml()
    assert "s3cret-token" in settings.to_yaml(reveal_secrets=True)
    assert "s3cret-token" not in repr(settings)


def test_a_token_given_as_a_yaml_list_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "tradebrain.yaml"
    path.write_text("api:\n  token: [hunter2-secret, second-part]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert (
        f"api.token = <hidden list> (from file {path}): Input should be a valid string" in message
    )
    assert "hunter2" not in message and "second-part" not in message


def test_a_token_variable_is_read_as_text_even_when_it_looks_like_json() -> None:
    for token in ('["hunter3"]', "[not-json", '{"a": "hunter4"}'):
        settings = load_settings(env={"TRADEBRAIN_API__TOKEN": token})
        assert settings.api.token is not None
        assert settings.api.token.get_secret_value() == token


def test_notify_urls_come_from_a_json_list_variable_and_are_masked_when_shown() -> None:
    urls = '["tgram://123456:bot-secret/42", "json://hook.example/secret-path"]'
    settings = load_settings(env={"TRADEBRAIN_NOTIFY__URLS": urls})
    assert [u.get_secret_value() for u in settings.notify.urls] == [
        "tgram://123456:bot-secret/42",
        "json://hook.example/secret-path",
    ]
    for shown in (settings.to_yaml(), repr(settings), str(settings.model_dump(mode="json"))):
        assert "bot-secret" not in shown and "secret-path" not in shown
    assert "bot-secret" in settings.to_yaml(reveal_secrets=True)
    assert yaml.safe_load(settings.to_yaml())["notify"]["urls"] == ["**********"] * 2


def test_one_notify_url_may_be_given_as_plain_text_and_an_empty_one_means_none() -> None:
    settings = load_settings(env={"TRADEBRAIN_NOTIFY__URLS": "tgram://123456:bot-secret/42"})
    assert [u.get_secret_value() for u in settings.notify.urls] == ["tgram://123456:bot-secret/42"]
    assert load_settings(env={"TRADEBRAIN_NOTIFY__URLS": " "}).notify.urls == []
    assert load_settings(env={}).notify.events == list(NOTIFY_EVENTS)


def test_a_notify_url_list_that_does_not_parse_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"TRADEBRAIN_NOTIFY__URLS": '["tgram://123456:bot-secret/42"'})
    message = str(caught.value)
    assert "TRADEBRAIN_NOTIFY__URLS" in message and "not a JSON list" in message
    assert "bot-secret" not in message


def test_notify_urls_of_the_wrong_shape_are_refused_without_echoing_them(tmp_path: Path) -> None:
    path = tmp_path / "tradebrain.yaml"
    path.write_text("notify:\n  urls: {telegram: tgram://123456:bot-secret/42}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert f"notify.urls = <hidden dict> (from file {path})" in str(caught.value)
    assert "bot-secret" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"TRADEBRAIN_NOTIFY__URLS": '["tgram://a:bot-secret/1", 7, ""]'})
    message = str(caught.value)
    assert "notify.urls.1 = <hidden int> (from TRADEBRAIN_NOTIFY__URLS)" in message
    assert "bot-secret" not in message


def test_an_unknown_notification_kind_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"notify\.events\.0 = 'fils'"):
        load_settings(env={"TRADEBRAIN_NOTIFY__EVENTS": '["fils"]'})


def test_the_test_suites_own_variables_are_not_settings() -> None:
    env = {"TRADEBRAIN_REAL_DATA_REQUIRED": "1", "TRADEBRAIN_BROWSER_REQUIRED": "1"}
    assert load_settings(env=env) == Settings()


# --- every setting changes some behaviour ------------------------------------------------------
#
# For each leaf of Settings: change it from the default to another valid value and check that
# something built from the settings behaves differently. "Behaves" means what the product builds
# and then uses: the risk gate's verdicts on a set of orders, the position monitor's levels on a
# ride, what a fill costs, the brain's decisions on a set of candles, the fusion of a set of votes,
# the brain parts switched on, the hybrid's retraining plan, and, for the sections read only by
# commands (home, data, api), what the command builds from them (the stored files, the generated
# market's size, the exchange's timeout and retries, the server's address and token, the
# prediction pool).


def _leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Return the dotted name of every leaf field of ``model``, walking nested sections."""
    names: list[str] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(_leaves(annotation, f"{prefix}{name}."))
        else:
            names.append(f"{prefix}{name}")
    return names


@dataclass(frozen=True)
class Change:
    """A new value for one setting, other settings it moves with, and the context it acts in.

    ``also`` holds changes the validators require alongside (fusion weights sum to 1);
    ``context`` holds settings applied to both sides first, for a setting that only acts when
    another switch is on (the Kelly numbers act once ``kelly_from_trades`` is on).
    """

    value: Any
    also: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    dead: str | None = None  # why nothing reads it (the case is a strict xfail)


def _weight(name: str) -> Change:
    partner = "sequence" if name == "order_flow" else "order_flow"
    default = getattr(FusionWeights(), name)
    return Change(
        round(default + 0.05, 10),
        also={
            f"brain.fusion_weights.{partner}": round(getattr(FusionWeights(), partner) - 0.05, 10)
        },
    )


KELLY_ON = {"risk.kelly_from_trades": True}
NOTIFY_URL = SecretStr("json://127.0.0.1:9/notify")
NOTIFY_ON = {"notify.urls": [NOTIFY_URL]}
CHANGES: dict[str, Change] = {
    "home": Change(Path("./another_home")),
    "data.default_exchange": Change("okx"),
    "data.default_timeframe": Change("4h"),
    "data.allow_gaps": Change(True),
    "data.synthetic_bars": Change(5_000),
    "data.synthetic_seed": Change(8),
    "data.download_retries": Change(2),
    "data.download_timeout_s": Change(30.0),
    "features.sets": Change(["atomic"]),
    "models.enabled": Change(["logistic"]),
    "models.seed": Change(7),
    "models.torch_threads": Change(4, context={"models.enabled": ["logistic", "lstm", "cnn"]}),
    "models.window": Change(64),
    "models.horizons": Change([4, 12]),
    "models.max_features": Change(16),
    **{f"brain.fusion_weights.{name}": _weight(name) for name in FusionWeights.model_fields},
    "brain.kalman": Change(False),
    "brain.chop_filter": Change(False),
    "brain.panic_exit": Change(False),
    "brain.funding_flip_filter": Change(False),
    "brain.disabled_parts": Change(["risk_block"]),
    "brain.kelly_fraction": Change(0.25),
    "brain.max_position": Change(0.5),
    "brain.entry_cost_multiple": Change(0.25),
    "brain.exit_cost_multiple": Change(-0.3),
    "brain.rebalance_band": Change(0.8),
    "brain.trade_rate": Change(0.5),
    "brain.rl_agent": Change("bundle"),
    "risk.risk_per_trade": Change(0.02),
    "risk.stop_atr_multiple": Change(1.5),
    "risk.take_profit": Change(True),
    "risk.reward_risk": Change(3.0, context={"risk.take_profit": True}),
    "risk.max_daily_drawdown": Change(0.06),
    "risk.max_drawdown": Change(0.25),
    "risk.margin_cap": Change(0.3),
    "risk.leverage_cap": Change(1.5),
    "risk.kelly_fraction": Change(0.25, context=KELLY_ON),
    "risk.kelly_min_trades": Change(10, context=KELLY_ON),
    "risk.kelly_from_trades": Change(True),
    "risk.trade_record_rules": Change(True),
    "risk.defensive_min_confidence": Change(0.5),
    "risk.manage_exits": Change(True),
    "execution.maker_fee": Change(0.0002),
    "execution.taker_fee": Change(0.0005),
    "execution.slippage_bps": Change(20.0),
    "learning.retrain_every_bars": Change(500),
    "learning.min_train_bars": Change(2_000),
    "learning.max_train_bars": Change(None),
    "learning.enabled": Change(True),
    "learning.registry_uri": Change("sqlite:///another-registry.db"),
    "learning.auto_promote": Change(True),
    "learning.auto_rollback": Change(False),
    "learning.min_track_bars": Change(250),
    "learning.max_track_bars": Change(2000),
    "learning.gate_alpha": Change(0.01),
    "learning.min_dsr": Change(0.9),
    "learning.monitor_block_bars": Change(12),
    "learning.monitor_burn_in_blocks": Change(30),
    "learning.monitor_false_alarm_blocks": Change(5000.0),
    "learning.experience_every_bars": Change(100),
    "learning.executor": Change("ray"),
    "learning.track_runs": Change(True),
    "api.host": Change("0.0.0.0"),
    "api.port": Change(9090),
    "api.token": Change(SecretStr("a-configured-token-for-the-api")),
    "api.predict_workers": Change(3),
    "api.predict_queue": Change(5),
    "notify.urls": Change([NOTIFY_URL]),
    "notify.events": Change(["fill", "error"], context=NOTIFY_ON),
    "notify.max_per_minute": Change(5, context=NOTIFY_ON),
    "notify.queue_size": Change(20, context=NOTIFY_ON),
}
LEAVES = _leaves(Settings)
COMMAND_SECTIONS = ("home", "data", "api")
"""Sections read only by commands: their settings are checked through what a command builds."""


def _with(settings: Settings, changes: dict[str, Any]) -> Settings:
    data = settings.model_dump()
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = data
        for key in path:
            node = node[key]
        node[last] = value
    return Settings.model_validate(data)


def _case(name: str) -> Any:
    change = CHANGES.get(name)
    if change is not None and change.dead:
        reason = f"dead setting: {change.dead}"
        dead = pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)
        return pytest.param(name, marks=dead, id=name)
    return pytest.param(name, id=name)


def test_every_leaf_setting_has_a_change_to_try() -> None:
    assert sorted(CHANGES) == sorted(LEAVES)
    assert "brain.fusion_weights.rl" in LEAVES and "api.token" in LEAVES


def test_the_behaviour_read_from_the_same_settings_is_the_same_every_time() -> None:
    assert _behaviour(Settings(), commands=True) == _behaviour(Settings(), commands=True)


@pytest.mark.parametrize("name", [_case(name) for name in LEAVES])
def test_every_setting_changes_some_behaviour(name: str) -> None:
    change = CHANGES[name]
    base = _with(Settings(), change.context)
    changed = _with(base, {name: change.value, **change.also})
    assert _pick(changed, name) != _pick(base, name)  # the change took
    commands = name.split(".")[0] in COMMAND_SECTIONS
    before = _behaviour(base, commands=commands)
    after = _behaviour(changed, commands=commands)
    moved = sorted(key for key in before if before[key] != after[key])
    assert moved, f"changing {name} to {change.value!r} changed nothing built from the settings"


def _pick(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for key in dotted.split("."):
        value = getattr(value, key)
    return value


def _behaviour(settings: Settings, *, commands: bool) -> dict[str, Any]:
    """Return what the product does with ``settings``, one entry per consumer."""
    found: dict[str, Any] = {
        "risk gate": _risk_verdicts(settings.risk),
        "position monitor": _monitor_levels(settings.risk),
        "fill costs": _fill_costs(settings.execution),
        "brain decisions": _brain_decisions(settings),
        "fusion": _fused_votes(settings.brain),
        "brain parts": Brain(settings.brain).enabled,
        "hybrid": HybridConfig.from_settings(settings),
        "learning loop": LearningPolicy.from_settings(settings.learning),
        "fan-out executor": executor_kind(settings.learning.executor, jobs=4),
        "run tracking": repr(tracking_registry(settings)),
        "notifications": _notifications(settings.notify),
        "service's RL agent": _serving_agent(settings.brain),
    }
    if commands:
        found.update(_command_behaviour(settings))
    return found


# --- risk: the gate's verdicts, the monitor's levels, the costs of a fill ----------------------

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


def _account(
    equity: float = 10_000.0,
    *,
    peak: float | None = None,
    day_start: float | None = None,
    positions: tuple[Position, ...] = (),
    r_multiples: tuple[float, ...] = (),
) -> AccountSnapshot:
    trades = tuple(
        ClosedTrade(
            "BTC/USDT", 1, NOW - timedelta(hours=len(r_multiples) - i + 1),
            NOW - timedelta(hours=len(r_multiples) - i), 100.0, 100.0 + r, 1.0, 100.0 * r,
            0.0, 0.0, r, "target" if r > 0 else "stop",
        )
        for i, r in enumerate(r_multiples)
    )  # fmt: skip
    return AccountSnapshot(
        NOW, equity, equity, peak or equity, day_start or equity,
        {p.symbol: p for p in positions}, trades,
    )  # fmt: skip


def _market(market_type: MarketType = MarketType.SPOT, leverage: float = 1.0) -> MarketState:
    return MarketState(
        NOW, "BTC/USDT", 100.0, 2.0, market_type=market_type, leverage=leverage,
        regime="trending_up",
    )  # fmt: skip


def _entry(confidence: float = 1.0) -> OrderIntent:
    return OrderIntent(NOW, "BTC/USDT", Side.BUY, confidence=confidence)


def _risk_verdicts(risk: RiskSettings) -> list[tuple[Any, ...]]:
    """The verdicts of a risk gate built from ``risk`` on orders that each lean on some rule."""
    eth = Position("ETH/USDT", 500.0, 50.0, NOW - timedelta(days=1), leverage=3.0)
    thin_edge = (2.0,) * 6 + (-1.0,) * 13 + (2.0,)  # 20 trades: half Kelly 1.25 %
    short_record = (-1.0,) * 7 + (1.5,) * 5  # 12 trades: half Kelly 1.4 %
    scenarios = [
        (_entry(), _account(), _market()),  # risk, stop, target, margin cap
        (_entry(), _account(positions=(eth,)), _market(MarketType.PERP, 10.0)),  # leverage cap
        (_entry(), _account(r_multiples=thin_edge), _market()),  # Kelly
        (_entry(), _account(r_multiples=short_record), _market()),  # Kelly's minimum record
        (_entry(0.3), _account(9_300.0, day_start=10_000.0), _market()),  # 7 % down today
        (_entry(), _account(7_000.0, peak=10_000.0), _market()),  # 30 % below the peak
        (_entry(), _account(r_multiples=(1.0, -1.0, -1.0, -1.0, -1.0)), _market()),  # streak
    ]
    verdicts: list[tuple[Any, ...]] = []
    for intent, account, market in scenarios:
        manager = RiskManager(
            sizing=SizingRules.from_settings(risk), policy=PolicyRules.from_settings(risk)
        )
        verdict = manager.review(intent, account, market)
        if isinstance(verdict, Denial):
            verdicts.append(("denied", verdict.rule))
        else:
            verdicts.append((verdict.quantity, verdict.stop_price, verdict.target_price))
    return verdicts


def _monitor_levels(risk: RiskSettings) -> list[tuple[Any, ...]]:
    """The protective levels of a long (entry 100, stop 95) as the price runs to +2.2R."""
    monitor = PositionMonitor(MonitorRules.from_settings(risk))
    level = monitor.open(+1, 100.0, 10.0, 95.0, None)
    levels = [(level.stop_price, level.stop_reason, level.partial_price)]
    for high, low, close in ((106.0, 100.0, 105.0), (111.0, 105.0, 110.0)):
        monitor.on_candle("BTC/USDT", high, low, close)
        level = monitor.after_candle("BTC/USDT", level, high, low)
        levels.append((level.stop_price, level.stop_reason, level.partial_price))
    return levels


def _fill_costs(execution: ExecutionSettings) -> tuple[float, float, float]:
    """A taker buy's fill price at 100, and the fees of 1 000 taken and made."""
    costs = settings_costs(execution)
    return (
        costs.fill_price(Side.BUY, 100.0, 1.0, None, Liquidity.TAKER),
        costs.fee(1_000.0, Liquidity.TAKER),
        costs.fee(1_000.0, Liquidity.MAKER),
    )


# --- brain: decisions on a few candles, the fusion of a few votes ------------------------------

BRAIN_FEATURES = {"adx_14": 30.0, "atr_ratio_14_96": 1.0, "ema_alignment": 1.0, "atr_pct_14": 0.03}
BRAIN_CASES = [
    # (vote, forecast, exposure held): each one close to some line of the position rules
    ((0.2, 0.2, 0.6), Forecast(0.3, 0.03, 12), 0.0),  # enter, capped at max_position
    ((0.3, 0.3, 0.4), Forecast(0.2, 0.03, 12), 0.0),  # just inside the entry bar
    ((0.38, 0.3, 0.32), Forecast(0.3, 0.03, 12), 0.5),  # just above the exit bar
    ((0.3, 0.3, 0.4), Forecast(0.3, 0.03, 12), 0.3),  # resize toward the target
]


def _brain_decisions(settings: Settings) -> list[tuple[Any, ...]]:
    """The brain's moves, stops, targets and risk on candles that lean on its position rules."""
    decisions = []
    for vote, forecast, exposure in BRAIN_CASES:
        brain = Brain(settings.brain, tuning=BrainTuning.from_settings(settings))
        market = PositionContext(price=100.0, exposure=exposure)
        decision = brain.decide(
            NOW, "BTC/USDT", BRAIN_FEATURES, {"logistic": vote}, market, forecast
        )
        decisions.append(
            (decision.action, decision.target_position, decision.size, decision.stop,
             decision.target, decision.filters)
        )  # fmt: skip
    return decisions


def _fused_votes(brain: BrainSettings) -> tuple[float, ...]:
    """The fused view of one vote of every family (the market half dangerous: risk votes too)."""
    votes = {
        "lstm": (0.1, 0.2, 0.7),
        "logistic": (0.2, 0.2, 0.6),
        "cnn": (0.6, 0.2, 0.2),
        "orderflow": (0.7, 0.2, 0.1),
        "ppo": (0.5, 0.1, 0.4),
    }
    weights = Brain(brain).settings.fusion_weights
    return fuse(votes, Regime.RANGING, weights, danger=0.5).proba


def _serving_agent(brain: BrainSettings) -> tuple[str, str | None, float | None]:
    """The agent a service trading a bundle that holds one chooses (no ``--agent``): where it
    came from, its name and its multiplier of a strong entry."""
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder)
        sizer = QTableSizer()
        sizer.q_ = np.zeros((N_STATES, len(MULTIPLIERS)))
        sizer.tries_ = np.zeros((N_STATES, len(MULTIPLIERS)), dtype=np.int64)
        view = AgentView(0.8, 0.0, 5.0, 0.9, 0.0, 0, True)
        state = state_index(view.regime_index, view.edge, view.drawdown)
        sizer.q_[state, MULTIPLIERS.index(0.5)], sizer.tries_[state] = 1.0, 1  # halves it
        sizer.save(bundle / AGENT_FOLDER)
        chosen = serving_agent(brain.rl_agent, None, bundle)
        if chosen.agent is None:
            return chosen.source, None, None
        return chosen.source, chosen.agent.name, chosen.agent.adjust(view)


# --- notifications: what a notifier does with a burst of messages ------------------------------


def _notifications(notify: NotifySettings) -> dict[str, Any]:
    """What the notifier built from ``notify`` does with 30 messages of every kind at once: the
    services it sends to, what it queues, drops (queue full) and holds back (rate limit). Its
    delivery thread is not started, so nothing leaves the machine."""
    notifier = Notifier.from_settings(notify, start=False, clock=lambda: 0.0)
    for kind in NOTIFY_EVENTS:
        for number in range(30):
            notifier.send(kind, f"{kind} {number}", "a message")
    status = notifier.status()
    return {key: status[key] for key in ("services", "events", "queued", "dropped", "suppressed")}


# --- sections read by commands: what each command builds from them -----------------------------


def _command_behaviour(settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # a relative home lands in here
        for variable in [v for v in os.environ if v.startswith("TRADEBRAIN_")]:
            patch.delenv(variable)
        config = Path(folder) / "tradebrain.yaml"
        config.write_text(settings.to_yaml(reveal_secrets=True))
        return {
            "data import": _import_candles(config, Path(folder)),
            "demo": _demo_market(config, patch),
            "data synth": _demo_market(
                config, patch, "data", "synth", "--out", str(Path(folder) / "s.parquet")
            ),
            "data download": _download_setup(config, patch),
            "serve": _serve_setup(config, patch),
        }


def _invoke(config: Path, *arguments: str) -> int:
    from tradebrain.cli import app

    return CliRunner().invoke(app, ["--config", str(config), *arguments]).exit_code


class _SeenError(UserInputError):
    """Raised by a stand-in once it has seen what the command built."""


def _import_candles(config: Path, folder: Path) -> tuple[list[int], list[str]]:
    """`data import` of whole candles, then of candles with a gap: the exit codes and the files
    stored (relative to the working folder, where a relative home lands)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    codes = []
    for symbol, skipped in (("BTC/USDT", None), ("ETH/USDT", 20)):
        rows = [i for i in range(48) if i != skipped]
        frame = pl.DataFrame(
            {
                "timestamp": [start + timedelta(hours=i) for i in rows],
                "open": [100.0] * len(rows),
                "high": [101.0] * len(rows),
                "low": [99.0] * len(rows),
                "close": [100.0] * len(rows),
                "volume": [1.0] * len(rows),
            }
        )
        source = folder / f"{symbol.replace('/', '-')}.csv"
        frame.write_csv(source)
        codes.append(
            _invoke(config, "data", "import", str(source), "--symbol", symbol, "--timeframe", "1h")
        )
    stored = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.parquet"))
    return codes, stored


def _demo_market(config: Path, patch: pytest.MonkeyPatch, *command: str) -> Any:
    """The synthetic market `demo` (or another command) asks for, stopped before it is made."""
    import tradebrain.data.synthetic

    asked: list[Any] = []

    def generate_market(config: Any) -> Any:
        asked.append(config)
        raise _SeenError("seen")

    patch.setattr(tradebrain.data.synthetic, "generate_market", generate_market)
    _invoke(config, *(command or ("demo",)))
    return asked[0] if asked else None


def _download_setup(config: Path, patch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """The exchange timeout and the retry policy `data download` builds (nothing is fetched)."""
    import tradebrain.data.download
    import tradebrain.data.exchanges

    seen: dict[str, Any] = {}

    def make_exchange(name: str, **options: Any) -> object:
        seen["timeout_s"] = options.get("timeout_s")
        return object()

    def download(request: Any, store: Any, **options: Any) -> list[Any]:
        seen["retry"] = options.get("retry")
        return []

    patch.setattr(tradebrain.data.exchanges, "make_exchange", make_exchange)
    patch.setattr(tradebrain.data.download, "download", download)
    _invoke(
        config, "data", "download", "--exchange", "binance", "--symbols", "BTC/USDT",
        "--timeframes", "1h", "--since", "2024-01-01",
    )  # fmt: skip
    return seen.get("timeout_s"), seen.get("retry")


def _serve_setup(config: Path, patch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `serve` builds: the server's address, the API token, the prediction pool and the
    state file (the service is built but never started; the server returns at once)."""
    import secrets

    import uvicorn

    import tradebrain.api.app
    import tradebrain.service.service
    from tradebrain.service.service import TradingService

    seen: dict[str, Any] = {}

    class Config:
        def __init__(self, app: Any, **options: Any) -> None:
            seen["bind"] = (options.get("host"), options.get("port"))

    class Server:
        def __init__(self, config: Config) -> None:
            self.should_exit = False

        def run(self) -> None:
            pass

    def create_app(service: TradingService, **options: Any) -> object:
        seen["token"] = options.get("token")
        pool = service.predictions
        seen["prediction pool"] = (pool.workers, pool.capacity)
        seen["state"] = str(service.store.url) if hasattr(service.store, "url") else None
        return object()

    feed = SimpleNamespace(name="stand-in", symbols=("BTC/USDT",), timeframe="1h")
    patch.setattr(tradebrain.service.service, "make_feed", lambda options, settings: feed)
    patch.setattr(TradingService, "start", lambda self: None)
    patch.setattr(tradebrain.api.app, "create_app", create_app)
    patch.setattr(uvicorn, "Config", Config)
    patch.setattr(uvicorn, "Server", Server)
    patch.setattr(secrets, "token_urlsafe", lambda size: "a-token-made-for-this-run")
    seen["exit code"] = _invoke(config, "serve")
    return seen
