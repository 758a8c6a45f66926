"""Request and response bodies of the REST API (pydantic), so the OpenAPI schema is precise.

Responses mirror the shapes of :mod:`tradebrain.service.view`. Keys the contract names are
declared; status objects (``/api/ai/status``, ``/api/ai/learning_status``, a model's status)
also pass through any extra keys the service adds, so the service can say more without an API
change. Requests are strict: a candle whose high is below its body, a volume below zero or
timestamps out of order fail with 422 and a message naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

MAX_CANDLES = 5000
MAX_BATCH = 20
MAX_BATCH_CANDLES = 20_000  # in all the requests of a batch: seconds of CPU, not minutes
_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


class _Response(BaseModel):
    """A response body: declared keys, and extra keys the service adds are dropped."""

    model_config = ConfigDict(extra="ignore")


class _OpenResponse(BaseModel):
    """A status body: declared keys plus any extra keys the service adds, passed through."""

    model_config = ConfigDict(extra="allow")


# --- responses ---------------------------------------------------------------------------------

ControlState = Literal["running", "paused", "emergency_stop"]
Mode = Literal["paper", "live"]
Action = Literal["buy", "sell", "hold", "exit"]
# A list of exactly 3 rather than a tuple: the same JSON, and a schema (items + min/maxItems)
# that every OpenAPI tool reads (some mis-read 3.1's prefixItems).
Probabilities = Annotated[
    list[float],
    Field(min_length=3, max_length=3, description="[p_down, p_flat, p_up], summing to 1"),
]


class Health(_OpenResponse):
    """The service is up."""

    status: str = Field(description='"ok", or "degraded" when the runner stopped on an error')
    mode: Mode
    uptime_s: float = Field(description="seconds since the service started")
    version: str


class Control(_Response):
    """Whether the service opens positions."""

    state: ControlState
    since: datetime | None = Field(description="when the state began (UTC); None: from start")
    reason: str


class Decision(_Response):
    """What the brain concluded on one candle, and why."""

    timestamp: datetime = Field(description="open time of the candle decided on (UTC)")
    symbol: str
    action: Action
    confidence: float = Field(description="fused probability of the chosen direction, 0..1")
    size: float = Field(description="fraction of equity the brain suggests risking")
    stop: float | None = Field(description="suggested stop price (quote currency)")
    target: float | None = Field(description="suggested target price (quote currency)")
    regime: str
    votes: dict[str, Probabilities] = Field(description="model name -> its probabilities")
    filters: list[str] = Field(description="names of the filters that fired")
    reasons: list[str] = Field(description="one plain sentence per thing that shaped it")
    maker: bool = Field(description="True: post a passive (maker) order")
    proba: Probabilities
    family_weights: dict[str, float] = Field(description="model family -> fusion weight")
    price: float | None = Field(description="close of the candle decided on")
    timeframe: str


class WarmingUp(_Response):
    """No decision yet: the service is still loading history and models."""

    status: Literal["warming_up"]


class ModelReadiness(_Response):
    ready: bool
    kind: str


class AiStatus(_OpenResponse):
    """How much data and which models the service has."""

    mode: Mode
    feed: str
    symbols: list[str]
    timeframe: str
    warming_up: bool
    candles_loaded: dict[str, int] = Field(description="symbol -> candles held")
    sequence_length: int | None = Field(description="window of the sequence models (candles)")
    trades_processed: int
    decisions: int
    models: dict[str, ModelReadiness]
    feed_lag_s: float | None = Field(description="seconds between a candle's close and arrival")
    control: Control


class LearningStatus(_OpenResponse):
    """What the learning loop knows."""

    enabled: bool
    retrain_every_bars: int
    candles_since_training: int
    trained_at: str | None = Field(description="end of the training data (UTC text)")
    trained_on: int | None = Field(description="candles the models were trained on")
    next_retrain_in: int | None = Field(description="candles until the next retraining")
    production_version: int | None = Field(
        None, description="the registry version trading now (learning on)"
    )
    candidate_version: int | None = Field(
        None, description="the version in shadow mode beside production, if any"
    )
    retraining: bool = Field(False, description="whether a retraining runs now")


class ModelVersion(_OpenResponse):
    """One version of the model registry, with its lineage."""

    version: int
    status: str = Field(description="candidate, production, archived, refused or rolled_back")
    aliases: list[str]
    created_at: datetime
    run_id: str = Field(description="the MLflow run that holds its artifacts and metrics")
    metrics: dict[str, float | None]
    lineage: dict[str, Any]


class LearningCommand(BaseModel):
    """Why the operator promotes or rolls back (recorded in the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500)


class PromoteRequest(LearningCommand):
    """Which registry version to promote to production."""

    version: int = Field(ge=1)


class ModelInfo(_OpenResponse):
    """One model the service votes with."""

    id: str
    kind: str
    family: str
    input_kind: str
    ready: bool
    trained_at: str | None
    n_features: int | None


