"""MLflow plumbing for the model registry: opening the store, and what MLflow accepts.

:class:`ModelStore` is one registered model and its experiments on one tracking URI: it opens
the MLflow client (:meth:`ModelStore.open`: quietly, failing fast on a tracking server that
does not answer, making the registered model on first use), and wraps the calls
:class:`~tradebrain.learning.registry.BundleRegistry` makes again and again (experiments made
on demand, versions found by number or alias, paged searches, tags, batched logging).
:func:`check_store` refuses a bad URI or model name before anything is opened; :func:`key`,
:func:`flatten` and :func:`checked_metrics` make names, params and metrics MLflow takes.

MLflow is imported by :meth:`ModelStore.open` (it takes seconds), not with this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import numbers
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradebrain.exceptions import ConfigError, NotFoundError, StoreError, UserInputError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

TAG_LIMIT = 8_000  # MLflow's longest run tag value
PARAM_LIMIT = 6_000  # and param value
_BATCH = 100  # params or tags per log_batch call
_KEY = re.compile(r"[^\w\-./ :]")
_NAME = re.compile(r"^[\w\-. ]+$")
_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")


def check_store(uri: str | None, name: str) -> None:
    """Refuse a registered model ``name`` or a store ``uri`` MLflow cannot use.

    Raises
    ------
    ConfigError
        When ``uri`` is not an MLflow store URI, or ``name`` is not a valid model name.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"registered model name {name!r} is not valid; use letters, digits, '-', '_', '.'"
        )
    if uri is not None:
        scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
        if scheme not in _SCHEMES:
            raise ConfigError(
                f"registry uri {uri!r} is not an MLflow store URI; use "
                "http(s)://HOST:PORT (a tracking server), sqlite:///PATH/mlflow.db, or "
                "leave learning.registry_uri empty for the embedded store under home"
            )


