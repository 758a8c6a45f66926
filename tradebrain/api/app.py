"""The REST API, Prometheus endpoint and live dashboard of the trading service.

Each route calls one method of a :class:`~tradebrain.service.view.ServiceView` and returns what
it gives, checked against a pydantic model (:mod:`tradebrain.api.schemas`). Every route but
``GET /health`` and the dashboard's own files (``/``, ``/dashboard.js``, which hold no data and
no token) needs ``Authorization: Bearer <token>``; ``GET /metrics`` too, because the metrics name
symbols and equity. ``/openapi.json`` is open (it holds no data); Swagger UI is off because it
loads its scripts from a CDN. The dashboard reads its token from the URL fragment
(``/#token=...``), which browsers never send to the server.

Run it with uvicorn::

    app = create_app(service, token=settings.api.token.get_secret_value())
    uvicorn.run(app, host=settings.api.host, port=settings.api.port)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse

from tradebrain.api import _errors
from tradebrain.api._auth import AuthThrottle, bearer_check, check_token
from tradebrain.api._errors import GuardedRoute
from tradebrain.api.schemas import (
    AiStatus,
    BatchPredictRequest,
    CandleIn,
    Control,
    Decision,
    Equity,
    Health,
    LearningCommand,
    LearningStatus,
    ModelInfo,
    ModelStatus,
    ModelVersion,
    Position,
    PredictRequest,
    PromoteRequest,
    Trade,
    WarmingUp,
)
from tradebrain.data.schemas import TIMESTAMP
from tradebrain.exceptions import TemporaryError, UserInputError
from tradebrain.service.view import ServiceView

log = logging.getLogger("tradebrain.api")

STATIC = Path(__file__).with_name("static")
DASHBOARD_HEADERS = {
    # The page loads only its own script and talks only to this server.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
SymbolQuery = Annotated[
    str | None, Query(min_length=1, max_length=40, description="e.g. BTC/USDT; none: any")
]


def create_app(
    service: ServiceView,
    *,
    token: str | None,
    require_token: bool = True,
    auth_throttle: AuthThrottle | None = None,
) -> FastAPI:
    """Return the FastAPI application serving ``service``.

    Parameters
    ----------
    service
        The running service (any :class:`ServiceView`: the real ``TradingService`` or a test
        double).
    token
        The bearer token every request but ``/health`` and the dashboard page must carry.
        None with ``require_token=False`` leaves the API open (local paper runs only).
    require_token
        Refuse to build the app without a token (the runner always asks for this in live mode).
    auth_throttle
        How many missing or wrong tokens one address may send before it gets 429 (default:
        10 a minute; see :mod:`tradebrain.api._auth`).

    Raises
    ------
    UserInputError
        When a token is required and none is given, or the token is blank.
    """
    token = check_token(token, require_token=require_token)
    if token is None:
        log.warning("the API runs WITHOUT a token: anyone who can reach it can control trading")
    app = FastAPI(
        title="tradebrain",
        summary="Decisions, positions, control and metrics of the trading service.",
        version="1",
        responses=_errors.SERVER_ERROR,
        # Swagger UI and ReDoc load their scripts from a CDN: no third-party code on a server
        # that controls trading (and none reachable offline). /openapi.json stays, open.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.add_exception_handler(UserInputError, _errors.user_input_error)
    app.add_exception_handler(RequestValidationError, _errors.invalid_request)
    app.add_exception_handler(TemporaryError, _errors.temporary_error)
    app.include_router(_public_routes(service))
    guard = [] if token is None else [Depends(bearer_check(token, service.metrics, auth_throttle))]
    private = APIRouter(
        route_class=GuardedRoute,
        dependencies=guard,
        responses=_errors.UNAUTHORIZED if token is not None else {},
    )
    _add_ai_routes(private, service)
    _add_predict_routes(private, service)
    _add_account_routes(private, service, open_api=token is None)
    _add_control_routes(private, service)
    _add_learning_routes(private, service)
    app.include_router(private)
    return app


def _public_routes(service: ServiceView) -> APIRouter:
    router = APIRouter(route_class=GuardedRoute)
    page = (STATIC / "dashboard.html").read_bytes()
    script = (STATIC / "dashboard.js").read_bytes()

    @router.get("/health", tags=["service"])
    def health() -> Health:
        """Say the service is up (no token needed)."""
        return Health.model_validate(service.health())

    @router.get("/", include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(page, headers=DASHBOARD_HEADERS)

    @router.get("/dashboard.js", include_in_schema=False)
    def dashboard_script() -> Response:
        return Response(script, media_type="text/javascript", headers=DASHBOARD_HEADERS)

    return router


def _add_ai_routes(router: APIRouter, service: ServiceView) -> None:
    @router.get("/api/ai/live", tags=["ai"], responses=_errors.INVALID | _errors.NOT_FOUND)
    def live_decision(symbol: SymbolQuery = None) -> Decision | WarmingUp:
        """Return the latest decision, or ``{"status": "warming_up"}`` while there is none."""
        decision = service.live_decision(symbol)
        if decision is None:
            return WarmingUp(status="warming_up")
        return Decision.model_validate(decision)

    @router.get("/api/ai/status", tags=["ai"])
    def ai_status() -> AiStatus:
        """Say how much data and which models the service has, and its control state."""
        return AiStatus.model_validate(service.ai_status())

    @router.get("/api/ai/learning_status", tags=["ai"])
    def learning_status() -> LearningStatus:
        """Say what the learning loop knows and when it retrains next."""
        return LearningStatus.model_validate(service.learning_status())

    @router.get("/models/list", tags=["models"])
    def models() -> list[ModelInfo]:
        """List the models the service votes with."""
        return [ModelInfo.model_validate(entry) for entry in service.models()]

    @router.get("/models/{model_id}/status", tags=["models"], responses=_errors.NOT_FOUND)
    def model_status(model_id: Annotated[str, PathParam(max_length=200)]) -> ModelStatus:
        """Describe one model and its training record."""
        found = service.model_status(model_id)
        if found is None:
            raise HTTPException(
                status_code=404,
                detail=f"no model named {model_id!r}; GET /models/list names the models",
            )
        return ModelStatus.model_validate(found)


def _add_predict_routes(router: APIRouter, service: ServiceView) -> None:
    answers = _errors.BAD_BODY | _errors.INVALID | _errors.NOT_FOUND | _errors.BUSY

    @router.post("/predict/single", tags=["predict"], responses=answers)
    def predict_single(request: PredictRequest) -> Decision:
        """Decide on a symbol now, or on the candles sent (oldest first).

        Decisions on sent candles run in worker processes apart from trading, a few at a
        time; when they are all taken the answer is 429 with ``Retry-After``."""
        return Decision.model_validate(_predict(service, request))

    @router.post("/predict/batch", tags=["predict"], responses=answers)
    def predict_batch(batch: BatchPredictRequest) -> list[Decision]:
        """Decide on up to 20 requests (at most 20,000 candles in all); the first one refused
        fails the batch, named by index."""
        requests = [
            (r.symbol, r.timeframe, None if r.candles is None else _candle_frame(r.candles))
            for r in batch.requests
        ]
        return [Decision.model_validate(d) for d in service.predict_batch(requests)]

    @router.get("/predict/top", tags=["predict"], responses=_errors.INVALID)
    def predict_top(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[Decision]:
        """Return the latest decision of each symbol, most confident first."""
        return [Decision.model_validate(d) for d in service.top_predictions(limit)]


def _add_account_routes(router: APIRouter, service: ServiceView, *, open_api: bool) -> None:
    auth_codes = () if open_api else (401, 429)

    @router.get("/api/positions", tags=["account"])
    def positions() -> list[Position]:
        """Return the open positions, marked at the last price."""
        return [Position.model_validate(p) for p in service.positions()]

    @router.get("/api/trades", tags=["account"], responses=_errors.INVALID)
    def trades(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[Trade]:
        """Return closed trades, newest first."""
        return [Trade.model_validate(t) for t in service.trades(limit)]

    @router.get("/api/equity", tags=["account"], responses=_errors.INVALID)
    def equity(limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> Equity:
        """Return the equity curve and buy-and-hold on the same candles, oldest first."""
        return Equity.model_validate(service.equity(limit))

    @router.get(
        "/metrics",
        tags=["service"],
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            **_errors.json_errors_of_text_route(*auth_codes, 500),
        },
    )
    def metrics() -> Response:
        """Return the Prometheus metrics (text format).

        Behind the token like the rest (they name symbols and equity): in the Prometheus scrape
        config, set ``authorization: {type: Bearer, credentials_file: <file with the token>}``.
        """
        return Response(service.metrics.render(), media_type=service.metrics.content_type)


def _add_control_routes(router: APIRouter, service: ServiceView) -> None:
    @router.post("/api/control/pause", tags=["control"])
    def pause() -> Control:
        """Stop opening positions (exits, stops and targets still work)."""
        return Control.model_validate(service.pause())

    @router.post("/api/control/resume", tags=["control"])
    def resume() -> Control:
        """Trade again after a pause or an emergency stop."""
        return Control.model_validate(service.resume())

    @router.post("/api/control/emergency_stop", tags=["control"])
    def emergency_stop() -> Control:
        """Close every position at the next price and stop opening new ones."""
        return Control.model_validate(service.emergency_stop())


def _add_learning_routes(router: APIRouter, service: ServiceView) -> None:
    answers = _errors.BAD_BODY | _errors.INVALID

    @router.get("/models/versions", tags=["models"], responses=_errors.INVALID)
    def model_versions() -> list[ModelVersion]:
        """List every registered version: aliases, status, lineage and metrics, newest first."""
        return [ModelVersion.model_validate(v) for v in service.model_versions()]

    @router.post("/models/promote", tags=["models"], responses=answers | _errors.NOT_FOUND)
    def promote(request: PromoteRequest) -> LearningStatus:
        """Make a registered version production from the next candle (audited)."""
        status = service.learning_command("promote", request.version, request.reason)
        return LearningStatus.model_validate(status)

    @router.post("/models/rollback", tags=["models"], responses=answers)
    def rollback(request: LearningCommand) -> LearningStatus:
        """Put the previous production back from the next candle (audited)."""
        status = service.learning_command("rollback", None, request.reason)
        return LearningStatus.model_validate(status)

    @router.post("/api/ai/retrain", tags=["ai"], responses=answers)
    def retrain(request: LearningCommand) -> LearningStatus:
        """Start a retraining now, in the worker process (the trading does not wait)."""
        status = service.learning_command("retrain", None, request.reason)
        return LearningStatus.model_validate(status)


def _predict(service: ServiceView, request: PredictRequest) -> dict[str, Any]:
    candles = None if request.candles is None else _candle_frame(request.candles)
    return service.predict(request.symbol, request.timeframe, candles)


def _candle_frame(candles: list[CandleIn]) -> pl.DataFrame:
    """Return the candles as a frame of the candle schema, oldest first."""
    return pl.DataFrame(
        {
            "timestamp": pl.Series([c.timestamp for c in candles], dtype=TIMESTAMP),
            "open": [c.open for c in candles],
            "high": [c.high for c in candles],
            "low": [c.low for c in candles],
            "close": [c.close for c in candles],
            "volume": [c.volume for c in candles],
        }
    )
