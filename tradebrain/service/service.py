"""The trading service: one object that runs the runner in its own thread and answers the API.

:class:`TradingService` implements :class:`~tradebrain.service.view.ServiceView`. The runner
thread takes candles from the feed and steps the engines; API threads read the state store
(positions, trades, equity and decisions survive restarts because they are read from it) and
the runner's in-memory view, under one lock so a read never sees half a candle.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import polars as pl

from tradebrain.config import Settings
from tradebrain.exceptions import NotFoundError, TemporaryError, UserInputError
from tradebrain.service.control import EMERGENCY, PAUSED, RUNNING
from tradebrain.service.feeds import LiveFeed, make_feed
from tradebrain.service.json_ready import finite, plain
from tradebrain.service.notify import ErrorForwarder, Notifier
from tradebrain.service.options import ServeOptions, state_location
from tradebrain.service.prediction_pool import PredictionPool
from tradebrain.service.prometheus import ServiceMetrics
from tradebrain.service.runner import Runner
from tradebrain.state import StateStore

log = logging.getLogger(__name__)

PHASES = ("starting", "warming_up", "running", "reconnecting", "finished", "failed", "stopped")


class TradingService:
    """The running service (see the module notes).

    Parameters
    ----------
    options
        What to run (``tradebrain serve``'s options).
    settings
        The application settings (risk, brain, models, execution, api).
    feed, store
        Built from ``options`` when None (tests pass their own).
    broker
        Live mode: the exchange broker (built from ``options`` and the environment's keys
        when None).
    """

    def __init__(
        self,
        options: ServeOptions,
        settings: Settings,
        *,
        feed: LiveFeed | None = None,
        store: StateStore | None = None,
        broker: Any = None,
    ) -> None:
        self.options = options
        self.settings = settings
        self.metrics = ServiceMetrics()
        # built first: a URL apprise cannot use stops the service before anything starts
        self.notifier = Notifier.from_settings(
            settings.notify, on_count=self.metrics.count_notification, label=f"[{options.mode}]"
        )
        self._errors = ErrorForwarder(self.notifier)
        self.predictions = PredictionPool(settings.api.predict_workers, settings.api.predict_queue)
        url, model_dir = state_location(options, settings.home)
        self.store = store or StateStore(url)
        self.feed = feed or make_feed(options, settings)
        self._model_dir = model_dir
        self._broker = broker
        self.runner = self._new_runner()
        self.phase = "starting"
        self.detail = ""
        self.error: str | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._feed_lag: float | None = None

    def _new_runner(self) -> Runner:
        return Runner(
            self.options, self.settings, self.feed, self.store, self.metrics,
            model_dir=self._model_dir, progress=self._progress, exchange_broker=self._broker,
            notifier=self.notifier,
        )  # fmt: skip

    # --- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the runner thread (returns at once; the phase says how far it got)."""
        if self.notifier.wants("error"):  # the errors every tradebrain logger logs
            logging.getLogger("tradebrain").addHandler(self._errors)
        self._thread = threading.Thread(target=self._main, name="tradebrain-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the runner to stop after the candle in hand, and wait for it."""
        self._stop.set()
        self.runner.halt.set()  # a step held by a full disk gives up; a restart redoes it
        self.predictions.close()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.runner.learning is not None:
            self.runner.learning.close()
        with self._lock:
            if self.phase in ("running", "warming_up", "starting"):
                self.phase = "stopped"
        logging.getLogger("tradebrain").removeHandler(self._errors)
        self.notifier.close(timeout=min(timeout, 5.0))  # what is queued goes out first

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the runner trades (or failed); return whether it is running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.phase in ("running", "finished", "failed", "stopped"):
                return self.phase in ("running", "finished")
            time.sleep(0.05)
        return False

    def _progress(self, text: str) -> None:
        self.detail = text
        log.info(text)

    def _main(self) -> None:
        """Run the runner; after a venue outage, start it again as after a crash."""
        delay = 1.0
        while True:
            try:
                self._run_once()
                return
            except TemporaryError as error:  # the venue or network: wait, then resume
                log.warning("the venue is unavailable (%s); resuming in %.0f s", error, delay)
                self.metrics.count_error("venue")
                with self._lock:
                    self.phase = "reconnecting"
                    self.error = f"{type(error).__name__}: {error}"
                if self._stop.wait(delay):
                    with self._lock:
                        self.phase = "stopped"
                    return
                delay = min(2 * delay, 60.0)
                self.runner = self._new_runner()  # restored from the state, like a restart
            except UserInputError as error:  # a setting or data problem: say it plainly
                log.error("the runner stopped: %s", error)
                self._failed(error)
                return
            except Exception as error:  # the service stays up to say what went wrong
                log.exception("the runner stopped")
                self._failed(error)
                return

    def _run_once(self) -> None:
        with self._lock:
            self.phase = "warming_up"
        self.runner.prepare()
        with self._lock:
            self.phase = "running"
            self.detail = ""
            self.error = None
        live_feed = self.options.feed_kind == "exchange"
        for candle in self.feed.resume(self.runner.after, self._stop):
            with self._lock:
                self.runner.step(candle)
            if live_feed:
                lag = (datetime.now(UTC) - candle.close_time).total_seconds()
                self._feed_lag = lag
                self.metrics.feed_lag.set(lag)
                self.metrics.observe_feed(self.feed.status())
        with self._lock:
            if self.phase == "running":
                self.phase = "stopped" if self._stop.is_set() else "finished"

    def _failed(self, error: BaseException) -> None:
        self.metrics.count_error("runner")
        with self._lock:
            self.phase = "failed"
            self.error = f"{type(error).__name__}: {error}"

    # --- ServiceView ----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Say the service is up, its mode and phase."""
        return {
            "status": "ok" if self.phase != "failed" else "degraded",
            "mode": self.options.mode,
            "phase": self.phase,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "version": version("tradebrain"),
            # the kind only: /health needs no token (the message is in /api/ai/status)
            "error": None if self.error is None else self.error.split(":", 1)[0],
        }

    def live_decision(self, symbol: str | None = None) -> dict[str, Any] | None:
        """Return the latest decision (of ``symbol``), or None while warming up."""
        with self._lock:
            latest = dict(self.runner.latest)
        if symbol is not None:
            self._check_symbol(symbol)
            found = latest.get(symbol)
        else:
            found = max(latest.values(), key=lambda d: d["timestamp"], default=None)
        if found is None and self.phase != "warming_up":
            stored = self.store.latest_decision(self.options.run, symbol)
            return finite(stored) if stored else None
        return finite(found) if found else None

    def ai_status(self) -> dict[str, Any]:
        """Say how much data and which models the service has."""
        with self._lock:
            runs = self.runner.runs
            loaded = {s: r.candles_loaded for s, r in runs.items()}
            bundle = self.runner.bundle
        counts = self.store.counts(self.options.run)
        return {
            "mode": self.options.mode,
            "feed": self.feed.name,
            "symbols": list(self.options.symbols),
            "timeframe": self.feed.timeframe,
            "phase": self.phase,
            "detail": self.detail,
            "warming_up": self.phase in ("starting", "warming_up"),
            "candles_loaded": loaded,
            "sequence_length": None if bundle is None else int(bundle.window),
            "trades_processed": counts.get("trades", 0),
            "fills": counts.get("fills", 0),
            "decisions": counts.get("decisions", 0),
            "models": {m["id"]: {"ready": m["ready"], "kind": m["kind"]} for m in self.models()},
            "feed_lag_s": self._feed_lag,
            "feed_status": self.feed.status(),
            "control": self.control(),
            "error": self.error,
            "notifications": self.notifier.status(),
        }

    def learning_status(self) -> dict[str, Any]:
        """Say what the learning loop knows and does (off: the models stay as loaded)."""
        learning = self.settings.learning
        with self._lock:
            bundle = self.runner.bundle
            loop = self.runner.learning
            since = self.runner.state.candles_since_training
            status = loop.status() if loop is not None else None
            experience = None if loop is None else loop.experience_counts()
        base = {
            "enabled": status is not None,
            "retrain_every_bars": learning.retrain_every_bars,
            "candles_since_training": since,
            "trained_at": self.runner.trained_at,
            "trained_on": None if bundle is None else int(bundle.manifest.get("rows", 0)),
            "next_retrain_in": None,
        }
        if status is None:
            note = "the learning loop is off (learning.enabled); the models stay as loaded"
            return {**base, "note": note}
        base["candles_since_training"] = status["bars_since_training"]
        return finite(plain({**base, **status, "experience": experience}))

    def model_versions(self) -> list[dict[str, Any]]:
        """List every registered model version with its aliases, status, lineage, metrics."""
        loop = self.runner.learning
        if loop is None:
            raise UserInputError(
                "the learning loop is off: no model registry is kept (learning.enabled)"
            )
        return [_version_dict(v) for v in loop.registry.versions()]

    def learning_command(
        self, command: str, version: int | None = None, reason: str = ""
    ) -> dict[str, Any]:
        """Promote a version, roll production back, or start a retraining (operator)."""
        with self._lock:
            self.runner.learning_command(command, version=version, reason=reason)
        return self.learning_status()

    def models(self) -> list[dict[str, Any]]:
        """Describe every model of the bundle."""
        from tradebrain.brain.fusion import family_of

        bundle = self.runner.bundle
        if bundle is None:
            return []
        return [
            {
                "id": name,
                "kind": type(model).__name__,
                "family": family_of(name),
                "input_kind": model.input_kind,
                "ready": True,
                "trained_at": self.runner.trained_at,
                "n_features": len(
                    bundle.sequence_names
                    if model.input_kind == "sequence"
                    else bundle.feature_names
                ),
                "temperature": bundle.temperatures.get(name, 1.0),
            }
            for name, model in bundle.models.items()
        ]

    def model_status(self, model_id: str) -> dict[str, Any] | None:
        """Describe one model and its training record; None when unknown."""
        for entry in self.models():
            if entry["id"] == model_id:
                record = getattr(self.runner.bundle.models[model_id], "record_", None)
                loop = self.runner.learning
                live = None if loop is None else loop.health.get(model_id)
                return {
                    **entry,
                    "record": finite(plain(record)) if record else {},
                    "live": None if live is None else finite(plain(live)),
                    "muted": loop is not None and model_id in loop.muted,
                }
        return None

    def predict(
        self, symbol: str, timeframe: str, candles: pl.DataFrame | None = None
    ) -> dict[str, Any]:
        """Return the latest decision of a served symbol, or a decision on given candles
        (decided in a worker process: see :mod:`~tradebrain.service.prediction_pool`)."""
        return self.predict_batch([(symbol, timeframe, candles)], name_index=False)[0]

    def predict_batch(
        self,
        requests: list[tuple[str, str, pl.DataFrame | None]],
        *,
        name_index: bool = True,
    ) -> list[dict[str, Any]]:
        """Return one decision per ``(symbol, timeframe, candles or None)``, in order.

        Every request is checked first (cheap); the ones with candles then go to ONE worker
        job, so a batch takes one place in the prediction pool. The first request refused
        fails the batch, its message starting with ``requests[i]: `` when ``name_index``.
        """
        answers: list[dict[str, Any] | None] = []
        sent: list[tuple[int, tuple[pl.DataFrame, str, str]]] = []
        for index, (symbol, timeframe, candles) in enumerate(requests):
            try:
                answers.append(self._check_request(symbol, timeframe, candles))
            except UserInputError as error:
                raise _indexed(error, index, name_index) from None
            if candles is not None:
                sent.append((index, (candles, symbol, timeframe)))
        if sent:
            bundle_dir = self.runner.bundle_dir
            if bundle_dir is None:
                raise UserInputError("the service is still warming up; try again in a moment")
            from tradebrain.service.prediction_pool import decide_each

            decided = self.predictions.run(
                decide_each, str(bundle_dir), self.settings, [job for _, job in sent]
            )
            for (index, _), answer in zip(sent, decided, strict=False):
                if isinstance(answer, str):
                    raise _indexed(UserInputError(answer), index, name_index)
                answers[index] = finite(answer)
        missing = [i for i, answer in enumerate(answers) if answer is None]
        if missing:
            raise RuntimeError(f"the prediction worker answered no decision for {missing}")
        return [answer for answer in answers if answer is not None]

    def _check_request(
        self, symbol: str, timeframe: str, candles: pl.DataFrame | None
    ) -> dict[str, Any] | None:
        """Refuse a request the service cannot answer; return the live decision it asks for
        (None: a decision on its candles is still to be made)."""
        if timeframe != self.feed.timeframe:
            raise UserInputError(
                f"the service's models work on {self.feed.timeframe} candles, not {timeframe}"
            )
        if candles is None:
            self._check_symbol(symbol)
        if self.runner.bundle is None:
            raise UserInputError("the service is still warming up; try again in a moment")
        if candles is not None:
            return None
        decision = self.live_decision(symbol)
        if decision is None:
            raise UserInputError(f"no decision for {symbol} yet; the service is warming up")
        return decision

    def top_predictions(self, limit: int) -> list[dict[str, Any]]:
        """Return the latest decision of each symbol, most confident first."""
        with self._lock:
            latest = list(self.runner.latest.values())
        latest.sort(key=lambda d: d["confidence"], reverse=True)
        return [finite(d) for d in latest[:limit]]

    def positions(self) -> list[dict[str, Any]]:
        """Return the open positions, marked at the last price."""
        with self._lock:
            prices = {
                symbol: last.close
                for symbol, run in self.runner.runs.items()
                if (last := run.engine.last_candle) is not None
            }
        out = []
        for p in self.store.positions(self.options.run):
            mark = prices.get(p.symbol)
            if self.options.market.value == "spot" or mark is None:
                unrealized = None if mark is None else p.quantity * (mark - p.entry_price)
            else:
                unrealized = p.quantity * (mark - p.entry_price)
            out.append(
                finite(
                    {
                        "symbol": p.symbol,
                        "side": "long" if p.quantity > 0 else "short",
                        "quantity": abs(p.quantity),
                        "entry_price": p.entry_price,
                        "stop_price": p.stop_price,
                        "target_price": p.target_price,
                        "opened_at": p.opened_at.isoformat(),
                        "mark_price": mark,
                        "unrealized_pnl": unrealized,
                    }
                )
            )
        return out

    def trades(self, limit: int = 100) -> list[dict[str, Any]]:
        """Return closed trades, newest first."""
        return [
            finite(
                {
                    "symbol": t.symbol,
                    "side": t.side,
                    "entry_time": t.entry_time.isoformat(),
                    "exit_time": t.exit_time.isoformat(),
                    "entry_price": t.entry_price,
                    "exit_price": t.exit_price,
                    "quantity": t.quantity,
                    "pnl": t.pnl,
                    "fees": t.fees,
                    "funding": t.funding,
                    "exit_reason": t.exit_reason,
                    "r_multiple": t.r_multiple,
                }
            )
            for t in self.store.trades(self.options.run, limit)
        ]

    def equity(self, limit: int = 1000) -> dict[str, Any]:
        """Return the equity curve and buy-and-hold, oldest first."""
        points = self.store.equity(self.options.run, limit)
        return finite({
            "timestamps": [p.timestamp.isoformat() for p in points],
            "equity": [p.equity for p in points],
            "buy_and_hold": [p.buy_and_hold for p in points],
        })  # fmt: skip

    def control(self) -> dict[str, Any]:
        """Return the control state."""
        stored = self.store.control(self.options.run)
        if stored is None:
            return {"state": RUNNING, "since": None, "reason": ""}
        since = stored.get("since")
        return {
            "state": stored["state"],
            "since": since.isoformat() if isinstance(since, datetime) else since,
            "reason": stored.get("reason", ""),
        }

    def pause(self) -> dict[str, Any]:
        """Stop opening positions; exits still work."""
        return self._switch(PAUSED, "paused by the operator")

    def resume(self) -> dict[str, Any]:
        """Trade again."""
        return self._switch(RUNNING, "resumed by the operator")

    def emergency_stop(self) -> dict[str, Any]:
        """Close everything at the next price and stop opening positions."""
        return self._switch(EMERGENCY, "emergency stop pulled by the operator")

    def _switch(self, state: str, reason: str) -> dict[str, Any]:
        """Switch and answer with the state THIS call produced: reading the store afterwards
        could return another caller's switch made in between."""
        with self._lock:
            return self.runner.set_control(state, reason)

    def _check_symbol(self, symbol: str) -> None:
        if symbol not in self.options.symbols:
            raise NotFoundError(
                f"{symbol!r} is not served; this service trades {', '.join(self.options.symbols)}"
            )


def _indexed(error: UserInputError, index: int, name_index: bool) -> UserInputError:
    """Return ``error`` (same kind: 422, or 404 for a name) saying which request it was."""
    if not name_index:
        return error
    kind = NotFoundError if isinstance(error, NotFoundError) else UserInputError
    return kind(f"requests[{index}]: {error}")


def _version_dict(version: Any) -> dict[str, Any]:
    """Return a registry version as the API shows it."""
    lineage = version.lineage
    return {
        "version": version.version,
        "status": version.status,
        "aliases": list(version.aliases),
        "created_at": version.created_at.isoformat(),
        "run_id": version.run_id,
        "metrics": finite(dict(version.metrics)),
        "lineage": {
            "symbol": lineage.symbol, "timeframe": lineage.timeframe, "source": lineage.source,
            "data_start": lineage.data_start, "data_end": lineage.data_end,
            "data_hash": lineage.data_hash, "rows": lineage.rows,
            "feature_sets": list(lineage.feature_sets), "seed": lineage.seed,
            "code_version": lineage.code_version, "parent": lineage.parent,
        },
    }  # fmt: skip
