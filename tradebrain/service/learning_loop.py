"""The learning loop of a running service: retrain, shadow, gate, promote, watch, roll back.

:class:`LearningLoop` is driven by the runner, once per candle, before the candle's step is
written (so what it decided is saved in the same transaction):

1. **Retraining** every ``learning.retrain_every_bars`` bars, on demand, or when production
   degrades, in a worker process (:mod:`~tradebrain.service.retraining`) that registers the
   new bundle in the MLflow registry (:class:`~tradebrain.learning.registry.BundleRegistry`)
   as the ``candidate``.
2. **Shadow mode**: from the candle after a candidate appears, it and a paper copy of
   production trade the same candles on paper (:mod:`~tradebrain.service.shadow`); the
   candidate's decisions are saved under the run ``{run}:shadow:v{n}``, never sent.
3. **Gates** at fixed looks (every ``min_track_bars`` bars up to ``max_track_bars``): the
   paired, HAC test of after-cost returns on the same candles and the candidate's deflated
   Sharpe counting every trial in the ledger
   (:func:`~tradebrain.evaluation.promotion.promotion_verdict`). The significance level is
   split over the planned looks (Bonferroni), so looking repeatedly does not inflate it.
   ``learning.auto_promote`` promotes a passing candidate; otherwise it awaits approval.
4. **Watching production**: block returns of the traded account against what production
   showed in shadow (or, for a first production, in its first blocks): a lower CUSUM alarm
   rolls it back to the previous production (``learning.auto_rollback``) and asks for a
   retraining.
5. **Experience**: every ``learning.experience_every_bars`` bars the state store's new rows are
   exported to the Parquet experience log (:class:`~tradebrain.learning.experience.ExperienceLog`).

The registry is the one source of which version is production: after a restart (even after
``kill -9`` mid-promotion) the loop reads its aliases and the runner trades that version.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradebrain.config import LearningSettings, Settings
from tradebrain.core.events import CandleClosed
from tradebrain.data.schemas import SCHEMAS, Kind
from tradebrain.evaluation.promotion import (
    CusumMonitor,
    GateSettings,
    GateVerdict,
    expected_profile,
    lost_edge_monitor,
    promotion_verdict,
)
from tradebrain.evaluation.statistics import home_ledger
from tradebrain.exceptions import UserInputError
from tradebrain.service.options import ServeOptions
from tradebrain.service.retraining import RetrainOutcome, RetrainRequest, RetrainWorker
from tradebrain.service.shadow import ShadowBook
from tradebrain.state import StateStore

log = logging.getLogger(__name__)

SUPERVISE_BARS = 48
"""Bars between the supervisor's looks at each production model's resolved votes."""
REGISTRY_CHECK_BARS = 24
"""Bars between looks at the registry's production alias (changed by `tradebrain models`)."""
SHADOW_WARM_UP = 300
"""Candles a restarted shadow needs before its track began (the features' warm-up)."""
SUPERVISED_DECISIONS = 2_500
"""The newest production decisions the supervisor reads (its window plus the unresolved)."""
SUPERVISED_HORIZON_ROOM = 200
"""Candles held beyond the decisions read, so the oldest decision's horizon is covered."""
_CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class LearningPolicy:
    """The learning settings as the loop uses them (one frozen object, built once)."""

    enabled: bool
    auto_promote: bool
    auto_rollback: bool
    retrain_every: int
    max_train: int | None
    gates: GateSettings
    looks: int
    block_bars: int
    burn_in_blocks: int
    false_alarm_blocks: float
    experience_every: int
    registry_uri: str | None

    def monitor(self, mean: float, std: float) -> CusumMonitor | None:
        """Return the CUSUM that watches for the loss of an edge of ``mean`` per block.

        Half the mean shown is taken as the edge to defend: a shadow record was chosen for
        being good (the winner's curse), and a production that keeps much of its edge is
        worth keeping. The alarm therefore asks whether most of the edge has gone.
        """
        unit = f"{self.block_bars}-bar block"
        return lost_edge_monitor(
            mean / 2, std, false_alarm_run_length=self.false_alarm_blocks, unit=unit
        )

    @classmethod
    def from_settings(cls, learning: LearningSettings) -> LearningPolicy:
        """Build the policy of ``learning``; the significance is split over the looks."""
        min_track = learning.min_track_bars
        max_track = max(learning.max_track_bars, min_track)
        looks = math.ceil(max_track / min_track)  # every min_track bars, and at max_track
        gates = GateSettings(
            min_track=min_track,
            max_track=max_track,
            alpha=learning.gate_alpha / looks,
            min_dsr=learning.min_dsr,
        )
        return cls(
            enabled=learning.enabled,
            auto_promote=learning.auto_promote,
            auto_rollback=learning.auto_rollback,
            retrain_every=learning.retrain_every_bars,
            max_train=learning.max_train_bars,
            gates=gates,
            looks=looks,
            block_bars=learning.monitor_block_bars,
            burn_in_blocks=learning.monitor_burn_in_blocks,
            false_alarm_blocks=learning.monitor_false_alarm_blocks,
            experience_every=learning.experience_every_bars,
            registry_uri=learning.registry_uri,
        )


