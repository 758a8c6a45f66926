"""Optuna studies of settings: judged out of sample after costs, ledgered, resumable, seeded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pytest

from tradebrain.config import Settings
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.evaluation.statistics import TrialLedger
from tradebrain.exceptions import UserInputError
from tradebrain.learning.executor import SerialExecutor
from tradebrain.learning.study import (
    DEFAULT_SPACE,
    StudyResult,
    apply_params,
    policy_returns,
    run_study,
)
from tradebrain.models.forecast import policy_value

T = TypeVar("T")
R = TypeVar("R")
SETTINGS = Settings(models={"enabled": ["logistic"], "horizons": [12, 24]}).model_dump(mode="json")


@pytest.fixture(scope="module")
def trending() -> pl.DataFrame:
    """1,500 hourly candles with a planted trend the logistic forecast can find."""
    config = SyntheticConfig(bars=1_500, seed=3, signal=0.4, edge="trend", half_life=24)
    return generate_market(config).candles


def study_in(folder: Path, candles: pl.DataFrame, n_trials: int, **options: Any) -> StudyResult:
    return run_study(
        candles, SETTINGS, n_trials=n_trials, storage=f"sqlite:///{folder}/optuna.db",
        study_name="hourly", ledger_path=folder / "trials.jsonl", **options,
    )  # fmt: skip


def ledgered_params(folder: Path) -> list[dict[str, Any]]:
    return [entry["config"]["params"] for entry in TrialLedger(folder / "trials.jsonl").entries()]


def test_a_three_trial_study_records_each_trial_and_resumes_with_new_ones(
    trending: pl.DataFrame, tmp_path: Path
) -> None:
    first = study_in(tmp_path, trending, 3)
    assert (first.n_trials, first.new_trials, first.ledger_trials) == (3, 3, 3)
    assert set(first.best_params) == set(DEFAULT_SPACE)
    assert first.best_value > 0  # the planted trend pays after costs out of sample
    entries = TrialLedger(tmp_path / "trials.jsonl").entries()
    assert [e["name"] for e in entries] == ["hourly#0", "hourly#1", "hourly#2"]
    assert max(e["metric"] for e in entries) == first.best_value
    settings = entries[0]["config"]["settings"]
    assert (
        settings["brain"]["entry_cost_multiple"]
        == entries[0]["config"]["params"]["brain.entry_cost_multiple"]
    )
    assert entries[0]["config"]["data"]["rows"] == 1_500

    resumed = study_in(tmp_path, trending, 2)
    assert (resumed.n_trials, resumed.new_trials, resumed.ledger_trials) == (5, 2, 5)
    params = ledgered_params(tmp_path)
    assert params[3] not in params[:3] and params[4] not in params[:3]  # drawn afresh


def test_the_same_seed_draws_the_same_trials(trending: pl.DataFrame, tmp_path: Path) -> None:
    one, two, other = tmp_path / "one", tmp_path / "two", tmp_path / "other"
    first = study_in(one, trending, 3, seed=11)
    second = study_in(two, trending, 3, seed=11)
    assert ledgered_params(one) == ledgered_params(two)
    assert (first.best_params, first.best_value) == (second.best_params, second.best_value)
    study_in(other, trending, 1, seed=12)
    assert ledgered_params(other)[0] != ledgered_params(one)[0]


class TwoAtATime(SerialExecutor):
    """Runs batches of two trials, one after the other, and remembers the batch sizes."""

    workers = 2

    def __init__(self) -> None:
        self.batches: list[int] = []

    def map(self, fn: Callable[[T], R], jobs: Sequence[T]) -> list[R]:
        self.batches.append(len(jobs))
        return super().map(fn, jobs)


def test_trials_run_in_batches_on_an_executor(trending: pl.DataFrame, tmp_path: Path) -> None:
    executor = TwoAtATime()
    result = study_in(tmp_path, trending, 3, executor=executor)
    assert executor.batches == [2, 1]
    assert (result.n_trials, result.new_trials, result.ledger_trials) == (3, 3, 3)


@pytest.mark.parametrize(
    "storage",
    ["optuna.db", "nosuchdatabase://somewhere/optuna"],
)
def test_a_bad_storage_url_is_refused_with_the_fix(
    storage: str, trending: pl.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(UserInputError, match=r"storage .*SQLAlchemy URL such as 'sqlite:///"):
        run_study(
            trending, SETTINGS, n_trials=1, storage=storage, study_name="s",
            ledger_path=tmp_path / "trials.jsonl",
        )  # fmt: skip
    assert not (tmp_path / "trials.jsonl").exists()


def test_a_space_naming_no_setting_is_refused(trending: pl.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"'brain\.entry_bar' is no setting"):
        study_in(tmp_path, trending, 1, space={"brain.entry_bar": {"low": 1.0, "high": 2.0}})
    with pytest.raises(UserInputError, match="needs 'low' < 'high'"):
        study_in(tmp_path, trending, 1, space={"models.max_features": {"low": 9, "high": 3}})


def test_invalid_combinations_are_pruned_and_not_ledgered(
    trending: pl.DataFrame, tmp_path: Path
) -> None:
    exit_above_entry = {
        "brain.entry_cost_multiple": {"low": 0.5, "high": 1.0},
        "brain.exit_cost_multiple": {"low": 1.5, "high": 2.0},
    }
    with pytest.raises(UserInputError, match="no finished trial"):
        study_in(tmp_path, trending, 2, space=exit_above_entry)
    assert TrialLedger(tmp_path / "trials.jsonl").n_trials == 0


def test_too_few_candles_are_refused_before_any_trial(
    trending: pl.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(UserInputError, match="too few for a study"):
        study_in(tmp_path, trending.head(600), 1)
    assert not (tmp_path / "optuna.db").exists()


def test_the_per_candle_policy_returns_average_to_the_policy_value() -> None:
    rng = np.random.default_rng(5)
    expected = rng.normal(0.0, 0.01, 2_000)
    expected[::97] = np.nan
    next_return = rng.normal(0.0, 0.01, 2_000)
    next_return[-1] = np.nan
    returns = policy_returns(expected, next_return, 0.0011, 1.5, -0.5)
    assert returns.shape == (2_000,) and np.count_nonzero(returns) > 100
    assert returns.mean() == pytest.approx(policy_value(expected, next_return, 0.0011, 1.5, -0.5))


def test_params_are_applied_by_their_dotted_setting_path() -> None:
    applied = apply_params(SETTINGS, {"brain.entry_cost_multiple": 2.0, "models.max_features": 4})
    settings = Settings.model_validate(applied)
    assert (settings.brain.entry_cost_multiple, settings.models.max_features) == (2.0, 4)
    assert SETTINGS["brain"]["entry_cost_multiple"] == 1.5  # the dump given is left alone
