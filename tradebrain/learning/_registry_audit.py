"""The model registry's change records: the write-ahead intent and the audit trail.

A change of :class:`~tradebrain.learning.registry.BundleRegistry` is recorded twice. Before it
is made, as an :class:`Intent` in the registered-model tag :data:`PENDING`
(:func:`write_pending`, :func:`read_pending`, :func:`clear_pending`), so that a restart can
finish it; once made, as an :class:`AuditEvent`: one run in the experiment
:data:`AUDIT_EXPERIMENT` (:func:`write_audit`, written once per intent however often it is
retried; :func:`read_audit`). :func:`checked_reason` and :func:`checked_evidence` check the
why and the evidence a caller gives before anything is recorded.

MLflow is reached only through a :class:`~tradebrain.learning._mlflow.ModelStore`.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradebrain.exceptions import StoreError, UserInputError
from tradebrain.learning._mlflow import TAG_LIMIT, key

if TYPE_CHECKING:
    from mlflow.entities import Run

    from tradebrain.learning._mlflow import ModelStore

AUDIT_EXPERIMENT = "tradebrain-audit"
PENDING = "pending"

Evidence = float | str | int | None


@dataclass(frozen=True)
class AuditEvent:
    """A change of the registry, in the past tense, with why it was made and the evidence.

    ``action`` is ``registered``, ``promoted``, ``refused`` or ``rolled_back``. ``version`` is
    the version the action was about (for a rollback: the version production went back to);
    ``previous`` is the version it was weighed against: the production it replaced (promoted),
    the version rolled back (rolled_back), the production it lost to (refused), the former
    holder of its alias (registered), or None. ``at`` is when the change was decided (UTC).
    """

    action: str
    version: int
    previous: int | None
    reason: str
    evidence: dict[str, Evidence]
    at: datetime


@dataclass(frozen=True)
class Intent:
    """A change written ahead of doing it (the ``pending`` tag), so a restart can finish it."""

    id: str
    action: str
    version: int | None
    previous: int | None
    reason: str
    evidence: dict[str, Evidence]
    at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "action": self.action,
                "version": self.version,
                "previous": self.previous,
                "reason": self.reason,
                "evidence": self.evidence,
                "at": self.at.isoformat(),
                "extra": self.extra,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Intent:
        try:
            data = json.loads(text)
            return cls(
                id=str(data["id"]),
                action=str(data["action"]),
                version=None if data["version"] is None else int(data["version"]),
                previous=None if data["previous"] is None else int(data["previous"]),
                reason=str(data["reason"]),
                evidence=dict(data["evidence"]),
                at=datetime.fromisoformat(data["at"]),
                extra=dict(data.get("extra", {})),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise StoreError(
                f"the registry's pending change is unreadable ({error}): {text[:200]!r}; a "
                f"human must finish it by hand, then delete the registered-model tag {PENDING!r}"
            ) from error

    def event(self) -> AuditEvent:
        if self.version is None:
            raise StoreError(f"the pending {self.action} names no version; it cannot be audited")
        return AuditEvent(
            self.action, self.version, self.previous, self.reason, self.evidence, self.at
        )


def write_pending(store: ModelStore, intent: Intent) -> None:
    """Record ``intent`` as the pending change (replacing any other in one write)."""
    store.client.set_registered_model_tag(store.name, PENDING, intent.to_json())


def read_pending(store: ModelStore) -> Intent | None:
    """Return the pending change, or None when there is none."""
    text = store.client.get_registered_model(store.name).tags.get(PENDING)
    return None if text is None else Intent.from_json(text)


def clear_pending(store: ModelStore) -> None:
    """Forget the pending change (it is done)."""
    store.client.delete_registered_model_tag(store.name, PENDING)


def write_audit(store: ModelStore, intent: Intent) -> AuditEvent:
    """Write the audit run of ``intent`` unless a finished one exists already."""
    client = store.client
    event = intent.event()
    experiment = store.experiment_id(AUDIT_EXPERIMENT)
    existing = client.search_runs(
        [experiment], filter_string=f"tags.intent = '{intent.id}'", max_results=1
    )
    if existing and existing[0].info.status == "FINISHED":
        return event
    numbers_ = {key(k): float(v) for k, v in event.evidence.items() if isinstance(v, int | float)}
    if existing:  # a crash left the run unfinished: log again, then finish it
        run_id = existing[0].info.run_id
    else:
        tags = {
            "intent": intent.id,
            "action": event.action,
            "version": str(event.version),
            "reason": event.reason,
            "at": event.at.isoformat(),
            "evidence": json.dumps(event.evidence),
            **{f"evidence.{key(k)}": v for k, v in event.evidence.items() if isinstance(v, str)},
        }
        if event.previous is not None:
            tags["previous"] = str(event.previous)
        run_id = client.create_run(
            experiment,
            start_time=int(event.at.timestamp() * 1000),
            tags=tags,
            run_name=f"{event.action} v{event.version}",
        ).info.run_id
    store.log(run_id, params={}, metrics=numbers_)
    client.set_terminated(run_id, "FINISHED")
    return event


def read_audit(store: ModelStore, limit: int | None = None) -> list[AuditEvent]:
    """Return the audit events, newest first (at most ``limit``)."""
    client = store.client
    runs: list[Run] = []
    token: str | None = None
    while limit is None or len(runs) < limit:
        page = client.search_runs(
            [store.experiment_id(AUDIT_EXPERIMENT)],
            filter_string="attributes.status = 'FINISHED'",
            max_results=1000 if limit is None else min(1000, limit - len(runs)),
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    return [_audit_event(run) for run in runs]


def checked_reason(reason: str) -> str:
    """Return ``reason``; raise :class:`UserInputError` when it is blank or too long."""
    if not isinstance(reason, str) or not reason.strip():
        raise UserInputError("a reason is required: say why, e.g. reason='beat production'")
    if len(reason) > 2_000:
        raise UserInputError(f"the reason is {len(reason)} characters; keep it under 2000")
    return reason


def checked_evidence(evidence: Mapping[str, Any]) -> dict[str, Evidence]:
    """Return JSON-safe evidence: numbers, text or None (numpy scalars become numbers)."""
    out: dict[str, Evidence] = {}
    for name, value in evidence.items():
        if value is None or isinstance(value, str | int | float):
            out[str(name)] = value
        elif isinstance(value, numbers.Integral):
            out[str(name)] = int(value)
        elif isinstance(value, numbers.Real):
            out[str(name)] = float(value)
        else:
            raise UserInputError(
                f"evidence {name!r} is a {type(value).__name__}; evidence values must be "
                "numbers, text or None"
            )
    text = json.dumps(out)
    if len(text) > TAG_LIMIT:
        raise UserInputError(
            f"the evidence is {len(text)} characters as JSON; keep it under {TAG_LIMIT} "
            "(log the details with log_run and cite its run id)"
        )
    return out


def _audit_event(run: Run) -> AuditEvent:
    tags = run.data.tags
    try:
        previous = tags.get("previous")
        return AuditEvent(
            action=tags["action"],
            version=int(tags["version"]),
            previous=int(previous) if previous else None,
            reason=tags.get("reason", ""),
            evidence=json.loads(tags.get("evidence", "{}")),
            at=datetime.fromisoformat(tags["at"]),
        )
    except (KeyError, ValueError) as error:
        raise StoreError(
            f"audit run {run.info.run_id} is malformed ({error!r}); it was not written by "
            f"BundleRegistry — move it out of the experiment {AUDIT_EXPERIMENT!r}"
        ) from error
