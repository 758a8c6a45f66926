"""What the API and the dashboard may ask of the running service: one object, read and control.

The REST routes (:mod:`tradebrain.api`) are thin: each calls one method of a :class:`ServiceView`
and returns what it gives, validated by a pydantic response model. The real implementation is
:class:`tradebrain.service.service.TradingService`; every method is safe to call from the API's
threads while the runner trades in its own thread.

Shapes (all JSON-ready: datetimes as ISO-8601 UTC text, floats finite or None):

- decision: ``Decision.to_dict()`` plus ``"price"`` (the candle's close) and ``"timeframe"``;
  keys ``timestamp, symbol, action, confidence, size, stop, target, regime, votes, filters,
  reasons, maker, proba, family_weights, price, timeframe``.
- position: ``symbol, side ("long"|"short"), quantity, entry_price, stop_price, target_price,
  opened_at, mark_price, unrealized_pnl``.
- trade: ``symbol, side, entry_time, exit_time, entry_price, exit_price, quantity, pnl, fees,
  funding, exit_reason, r_multiple``.
- equity: ``{"timestamps": [...], "equity": [...], "buy_and_hold": [...]}`` where buy-and-hold
  is the starting equity put into the first symbol at the first recorded candle.
- control: ``{"state": "running"|"paused"|"emergency_stop", "since": ISO, "reason": str}``.
"""

from __future__ import annotations

from typing import Any, Protocol

import polars as pl

from tradebrain.service.prometheus import ServiceMetrics


class ServiceView(Protocol):
    """The running service as the API sees it."""

    metrics: ServiceMetrics

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "mode": "paper"|"live", "uptime_s": float, "version": str}``."""
        ...

    def live_decision(self, symbol: str | None = None) -> dict[str, Any] | None:
        """The latest decision (of ``symbol``, or of any symbol); None while warming up."""
        ...

    def ai_status(self) -> dict[str, Any]:
        """``candles_loaded`` (per symbol), ``sequence_length``, ``trades_processed``,
        ``decisions``, ``models`` ({name: {"ready": bool, "kind": str}}), ``warming_up``,
        ``mode``, ``feed``, ``symbols``, ``timeframe``, ``feed_lag_s``, ``control``."""
        ...

    def learning_status(self) -> dict[str, Any]:
        """What the learning loop knows: ``enabled``, ``retrain_every_bars``,
        ``candles_since_training``, ``trained_at``, ``trained_on`` (candles),
        ``next_retrain_in``."""
        ...

    def model_versions(self) -> list[dict[str, Any]]:
        """Every registered model version: ``version, status, aliases, created_at, run_id,
        metrics, lineage``; raises UserInputError when the learning loop is off."""
        ...

    def learning_command(
        self, command: str, version: int | None = None, reason: str = ""
    ) -> dict[str, Any]:
        """``promote`` a version, ``rollback`` production or ``retrain`` now; return the
        learning status after it (UserInputError when it cannot be done, saying why)."""
        ...

    def models(self) -> list[dict[str, Any]]:
        """One entry per model: ``id, kind, family, input_kind, ready, trained_at, n_features``."""
        ...

    def model_status(self, model_id: str) -> dict[str, Any] | None:
        """One model's entry plus its training record; None when there is no such model."""
        ...

    def predict(
        self, symbol: str, timeframe: str, candles: pl.DataFrame | None = None
    ) -> dict[str, Any]:
        """A decision for ``symbol`` now, or for the given candles (candle schema, oldest first).

        Returns a decision dict (shape above). Raises
        :class:`~tradebrain.exceptions.UserInputError` with a message naming the problem when
        the timeframe differs, or the candles are too few or invalid; without candles, a
        symbol that is not served raises :class:`~tradebrain.exceptions.NotFoundError`. Sent
        candles may be of any symbol (the name only labels the decision).
        """
        ...

    def predict_batch(
        self, requests: list[tuple[str, str, pl.DataFrame | None]]
    ) -> list[dict[str, Any]]:
        """One decision per ``(symbol, timeframe, candles or None)``, as :meth:`predict`.

        The first request refused fails the batch with its error, the message starting with
        ``requests[i]: ``. Decisions on sent candles run in a bounded pool of worker
        processes: when it is full, :class:`~tradebrain.service.prediction_pool.
        PredictionsBusyError` (retry after ``retry_after`` seconds); a worker that died or
        overran, :class:`~tradebrain.exceptions.TemporaryError`.
        """
        ...

    def top_predictions(self, limit: int) -> list[dict[str, Any]]:
        """The latest decision of each served symbol, most confident first, at most ``limit``."""
        ...

    def positions(self) -> list[dict[str, Any]]:
        """Open positions (shape above)."""
        ...

    def trades(self, limit: int = 100) -> list[dict[str, Any]]:
        """Closed trades, newest first (shape above)."""
        ...

    def equity(self, limit: int = 1000) -> dict[str, Any]:
        """The equity curve and buy-and-hold on the same candles, oldest first."""
        ...

    def control(self) -> dict[str, Any]:
        """The control state (shape above)."""
        ...

    def pause(self) -> dict[str, Any]:
        """Stop opening positions (exits, stops and targets still work); return the control
        this call produced (not a later read, which may show another caller's switch)."""
        ...

    def resume(self) -> dict[str, Any]:
        """Trade again after a pause or an emergency stop; return the control it produced."""
        ...

    def emergency_stop(self) -> dict[str, Any]:
        """Close every position at the next price, cancel open orders, stop opening new ones;
        return the control it produced."""
        ...
