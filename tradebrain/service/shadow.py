"""Shadow mode: model versions trading on paper beside production, on the very same candles.

A :class:`Scoreboard` is one model bundle deciding on every candle the service handles, through
its own :class:`~tradebrain.execution.broker.SimulatedBroker` with the service's costs and its
own risk manager, never sending an order anywhere. :class:`ShadowBook` runs two of them from the
same candle on: the **incumbent** (a fresh paper copy of production) and the **candidate**.
Their per-bar after-cost log returns are therefore paired, candle for candle, which is what the
promotion gate (:func:`~tradebrain.evaluation.promotion.promotion_verdict`) compares.

The shadow book keeps no state of its own across a restart: bundles are fixed and the engine is
deterministic, so :meth:`ShadowBook.start` rebuilds both scoreboards by replaying the candles
since the shadow began (warm-up before it, the track after it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from tradebrain.brain.decision import Decision
from tradebrain.brain.tuning import BrainTuning
from tradebrain.config import Settings
from tradebrain.core.events import CandleClosed, DecisionMade, Event, make_candle
from tradebrain.core.market import MarketType
from tradebrain.data.timeframes import timeframe_seconds
from tradebrain.engine.engine import Engine
from tradebrain.execution.broker import SimulatedBroker
from tradebrain.execution.costs import settings_costs
from tradebrain.execution.monitor import MonitorRules, PositionMonitor
from tradebrain.risk.manager import RiskManager
from tradebrain.strategies.hybrid import HybridStrategy
from tradebrain.strategies.live_signals import LiveSignals


@dataclass
class Scoreboard:
    """One bundle version trading on paper: an engine per symbol around one simulated broker.

    ``returns`` holds one after-cost log return of the paper account per bar of the primary
    (first) symbol, from the bar after the scoreboard started.
    """

    version: int
    broker: SimulatedBroker
    engines: dict[str, Engine]
    primary: str
    returns: list[float] = field(default_factory=list)
    _equity: float = 0.0
    _decisions: dict[str, Decision] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        version: int,
        bundle: Any,
        histories: dict[str, pl.DataFrame],
        settings: Settings,
        *,
        timeframe: str,
        market: MarketType,
        cash: float,
        leverage: float,
    ) -> Scoreboard:
        """Build a scoreboard for ``bundle`` warmed up on ``histories`` (symbol -> candles)."""
        broker = SimulatedBroker(
            cash=cash,
            costs=settings_costs(settings.execution),
            market=market,
            leverage=leverage,
            monitor=PositionMonitor(MonitorRules.from_settings(settings.risk)),
        )
        risk = RiskManager(settings.risk)
        engines: dict[str, Engine] = {}
        board = cls(version, broker, engines, primary=next(iter(histories)), _equity=cash)
        for symbol, history in histories.items():
            signals = LiveSignals(bundle, timeframe)
            signals.warm_up(history)
            strategy = HybridStrategy(
                live=signals, brain_settings=settings.brain, market=market,
                tuning=BrainTuning.from_settings(settings),
            )  # fmt: skip
            engine = Engine(
                strategy, broker, risk, symbol=symbol, timeframe=timeframe,
                market_type=market, leverage=leverage,
            )  # fmt: skip
            strategy.init(engine.context)
            engine.subscribe(board._listener(symbol))
            engines[symbol] = engine
        return board

    def _listener(self, symbol: str) -> Any:
        decisions = self._decisions

        def keep(event: Event) -> None:
            if type(event) is DecisionMade:
                decisions[symbol] = event.decision  # type: ignore[assignment]

        return keep

    def step(self, candle: CandleClosed) -> Decision | None:
        """Run ``candle`` through its symbol's engine; return the decision made on it."""
        engine = self.engines.get(candle.symbol)
        if engine is None:
            return None
        self._decisions.pop(candle.symbol, None)
        engine.on_candle_closed(candle)
        if candle.symbol == self.primary:
            equity = self.broker.account(candle.close_time).equity
            self.returns.append(_log_return(self._equity, equity))
            self._equity = equity
        return self._decisions.get(candle.symbol)

    @property
    def equity(self) -> float:
        """Return the paper account's equity after the newest primary bar."""
        return self._equity


def _log_return(before: float, after: float) -> float:
    if before <= 0 or after <= 0:
        return -math.inf if after <= 0 < before else 0.0
    return math.log(after / before)


@dataclass
class ShadowBook:
    """The candidate and a paper copy of production, started on the same candle.

    Attributes
    ----------
    since
        The open time of the first candle both scoreboards traded (their track starts there).
    incumbent, candidate
        The two scoreboards; ``None`` before :meth:`start`.
    """

    settings: Settings
    timeframe: str
    market: MarketType
    cash: float
    leverage: float
    since: datetime | None = None
    incumbent: Scoreboard | None = None
    candidate: Scoreboard | None = None

    def start(
        self,
        production: tuple[int, Any],
        candidate: tuple[int, Any],
        histories: dict[str, pl.DataFrame],
        since: datetime,
    ) -> None:
        """Start shadowing ``candidate`` against ``production`` (each ``(version, bundle)``).

        ``histories`` are the symbols' candles held now (oldest first). The scoreboards warm
        up on the candles before ``since`` and replay the ones from ``since`` on, so a
        restarted service resumes the same paired track.
        """
        warm = {s: h.filter(pl.col("timestamp") < since) for s, h in histories.items()}
        track = [
            (symbol, row)
            for symbol, history in histories.items()
            for row in history.filter(pl.col("timestamp") >= since).iter_rows(named=True)
        ]
        track.sort(key=lambda item: (item[1]["timestamp"], list(histories).index(item[0])))
        boards = [self._board(version, bundle, warm) for version, bundle in (production, candidate)]
        self.incumbent, self.candidate = boards
        self.since = since
        step = timedelta(seconds=timeframe_seconds(self.timeframe))
        for symbol, row in track:
            opened = row["timestamp"]
            candle = make_candle(
                symbol, opened, opened + step,
                row["open"], row["high"], row["low"], row["close"], row["volume"],
            )  # fmt: skip
            for board in boards:
                board.step(candle)

    def _board(self, version: int, bundle: Any, warm: dict[str, pl.DataFrame]) -> Scoreboard:
        return Scoreboard.build(
            version, bundle, warm, self.settings, timeframe=self.timeframe,
            market=self.market, cash=self.cash, leverage=self.leverage,
        )  # fmt: skip

    def stop(self) -> None:
        """Forget both scoreboards (the candidate was promoted or refused)."""
        self.incumbent = self.candidate = None
        self.since = None

    @property
    def active(self) -> bool:
        """Return whether a candidate is being shadowed."""
        return self.candidate is not None

    def step(self, candle: CandleClosed) -> Decision | None:
        """Run ``candle`` through both scoreboards; return the candidate's decision."""
        if self.incumbent is None or self.candidate is None:
            return None
        self.incumbent.step(candle)
        return self.candidate.step(candle)

    def paired_returns(self) -> tuple[list[float], list[float]]:
        """Return (candidate, incumbent) per-bar after-cost log returns, paired by candle."""
        if self.incumbent is None or self.candidate is None:
            return [], []
        return list(self.candidate.returns), list(self.incumbent.returns)


__all__ = ["Scoreboard", "ShadowBook"]
