"""Hyper-parameter cycles: a Bayesian (Optuna TPE) study of settings, judged after costs.

:func:`run_study` tries settings drawn from a small space (by default the brain's entry and
exit bars and the features kept per training window: the knobs that decide how much of a
forecast's edge survives costs) and scores each walk-forward on the candles given, out of
sample:

1. the newest :data:`OUT_OF_SAMPLE_FRACTION` of the candles is cut into
   :data:`OUT_OF_SAMPLE_BLOCKS` consecutive blocks;
2. each block is predicted by a forecast bundle trained (exactly as the service trains:
   :func:`~tradebrain.learning.fan_out.training_settings`) on the candles before it only;
3. the forecasts ``E[r_h] = beta * z * sigma_h`` of all blocks are traded, in order, with the
   trial's entry and exit bars after fees and slippage
   (:func:`~tradebrain.models.forecast.policy_returns`, per candle);
4. the trial's value is the per-candle Sharpe ratio of those after-cost log returns (0 when the
   forecast never trades).

The study lives in Optuna RDB storage (``sqlite:///{home}/optuna.db``): a second call with the
same name resumes it. Every evaluated trial is also appended to the project's
:class:`~tradebrain.evaluation.statistics.TrialLedger`, so the deflated Sharpe ratio of
whatever is finally chosen counts every configuration the study looked at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tradebrain.config import Settings
from tradebrain.exceptions import UserInputError
from tradebrain.models.forecast import policy_returns

if TYPE_CHECKING:
    from tradebrain.learning.executor import Executor

OUT_OF_SAMPLE_FRACTION = 0.4
"""Share of the newest candles traded out of sample by each trial."""
OUT_OF_SAMPLE_BLOCKS = 2
"""Consecutive blocks of the out-of-sample candles; each is predicted by its own retrain."""

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "brain.entry_cost_multiple": {"type": "float", "low": 0.5, "high": 4.0},
    "brain.exit_cost_multiple": {"type": "float", "low": -2.0, "high": 0.5},
    "models.max_features": {"type": "int", "low": 3, "high": 16},
}
"""Setting (dotted path) -> its range: the entry and exit bars (in round trips of costs) and
the features kept per training window. Any exit bar of this space is below any entry bar."""

_SPACE_TYPES = ("float", "int", "categorical")


@dataclass(frozen=True)
class StudyResult:
    """Where a study stands after :func:`run_study`.

    Attributes
    ----------
    best_params
        Setting (dotted path) -> value of the best trial so far.
    best_value
        Its per-candle out-of-sample after-cost Sharpe ratio.
    n_trials
        Finished trials of the study, over every call that ran it.
    new_trials
        Trials this call ran (a pruned one, whose settings were invalid, included).
    ledger_trials
        Distinct configurations in the trial ledger (what DSR counts), every study included.
    study_name, storage
        Where the study is kept.
    """

    best_params: dict[str, Any]
    best_value: float
    n_trials: int
    new_trials: int
    ledger_trials: int
    study_name: str
    storage: str


@dataclass(frozen=True)
class _TrialJob:
    """One trial's evaluation, shipped to an executor."""

    candles: pl.DataFrame
    features: pl.DataFrame
    settings: dict[str, Any]


