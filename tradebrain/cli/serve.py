"""``tradebrain serve``: the paper or live trading service with its API and dashboard."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from tradebrain.cli._shared import console, friendly_errors, settings_of
from tradebrain.exceptions import UserInputError

GO_LIVE = "TRADEBRAIN_GO_LIVE"
PORTS = (1, 65535)
KEY_VARIABLES = ("TRADEBRAIN_EXCHANGE_API_KEY", "TRADEBRAIN_EXCHANGE_SECRET")


def live_gate(environ: dict[str, str] | os._Environ[str], token: str | None) -> None:
    """Refuse live trading unless it was switched on, keys are given and the API is locked
    with a strong token (:func:`~tradebrain.api._auth.token_weakness`)."""
    if environ.get(GO_LIVE, "").strip().lower() != "true":
        raise UserInputError(
            f"live mode places real orders with real money, so it is off unless {GO_LIVE}=true "
            "is set in the environment; use --mode paper to trade on paper"
        )
    missing = [name for name in KEY_VARIABLES if not environ.get(name)]
    if missing:
        raise UserInputError(
            f"live mode needs the exchange API key and secret in {', '.join(missing)} "
            "(environment only; they are never read from files or printed)"
        )
    if not token:
        raise UserInputError(
            "live mode needs an API token so nobody else can steer it: set "
            "TRADEBRAIN_API__TOKEN or api.token in the config file"
        )
    from tradebrain.api._auth import TOKEN_HELP, token_weakness  # fastapi: only when serving

    weakness = token_weakness(token)
    if weakness is not None:
        raise UserInputError(
            f"live mode needs a strong API token, and the configured one {weakness}; {TOKEN_HELP}"
        )


@friendly_errors
def serve_command(
    ctx: typer.Context,
    mode: Annotated[str, typer.Option(help="paper (simulated fills) or live (real orders).")] = (
        "paper"
    ),
    feed: Annotated[
        str, typer.Option(help="synthetic | replay:PATH | exchange:NAME (e.g. exchange:binance).")
    ] = "synthetic",
    symbols: Annotated[str, typer.Option(help="Comma-separated, e.g. BTC/USDT,ETH/USDT.")] = (
        "BTC/USDT"
    ),
    timeframe: Annotated[str, typer.Option(help="Candle timeframe the models work on.")] = "1h",
    models: Annotated[
        Path | None,
        typer.Option(help="Model folder from `tradebrain train` (default: train on warm-up)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="API and dashboard port (default: api.port, 8080).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: api.host, 127.0.0.1).")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(help="State database: a file or SQLAlchemy URL (default HOME/serve/MODE.db)."),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Candles per second for synthetic and replay feeds.")
    ] = 1.0,
    warmup: Annotated[
        int,
        typer.Option(help="Candles of history to start from (and to train on without --models)."),
    ] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
    cash: Annotated[float, typer.Option(help="Starting paper balance (quote currency).")] = (
        10_000.0
    ),
    leverage: Annotated[float, typer.Option(help="Leverage on perpetuals.")] = 1.0,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Exchange API base URL (testnet, proxy).")
    ] = None,
    stream: Annotated[
        str,
        typer.Option(
            "--stream",
            help="How an exchange feed listens: websocket (ccxt.pro; REST backfills gaps and "
            "takes over while the websocket is down) or rest (polling only).",
        ),
    ] = "websocket",
    order_flow: Annotated[
        bool,
        typer.Option(
            "--order-flow/--no-order-flow",
            help="With --stream websocket: also stream trades, the order book and funding, "
            "give the models each candle's order-flow inputs and record them in the store.",
        ),
    ] = False,
    ws_url: Annotated[
        str | None,
        typer.Option("--ws-url", help="Websocket base URL instead of the venue's (proxy)."),
    ] = None,
    agent: Annotated[
        Path | None,
        typer.Option(
            "--agent",
            help="An RL agent folder (`tradebrain rl train`) that scales or vetoes the brain's "
            "entries.",
        ),
    ] = None,
    learn: Annotated[
        bool | None,
        typer.Option(
            "--learn/--no-learn",
            help="Run the learning loop: retrain, shadow candidates, gated promotion, "
            "rollback (learning.enabled).",
        ),
    ] = None,
) -> None:
    """Run the trading service: the engine fed live, the REST API and the dashboard."""
    import uvicorn

    from tradebrain.api.app import create_app
    from tradebrain.service.options import ServeOptions
    from tradebrain.service.service import TradingService

    settings = settings_of(ctx)
    if learn is not None:
        settings = settings.model_copy(
            update={"learning": settings.learning.model_copy(update={"enabled": learn})}
        )
    port = settings.api.port if port is None else port
    if not PORTS[0] <= port <= PORTS[1]:
        raise UserInputError(f"--port must be between {PORTS[0]} and {PORTS[1]}, got {port}")
    token = settings.api.token.get_secret_value() if settings.api.token else None
    if mode == "live":
        live_gate(os.environ, token)
    options = ServeOptions(
        mode=mode, feed=feed, symbols=tuple(s.strip() for s in symbols.split(",") if s.strip()),
        timeframe=timeframe, models=models, state=state, speed=speed, warmup=warmup, seed=seed,
        cash=cash, leverage=leverage, api_url=api_url, stream=stream, order_flow=order_flow,
        ws_url=ws_url, agent=agent,
    )  # fmt: skip
    from tradebrain.api._auth import token_weakness

    generated = token is None
    if token is not None and (weakness := token_weakness(token)) is not None:
        console.print(f"[yellow]the API token {weakness}; fine for paper, refused in live mode[/]")
    if token is None:
        token = secrets.token_urlsafe(24)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    service = TradingService(options, settings)
    app = create_app(service, token=token)
    bind = host or settings.api.host
    service.start()
    where = f"http://{bind}:{port}/"
    served = ", ".join(options.symbols)
    console.print(f"[green]tradebrain {mode}[/] on {feed} for {served}: {where}")
    if generated:
        console.print(
            f"[yellow]no API token configured; this run's token:[/] {token}\n"
            f"dashboard: {where}#token={token}"
        )
    server = uvicorn.Server(uvicorn.Config(app, host=bind, port=port, log_level="warning"))
    failed: list[str] = []

    def stop_if_start_up_fails() -> None:
        """A run that cannot start (bad settings, other run's state) ends the command."""
        while service.phase in ("starting", "warming_up"):
            time.sleep(0.1)
        if service.phase == "failed":
            failed.append(service.error or "the runner failed")
            server.should_exit = True

    threading.Thread(target=stop_if_start_up_fails, daemon=True).start()
    try:
        server.run()
    finally:
        service.stop()
    if failed:
        raise UserInputError(f"the service could not start: {failed[0]}")