class ModelStatus(ModelInfo):
    """One model and the record of its training."""

    record: dict[str, Any] | None = Field(
        default=None, description="what the model was trained on (rows, span, scores)"
    )
    live: dict[str, Any] | None = Field(
        default=None,
        description="the supervisor's judgement on its resolved live votes (learning on): "
        "skill, calibration, bias, status and weight",
    )
    muted: bool = Field(default=False, description="whether its vote is weighed to zero")


class Position(_Response):
    """An open position, marked at the last price."""

    symbol: str
    side: Literal["long", "short"]
    quantity: float
    entry_price: float
    stop_price: float | None
    target_price: float | None
    opened_at: datetime
    mark_price: float | None
    unrealized_pnl: float | None


class Trade(_Response):
    """A closed trade."""

    symbol: str
    side: str
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float | None
    quantity: float
    pnl: float | None
    fees: float | None
    funding: float | None
    exit_reason: str
    r_multiple: float | None


class Equity(_Response):
    """The equity curve and buy-and-hold on the same candles, oldest first."""

    timestamps: list[datetime]
    equity: list[float | None] = Field(description="account equity (quote currency)")
    buy_and_hold: list[float | None] = Field(
        description="the starting equity held in the first symbol from the first candle"
    )


class ErrorBody(_Response):
    """Why a request failed."""

    detail: str


class ValidationIssue(_OpenResponse):
    """One broken rule of a request: where (``loc``) and what (``msg``)."""

    loc: list[str | int] = Field(description='path to the field, e.g. ["body", "candles", 3]')
    msg: str
    type: str


class Problem(_Response):
    """Why a request was refused: one message, or one issue per broken rule."""

    detail: str | list[ValidationIssue]


# --- requests ----------------------------------------------------------------------------------


def _as_utc_datetime(value: Any) -> datetime:
    """Read a timestamp: ISO 8601 text (naive taken as UTC) or integer epoch milliseconds."""
    if isinstance(value, bool):
        raise ValueError("timestamp must be ISO 8601 text or integer epoch milliseconds")
    if isinstance(value, int):
        if not 0 <= value <= _MAX_EPOCH_MS:
            raise ValueError(f"epoch milliseconds must be in [0, {_MAX_EPOCH_MS}], got {value}")
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"timestamp {value[:40]!r} is not ISO 8601 text such as 2024-01-31T13:00:00Z"
            ) from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"timestamp {value!r} is out of range once moved to UTC") from None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    raise ValueError("timestamp must be ISO 8601 text or integer epoch milliseconds")


Timestamp = Annotated[
    datetime,
    BeforeValidator(_as_utc_datetime),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "integer", "minimum": 0, "maximum": _MAX_EPOCH_MS},
            ],
            "description": "candle open time: ISO 8601 (no offset means UTC) or epoch ms",
        }
    ),
]
# strict: a price is a JSON number; "30000" (text) or true is refused, not converted.
Price = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]


class CandleIn(BaseModel):
    """One candle, stamped with its open time."""

    model_config = ConfigDict(extra="forbid")

    timestamp: Timestamp
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]

    @model_validator(mode="after")
    def _body_inside_range(self) -> CandleIn:
        top, bottom = max(self.open, self.close), min(self.open, self.close)
        if self.high < top:
            raise ValueError(f"high {self.high} is below max(open, close) = {top}")
        if self.low > bottom:
            raise ValueError(f"low {self.low} is above min(open, close) = {bottom}")
        return self


class PredictRequest(BaseModel):
    """Ask for a decision on a symbol now, or on the candles sent (oldest first)."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=40, examples=["BTC/USDT"])
    timeframe: str = Field(pattern=r"^[1-9][0-9]{0,3}[smhdwM]$", examples=["1h"])
    candles: list[CandleIn] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CANDLES,
        description="null: the service's latest decision on its own candles",
    )

    @field_validator("candles")
    @classmethod
    def _timestamps_increase(cls, candles: list[CandleIn] | None) -> list[CandleIn] | None:
        if candles is None:
            return None
        for i in range(1, len(candles)):
            before, now = candles[i - 1].timestamp, candles[i].timestamp
            if now <= before:
                raise ValueError(
                    f"timestamps must increase strictly: candles[{i}].timestamp {now.isoformat()}"
                    f" is not after candles[{i - 1}].timestamp {before.isoformat()}"
                )
        return candles


class BatchPredictRequest(BaseModel):
    """Several predict requests at once (at most 20, with at most 20,000 candles in all)."""

    model_config = ConfigDict(extra="forbid")

    requests: list[PredictRequest] = Field(min_length=1, max_length=MAX_BATCH)

    @field_validator("requests")
    @classmethod
    def _candles_in_all(cls, requests: list[PredictRequest]) -> list[PredictRequest]:
        total = sum(len(r.candles) for r in requests if r.candles is not None)
        if total > MAX_BATCH_CANDLES:
            raise ValueError(
                f"the batch holds {total} candles; at most {MAX_BATCH_CANDLES} in all are "
                "decided in one call: split it into smaller batches"
            )
        return requests