class ModelStore:
    """One registered model and its experiments on one MLflow tracking URI.

    Parameters
    ----------
    client
        The open MLflow client (:meth:`open` makes one).
    name
        The registered model's name.
    home
        The service's home folder; the embedded store's artifacts go to ``home/mlartifacts``.
    uri
        The tracking (and registry) URI ``client`` talks to.
    """

    def __init__(self, client: MlflowClient, *, name: str, home: Path, uri: str) -> None:
        self.client = client
        self.name = name
        self.home = home
        self.uri = uri
        self._experiments: dict[str, str] = {}

    @classmethod
    def open(cls, uri: str, home: Path, name: str) -> ModelStore:
        """Open the store at ``uri``, making the registered model ``name`` if it is missing.

        Raises
        ------
        StoreError
            When a tracking server does not answer, or the store cannot be used.
        """
        client_class = _client_class()
        from mlflow.exceptions import MlflowException

        if uri.startswith(("http://", "https://")):
            _probe(uri, home)
        else:
            home.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():  # SQLAlchemy deprecations inside MLflow's store
                warnings.simplefilter("ignore", DeprecationWarning)
                client = client_class(tracking_uri=uri, registry_uri=uri)
                _ensure_model(client, name)
        except Exception as error:  # MLflow's, SQLAlchemy's or the OS's: all say "unusable"
            detail = error.message if isinstance(error, MlflowException) else repr(error)
            raise StoreError(
                f"the MLflow store at {uri} cannot be used: {detail}; check "
                "learning.registry_uri (or leave it empty for the embedded store under home)"
            ) from error
        return cls(client, name=name, home=home, uri=uri)

    def experiment_id(self, name: str) -> str:
        """Return the id of the experiment ``name``, making (or restoring) it if need be."""
        if name in self._experiments:
            return self._experiments[name]
        from mlflow.exceptions import MlflowException

        client = self.client
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if not self.uri.startswith(("http://", "https://")):
                location = (self.home / "mlartifacts" / name).resolve().as_uri()
            with contextlib.suppress(MlflowException):  # another process may just make it
                client.create_experiment(name, artifact_location=location)
            experiment = client.get_experiment_by_name(name)
        if experiment is None:  # pragma: no cover - create_experiment raised for good
            raise StoreError(f"the MLflow experiment {name!r} cannot be created at {self.uri}")
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        self._experiments[name] = str(experiment.experiment_id)
        return self._experiments[name]

    def find(self, ref: int | str) -> ModelVersion | None:
        """Return a version by number or alias, or None when there is none."""
        from mlflow.exceptions import MlflowException

        try:
            if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
                return self.client.get_model_version(self.name, str(int(ref)))
            return self.client.get_model_version_by_alias(self.name, ref)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def version_or_raise(self, version: int) -> ModelVersion:
        """Return version number ``version``; raise :class:`NotFoundError` when there is none."""
        found = self.find(int(version))
        if found is None:
            known = sorted(int(v.version) for v in self.model_versions())
            raise NotFoundError(
                f"version {version} of {self.name!r} is not registered; registered: "
                f"{known or 'none yet'}"
            )
        return found

    def model_versions(self, condition: str | None = None) -> Iterator[ModelVersion]:
        """Yield every version of the model (matching ``condition``, if given), page by page."""
        query = f"name = '{self.name}'" + (f" and {condition}" if condition else "")
        token: str | None = None
        while True:
            page = self.client.search_model_versions(query, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def aliases(self) -> dict[str, int]:
        """Return the model's aliases and the version each points to."""
        aliases = self.client.get_registered_model(self.name).aliases or {}
        return {str(a): int(v) for a, v in aliases.items()}

    def tag(self, version: int, tags: Mapping[str, str]) -> None:
        """Set the version tags ``tags`` of ``version`` (one call each)."""
        for name, value in tags.items():
            self.client.set_model_version_tag(self.name, str(version), name, value)

    def log(self, run_id: str, *, params: Mapping[str, str], metrics: Mapping[str, float]) -> None:
        """Log params and metrics in batches MLflow accepts."""
        from mlflow.entities import Metric, Param

        now = int(datetime.now(UTC).timestamp() * 1000)
        param_list = [Param(key(k), v) for k, v in params.items()]
        metric_list = [Metric(key(k), v, now, 0) for k, v in metrics.items()]
        for start in range(0, max(len(param_list), len(metric_list)), _BATCH):
            self.client.log_batch(
                run_id,
                metrics=metric_list[start : start + _BATCH],
                params=param_list[start : start + _BATCH],
            )


def key(name: str) -> str:
    """Return ``name`` with the characters MLflow refuses in names replaced by ``_``."""
    return _KEY.sub("_", str(name))[:250] or "_"


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return nested settings as ``{"a.b": "value"}`` params (JSON for non-text values)."""
    out: dict[str, str] = {}
    for part, value in values.items():
        name = f"{prefix}{part}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > PARAM_LIMIT:
            text = text[: PARAM_LIMIT - 14] + "...(truncated)"
        out[name] = text
    return out


def checked_metrics(values: Mapping[str, Any], what: str) -> dict[str, float]:
    """Return ``values`` as floats; raise :class:`UserInputError` naming one that is not."""
    out = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise UserInputError(f"{what} {name!r} is {value!r}; a {what} must be a number")
        out[str(name)] = float(value)
    return out


def _client_class() -> type[MlflowClient]:
    """Import MLflow quietly (no progress bars, warnings only) and return its client class."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient


def _ensure_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        with contextlib.suppress(MlflowException):  # another process may just make it
            client.create_registered_model(
                name, description="tradebrain forecast bundles (BundleRegistry)"
            )
        client.get_registered_model(name)


def _probe(uri: str, home: Path) -> None:
    """Fail fast, saying how to fix it, when a tracking server does not answer.

    (MLflow itself would retry for minutes.)
    """
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10):
            pass
    except urllib.error.HTTPError:
        return  # it answered
    except (OSError, ValueError) as error:
        raise StoreError(
            f"cannot reach the MLflow tracking server at {uri} ({error}); start it (e.g. "
            "`mlflow server --backend-store-uri sqlite:///mlflow.db --port 5000`), fix "
            f"learning.registry_uri, or leave it empty for the embedded store under {home}"
        ) from error
