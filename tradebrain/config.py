"""Typed settings: defaults, a YAML file, and ``TRADEBRAIN_`` environment overrides.

Precedence, lowest first: the defaults below, the YAML file, the environment. Environment
variables use the ``TRADEBRAIN_`` prefix and ``__`` between nested keys, so
``TRADEBRAIN_RISK__RISK_PER_TRADE=0.01`` sets ``risk.risk_per_trade``. ``TRADEBRAIN_HOME`` sets
``home``, the folder that holds the data store, models and logs.

Which file is read: the ``path`` given to :func:`load_settings`, else ``$TRADEBRAIN_CONFIG``,
else ``./tradebrain.yaml`` when it exists, else none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from tradebrain.core.atomic_write import write_text_atomic
from tradebrain.exceptions import ConfigError

ENV_PREFIX = "TRADEBRAIN_"
CONFIG_ENV = "TRADEBRAIN_CONFIG"
DEFAULT_CONFIG_FILE = Path("tradebrain.yaml")
# Environment variables with our prefix that are not settings.
_NOT_SETTINGS = {
    CONFIG_ENV,
    # Read by `tradebrain serve --mode live` straight from the environment, never stored in
    # the settings (so they can never be shown by `config show` or a settings dump).
    "TRADEBRAIN_GO_LIVE",
    "TRADEBRAIN_EXCHANGE_API_KEY",
    "TRADEBRAIN_EXCHANGE_SECRET",
    "TRADEBRAIN_EXCHANGE_PASSWORD",
    # Read by the test suite only.
    "TRADEBRAIN_SCREENSHOT_DIR",
    "TRADEBRAIN_BROWSER_REQUIRED",
    "TRADEBRAIN_REAL_DATA_REQUIRED",
}
# Settings whose values are never shown, not even in an error about them; their variables are
# read as plain text (a token may start with "[" or "{"), except a list of secrets, read as a
# JSON list when it starts with "[" (an apprise URL never does) and as one item otherwise.
_SECRET_LISTS = {("notify", "urls")}
_SECRETS = {("api", "token"), *_SECRET_LISTS}
_MASK = "**********"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class DataSettings(_Section):
    """Where market data comes from and how strictly it is checked."""

    default_exchange: str = "binance"
    default_timeframe: str = "1h"
    allow_gaps: bool = Field(False, description="accept candle gaps as warnings, not errors")
    synthetic_bars: int = Field(20_000, ge=100, le=10_000_000)
    synthetic_seed: int = Field(7, ge=0)
    download_retries: int = Field(5, ge=0, le=20)
    download_timeout_s: float = Field(10.0, gt=0, le=300)


class FeatureSettings(_Section):
    """Which feature sets the models learn from (the brain reads its regime features besides)."""

    sets: list[str] = Field(
        default_factory=lambda: ["atomic", "momentum"],
        description="feature sets offered to the models (see `tradebrain features list`)",
    )


class ModelSettings(_Section):
    """Which models are trained, and how."""

    enabled: list[str] = Field(default_factory=lambda: ["logistic", "lightgbm"])
    seed: int = Field(42, ge=0)
    torch_threads: int = Field(2, ge=1, le=64)
    window: int = Field(32, ge=8, le=1024, description="candles per sequence-model window")
    horizons: list[int] = Field(
        default_factory=lambda: [12, 24, 48],
        description="forecast horizons (candles) tried in each training window",
    )
    max_features: int = Field(8, ge=1, le=1000, description="features kept per training window")

    @model_validator(mode="after")
    def _horizons_positive(self) -> ModelSettings:
        if not self.horizons or min(self.horizons) < 1 or max(self.horizons) > 10_000:
            raise ValueError(f"horizons must be 1 to 10000 candles; got {self.horizons}")
        return self


class FusionWeights(_Section):
    """How much each family of votes counts in the meta-reasoner; the weights sum to 1."""

    order_flow: float = Field(0.30, ge=0, le=1)
    sequence: float = Field(0.25, ge=0, le=1)
    cnn: float = Field(0.20, ge=0, le=1)
    rl: float = Field(0.15, ge=0, le=1)
    risk: float = Field(0.10, ge=0, le=1)

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> FusionWeights:
        total = self.order_flow + self.sequence + self.cnn + self.rl + self.risk
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"fusion weights must sum to 1.0, they sum to {total:.6g}")
        return self


class BrainSettings(_Section):
    """The meta-reasoner: fusion, filters and how a forecast becomes a target position."""

    fusion_weights: FusionWeights = Field(default_factory=FusionWeights)
    kalman: bool = True
    chop_filter: bool = True
    panic_exit: bool = True
    funding_flip_filter: bool = True
    disabled_parts: list[str] = Field(
        default_factory=list,
        description="further brain parts to switch off (see `tradebrain ablation`)",
    )
    kelly_fraction: float = Field(
        0.5, gt=0, le=1.0, description="share of the growth-optimal (Kelly) position"
    )
    max_position: float = Field(
        1.0, gt=0, le=10.0, description="largest |target position|, notional / equity"
    )
    entry_cost_multiple: float = Field(
        1.5,
        ge=0,
        le=100,
        description="expected return over the horizon needed to open, "
        "in round trips of fees + slippage",
    )
    exit_cost_multiple: float = Field(
        -0.5,
        ge=-100,
        le=100,
        description="a position is held while its expected return "
        "stays above this many round trips (negative: hold through small wobbles)",
    )
    rebalance_band: float = Field(
        0.25, ge=0, le=10, description="resize only when the target moved this far away"
    )
    trade_rate: float = Field(
        1.0, gt=0, le=1.0, description="share of the way to the target moved on a resize"
    )
    rl_agent: Literal["off", "bundle"] = Field(
        "off",
        description="bundle: trade with the RL agent saved in the model bundle's agent/ "
        "folder (tradebrain rl train --bundle); off by default because no agent has yet "
        "beaten the plain rule out of sample on planted and null worlds "
        "(benchmarks/bench_rl.py)",
    )

    @model_validator(mode="after")
    def _exit_below_entry(self) -> BrainSettings:
        if self.exit_cost_multiple > self.entry_cost_multiple:
            raise ValueError(
                f"exit_cost_multiple {self.exit_cost_multiple} must not exceed "
                f"entry_cost_multiple {self.entry_cost_multiple} (the position would be closed "
                "as soon as it opens)"
            )
        return self


class RiskSettings(_Section):
    """Risk limits; risk has the last word on every order."""

    risk_per_trade: float = Field(
        0.05, gt=0, le=0.10, description="fraction of equity lost if an entry's stop is hit"
    )
    stop_atr_multiple: float = Field(6.0, gt=0, le=20, description="protective stop, in ATR(14)")
    take_profit: bool = Field(
        False, description="entries carry a take-profit target at reward_risk stop distances"
    )
    reward_risk: float = Field(2.0, gt=0, le=20)
    max_daily_drawdown: float = Field(0.10, gt=0, le=0.5)
    max_drawdown: float = Field(0.40, gt=0, le=0.9)
    margin_cap: float = Field(1.0, gt=0, le=1.0, description="margin per position / equity")
    leverage_cap: float = Field(3.0, ge=1, le=125)
    kelly_fraction: float = Field(0.5, gt=0, le=1.0)
    kelly_min_trades: int = Field(20, ge=1)
    kelly_from_trades: bool = Field(
        False,
        description="also cut the risk per trade to Kelly of the closed trades' R "
        "multiples (the brain already sizes by its forecast)",
    )
    trade_record_rules: bool = Field(
        False,
        description="losing streaks set DEFENSIVE/CRITICAL, and a symbol on a losing "
        "run is shrunk and paused",
    )
    defensive_min_confidence: float = Field(
        0.0, ge=0, le=1.0, description="confidence an entry needs in DEFENSIVE mode"
    )
    manage_exits: bool = Field(
        False, description="move stops to break-even at 1R, trail from 2R, take half at 2R"
    )


class ExecutionSettings(_Section):
    """What trading costs: backtests and paper trading pay these, and the brain weighs them."""

    maker_fee: float = Field(0.001, ge=0, le=0.01)
    taker_fee: float = Field(0.001, ge=0, le=0.01)
    slippage_bps: float = Field(1.0, ge=0, le=500)


class LearningSettings(_Section):
    """The learning loop (experience, retraining, promotion)."""

    retrain_every_bars: int = Field(2000, ge=1, description="candles between retrains")
    min_train_bars: int = Field(4000, ge=100, description="candles learned from before trading")
    max_train_bars: int | None = Field(
        20_000, ge=500, description="most (newest) candles a retrain learns from; null: all"
    )
    enabled: bool = Field(
        False,
        description="serve: retrain on schedule, shadow candidates, gate promotions, watch "
        "production (off: the models stay as loaded)",
    )
    registry_uri: str | None = Field(
        None,
        description="MLflow tracking/registry URI; null: SQLite mlflow.db under home",
    )
    auto_promote: bool = Field(
        False, description="promote a candidate that passes the gates without approval"
    )
    auto_rollback: bool = Field(
        True, description="roll production back when its after-cost returns degrade (CUSUM)"
    )
    min_track_bars: int = Field(
        500, ge=50, description="paired shadow bars before a candidate can be judged"
    )
    max_track_bars: int = Field(
        3000, ge=100, description="shadow bars after which a candidate not yet better is refused"
    )
    gate_alpha: float = Field(
        0.05, gt=0, lt=0.5, description="one-sided significance of the paired shadow test"
    )
    min_dsr: float = Field(
        0.95, ge=0, lt=1, description="deflated Sharpe a candidate needs, counting every trial"
    )
    monitor_block_bars: int = Field(
        24, ge=1, description="bars per block of the degradation monitor's returns"
    )
    monitor_burn_in_blocks: int = Field(
        20,
        ge=5,
        description="blocks that set a production's expected returns when no "
        "shadow record gave them",
    )
    monitor_false_alarm_blocks: float = Field(
        1000.0,
        gt=10,
        description="blocks between false degradation alarms on average (sets the CUSUM threshold)",
    )
    experience_every_bars: int = Field(
        24, ge=1, description="bars between exports of the experience log to Parquet"
    )
    track_runs: bool = Field(
        False,
        description="log every evaluate, train and backtest run (settings, metrics) to the "
        "MLflow tracking store beside the registry (costs ~3 s of MLflow start-up a command)",
    )
    executor: Literal["local", "ray"] = Field(
        "local", description="where fan-out retraining and studies run"
    )


class ApiSettings(_Section):
    """The HTTP service."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    token: SecretStr | None = None
    predict_workers: int = Field(
        1, ge=1, le=16, description="processes deciding on sent candles, apart from trading"
    )
    predict_queue: int = Field(
        2, ge=0, le=100, description="requests with candles that may wait; more get 429"
    )


