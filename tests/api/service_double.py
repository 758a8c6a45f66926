"""ServiceDouble: a TEST DOUBLE of the trading service, for the API tests only.

It satisfies :class:`tradebrain.service.view.ServiceView` with fixed, deterministic data (two
symbols, three models, one open position, a few closed trades, an equity curve) and a real
control state machine (running → paused → running, emergency stop closes the positions). It
never trades; it only answers like the service would.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from tradebrain.exceptions import UserInputError
from tradebrain.service.metrics import ServiceMetrics

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SYMBOLS = ("BTC/USDT", "ETH/USDT")
MODELS = {
    "lightgbm": {"kind": "LightGBMModel", "family": "tabular", "input_kind": "tabular"},
    "tcn": {"kind": "TCNModel", "family": "sequence", "input_kind": "sequence"},
    "momentum": {"kind": "MomentumRule", "family": "tabular", "input_kind": "tabular"},
}


class UnknownSymbolError(UserInputError, LookupError):
    """The symbol is not served (a LookupError, so the API answers 404)."""


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class ServiceDouble:
    """A deterministic stand-in for ``TradingService`` (see the module notes).

    Parameters
    ----------
    warming_up
        True: no decision yet (``live_decision`` returns None, ``predict`` on the service's
        own candles is refused).
    """

    def __init__(self, *, warming_up: bool = False) -> None:
        self.metrics = ServiceMetrics()
        self.warming_up = warming_up
        self.failing: set[str] = set()  # names of methods that raise RuntimeError (for 500s)
        self._lock = threading.Lock()
        self._control = {"state": "running", "since": _iso(START), "reason": "started"}
        self._positions = [self._position()]
        self.predictions: list[tuple[str, str, int | None]] = []  # (symbol, tf, n candles)
        for symbol in SYMBOLS:
            self.metrics.observe_decision(symbol, "buy", 0.004)
        self.metrics.equity.set(10_250.0)
        self.metrics.open_positions.set(1)

    # --- helpers -------------------------------------------------------------------------
    def _maybe_fail(self, name: str) -> None:
        if name in self.failing:
            raise RuntimeError(f"{name} exploded (secret internals: /srv/state.db)")

    @staticmethod
    def _position() -> dict[str, Any]:
        return {
            "symbol": "BTC/USDT",
            "side": "long",
            "quantity": 0.05,
            "entry_price": 42_000.0,
            "stop_price": 41_200.0,
            "target_price": 43_600.0,
            "opened_at": _iso(START + 190 * HOUR),
            "mark_price": 42_450.0,
            "unrealized_pnl": 22.5,
        }

    @staticmethod
    def decision(
        symbol: str = "BTC/USDT", price: float = 42_450.0, when: datetime | None = None
    ) -> dict[str, Any]:
        """Return the decision dict the double gives for ``symbol`` (the contract's shape)."""
        up = symbol == "BTC/USDT"
        action = "buy" if up else "hold"
        return {
            "timestamp": _iso(when or START + 199 * HOUR),
            "symbol": symbol,
            "action": action,
            "confidence": 0.64 if up else 0.41,
            "size": 0.01 if up else 0.0,
            "stop": round(price * 0.98, 2) if up else None,
            "target": round(price * 1.04, 2) if up else None,
            "regime": "trending_up" if up else "ranging",
            "votes": {
                "lightgbm": [0.15, 0.25, 0.60] if up else [0.30, 0.42, 0.28],
                "tcn": [0.20, 0.22, 0.58] if up else [0.35, 0.30, 0.35],
                "momentum": [0.10, 0.30, 0.60] if up else [0.33, 0.34, 0.33],
            },
            "filters": ["kalman"] if up else ["kalman", "chop"],
            "reasons": (
                [
                    "Models agree on up (3 of 3 vote up).",
                    "Regime trending_up tilts weight to sequence models.",
                    "Stop 2.0% below the close at 1.5 ATR; target at 2:1 reward to risk.",
                ]
                if up
                else ["Chop filter: the market is ranging, so no new position."]
            ),
            "maker": not up,
            "proba": [0.16, 0.20, 0.64] if up else [0.33, 0.41, 0.26],
            "family_weights": {"tabular": 0.55, "sequence": 0.45},
            "price": price,
            "timeframe": "1h",
        }

    # --- ServiceView ---------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        self._maybe_fail("health")
        return {"status": "ok", "mode": "paper", "uptime_s": 12.5, "version": "0.1.0"}

    def live_decision(self, symbol: str | None = None) -> dict[str, Any] | None:
        self._maybe_fail("live_decision")
        if symbol is not None and symbol not in SYMBOLS:
            raise UnknownSymbolError(f"{symbol!r} is not served; this service trades BTC/USDT")
        if self.warming_up:
            return None
        return self.decision(symbol or "BTC/USDT")

    def ai_status(self) -> dict[str, Any]:
        self._maybe_fail("ai_status")
        return {
            "mode": "paper",
            "feed": "synthetic",
            "symbols": list(SYMBOLS),
            "timeframe": "1h",
            "warming_up": self.warming_up,
            "candles_loaded": {s: 0 if self.warming_up else 1700 for s in SYMBOLS},
            "sequence_length": 64,
            "trades_processed": 4,
            "decisions": 0 if self.warming_up else 400,
            "models": {
                name: {"ready": not self.warming_up, "kind": m["kind"]}
                for name, m in MODELS.items()
            },
            "feed_lag_s": 0.2,
            "control": self.control(),
            "phase": "warming_up" if self.warming_up else "running",
        }

    def learning_status(self) -> dict[str, Any]:
        self._maybe_fail("learning_status")
        return {
            "enabled": True,
            "shadow_mode": True,
            "retrain_every_bars": 500,
            "candles_since_training": 200,
            "trained_at": _iso(START),
            "trained_on": 1500,
            "next_retrain_in": 300,
        }

    def models(self) -> list[dict[str, Any]]:
        self._maybe_fail("models")
        return [
            {"id": name, **spec, "ready": not self.warming_up, "trained_at": _iso(START),
             "n_features": 64 if spec["input_kind"] == "sequence" else 180}
            for name, spec in MODELS.items()
        ]  # fmt: skip

    def model_status(self, model_id: str) -> dict[str, Any] | None:
        self._maybe_fail("model_status")
        for entry in self.models():
            if entry["id"] == model_id:
                return {**entry, "record": {"rows": 1500, "log_loss": 1.05}}
        return None

    def predict(
        self, symbol: str, timeframe: str, candles: pl.DataFrame | None = None
    ) -> dict[str, Any]:
        self._maybe_fail("predict")
        if symbol not in SYMBOLS:
            raise UnknownSymbolError(f"{symbol!r} is not served; this service trades BTC/USDT")
        if timeframe != "1h":
            raise UserInputError(f"the service's models work on 1h candles, not {timeframe}")
        with self._lock:
            self.predictions.append((symbol, timeframe, None if candles is None else len(candles)))
        if candles is None:
            if self.warming_up:
                raise UserInputError(f"no decision for {symbol} yet; the service is warming up")
            return self.decision(symbol)
        if candles.height < 3:
            raise UserInputError(f"send at least 3 candles; got {candles.height}")
        last = candles.row(-1, named=True)
        return self.decision(symbol, price=float(last["close"]), when=last["timestamp"])

    def top_predictions(self, limit: int) -> list[dict[str, Any]]:
        self._maybe_fail("top_predictions")
        if self.warming_up:
            return []
        ranked = sorted((self.decision(s) for s in SYMBOLS), key=lambda d: -d["confidence"])
        return ranked[:limit]

    def positions(self) -> list[dict[str, Any]]:
        self._maybe_fail("positions")
        with self._lock:
            return [dict(p) for p in self._positions]

    def trades(self, limit: int = 100) -> list[dict[str, Any]]:
        self._maybe_fail("trades")
        trades = []
        for i in range(6):
            entry_time = START + (150 - 8 * i) * HOUR
            entry, win = 41_000.0 + 150 * i, i % 3 != 1
            exit_price = entry * (1.02 if win else 0.99)
            pnl = 0.05 * (exit_price - entry) - 1.5
            trades.append({
                "symbol": SYMBOLS[i % 2], "side": "long", "entry_time": _iso(entry_time),
                "exit_time": _iso(entry_time + 5 * HOUR), "entry_price": entry,
                "exit_price": exit_price, "quantity": 0.05, "pnl": pnl, "fees": 1.5,
                "funding": 0.0, "exit_reason": "target" if win else "stop",
                "r_multiple": 2.0 if win else -1.0,
            })  # fmt: skip
        return trades[:limit]

    def equity(self, limit: int = 1000) -> dict[str, Any]:
        self._maybe_fail("equity")
        n = 200
        times = [_iso(START + i * HOUR) for i in range(n)]
        equity = [10_000.0 * (1 + 0.0002 * i + 0.006 * math.sin(i / 9)) for i in range(n)]
        hold = [10_000.0 * (1 + 0.0001 * i + 0.02 * math.sin(i / 17)) for i in range(n)]
        return {"timestamps": times[-limit:], "equity": equity[-limit:],
                "buy_and_hold": hold[-limit:]}  # fmt: skip

    def control(self) -> dict[str, Any]:
        self._maybe_fail("control")
        with self._lock:
            return dict(self._control)

    def pause(self) -> dict[str, Any]:
        return self._switch("paused", "paused by the operator")

    def resume(self) -> dict[str, Any]:
        return self._switch("running", "resumed by the operator")

    def emergency_stop(self) -> dict[str, Any]:
        with self._lock:
            self._positions = []
        return self._switch("emergency_stop", "emergency stop pulled by the operator")

    def _switch(self, state: str, reason: str) -> dict[str, Any]:
        self._maybe_fail(state)
        with self._lock:
            self._control = {
                "state": state,
                "since": _iso(datetime.now(UTC)),
                "reason": reason,
            }
            return dict(self._control)
