"""What ``tradebrain serve`` was asked to run, checked before anything starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tradebrain.core.market import MarketType, check_account
from tradebrain.exceptions import UserInputError

MODES = ("paper", "live")
STREAMS = ("websocket", "rest")


@dataclass(frozen=True)
class ServeOptions:
    """The service's run: mode, feed, markets, models, state and pacing.

    Attributes
    ----------
    feed
        ``"synthetic"``, ``"replay:PATH"`` or ``"exchange:NAME"``.
    state
        SQLAlchemy URL or a file path for the state database; None: ``HOME/serve/MODE.db``.
    models
        A model folder from ``tradebrain train``; None: the service trains the configured
        models on its warm-up history once and keeps them beside the state.
    speed
        Candles per second for the synthetic and replay feeds (0 = as fast as possible).
    warmup
        Candles of history the features start from, and the models train on when no folder
        is given (the forecast needs thousands of candles to tell skill from luck).
    max_candle_age
        Live mode: no new position opens on a candle that closed longer ago than this many
        seconds (a backfill after an outage); None: two candles.
    stream
        How an exchange feed listens: ``"websocket"`` (ccxt.pro, REST to backfill and while
        the websocket is down) or ``"rest"`` (polling only).
    order_flow
        With the websocket: stream trades, book and funding too, feed each candle's order-flow
        inputs to the models and record the tape in the Parquet store.
    ws_url
        Where the websockets go instead of the venue's hosts (a proxy, a loopback server).
    agent
        An RL agent folder (``tradebrain rl train``) asked to scale or veto every entry the
        brain proposes; None trades the brain's targets.
    """

    mode: str = "paper"
    feed: str = "synthetic"
    symbols: tuple[str, ...] = ("BTC/USDT",)
    timeframe: str = "1h"
    models: Path | None = None
    state: str | None = None
    speed: float = 1.0
    warmup: int = 20_000
    seed: int = 7
    cash: float = 10_000.0
    leverage: float = 1.0
    api_url: str | None = None
    max_candle_age: float | None = None
    stream: str = "websocket"
    order_flow: bool = False
    ws_url: str | None = None
    agent: Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserInputError(f"--mode must be paper or live, not {self.mode!r}")
        kind = self.feed.split(":", 1)[0]
        if kind not in ("synthetic", "replay", "exchange") or (
            kind != "synthetic" and ":" not in self.feed
        ):
            raise UserInputError(
                f"--feed {self.feed!r} is not one of: synthetic, replay:PATH, exchange:NAME"
            )
        if self.mode == "live" and kind != "exchange":
            raise UserInputError(
                "live mode trades real money on an exchange, so it needs --feed exchange:NAME"
            )
        if not self.symbols or any(not s or "/" not in s for s in self.symbols):
            raise UserInputError(
                f"--symbols must be like BTC/USDT or BTC/USDT:USDT (perp), got {self.symbols}"
            )
        markets = {self.market_of(s) for s in self.symbols}
        if len(markets) > 1:
            raise UserInputError("--symbols mixes spot and perpetual markets; run one service each")
        if not (math.isfinite(self.speed) and self.speed >= 0):
            raise UserInputError(
                f"--speed must be a finite number of candles per second, 0 or more "
                f"(0 = as fast as possible), got {self.speed}"
            )
        if self.stream not in STREAMS:
            raise UserInputError(f"--stream must be websocket or rest, not {self.stream!r}")
        if self.order_flow and (kind != "exchange" or self.stream != "websocket"):
            raise UserInputError(
                "--order-flow streams trades and books from a venue's websockets, so it needs "
                "--feed exchange:NAME with --stream websocket"
            )
        if self.warmup < 300:
            raise UserInputError(f"--warmup must be at least 300 candles, got {self.warmup}")
        check_account(self.cash, self.leverage, self.market)

    @property
    def feed_kind(self) -> str:
        """``"synthetic"``, ``"replay"`` or ``"exchange"``."""
        return self.feed.split(":", 1)[0]

    @property
    def feed_target(self) -> str:
        """What follows ``replay:`` or ``exchange:`` (empty for synthetic)."""
        return self.feed.split(":", 1)[1] if ":" in self.feed else ""

    @property
    def market(self) -> MarketType:
        """Spot, or perp when the symbols name a settle currency (``BTC/USDT:USDT``)."""
        return self.market_of(self.symbols[0])

    @staticmethod
    def market_of(symbol: str) -> MarketType:
        """Return the market type a ccxt symbol names."""
        return MarketType.PERP if ":" in symbol else MarketType.SPOT

    @property
    def run(self) -> str:
        """The run's name in the state database (one paper and one live run per database)."""
        return self.mode


def state_location(options: ServeOptions, home: Path) -> tuple[str, Path]:
    """Return the state database URL and the folder of the service's own models."""
    if options.state is not None and "://" in options.state:
        return options.state, home / "serve" / f"{options.run}-models"
    path = Path(options.state) if options.state else home / "serve" / f"{options.run}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}", path.with_name(f"{path.stem}-models")