NotifyEvent = Literal["fill", "policy", "control", "error", "registry", "daily_summary"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = (
    "fill", "policy", "control", "error", "registry", "daily_summary",
)  # fmt: skip
"""Every kind of notification, in the order ``notify.events`` lists them by default."""


class NotifySettings(_Section):
    """Notifications of the trading service (``tradebrain serve``), sent through apprise.

    Each URL is an apprise URL: ``tgram://BOT_TOKEN/CHAT_ID``, ``discord://WEBHOOK_ID/TOKEN``,
    ``slack://TOKEN_A/TOKEN_B/TOKEN_C``, ``mailtos://USER:PASSWORD@HOST?to=ADDRESS``,
    ``json://HOST/PATH`` (any webhook), ... URLs hold tokens: give them in the environment,
    ``TRADEBRAIN_NOTIFY__URLS='["tgram://...", "discord://..."]'`` (one URL may be given as
    plain text), not in a shared file; they are masked wherever settings are shown. Sending
    never holds up trading: messages wait in a bounded queue and one thread delivers them.
    """

    urls: list[SecretStr] = Field(
        default_factory=list,
        description="apprise URLs to notify (hold tokens: set TRADEBRAIN_NOTIFY__URLS); "
        "none: nothing is sent",
    )
    events: list[NotifyEvent] = Field(
        default_factory=lambda: list(NOTIFY_EVENTS),
        description="what is sent: fill, policy (risk mode NORMAL/DEFENSIVE/CRITICAL, a "
        "symbol paused), control (pause, resume, emergency stop), error (errors the service "
        "logs), registry (model promoted, rolled back, refused), daily_summary (equity, the "
        "day's P&L, fills and trades, at the first candle after UTC midnight)",
    )
    max_per_minute: int = Field(
        10,
        ge=1,
        le=600,
        description="messages of one kind sent per minute; the rest are counted and the "
        "count is said in the next message sent",
    )
    queue_size: int = Field(
        100,
        ge=1,
        le=10_000,
        description="messages waiting for delivery; one more is dropped (and counted), so "
        "trading never waits for a slow service",
    )

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url_as_text(cls, value: Any) -> Any:
        """Read one URL given as text (a variable, or ``urls: tgram://...`` in YAML) as a list."""
        if isinstance(value, str | SecretStr):
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            return [text] if text.strip() else []
        return value

    @field_validator("urls")
    @classmethod
    def _no_empty_url(cls, urls: list[SecretStr]) -> list[SecretStr]:
        empty = [i for i, url in enumerate(urls) if not url.get_secret_value().strip()]
        if empty:
            raise ValueError(f"urls {empty} are empty; remove them")
        return urls


class Settings(_Section):
    """Every setting of tradebrain, one section per layer."""

    home: Path = Path("./tradebrain_data")
    data: DataSettings = Field(default_factory=DataSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    brain: BrainSettings = Field(default_factory=BrainSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)

    def to_yaml(self, *, reveal_secrets: bool = False) -> str:
        """Return the settings as YAML; secrets are masked unless ``reveal_secrets``."""
        data = self.model_dump(mode="json")

        def shown(secret: SecretStr) -> str:
            return secret.get_secret_value() if reveal_secrets else _MASK

        if self.api.token is not None:
            data["api"]["token"] = shown(self.api.token)
        data["notify"]["urls"] = [shown(url) for url in self.notify.urls]
        return yaml.safe_dump(data, sort_keys=False)


def config_path(path: Path | str | None = None) -> Path | None:
    """Return the config file to read, following the precedence in the module docstring."""
    if path is not None:
        return Path(path)
    if env_path := os.environ.get(CONFIG_ENV):
        return Path(env_path)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def load_settings(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load settings from defaults, the YAML file and the environment.

    Raises :class:`ConfigError` naming the key, the bad value, the allowed range and where the
    value came from.
    """
    env = os.environ if env is None else env
    file = config_path(path)
    from_file = _read_yaml(file) if file is not None else {}
    from_env, env_names = _env_overrides(env)
    merged = _deep_merge(from_file, from_env)
    try:
        return Settings.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(_explain(error, file, env_names)) from None


COST_OPTIONS = {"taker_fee": "--fee", "maker_fee": "--fee", "slippage_bps": "--slippage-bps"}
"""Command-line options that override the execution costs, by setting."""


def with_costs(
    settings: Settings, fee: float | None = None, slippage_bps: float | None = None
) -> Settings:
    """Return ``settings`` with ``--fee`` (maker and taker) and ``--slippage-bps`` folded in.

    The values are checked against the same ranges as the config file (a fee above 1 % or
    NaN is refused), so a command can never run on costs no setting could hold.

    Raises
    ------
    ConfigError
        Naming the option, its allowed range and the value given.
    """
    update: dict[str, float] = {}
    if fee is not None:
        update |= {"taker_fee": fee, "maker_fee": fee}
    if slippage_bps is not None:
        update["slippage_bps"] = slippage_bps
    if not update:
        return settings
    try:
        execution = ExecutionSettings.model_validate({**settings.execution.model_dump(), **update})
    except ValidationError as error:
        field = str(error.errors()[0]["loc"][0])
        bounds = _allowed_range(("execution", field))
        raise ConfigError(
            f"{COST_OPTIONS.get(field, field)} must be {bounds}, got {update.get(field)}"
        ) from None
    return settings.model_copy(update={"execution": execution})


def write_default_config(path: Path) -> Path:
    """Write the default settings to ``path`` as YAML (atomically) and return the path."""
    if path.exists():
        raise ConfigError(f"{path} already exists; remove it or pass another path")
    text = "# tradebrain settings; see `tradebrain config show` for the effective values\n"
    text += Settings().to_yaml(reveal_secrets=True)
    return write_text_atomic(text, path)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist; create it with `tradebrain config init`"
        )
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of sections, not {type(loaded).__name__}"
        )
    return loaded


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Turn ``TRADEBRAIN_A__B=v`` variables into ``{"a": {"b": v}}``; also return their names."""
    overrides: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        keys = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        value: Any = raw
        if keys in _SECRET_LISTS:
            value = _secret_list(name, raw)
        elif keys not in _SECRETS and raw.strip().startswith(("[", "{")):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                raise ConfigError(f"{name}={raw!r} looks like JSON but does not parse") from None
        node = overrides
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name} conflicts with another TRADEBRAIN_ variable")
        node[keys[-1]] = value
        names[keys] = name
    return overrides, names


def _secret_list(name: str, raw: str) -> Any:
    """Read a variable holding a list of secrets: a JSON list, or one item as plain text.

    A list that does not parse is refused without showing it (it holds secrets).
    """
    if not raw.strip().startswith("["):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{name} starts with '[' but is not a JSON list ({error.msg} at character "
            f"{error.pos}; the value is not shown: it holds secrets); give "
            '\'["scheme://...", "scheme://..."]\' or one URL as plain text'
        ) from None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _explain(
    error: ValidationError, file: Path | None, env_names: dict[tuple[str, ...], str]
) -> str:
    lines = [f"invalid settings ({error.error_count()} problem(s)):"]
    for item in error.errors():
        loc = tuple(str(part) for part in item["loc"])
        key = ".".join(loc) if loc else "(top level)"
        # a list item's error (notify.urls.0) comes from the variable that set the list
        variable = next(
            (env_names[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in env_names), None
        )
        source = variable or (f"file {file}" if file else "defaults")
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown setting (from {source}); see `tradebrain config show`")
            continue
        bounds = _allowed_range(loc)
        value = item.get("input")
        shown = f"<hidden {type(value).__name__}>" if loc[:2] in _SECRETS else repr(value)
        hint = f"; allowed range: {bounds}" if bounds else ""
        lines.append(f"  {key} = {shown} (from {source}): {item['msg']}{hint}")
    return "\n".join(lines)


def _allowed_range(loc: tuple[str, ...]) -> str | None:
    """Return ``"0 < x <= 0.1"`` for the field at ``loc``, from its declared constraints."""
    model: type[BaseModel] = Settings
    field = None
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    if field is None:
        return None
    low = high = ""
    for meta in field.metadata:
        if isinstance(meta, Gt):
            low = f"{meta.gt} < "
        elif isinstance(meta, Ge):
            low = f"{meta.ge} <= "
        elif isinstance(meta, Lt):
            high = f" < {meta.lt}"
        elif isinstance(meta, Le):
            high = f" <= {meta.le}"
    return f"{low}x{high}" if low or high else None