def run_study(
    candles: pl.DataFrame,
    settings_dump: dict[str, Any],
    *,
    n_trials: int,
    storage: str,
    study_name: str,
    ledger_path: Path,
    seed: int = 0,
    space: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
) -> StudyResult:
    """Run (or resume) an Optuna TPE study of settings; record every trial in the ledger.

    Parameters
    ----------
    candles
        One symbol's candles, oldest first (the project's candle schema); every trial is
        trained and judged on them only (see the module docstring).
    settings_dump
        ``Settings.model_dump(mode="json")``: everything the space does not vary.
    n_trials
        Trials to add to the study in this call (>= 1).
    storage
        An SQLAlchemy URL for Optuna's RDB storage, e.g. ``sqlite:///{home}/optuna.db`` (a
        SQLite file's folder is created).
    study_name
        The study; an existing one is resumed.
    ledger_path
        The :class:`~tradebrain.evaluation.statistics.TrialLedger` file every trial is
        appended to.
    seed
        Seed of the TPE sampler: the same seed, data and history give the same trials. A
        resumed study's sampler is seeded with ``seed`` and the number of trials it holds, so
        resuming draws new configurations rather than the first ones again.
    space
        Setting (dotted path) -> ``{"type": "float" | "int", "low", "high", "log": bool}`` or
        ``{"type": "categorical", "choices": [...]}``; by default :data:`DEFAULT_SPACE`.
    executor
        When given, trials run in batches of ``executor.workers`` (Optuna's ask and tell);
        by default one after the other in this process.

    Raises
    ------
    UserInputError
        For a bad storage URL, space, settings or ``n_trials``, or candles too few to
        train and trade walk-forward.
    """
    import optuna

    from tradebrain.evaluation.statistics import TrialLedger
    from tradebrain.features import compute_features

    if n_trials < 1:
        raise UserInputError(f"n_trials must be at least 1; got {n_trials}")
    base = _validated(settings_dump, "the study's settings")
    ranges = _parse_space(DEFAULT_SPACE if space is None else space)
    _blocks(candles.height)  # too few candles fail here, before any trial
    rdb = open_storage(storage)
    features = compute_features(candles, list(base.features.sets))
    ledger = TrialLedger(ledger_path)
    data = _data_identity(candles)
    sampler = optuna.samplers.TPESampler(seed=_sampler_seed(seed, _trials_held(rdb, study_name)))
    study = optuna.create_study(
        storage=rdb, study_name=study_name, direction="maximize", sampler=sampler,
        load_if_exists=True,
    )  # fmt: skip

    def record(trial: optuna.trial.BaseTrial, params: dict[str, Any], metric: float) -> None:
        config = {
            "kind": "optuna-study",
            "study": study_name,
            "params": params,
            "settings": _config_settings(apply_params(settings_dump, params)),
            "objective": "out-of-sample after-cost per-candle Sharpe",
            "data": data,
        }
        ledger.record(config, metric, name=f"{study_name}#{trial.number}")

    new_trials = 0
    if executor is None:

        def objective(trial: optuna.Trial) -> float:
            params = _suggest(trial, ranges)
            trial_settings = _trial_settings(settings_dump, params)
            metric = evaluate_settings(candles, features, trial_settings)
            record(trial, params, metric)
            return metric

        study.optimize(objective, n_trials=n_trials)
        new_trials = n_trials
    else:
        from tradebrain.learning.executor import JobFailedError

        while new_trials < n_trials:
            size = min(max(executor.workers, 1), n_trials - new_trials)
            asked: list[tuple[optuna.Trial, dict[str, Any], dict[str, Any]]] = []
            for _ in range(size):
                trial = study.ask()
                params = _suggest(trial, ranges)
                try:
                    asked.append((trial, params, _trial_dump(settings_dump, params)))
                except optuna.TrialPruned:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    new_trials += 1
            jobs = [_TrialJob(candles, features, dump) for _, _, dump in asked]
            try:
                metrics = executor.map(_evaluate_job, jobs)
            except JobFailedError:
                for trial, _, _ in asked:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
            for (trial, params, _), metric in zip(asked, metrics, strict=True):
                record(trial, params, metric)
                study.tell(trial, metric)
                new_trials += 1

    complete = [
        t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE
    ]
    if not complete:
        raise UserInputError(
            f"study {study_name!r} has no finished trial: every configuration drawn was invalid "
            "settings; narrow the space so that exit_cost_multiple stays below entry_cost_multiple"
        )
    return StudyResult(
        best_params=dict(study.best_params),
        best_value=float(study.best_value),
        n_trials=len(complete),
        new_trials=new_trials,
        ledger_trials=ledger.n_trials,
        study_name=study_name,
        storage=storage,
    )


def evaluate_settings(candles: pl.DataFrame, features: pl.DataFrame, settings: Settings) -> float:
    """Return the per-candle out-of-sample after-cost Sharpe ratio of ``settings``.

    See the module docstring; 0.0 when the forecasts never trade (no skill, or bars too high).
    """
    from tradebrain.evaluation.statistics import sharpe_statistics

    returns = walk_forward_returns(candles, features, settings)
    sharpe = sharpe_statistics(returns).sharpe
    return 0.0 if math.isnan(sharpe) else float(sharpe)