class CandleWindow:
    """The newest candles of one symbol (warm-up history plus every candle since)."""

    def __init__(self, history: pl.DataFrame, size: int) -> None:
        self.rows: deque[tuple[Any, ...]] = deque(
            history.select(_CANDLE_COLUMNS).iter_rows(), maxlen=size
        )

    def append(self, candle: CandleClosed) -> None:
        """Add one closed candle."""
        if self.rows and self.rows[-1][0] >= candle.open_time:
            return  # already held (a restart's history ends where the store resumes)
        self.rows.append(
            (candle.open_time, candle.open, candle.high, candle.low, candle.close, candle.volume)
        )

    def frame(self, tail: int | None = None) -> pl.DataFrame:
        """Return the candles held (the newest ``tail``), oldest first, in the candle schema."""
        rows = list(self.rows)[-tail:] if tail else list(self.rows)
        schema = SCHEMAS[Kind.CANDLES]
        if not rows:
            return schema.empty()
        frame = pl.DataFrame(rows, schema=list(_CANDLE_COLUMNS), orient="row")
        return frame.with_columns(pl.col("timestamp").cast(schema.columns["timestamp"]))


@dataclass
class ProductionWatch:
    """Production's block returns and the CUSUM that watches them for degradation."""

    version: int
    block: list[float] = field(default_factory=list)
    burn_in: list[float] = field(default_factory=list)
    cusum: CusumMonitor | None = None

    def add(self, bar_return: float, policy: LearningPolicy) -> bool:
        """Add one bar's after-cost log return; return whether the alarm is raised."""
        self.block.append(bar_return)
        if len(self.block) < policy.block_bars:
            return self.cusum is not None and self.cusum.alarmed
        total = float(sum(self.block))
        self.block = []
        if self.cusum is None:
            self.burn_in.append(total)
            if len(self.burn_in) >= policy.burn_in_blocks:
                burn_in = np.array(self.burn_in[-policy.burn_in_blocks :])
                if 2 * np.count_nonzero(burn_in) >= len(burn_in):  # it trades: a profile
                    self.cusum = policy.monitor(*expected_profile(burn_in))
                del self.burn_in[: -policy.burn_in_blocks]
            return False
        return self.cusum.update(total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "block": self.block,
            "burn_in": self.burn_in,
            "cusum": None if self.cusum is None else self.cusum.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProductionWatch:
        cusum = data.get("cusum")
        return cls(
            version=int(data["version"]),
            block=[float(x) for x in data.get("block", [])],
            burn_in=[float(x) for x in data.get("burn_in", [])],
            cusum=None if cusum is None else CusumMonitor.from_dict(cusum),
        )


@dataclass
class LoopStep:
    """What the loop did on one candle, for the runner to record and act on."""

    shadow_decisions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    swap: tuple[int, Any] | None = None  # (version, bundle) to trade from the next candle
    mute: frozenset[str] | None = None  # models whose votes now weigh zero (None: no change)
    # registry changes made: action (promoted, rolled_back, refused, changed), version,
    # previous production, reason, evidence (for the runner to announce)
    registry: list[dict[str, Any]] = field(default_factory=list)


class LearningLoop:
    """The service's learning loop (see the module notes).

    Parameters
    ----------
    settings, options, store
        The service's settings, serve options and state store.
    timeframe, source
        The feed's timeframe and name (recorded in each version's lineage).
    """

    def __init__(
        self,
        settings: Settings,
        options: ServeOptions,
        store: StateStore,
        *,
        timeframe: str,
        source: str,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.store = store
        self.run = options.run
        self.timeframe = timeframe
        self.source = source
        self.progress = progress
        self.policy = LearningPolicy.from_settings(settings.learning)
        self.home = Path(settings.home)
        self.primary = options.symbols[0]
        self.worker = RetrainWorker()
        self.ledger = home_ledger(self.home)
        self.shadow = ShadowBook(
            settings, timeframe, options.market, options.cash, options.leverage
        )
        self.windows: dict[str, CandleWindow] = {}
        self.production: int | None = None
        self.production_bundle: Any = None
        self.watch: ProductionWatch | None = None
        self.bars = 0
        self.bars_since_training = 0
        self.last_equity: float | None = None
        self.retrain_wanted = ""
        self.last_verdict: dict[str, Any] | None = None
        self.awaiting_approval: int | None = None
        self.last_retrain: dict[str, Any] | None = None
        self._pending_candidate: int | None = None
        self._interrupted_retraining: dict[str, Any] | None = None
        self.pending: dict[str, Any] | None = None  # a registry change decided, not yet made
        self.production_since: datetime | None = None  # first candle production traded
        self.muted: frozenset[str] = frozenset()
        self.health: dict[str, dict[str, Any]] = {}
        self._registry: Any = None
        self._experience: Any = None
        self._experience_counts: dict[str, int] | None = None

    # --- the registry -----------------------------------------------------------------------
    @property
    def registry(self) -> Any:
        """Return the model registry (a :class:`~tradebrain.learning.registry.BundleRegistry`)."""
        if self._registry is None:
            from tradebrain.learning.registry import BundleRegistry

            self._registry = BundleRegistry(self.home, self.policy.registry_uri)
        return self._registry

    def adopt(self, bundle: Any, bundle_dir: Path, history: pl.DataFrame) -> tuple[Any, int]:
        """Return production's bundle and version: the registry's, else ``bundle`` registered
        as the first production (trained or loaded by the service, on ``history``)."""
        registry = self.registry
        registry.recover()
        production = registry.production()
        if production is None:
            self.progress("registering the service's models as the first production")
            version = registry.register(bundle_dir, self._lineage(history, bundle), {}).version
            production = registry.get(version)
        else:
            self.progress(f"loading production v{production.version} from the registry")
            bundle = registry.load(production.version)
        self.production = int(production.version)
        self.production_bundle = bundle
        return bundle, self.production

    def _lineage(self, history: pl.DataFrame, bundle: Any) -> Any:
        from tradebrain.learning.registry import Lineage, code_version, frame_hash

        manifest = bundle.manifest
        return Lineage(
            symbol=self.primary, timeframe=self.timeframe, source=f"{self.source} warm-up",
            data_start=str(manifest.get("data_start", history["timestamp"][0])),
            data_end=str(manifest.get("data_end", history["timestamp"][-1])),
            data_hash=frame_hash(history), rows=history.height,
            feature_sets=tuple(manifest.get("feature_sets") or self.settings.features.sets),
            settings=_settings_dump(self.settings), seed=self.settings.models.seed,
            code_version=code_version(), parent=None,
        )  # fmt: skip

    # --- restart ----------------------------------------------------------------------------
    def restore(self, saved: dict[str, Any] | None, histories: dict[str, pl.DataFrame]) -> None:
        """Pick up where the loop was: windows, production's watch, the candidate's shadow."""
        size = max(self.policy.max_train or 20_000, self.options.warmup)
        self.windows = {s: CandleWindow(h, size) for s, h in histories.items()}
        saved = saved or {}
        self.bars = int(saved.get("bars", 0))
        self.bars_since_training = int(saved.get("bars_since_training", 0))
        self.last_equity = saved.get("last_equity")
        self.retrain_wanted = str(saved.get("retrain_wanted", ""))
        self.last_verdict = saved.get("last_verdict")
        self.last_retrain = saved.get("last_retrain")
        self.pending = saved.get("pending")
        since = saved.get("production_since")
        if since and saved.get("production") == self.production:
            self.production_since = datetime.fromisoformat(since)
            self.muted = frozenset(saved.get("muted") or [])
        self._interrupted_retraining = saved.get("retraining")
        watch = saved.get("watch")
        if watch and int(watch["version"]) == self.production:
            self.watch = ProductionWatch.from_dict(watch)
        elif self.production is not None:
            self.watch = ProductionWatch(self.production)
        candidate = self.registry.candidate()
        if candidate is None or candidate.status != "candidate":
            return
        if self.pending is not None and self.pending.get("version") == candidate.version:
            return  # judged on the last candle saved: :meth:`settle` finishes it
        shadow = saved.get("shadow") or {}
        if int(shadow.get("version", -1)) == candidate.version and shadow.get("since"):
            since = datetime.fromisoformat(shadow["since"])
            held = self.windows[self.primary].frame()["timestamp"]
            # the candles held must cover a warm-up before the track and the track itself;
            # otherwise the shadow starts over with the next candle
            if held.len() > SHADOW_WARM_UP and held[SHADOW_WARM_UP] <= since <= held[-1]:
                self._start_shadow(candidate.version, since)
                return
        self._pending_candidate = int(candidate.version)

    def _start_shadow(self, version: int, since: datetime) -> None:
        bundle = self.registry.load(version)
        histories = {s: w.frame() for s, w in self.windows.items()}
        self.shadow.start((self.production or 0, self.production_bundle), (version, bundle),
                          histories, since)  # fmt: skip
        self._pending_candidate = None
        self.awaiting_approval = None

    # --- one candle -------------------------------------------------------------------------
    def on_candle(self, candle: CandleClosed, equity: float) -> LoopStep:
        """Do the loop's work for ``candle`` (already traded); ``equity`` is the account's."""
        step = LoopStep()
        window = self.windows.get(candle.symbol)
        if window is not None:
            window.append(candle)
        decision = self.shadow.step(candle)
        if decision is not None and self.shadow.candidate is not None:
            version = self.shadow.candidate.version
            document = {**decision.to_dict(), "shadow": True, "model_version": version}
            step.shadow_decisions.append((f"{self.run}:shadow:v{version}", document))
        if candle.symbol != self.primary:
            return step
        self.bars += 1
        self.bars_since_training += 1
        self._watch_production(equity, step)
        self._schedule_retraining(candle, step)
        self._collect_retraining(candle, step)
        if self._pending_candidate is not None and not self.shadow.active:
            version = self._pending_candidate
            self._start_shadow(version, candle.close_time)
            step.events.append(
                f"shadow started: candidate v{version} against production v{self.production} "
                f"from {candle.close_time.isoformat()}"
            )
        self._judge(step)
        if self.production_since is None:
            self.production_since = candle.open_time
        if self.bars % SUPERVISE_BARS == 0:
            self._supervise(step)
        if self.bars % REGISTRY_CHECK_BARS == 0 and self.pending is None:
            self.sync_with_registry(step)
        if self.bars % self.policy.experience_every == 0:
            try:
                self.export_experience()
            except Exception as error:  # a research copy: trading goes on, and says why
                log.warning("the experience log export failed", exc_info=True)
                step.events.append(f"experience export failed: {type(error).__name__}: {error}")
        return step

    def _supervise(self, step: LoopStep) -> None:
        """Judge each production model on its resolved votes; weigh failing ones to zero."""
        from tradebrain.learning.supervisor import retrain_wanted, supervise

        since = self.production_since
        decisions = [
            d for d in self.store.decisions(self.run, self.primary, limit=SUPERVISED_DECISIONS)
            if since is None or datetime.fromisoformat(d["timestamp"]) >= since
        ]  # fmt: skip
        candles = self.windows[self.primary].frame(len(decisions) + SUPERVISED_HORIZON_ROOM)
        if candles.height:
            first = candles["timestamp"][0]
            decisions = [d for d in decisions if datetime.fromisoformat(d["timestamp"]) >= first]
        if not decisions:
            return
        try:
            health = supervise(decisions, candles, timeframe=self.timeframe)
        except UserInputError as error:
            log.warning("the supervisor could not judge the models: %s", error)
            return
        self.health = {name: h.to_dict() for name, h in health.items()}
        failing = frozenset(name for name, h in health.items() if h.failing)
        if failing == self.muted:
            return
        for name in sorted(failing - self.muted):
            reasons = "; ".join(health[name].reasons)
            step.events.append(f"model {name} of v{self.production} weighed to zero: {reasons}")
        for name in sorted(self.muted - failing):
            step.events.append(f"model {name} of v{self.production} votes again")
        self.muted = failing
        step.mute = failing
        wanted = retrain_wanted(health)
        if wanted and not self.retrain_wanted:
            self.retrain_wanted = wanted

    def _watch_production(self, equity: float, step: LoopStep) -> None:
        previous, self.last_equity = self.last_equity, equity
        if self.watch is None or previous is None or previous <= 0 or equity <= 0:
            return
        alarmed = self.watch.add(math.log(equity / previous), self.policy)
        if not alarmed or self.watch.cusum is None:
            return
        reason = f"production v{self.watch.version} degraded: {self.watch.cusum.reason()}"
        cusum = self.watch.cusum.to_dict()
        evidence = {"cusum": cusum.get("statistic"), "bars": cusum.get("n")}
        self.watch = ProductionWatch(self.watch.version, burn_in=[], cusum=None)
        self.retrain_wanted = reason
        if not self.policy.auto_rollback:
            step.events.append(f"{reason}; auto-rollback is off: retraining")
            return
        self.pending = {"action": "rollback", "from": self.production, "reason": reason,
                        "evidence": evidence}  # fmt: skip

    def _schedule_retraining(self, candle: CandleClosed, step: LoopStep) -> None:
        if self.worker.busy or self.shadow.active or self._pending_candidate is not None:
            return
        due = self.bars_since_training >= self.policy.retrain_every
        if not (due or self.retrain_wanted):
            return
        reason = self.retrain_wanted or f"schedule: {self.bars_since_training} bars since training"
        self.request_retrain_now(candle.close_time, reason)
        step.events.append(f"retraining started ({reason})")

    def request_retrain_now(self, at: datetime, reason: str) -> None:
        """Start a retraining on the newest candles held before ``at`` (the primary symbol's;
        a retraining started again after a restart learns from the very same candles)."""
        from tradebrain.learning.dataset import retraining_window

        held = self.windows[self.primary].frame()
        window = retraining_window(held, max_rows=self.policy.max_train, end=at)
        stamp = at.strftime("%Y%m%dT%H%M%S")
        request = RetrainRequest(
            symbol=self.primary, timeframe=self.timeframe, source=self.source,
            candles_path=self.home / "learning" / "datasets" / f"{_safe(self.run)}-{stamp}.parquet",
            settings=_settings_dump(self.settings), seed=self.settings.models.seed,
            home=self.home, registry_uri=self.policy.registry_uri,
            parent_version=self.production, parent_pid=os.getpid(), reason=reason,
        )  # fmt: skip
        self.worker.submit(request, window, at)
        self.bars_since_training = 0
        self.retrain_wanted = ""

    def _collect_retraining(self, candle: CandleClosed, step: LoopStep) -> None:
        outcome = self.worker.poll()
        if outcome is None:
            return
        if isinstance(outcome, BaseException):
            step.events.append(f"retraining failed: {type(outcome).__name__}: {outcome}")
            self.last_retrain = {"at": candle.close_time.isoformat(), "error": str(outcome)}
            return
        self._registered(outcome, candle, step)

    def _registered(self, outcome: RetrainOutcome, candle: CandleClosed, step: LoopStep) -> None:
        self.last_retrain = {
            "at": candle.close_time.isoformat(), "version": outcome.version,
            "rows": outcome.rows, "data_end": outcome.data_end,
            "seconds": round(outcome.seconds, 2), "reason": outcome.reason,
        }  # fmt: skip
        if outcome.version is None:
            return
        step.events.append(
            f"candidate v{outcome.version} registered (trained on {outcome.rows} bars "
            f"to {outcome.data_end} in {outcome.seconds:.1f} s)"
        )
        self._pending_candidate = outcome.version

    def _judge(self, step: LoopStep) -> None:
        candidate = self.shadow.candidate
        if candidate is None:
            return
        gates = self.policy.gates
        n = len(candidate.returns)
        planned_look = n % gates.min_track == 0 or n == gates.max_track
        if n == 0 or n > gates.max_track or not planned_look:
            return
        if self.awaiting_approval == candidate.version:
            return  # it passed: the operator decides; no more looks to spend
        verdict = self.verdict()
        self.last_verdict = {"version": candidate.version, "bars": n, **verdict.to_dict()}
        if verdict.decision == "wait":
            return
        evidence = dict(verdict.numbers)
        sharpe = verdict.numbers.get("candidate_sharpe")
        self.ledger.record(
            {"version": candidate.version, "kind": "shadow candidate"},
            sharpe if sharpe is not None and math.isfinite(sharpe) else 0.0,
            name=f"candidate v{candidate.version}",
        )
        reason = "; ".join(verdict.reasons)
        if verdict.decision == "refuse":
            self.pending = {"action": "refuse", "version": candidate.version, "reason": reason,
                            "evidence": evidence}  # fmt: skip
            self.shadow.stop()
            return
        if not self.policy.auto_promote:
            if self.awaiting_approval != candidate.version:
                self.awaiting_approval = candidate.version
                step.events.append(
                    f"candidate v{candidate.version} passed the gates and awaits approval "
                    f"(`tradebrain models promote {candidate.version}`): {reason}"
                )
            return
        self.pending = {"action": "promote", "version": candidate.version, "reason": reason,
                        "evidence": evidence,
                        "profile": self._shadow_profile(candidate.version)}  # fmt: skip

    def verdict(self) -> GateVerdict:
        """Return the gates' verdict on the candidate's paired shadow record so far."""
        candidate, incumbent = self.shadow.paired_returns()
        metrics = self.ledger.trial_metrics()
        metrics = metrics[np.isfinite(metrics)]
        variance = float(np.var(metrics, ddof=1)) if metrics.size >= 2 else 0.0
        return promotion_verdict(
            np.array(candidate), np.array(incumbent),
            n_trials=self.ledger.n_trials + 1, trials_sharpe_variance=variance,
            settings=self.policy.gates,
        )  # fmt: skip

    # --- promotion and rollback (also the operator's) -------------------------------------
    def settle(self) -> LoopStep:
        """Make the registry change decided on the candle just recorded, and trade by it.

        The runner records each candle (with the decision, in :meth:`state`) BEFORE calling
        this, so a crash in between is finished after the restart (:meth:`restore` keeps the
        decision, the runner settles it again): each change is made only if the registry does
        not show it done already.
        """
        step = LoopStep()
        pending, self.pending = self.pending, None
        if pending is None:
            return step
        action, reason = pending["action"], str(pending["reason"])
        evidence = pending.get("evidence") or {}
        registry = self.registry
        try:
            if action == "promote":
                version = int(pending["version"])
                current = registry.production()
                if current is None or current.version != version:
                    registry.promote(version, reason=reason, evidence=evidence)
                self._swap_to_production(step, f"promoted: {reason}", "promoted", reason, evidence)
                profile = pending.get("profile")
                if profile is not None and self.watch is not None:
                    self.watch.cusum = self.policy.monitor(*profile)
            elif action == "refuse":
                version = int(pending["version"])
                found = registry.get(version)
                if found is not None and found.status == "candidate":
                    registry.refuse(version, reason=reason, evidence=evidence)
                    step.registry.append({"action": "refused", "version": version,
                                          "previous": self.production, "reason": reason,
                                          "evidence": evidence})  # fmt: skip
                step.events.append(f"candidate v{version} refused: {reason}")
            elif action == "rollback":
                current = registry.production()
                if current is not None and current.version == pending["from"]:
                    registry.rollback(reason=reason, evidence=evidence)
                self._swap_to_production(
                    step, f"rolled back: {reason}", "rolled_back", reason, evidence
                )
        except UserInputError as error:
            step.events.append(f"{reason}; the registry refused to {action} ({error})")
        return step

    def promote(self, version: int, reason: str, evidence: dict[str, Any], step: LoopStep) -> None:
        """Make ``version`` production from the next candle (the operator's command)."""
        self.registry.promote(version, reason=reason, evidence=evidence)
        self._swap_to_production(step, f"promoted: {reason}", "promoted", reason, evidence)

    def _shadow_profile(self, version: int) -> tuple[float, float] | None:
        candidate = self.shadow.candidate
        if candidate is None or candidate.version != version:
            return None
        block = self.policy.block_bars
        returns = np.array(candidate.returns)
        blocks = returns[: returns.size // block * block].reshape(-1, block).sum(axis=1)
        if blocks.size < 5:
            return None
        return expected_profile(blocks)

    def rollback(self, reason: str, step: LoopStep) -> None:
        """Roll production back to the previous production (the operator's command)."""
        self.registry.rollback(reason=reason, evidence={})
        self._swap_to_production(step, f"rolled back: {reason}", "rolled_back", reason)

    def _swap_to_production(
        self,
        step: LoopStep,
        why: str,
        action: str = "changed",
        reason: str = "changed in the registry",
        evidence: dict[str, Any] | None = None,
    ) -> None:
        production = self.registry.production()
        if production is None or production.version == self.production:
            return
        previous = self.production
        bundle = self.registry.load(production.version)
        self.production, self.production_bundle = int(production.version), bundle
        self.watch = ProductionWatch(self.production)
        self.production_since, self.muted, self.health = None, frozenset(), {}
        if (
            self.shadow.candidate is not None
            and self.shadow.candidate.version == production.version
        ):
            self.shadow.stop()
        elif self.shadow.active:  # the incumbent changed: the pairing starts over
            candidate = self.shadow.candidate
            self.shadow.stop()
            if candidate is not None:
                self._pending_candidate = candidate.version
        self.awaiting_approval = None
        step.swap = (self.production, bundle)
        step.events.append(f"production is now v{self.production} ({why})")
        step.registry.append({"action": action, "version": self.production,
                              "previous": previous, "reason": reason,
                              "evidence": evidence or {}})  # fmt: skip

    def sync_with_registry(self, step: LoopStep) -> None:
        """Follow a production alias changed outside the service (``tradebrain models``)."""
        self._swap_to_production(step, "changed in the registry")

    # --- experience, state, status ----------------------------------------------------------
    def export_experience(self) -> dict[str, int]:
        """Export the state store's new rows to the Parquet experience log."""
        written: dict[str, int] = self._experience_log().export(self.store, self.run)
        self._experience_counts = None  # counted again when next asked
        return written

    def experience_counts(self) -> dict[str, int] | None:
        """Return the rows of each kind in the experience log (counted once per export)."""
        if self._experience_counts is None:
            try:
                self._experience_counts = self._experience_log().counts(self.run)
            except Exception:  # the log is a research copy: its absence is not an error
                log.debug("could not count the experience log", exc_info=True)
        return self._experience_counts

    def _experience_log(self) -> Any:
        if self._experience is None:
            from tradebrain.learning.experience import ExperienceLog

            self._experience = ExperienceLog(self.home / "experience")
        return self._experience

    def resume_retraining(self) -> LoopStep:
        """Start again a retraining that a crash or a stop interrupted (after :meth:`restore`)."""
        step = LoopStep()
        interrupted, self._interrupted_retraining = self._interrupted_retraining, None
        if not interrupted or self.worker.busy or self.shadow.active:
            return step
        if self._pending_candidate is not None:
            return step  # it registered its candidate before the interruption
        reason = f"{interrupted['reason']} (started again after an interruption)"
        self.request_retrain_now(datetime.fromisoformat(interrupted["since"]), reason)
        step.events.append(f"retraining started ({reason})")
        return step

    def state(self) -> dict[str, Any]:
        """Return what to save with every candle (the runner's state)."""
        candidate = self.shadow.candidate
        started = self.worker.started_at
        return {
            "production": self.production,
            "production_since": None
            if self.production_since is None
            else self.production_since.isoformat(),
            "muted": sorted(self.muted),
            "pending": self.pending,
            "retraining": None
            if started is None
            else {"since": started.isoformat(), "reason": self.worker.reason},
            "bars": self.bars,
            "bars_since_training": self.bars_since_training,
            "last_equity": self.last_equity,
            "retrain_wanted": self.retrain_wanted,
            "last_verdict": self.last_verdict,
            "last_retrain": self.last_retrain,
            "watch": None if self.watch is None else self.watch.to_dict(),
            "shadow": None
            if candidate is None or self.shadow.since is None
            else {"version": candidate.version, "since": self.shadow.since.isoformat()},
        }

    def status(self) -> dict[str, Any]:
        """Return what ``/api/ai/learning_status`` shows."""
        candidate = self.shadow.candidate
        incumbent = self.shadow.incumbent
        watch = self.watch
        cusum = None if watch is None or watch.cusum is None else watch.cusum.to_dict()
        return {
            "enabled": True,
            "auto_promote": self.policy.auto_promote,
            "auto_rollback": self.policy.auto_rollback,
            "production_version": self.production,
            "candidate_version": None if candidate is None else candidate.version,
            "pending_candidate": self._pending_candidate,
            "awaiting_approval": self.awaiting_approval,
            "shadow": None
            if candidate is None or incumbent is None
            else {
                "since": None if self.shadow.since is None else self.shadow.since.isoformat(),
                "bars": len(candidate.returns),
                "candidate_log_return": float(sum(candidate.returns)),
                "production_log_return": float(sum(incumbent.returns)),
                "candidate_equity": _curve(candidate.returns),
                "production_equity": _curve(incumbent.returns),
            },
            "retraining": self.worker.busy,
            "retraining_since": None
            if self.worker.started_at is None
            else self.worker.started_at.isoformat(),
            "last_retrain": self.last_retrain,
            "last_verdict": self.last_verdict,
            "bars_since_training": self.bars_since_training,
            "next_retrain_in": max(0, self.policy.retrain_every - self.bars_since_training),
            "monitor": {
                "version": None if watch is None else watch.version,
                "burn_in_blocks": None if watch is None else len(watch.burn_in),
                "cusum": cusum,
            },
            "trials": self.ledger.n_trials,
            "muted": sorted(self.muted),
            "supervisor": self.health,
        }

    def close(self) -> None:
        """Stop the retraining worker."""
        self.worker.close()


def _curve(returns: list[float], points: int = 200) -> list[float]:
    """Return the growth of 1 over ``returns``, thinned to about ``points`` values."""
    if not returns:
        return []
    growth = np.exp(np.cumsum(returns))
    stride = max(1, growth.size // points)
    return [round(float(x), 6) for x in growth[::stride]]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _settings_dump(settings: Settings) -> dict[str, Any]:
    """Return the settings as JSON-ready data, without secrets."""
    data = settings.model_dump(mode="json")
    data["api"]["token"] = None
    return data


__all__ = ["CandleWindow", "LearningLoop", "LearningPolicy", "LoopStep", "ProductionWatch"]
