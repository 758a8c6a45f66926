"""Retrain many symbols at once: one job per symbol, fanned out over an :class:`Executor`.

A :class:`TrainJob` names a symbol's candles (a Parquet file), the settings and where the
bundle goes; :func:`train_job` trains it the way the trading service does
(:meth:`~tradebrain.service.models_provider.ModelProvider._train`: features of the settings'
sets, then :func:`~tradebrain.learning.forecaster.train_forecaster` with the settings' models,
horizons, costs and bars) and saves the bundle atomically. :func:`fan_out` runs the jobs on any
executor; the :class:`TrainResult` of each says what was learned from and carries a hash of the
saved bundle's predictions, so two executors can be shown to give the same models.

A fan-out job trains on one thread (``n_jobs=1``, ``threads=1`` for every model that takes
one): the parallelism is across jobs. The seed is the settings' ``models.seed`` unless the job
names its own; the same job gives the same bundle, bit for bit, on every executor.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tradebrain.config import Settings
from tradebrain.data.schemas import Kind, schema_for
from tradebrain.exceptions import DataFormatError, UserInputError

if TYPE_CHECKING:
    from tradebrain.evaluation.walk_forward import EvaluationSettings
    from tradebrain.learning.executor import Executor
    from tradebrain.models.forecast import ForecastSettings

PREDICTION_ROWS = 200
"""Newest feature rows whose predictions are hashed into :attr:`TrainResult.prediction_hash`."""


@dataclass(frozen=True)
class TrainJob:
    """One symbol to retrain.

    Attributes
    ----------
    symbol
        The symbol's name (``"BTC/USDT"``), for results and messages.
    candles_path
        A Parquet file of its candles, oldest first: ``timestamp`` (Datetime(us, UTC), open
        time), ``open``, ``high``, ``low``, ``close``, ``volume`` (extra columns are kept for
        the feature sets that read them).
    settings
        ``Settings.model_dump(mode="json")``: the features, models, horizons, costs and bars.
    out_dir
        The bundle's folder; replaced as a whole when the job succeeds.
    seed
        Seed of every model; None: the settings' ``models.seed``.
    models
        Models to train; None: the settings' ``models.enabled``.
    """

    symbol: str
    candles_path: Path
    settings: dict[str, Any] = field(repr=False)
    out_dir: Path
    seed: int | None = None
    models: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TrainResult:
    """What one job trained and learned from.

    Attributes
    ----------
    symbol
        The job's symbol.
    bundle_dir
        The saved bundle (the job's ``out_dir``).
    rows
        Candles learned from.
    data_start, data_end
        Open times of the first and last of them (ISO 8601, UTC).
    data_hash
        SHA-256 of the candles (timestamps and OHLCV values), hex.
    seconds
        Wall time of the job (loading, features, training, saving).
    prediction_hash
        SHA-256 of the saved bundle's predictions (every model's probabilities, then the
        forecast's ``beta, sigma_h, horizon``) on the newest 200 feature rows, hex.
    """

    symbol: str
    bundle_dir: Path
    rows: int
    data_start: str
    data_end: str
    data_hash: str
    seconds: float
    prediction_hash: str


def fan_out(jobs: Sequence[TrainJob], executor: Executor) -> list[TrainResult]:
    """Train every job on ``executor``; return their results in job order.

    Raises
    ------
    UserInputError
        When two jobs would write the same bundle folder.
    JobFailedError
        (from the executor) naming the first job that failed and what it raised.
    """
    folders = [job.out_dir.resolve() for job in jobs]
    doubled = sorted({str(f) for f in folders if folders.count(f) > 1})
    if doubled:
        raise UserInputError(
            f"several jobs write the same bundle folder {doubled}; give each job its own out_dir"
        )
    return executor.map(train_job, jobs)


def train_job(job: TrainJob) -> TrainResult:
    """Load the job's candles, train its forecast bundle and save it to ``job.out_dir``.

    The bundle is trained and saved into a temporary folder beside ``out_dir`` and then moved
    into place (``os.replace``): a reader finds the old bundle or the new one, never half of
    one, and a failed job leaves the old bundle untouched.

    Raises
    ------
    UserInputError
        When the candles file is missing or unreadable, or the settings are invalid.
    """
    started = time.perf_counter()
    settings = _settings(job.settings)
    candles = read_candles(job.candles_path)
    from tradebrain.features import compute_features
    from tradebrain.learning.forecaster import train_forecaster

    evaluation, forecast, feature_sets = training_settings(
        settings, seed=job.seed, models=job.models, threads=1
    )
    features = compute_features(candles, feature_sets, threads=1)
    bundle = train_forecaster(
        candles, features, evaluation, forecast,
        feature_sets=feature_sets, source=f"{job.symbol} fan-out",
    )  # fmt: skip
    out_dir = Path(job.out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        bundle.save(staging)
        prediction_hash = bundle_prediction_hash(staging, features.tail(PREDICTION_ROWS))
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    timestamps = candles["timestamp"]
    return TrainResult(
        symbol=job.symbol,
        bundle_dir=out_dir,
        rows=candles.height,
        data_start=timestamps[0].isoformat(),
        data_end=timestamps[-1].isoformat(),
        data_hash=candles_hash(candles),
        seconds=time.perf_counter() - started,
        prediction_hash=prediction_hash,
    )


def training_settings(
    settings: Settings,
    *,
    seed: int | None = None,
    models: Sequence[str] | None = None,
    threads: int | None = None,
) -> tuple[EvaluationSettings, ForecastSettings, list[str]]:
    """Return what the settings train with: evaluation settings, forecast and feature sets.

    The same choices as ``HybridConfig.from_settings(settings).evaluation_settings()`` and its
    ``forecast`` (the service's training path), built here because the learning room may not
    import the strategies above it, with one addition: the seed is also handed to every model
    that takes one (``model_params``), so that ``models.seed`` (or ``seed``) seeds the models
    themselves and not only the horizon screen.

    Parameters
    ----------
    settings
        The application settings.
    seed
        Seed of every model; None: ``settings.models.seed``.
    models
        Models to train; None: ``settings.models.enabled``.
    threads
        Threads of every model that takes a thread count (``n_jobs``, or ``threads`` for the
        torch nets); None: as the service (``models.torch_threads`` for the nets, each
        model's default otherwise).
    """
    from tradebrain.evaluation.walk_forward import EvaluationSettings
    from tradebrain.labels import LabelSettings
    from tradebrain.models.forecast import ForecastSettings

    chosen = tuple(models) if models is not None else tuple(settings.models.enabled)
    model_seed = settings.models.seed if seed is None else seed
    if not chosen:
        raise UserInputError("no models to train; name at least one (see models.enabled)")
    forecast = ForecastSettings(
        horizons=tuple(settings.models.horizons),
        max_features=settings.models.max_features,
        cost_per_side=settings.execution.taker_fee + settings.execution.slippage_bps / 1e4,
        entry_cost_multiple=settings.brain.entry_cost_multiple,
        exit_cost_multiple=settings.brain.exit_cost_multiple,
    )
    evaluation = EvaluationSettings(
        label=LabelSettings("direction", min(forecast.horizons), {"dead_zone": 0.0}),
        models=chosen,
        window=settings.models.window,
        seed=model_seed,
        model_params=_model_params(chosen, model_seed, settings.models.torch_threads, threads),
    )
    return evaluation, forecast, list(settings.features.sets)


def read_candles(path: Path) -> pl.DataFrame:
    """Read a Parquet file of candles; check the candle columns and cast them to the schema.

    Raises
    ------
    UserInputError
        When the file does not exist or is not Parquet.
    DataFormatError
        When a candle column is missing or of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(
            f"candles file {path} does not exist; write the symbol's candles there"
        )
    try:
        frame = pl.read_parquet(path)
    except Exception as error:
        raise DataFormatError(f"{path} cannot be read as Parquet: {error}") from None
    schema = schema_for(Kind.CANDLES)
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise DataFormatError(
            f"{path} lacks the candle column(s) {missing}; found {frame.columns}; candles need "
            f"{schema.names}"
        )
    try:
        return frame.with_columns(
            [pl.col(name).cast(dtype, strict=True) for name, dtype in schema.columns.items()]
        )
    except pl.exceptions.PolarsError as error:
        raise DataFormatError(f"{path} holds candle columns of the wrong type: {error}") from None


def candles_hash(candles: pl.DataFrame) -> str:
    """Return the SHA-256 (hex) of the candles' timestamps and OHLCV values, in row order."""
    digest = hashlib.sha256()
    digest.update(candles["timestamp"].dt.epoch("us").to_numpy().astype("<i8").tobytes())
    for name in ("open", "high", "low", "close", "volume"):
        digest.update(candles[name].cast(pl.Float64).to_numpy().astype("<f8").tobytes())
    return digest.hexdigest()


def _settings(dump: dict[str, Any]) -> Settings:
    from pydantic import ValidationError

    try:
        return Settings.model_validate(dump)
    except ValidationError as error:
        raise UserInputError(
            f"the job's settings are invalid: {error}; pass Settings.model_dump(mode='json')"
        ) from None


def _model_params(
    models: Sequence[str], seed: int, torch_threads: int, threads: int | None
) -> dict[str, dict[str, Any]]:
    """Return each model's constructor overrides: its seed and thread count."""
    from tradebrain.models.base import MODEL_CLASSES

    params: dict[str, dict[str, Any]] = {}
    for name in models:
        if name not in MODEL_CLASSES:
            continue  # the forecaster names the unknown model and the choices
        model_class = MODEL_CLASSES[name]
        takes = inspect.signature(model_class).parameters
        chosen: dict[str, Any] = {"seed": seed} if "seed" in takes else {}
        if model_class.takes_torch_threads:
            chosen["threads"] = torch_threads if threads is None else threads
        elif threads is not None and "n_jobs" in takes:
            chosen["n_jobs"] = threads
        if chosen:
            params[name] = chosen
    return params


def bundle_prediction_hash(bundle_dir: Path, features: pl.DataFrame) -> str:
    """Return the SHA-256 of the saved bundle's predictions on ``features`` (see TrainResult)."""
    from tradebrain.models.bundle import ModelBundle

    bundle = ModelBundle.load(bundle_dir)
    digest = hashlib.sha256()
    for name, proba in sorted(bundle.predict_proba(features).items()):
        digest.update(name.encode("utf-8"))
        digest.update(np.ascontiguousarray(proba, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(bundle.forecast_inputs(features), dtype="<f8").tobytes())
    return digest.hexdigest()


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``staging`` (an old bundle is moved aside, then removed)."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
    os.replace(out_dir, old / out_dir.name)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(old / out_dir.name, out_dir)  # put the old bundle back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
