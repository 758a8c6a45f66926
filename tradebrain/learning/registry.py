"""The model registry: every bundle the service trained, its lineage, and which one trades.

:class:`BundleRegistry` keeps them in MLflow's tracking store and model registry (through
:class:`mlflow.MlflowClient`), so ``mlflow ui --backend-store-uri sqlite:///HOME/mlflow.db``
shows everything:

- experiment ``tradebrain``: one run per registered bundle, with the flattened settings and
  the seed as params, the :class:`~tradebrain.learning.lineage.Lineage` as ``lineage.*`` tags,
  the metrics, and the bundle folder as the artifact ``bundle``;
- registered model :data:`REGISTERED_MODEL`: one version per bundle (``runs:/<id>/bundle``),
  the aliases :data:`PRODUCTION` and :data:`CANDIDATE`, and version tags holding the status
  and the promotion history (``status``, ``promotion``, ``promoted_at``, ``rolled_back_at``
  ...) from which a rollback finds the previous production — nothing lives in memory;
- experiment ``tradebrain-audit``: one run per :class:`AuditEvent` (``promoted v3``);
- experiments ``tradebrain-<kind>``: plain runs from :meth:`BundleRegistry.log_run`.

Crash safety. Every change (register, promote, refuse, rollback) first writes its intent as
the registered-model tag ``pending`` (a write-ahead record), then makes its tag and alias
changes (each idempotent), writes its audit run (found again by the intent's id, so never
twice) and deletes ``pending``. A process killed at any step leaves ``pending`` behind, and
:meth:`BundleRegistry.recover` — run on first use and before every change — completes it.
One writer at a time is assumed (the service); readers may be many.

Where things live. This module holds :class:`BundleRegistry` (reading, the changes and their
steps, recovery) and :class:`BundleVersion`; :mod:`tradebrain.learning.lineage` holds
:class:`~tradebrain.learning.lineage.Lineage`, :func:`~tradebrain.learning.lineage.frame_hash`,
:func:`~tradebrain.learning.lineage.code_version` and
:func:`~tradebrain.learning.lineage.public_settings` (re-exported here);
:mod:`tradebrain.learning._registry_audit` the change records (the write-ahead intent, and
:class:`AuditEvent`, re-exported here, with its audit runs); and
:mod:`tradebrain.learning._mlflow` the MLflow plumbing (opening the store, URI checks,
batched logging).

MLflow is imported on first use (it takes seconds), not with this module.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradebrain.exceptions import StoreError, TradebrainError, UserInputError
from tradebrain.learning._mlflow import (
    TAG_LIMIT,
    ModelStore,
    check_store,
    checked_metrics,
    flatten,
    key,
)
from tradebrain.learning._registry_audit import (
    PENDING,
    AuditEvent,
    Evidence,
    Intent,
    checked_evidence,
    checked_reason,
    clear_pending,
    read_audit,
    read_pending,
    write_audit,
    write_pending,
)
from tradebrain.learning.lineage import Lineage, code_version, frame_hash, public_settings

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

    from tradebrain.models.bundle import ModelBundle

log = logging.getLogger(__name__)

REGISTERED_MODEL = "tradebrain-forecaster"
PRODUCTION, CANDIDATE = "production", "candidate"
ARCHIVED, REFUSED, ROLLED_BACK = "archived", "refused", "rolled_back"
PROMOTED, REGISTERED = "promoted", "registered"
FIRST_PRODUCTION = "first production: no incumbent"

BUNDLE_EXPERIMENT = "tradebrain"
BUNDLE_ARTIFACT = "bundle"
STATUS, PROMOTION = "status", "promotion"
BUNDLE_SHA = "bundle_sha256"

_ALIAS, _VERSION = re.compile(r"[\w\-]{1,255}"), re.compile(r"v\d+", re.IGNORECASE)


@dataclass(frozen=True)
class BundleVersion:
    """One registered bundle: its version, run, aliases, status, lineage and metrics.

    ``status`` is one of ``candidate``, ``production``, ``archived`` (a former production),
    ``refused`` and ``rolled_back``; ``tags`` are all the version's tags.
    """

    version: int
    run_id: str
    created_at: datetime
    aliases: tuple[str, ...]
    status: str
    lineage: Lineage
    metrics: dict[str, float]
    tags: dict[str, str]


class BundleRegistry:
    """Every bundle trained, its lineage, and which one is in production (on MLflow).

    Parameters
    ----------
    home
        The service's home folder. The embedded store lives here (``mlflow.db`` and
        ``mlartifacts/``), and so does the cache of downloaded bundles (``registry_cache/``).
    uri
        MLflow tracking and registry URI: ``http(s)://HOST:PORT`` of a tracking server, or a
        database URI such as ``sqlite:///PATH``. None: the embedded SQLite store in ``home``.
        Artifacts go to ``home/mlartifacts`` unless a tracking server stores them.
    name
        The registered model's name.

    Nothing is opened until first use; the first use also completes a change that a killed
    process left half-done (:meth:`recover`).

    Raises
    ------
    ConfigError
        When ``uri`` is not an MLflow store URI, or ``name`` is not a valid model name.
    """

    def __init__(self, home: Path, uri: str | None = None, *, name: str = REGISTERED_MODEL):
        self.home = Path(home)
        self.uri = uri
        self.name = name
        check_store(uri, name)
        self._model_store: ModelStore | None = None

    def __repr__(self) -> str:
        return f"BundleRegistry(home={str(self.home)!r}, uri={self.tracking_uri!r})"

    @property
    def tracking_uri(self) -> str:
        """Return the MLflow tracking (and registry) URI in use."""
        if self.uri is not None:
            return self.uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    # -- reading ---------------------------------------------------------------------------

    def get(self, ref: int | str) -> BundleVersion | None:
        """Return a version by number (``3`` or ``"3"``) or by alias (``"production"``).

        None when there is no such version or the alias points nowhere.
        """
        model_version = self._store().find(ref)
        return None if model_version is None else self._bundle_versions([model_version])[0]

    def production(self) -> BundleVersion | None:
        """Return the version in production, or None before the first registration."""
        return self.get(PRODUCTION)

    def candidate(self) -> BundleVersion | None:
        """Return the version the candidate alias points to, or None."""
        return self.get(CANDIDATE)

    def versions(self) -> list[BundleVersion]:
        """Return every registered version, newest first."""
        found = sorted(self._store().model_versions(), key=lambda v: int(v.version), reverse=True)
        return self._bundle_versions(found)

    def bundle_dir(self, version: int) -> Path:
        """Return a local folder holding the bundle of ``version``.

        Downloaded once into ``home/registry_cache/v<version>``: into a temporary folder
        beside it first, checked against the hash taken at registration, then moved into
        place with one rename, so a reader never sees half a bundle. Later calls reuse it.

        Raises
        ------
        NotFoundError
            When ``version`` is not registered.
        StoreError
            When the downloaded bundle is not the one registered.
        """
        from tradebrain.models.bundle import MANIFEST

        model_version = self._store().version_or_raise(version)
        cache = self.home / "registry_cache"
        target = cache / f"v{int(version)}"
        if (target / MANIFEST).is_file():
            return target
        if target.exists():  # not made by us (we only ever rename whole bundles in)
            shutil.rmtree(target)
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".v{int(version)}.", suffix=".tmp", dir=cache))
        try:
            client = self._store().client
            run_id = str(model_version.run_id)
            downloaded = Path(client.download_artifacts(run_id, BUNDLE_ARTIFACT, str(staging)))
            wanted = (model_version.tags or {}).get(BUNDLE_SHA)
            if not (downloaded / MANIFEST).is_file() or (
                wanted and _folder_hash(downloaded) != wanted
            ):
                raise StoreError(
                    f"the bundle of version {version} downloaded from run {run_id} is not the "
                    "one registered (manifest missing or hash differs); its artifacts were "
                    "changed or lost — register the bundle again"
                )
            try:
                os.replace(downloaded, target)
            except OSError:
                if not (target / MANIFEST).is_file():  # else another process just won
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def load(self, version: int) -> ModelBundle:
        """Return the :class:`~tradebrain.models.bundle.ModelBundle` of ``version``."""
        from tradebrain.models.bundle import ModelBundle

        return ModelBundle.load(self.bundle_dir(version))

    def audit(self, limit: int | None = None) -> list[AuditEvent]:
        """Return the registry's audit events, newest first (at most ``limit``)."""
        return read_audit(self._store(), limit)

    # -- changing --------------------------------------------------------------------------

    def register(
        self,
        bundle_dir: Path,
        lineage: Lineage,
        metrics: Mapping[str, float],
        *,
        alias: str | None = CANDIDATE,
    ) -> BundleVersion:
        """Record a saved bundle as a new version, with its lineage and metrics.

        One run in the experiment ``tradebrain`` holds the params (flattened settings and the
        seed), the lineage tags, the metrics and the bundle folder; a new version of the
        registered model is made from it with status ``candidate``, and ``alias`` (if any)
        points to it. When nothing is in production yet, the version is promoted at once
        (reason ``"first production: no incumbent"``).

        Raises
        ------
        UserInputError
            When ``bundle_dir`` holds no saved bundle, ``alias`` is ``production`` (promote
            instead), a metric is not a number, or ``lineage.parent`` is not registered.
        """
        from tradebrain.models.bundle import MANIFEST

        folder = Path(bundle_dir)
        if not (folder / MANIFEST).is_file():
            raise UserInputError(
                f"{folder} is not a saved bundle ({MANIFEST} missing); save one with "
                "ModelBundle.save(folder) and register that folder"
            )
        if alias == PRODUCTION:
            raise UserInputError(
                "register cannot set the production alias; register as a candidate, then "
                "call promote(version, reason=..., evidence=...) so the change is audited"
            )
        if alias is not None and (
            not _ALIAS.fullmatch(alias) or alias.lower() == "latest" or _VERSION.fullmatch(alias)
        ):
            raise UserInputError(
                f"alias {alias!r} is not allowed; use letters, digits, '_' or '-' (not "
                "'latest' nor a version-like 'v3'), e.g. 'candidate' or 'shadow'"
            )
        numbers_ = checked_metrics(metrics, "metric")
        self.recover()
        store = self._store()
        if lineage.parent is not None:
            store.version_or_raise(lineage.parent)
        client = store.client
        sha = _folder_hash(folder)
        run = client.create_run(
            store.experiment_id(BUNDLE_EXPERIMENT),
            run_name=f"bundle {lineage.symbol} {lineage.timeframe}",
            tags={**lineage.to_tags(), "tradebrain.kind": "bundle", BUNDLE_SHA: sha},
        )
        run_id = run.info.run_id
        params = {**flatten(lineage.settings), "seed": str(lineage.seed)}
        store.log(run_id, params=params, metrics=numbers_)
        client.log_artifacts(run_id, str(folder), BUNDLE_ARTIFACT)
        client.set_terminated(run_id)
        aliases = store.aliases()
        span = f"{lineage.data_start}..{lineage.data_end}"
        evidence: dict[str, Evidence] = {"run_id": run_id, **numbers_}
        if len(json.dumps(evidence)) > TAG_LIMIT:  # the metrics stay on the run
            evidence = {"run_id": run_id, "metrics": len(numbers_)}
        intent = Intent(
            id=uuid.uuid4().hex,
            action=REGISTERED,
            version=None,
            previous=aliases.get(alias) if alias else None,
            reason=f"trained on {lineage.symbol} {lineage.timeframe} {span}"[:2_000],
            evidence=evidence,
            at=_now(),
            extra={
                "run_id": run_id,
                "alias": alias,
                "sha": sha,
                "first_production": PRODUCTION not in aliases,
            },
        )
        write_pending(store, intent)
        event = self._complete(intent)
        found = self.get(event.version)
        if found is None:  # pragma: no cover - the version was just made
            raise StoreError(f"version {event.version} vanished right after it was registered")
        return found

    def promote(self, version: int, *, reason: str, evidence: Mapping[str, Any]) -> AuditEvent:
        """Put ``version`` in production; the former production becomes ``archived``.

        The candidate alias is removed if it pointed to ``version``.

        Raises
        ------
        NotFoundError
            When ``version`` is not registered.
        UserInputError
            When ``version`` is already in production, or the reason or evidence is invalid.
        """
        checked = checked_evidence(evidence)
        reason = checked_reason(reason)
        self.recover()
        store = self._store()
        store.version_or_raise(version)
        current = store.aliases().get(PRODUCTION)
        if current == int(version):
            raise UserInputError(f"version {version} is already in production; nothing to do")
        intent = self._promotion(int(version), current, reason, checked, _now())
        write_pending(store, intent)
        return self._complete(intent)

    def refuse(self, version: int, *, reason: str, evidence: Mapping[str, Any]) -> AuditEvent:
        """Mark ``version`` ``refused`` (never to be promoted or rolled back to).

        The candidate alias is removed if it pointed to ``version``.

        Raises
        ------
        NotFoundError
            When ``version`` is not registered.
        UserInputError
            When ``version`` is in production (roll back first), or the reason or evidence
            is invalid.
        """
        checked = checked_evidence(evidence)
        reason = checked_reason(reason)
        self.recover()
        store = self._store()
        store.version_or_raise(version)
        aliases = store.aliases()
        if aliases.get(PRODUCTION) == int(version):
            raise UserInputError(
                f"version {version} is in production and cannot be refused; call "
                "rollback(reason=..., evidence=...) first"
            )
        incumbent = aliases.get(PRODUCTION)
        intent = Intent(uuid.uuid4().hex, REFUSED, int(version), incumbent, reason, checked, _now())
        write_pending(store, intent)
        return self._complete(intent)

    def rollback(self, *, reason: str, evidence: Mapping[str, Any]) -> AuditEvent:
        """Put the previous production back; the current one becomes ``rolled_back``.

        The previous production is the most recently promoted version that is ``archived``
        (neither refused nor rolled back), read from the versions' ``promotion`` tags.

        Raises
        ------
        UserInputError
            When nothing is in production, or no earlier production is left to go back to.
        """
        checked = checked_evidence(evidence)
        reason = checked_reason(reason)
        self.recover()
        store = self._store()
        current = store.aliases().get(PRODUCTION)
        if current is None:
            raise UserInputError("nothing is in production, so there is nothing to roll back")
        target = self._previous_production(current)
        if target is None:
            raise UserInputError(
                f"cannot roll back: version {current} is in production and no earlier "
                "production is left (none was archived, or they were refused or rolled back); "
                "promote a version explicitly with promote(version, reason=..., evidence=...)"
            )
        intent = Intent(uuid.uuid4().hex, ROLLED_BACK, target, current, reason, checked, _now())
        write_pending(store, intent)
        return self._complete(intent)

    def recover(self) -> AuditEvent | None:
        """Complete a change a killed process left half-done; return its event, or None.

        Safe to call at any time: every step of a change is idempotent and its audit event
        is written once.
        """
        if self._model_store is None:
            self._model_store = ModelStore.open(self.tracking_uri, self.home, self.name)
        intent = read_pending(self._model_store)
        if intent is None:
            return None
        log.warning(
            "completing the %r change of version %s left half-done (decided %s)",
            intent.action,
            intent.version,
            intent.at.isoformat(),
        )
        try:
            return self._complete(intent)
        except TradebrainError:
            raise
        except Exception as error:  # whatever the store says, the operator must look
            raise StoreError(
                f"the pending {intent.action!r} change of version {intent.version} (decided "
                f"{intent.at.isoformat()}) cannot be completed ({error!r}); "
                f"fix the store at {self.tracking_uri}, or set the aliases and status tags "
                f"of {self.name!r} by hand and delete its registered-model tag {PENDING!r}"
            ) from error

    def log_run(
        self,
        kind: str,
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Record a plain run (an evaluation, a training, a backtest) and return its id.

        The run goes to the experiment ``tradebrain-<kind>``; nested ``params`` are
        flattened to dotted keys.

        Raises
        ------
        UserInputError
            When ``kind`` is not a short lowercase word, or a metric is not a number.
        """
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", kind):
            raise UserInputError(
                f"run kind {kind!r} is not valid; use a short lowercase word such as "
                "'evaluate', 'train' or 'backtest'"
            )
        numbers_ = checked_metrics(metrics, "metric")
        store = self._store()
        run = store.client.create_run(
            store.experiment_id(f"tradebrain-{kind}"),
            tags={key(k): str(v) for k, v in (tags or {}).items()} | {"tradebrain.kind": kind},
        )
        run_id = run.info.run_id
        store.log(run_id, params=flatten(params), metrics=numbers_)
        store.client.set_terminated(run_id)
        return str(run_id)

    # -- the steps of a change -------------------------------------------------------------

    def _complete(self, intent: Intent) -> AuditEvent:
        """Do every step of ``intent`` (again), audit it once and clear the pending tag."""
        store = self._store()
        if intent.action == REGISTERED:
            intent = replace(intent, version=self._apply_registered(intent))
        elif intent.action == PROMOTED:
            self._apply_promoted(intent)
        elif intent.action == REFUSED:
            self._apply_refused(intent)
        elif intent.action == ROLLED_BACK:
            self._apply_rolled_back(intent)
        else:
            raise StoreError(
                f"the pending change has an unknown action {intent.action!r}; a human must "
                f"finish it by hand, then delete the registered-model tag {PENDING!r}"
            )
        event = write_audit(store, intent)
        if intent.action == REGISTERED and intent.extra.get("first_production"):
            first = self._promotion(
                event.version,
                None,
                FIRST_PRODUCTION,
                intent.evidence,
                max(_now(), intent.at + timedelta(milliseconds=1)),
            )
            write_pending(store, first)  # replaces the registration's intent in one write
            self._apply_promoted(first)
            event = write_audit(store, first)
        clear_pending(store)
        return event

    def _promotion(
        self,
        version: int,
        previous: int | None,
        reason: str,
        evidence: dict[str, Evidence],
        at: datetime,
    ) -> Intent:
        versions = self._store().model_versions()
        orders = [int(v.tags[PROMOTION]) for v in versions if PROMOTION in v.tags]
        extra = {"promotion": max(orders, default=0) + 1}
        return Intent(uuid.uuid4().hex, PROMOTED, version, previous, reason, evidence, at, extra)

    def _apply_registered(self, intent: Intent) -> int:
        store = self._store()
        run_id = str(intent.extra["run_id"])
        found = [v for v in store.model_versions(f"run_id = '{run_id}'") if v.name == self.name]
        if found:
            version = int(found[0].version)
        else:
            made = store.client.create_model_version(
                self.name,
                f"runs:/{run_id}/{BUNDLE_ARTIFACT}",
                run_id=run_id,
                tags={STATUS: CANDIDATE, BUNDLE_SHA: str(intent.extra["sha"])},
            )
            version = int(made.version)
        store.tag(version, {STATUS: CANDIDATE, "registered_at": intent.at.isoformat()})
        alias = intent.extra.get("alias")
        if alias:
            store.client.set_registered_model_alias(self.name, str(alias), str(version))
        return version

    def _apply_promoted(self, intent: Intent) -> None:
        version = _required(intent.version)
        store = self._store()
        store.tag(
            version,
            {
                STATUS: PRODUCTION,
                PROMOTION: str(intent.extra["promotion"]),
                "promoted_at": intent.at.isoformat(),
            },
        )
        store.client.set_registered_model_alias(self.name, PRODUCTION, str(version))
        if intent.previous is not None and intent.previous != version:
            store.tag(intent.previous, {STATUS: ARCHIVED, "archived_at": intent.at.isoformat()})
        self._drop_candidate(version)

    def _apply_refused(self, intent: Intent) -> None:
        version = _required(intent.version)
        self._store().tag(version, {STATUS: REFUSED, "refused_at": intent.at.isoformat()})
        self._drop_candidate(version)

    def _apply_rolled_back(self, intent: Intent) -> None:
        target, current = _required(intent.version), _required(intent.previous)
        store = self._store()
        store.tag(current, {STATUS: ROLLED_BACK, "rolled_back_at": intent.at.isoformat()})
        store.tag(target, {STATUS: PRODUCTION, "restored_at": intent.at.isoformat()})
        store.client.set_registered_model_alias(self.name, PRODUCTION, str(target))

    # -- MLflow ----------------------------------------------------------------------------

    def _store(self) -> ModelStore:
        """Return the MLflow store, opening it (and recovering) on first use.

        A half-done change that cannot be completed is logged, not raised, so reading (the
        production bundle, above all) still works; every change refuses until it is fixed.
        """
        if self._model_store is None:
            self._model_store = ModelStore.open(self.tracking_uri, self.home, self.name)
            try:
                self.recover()
            except StoreError:
                log.exception("the model registry has a change it cannot complete")
        return self._model_store

    def _bundle_versions(self, found: list[ModelVersion]) -> list[BundleVersion]:
        """Turn registry versions into :class:`BundleVersion` (their runs fetched in batches)."""
        store = self._store()
        client = store.client
        ids = sorted({str(v.run_id) for v in found})
        runs: dict[str, Run] = {}
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            quoted = ", ".join(f"'{i}'" for i in chunk)
            page = client.search_runs(
                [store.experiment_id(BUNDLE_EXPERIMENT)],
                filter_string=f"attributes.run_id IN ({quoted})",
                max_results=len(chunk),
            )
            runs.update({run.info.run_id: run for run in page})
        aliases = store.aliases()
        out = []
        for v in found:
            number = int(v.version)
            run = runs.get(str(v.run_id)) or client.get_run(str(v.run_id))
            tags = dict(v.tags or {})
            out.append(
                BundleVersion(
                    version=number,
                    run_id=str(v.run_id),
                    created_at=datetime.fromtimestamp(v.creation_timestamp / 1000, tz=UTC),
                    aliases=tuple(sorted(a for a, n in aliases.items() if n == number)),
                    status=tags.get(STATUS, CANDIDATE),
                    lineage=Lineage.from_tags(run.data.tags),
                    metrics=dict(run.data.metrics),
                    tags=tags,
                )
            )
        return out

    def _drop_candidate(self, version: int) -> None:
        store = self._store()
        if store.aliases().get(CANDIDATE) == version:
            store.client.delete_registered_model_alias(self.name, CANDIDATE)

    def _previous_production(self, current: int) -> int | None:
        archived = [
            (int(v.tags[PROMOTION]), int(v.version))
            for v in self._store().model_versions()
            if PROMOTION in v.tags and v.tags.get(STATUS) == ARCHIVED and int(v.version) != current
        ]
        return max(archived)[1] if archived else None


def _required(version: int | None) -> int:
    if version is None:
        raise StoreError("the pending change names no version; it cannot be completed")
    return version


def _now() -> datetime:
    return datetime.now(UTC)


def _folder_hash(folder: Path) -> str:
    """Return the sha256 (hex) of every file's relative path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(functools.partial(handle.read, 1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


__all__ = [
    "CANDIDATE",
    "PRODUCTION",
    "REGISTERED_MODEL",
    "AuditEvent",
    "BundleRegistry",
    "BundleVersion",
    "Lineage",
    "code_version",
    "frame_hash",
    "public_settings",
]