def walk_forward_returns(
    candles: pl.DataFrame, features: pl.DataFrame, settings: Settings
) -> np.ndarray:
    """Return the (m,) after-cost log returns of trading ``settings``' forecasts out of sample.

    ``m`` is the number of out-of-sample candles (the newest :data:`OUT_OF_SAMPLE_FRACTION`);
    each block of them is forecast by a bundle trained on the candles before the block (the
    newest ``learning.max_train_bars`` of them), and all are traded in one pass.
    """
    from tradebrain.learning.fan_out import training_settings
    from tradebrain.learning.forecaster import train_forecaster
    from tradebrain.models.forecast import combine_votes, probit_scores

    if features.height != candles.height:
        raise UserInputError(
            f"{features.height} feature rows for {candles.height} candles; compute the "
            "features on these candles"
        )
    evaluation, forecast, feature_sets = training_settings(settings, threads=1)
    longest = settings.learning.max_train_bars
    expected_parts = []
    for start, stop in _blocks(candles.height):
        first = 0 if longest is None else max(0, start - longest)
        bundle = train_forecaster(
            candles[first:start], features[first:start], evaluation, forecast,
            feature_sets=feature_sets, source="study",
        )  # fmt: skip
        block = features[start:stop]
        calibration = bundle.calibration
        assert calibration is not None  # train_forecaster always calibrates
        z = probit_scores(combine_votes(bundle.predict_proba(block), calibration.weights))
        inputs = bundle.forecast_inputs(block)
        expected_parts.append(inputs[:, 0] * z * inputs[:, 1])
    close = candles["close"].cast(pl.Float64).to_numpy()
    next_return = np.append(np.log(close[1:] / close[:-1]), np.nan)
    first_oos = _blocks(candles.height)[0][0]
    return policy_returns(
        np.concatenate(expected_parts),
        next_return[first_oos:],
        forecast.cost_per_side,
        forecast.entry_cost_multiple,
        forecast.exit_cost_multiple,
    )


def apply_params(settings_dump: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a settings dump with each dotted-path parameter set."""
    out: dict[str, Any] = _deep_copy(settings_dump)
    for path, value in params.items():
        node = out
        *parents, leaf = path.split(".")
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                raise UserInputError(f"{path!r} names no setting: {key!r} is not a section")
            node = child
        node[leaf] = value
    return out


def open_storage(url: str) -> Any:
    """Return Optuna's RDB storage at ``url`` (an ``optuna.storages.RDBStorage``).

    Raises
    ------
    UserInputError
        When the URL is not an SQLAlchemy URL or the database cannot be opened.
    """
    import optuna

    hint = "pass an SQLAlchemy URL such as 'sqlite:///HOME/optuna.db' (HOME: the settings' home)"
    if "://" not in url:
        raise UserInputError(f"storage {url!r} is not a database URL; {hint}")
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise UserInputError(f"cannot create the folder of {url!r}: {error}") from None
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as error:
        raise UserInputError(
            f"cannot open the Optuna storage {url!r}: {type(error).__name__}: {error}; {hint}"
        ) from None


def _evaluate_job(job: _TrialJob) -> float:
    """Evaluate one trial's settings (top level: executors pickle it)."""
    return evaluate_settings(job.candles, job.features, Settings.model_validate(job.settings))


def _blocks(rows: int) -> list[tuple[int, int]]:
    """Return the out-of-sample blocks ``[(start, stop), ...]`` of ``rows`` candles."""
    first = rows - int(rows * OUT_OF_SAMPLE_FRACTION)
    bounds = np.linspace(first, rows, OUT_OF_SAMPLE_BLOCKS + 1).astype(int).tolist()
    if first < 500 or bounds[1] - bounds[0] < 100:
        raise UserInputError(
            f"{rows} candles are too few for a study: each trial trains on the candles before "
            f"the newest {OUT_OF_SAMPLE_FRACTION:.0%} and trades them in "
            f"{OUT_OF_SAMPLE_BLOCKS} blocks; give at least 1,000 candles"
        )
    return [(bounds[i], bounds[i + 1]) for i in range(OUT_OF_SAMPLE_BLOCKS)]


def _parse_space(space: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Check a search space; return it with every entry's ``type`` filled in."""
    if not space:
        raise UserInputError("the search space is empty; name at least one setting to vary")
    parsed: dict[str, dict[str, Any]] = {}
    for path, spec in space.items():
        _check_setting_path(path)
        if not isinstance(spec, Mapping):
            raise UserInputError(
                f"space[{path!r}] must be a mapping such as {{'low': 0.5, 'high': 4.0}}; "
                f"got {spec!r}"
            )
        entry = dict(spec)
        kind = entry.setdefault("type", "categorical" if "choices" in entry else "float")
        if kind not in _SPACE_TYPES:
            raise UserInputError(
                f"space[{path!r}] has type {kind!r}; use one of: {', '.join(_SPACE_TYPES)}"
            )
        if kind == "categorical":
            if not isinstance(entry.get("choices"), Sequence) or not entry["choices"]:
                raise UserInputError(f"space[{path!r}] needs a non-empty list of 'choices'")
        elif not ("low" in entry and "high" in entry and entry["low"] < entry["high"]):
            raise UserInputError(f"space[{path!r}] needs 'low' < 'high'; got {spec!r}")
        parsed[path] = entry
    return parsed


def _check_setting_path(path: str) -> None:
    from pydantic import BaseModel

    model: type[BaseModel] = Settings
    parts = path.split(".")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            raise UserInputError(
                f"space names {path!r}, but {'.'.join(parts[: depth + 1])!r} is no setting; "
                f"choose among {sorted(model.model_fields)}"
            )
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif depth < len(parts) - 1:
            raise UserInputError(f"space names {path!r}, but {part!r} is a value, not a section")


def _suggest(trial: Any, ranges: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for path, entry in ranges.items():
        kind = entry["type"]
        if kind == "categorical":
            params[path] = trial.suggest_categorical(path, list(entry["choices"]))
        elif kind == "int":
            log = bool(entry.get("log", False))
            params[path] = trial.suggest_int(path, int(entry["low"]), int(entry["high"]), log=log)
        else:
            log = bool(entry.get("log", False))
            params[path] = trial.suggest_float(
                path, float(entry["low"]), float(entry["high"]), log=log
            )
    return params


def _trial_dump(settings_dump: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the trial's settings dump; an invalid combination prunes the trial."""
    _trial_settings(settings_dump, params)
    return apply_params(settings_dump, params)


def _trial_settings(settings_dump: Mapping[str, Any], params: Mapping[str, Any]) -> Settings:
    """Return the trial's settings; an invalid combination prunes the trial (not evaluated)."""
    import optuna
    from pydantic import ValidationError

    try:
        return Settings.model_validate(apply_params(settings_dump, params))
    except ValidationError as error:
        raise optuna.TrialPruned(f"invalid settings {dict(params)}: {error}") from None


def _validated(dump: Mapping[str, Any], what: str) -> Settings:
    from pydantic import ValidationError

    try:
        return Settings.model_validate(dump)
    except ValidationError as error:
        raise UserInputError(
            f"{what} are invalid: {error}; pass Settings.model_dump(mode='json')"
        ) from None


def _config_settings(dump: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that decide a trial's value (not where files live, nor the API's)."""
    return {key: value for key, value in dump.items() if key not in ("home", "api", "data")}


def _data_identity(candles: pl.DataFrame) -> dict[str, Any]:
    from tradebrain.learning.fan_out import candles_hash

    timestamps = candles["timestamp"]
    return {
        "rows": candles.height,
        "start": timestamps[0].isoformat(),
        "end": timestamps[-1].isoformat(),
        "hash": candles_hash(candles),
    }


def _trials_held(storage: Any, study_name: str) -> int:
    """Return how many trials the stored study holds (0 when there is no such study)."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def _sampler_seed(seed: int, held: int) -> int:
    """Mix the study's seed with the trials it holds (a resumed study draws afresh)."""
    if held == 0:
        return seed
    return int(np.random.SeedSequence([seed, held]).generate_state(1)[0])


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value
