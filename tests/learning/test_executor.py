"""Executors run fan-out jobs in order and name failures; every executor trains the same models."""

from __future__ import annotations

import importlib.util
import math
import operator
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tradebrain.config import Settings
from tradebrain.data.synthetic import SyntheticConfig, generate_market
from tradebrain.exceptions import UserInputError
from tradebrain.learning.executor import (
    EXECUTOR_KINDS,
    Executor,
    JobFailedError,
    make_executor,
)
from tradebrain.learning.fan_out import (
    TrainJob,
    TrainResult,
    fan_out,
    read_candles,
    train_job,
    training_settings,
)

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install 'ray>=2.40')")
SYMBOLS = ("AAA/USDT", "BBB/USDT")
SETTINGS = Settings(models={"enabled": ["logistic", "lightgbm"]}).model_dump(mode="json")


@pytest.fixture(scope="module")
def local_executor() -> Iterator[Executor]:
    with make_executor("local", workers=2) as executor:
        yield executor


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[Executor]:
    import ray

    executor = make_executor("ray", workers=2)
    try:
        yield executor
    finally:
        executor.close()
        ray.shutdown()


@pytest.fixture(scope="module")
def candle_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("candles")
    files = {}
    for seed, symbol in enumerate(SYMBOLS, start=11):
        config = SyntheticConfig(bars=1_500, seed=seed, signal=0.3, edge="trend", half_life=24)
        path = folder / f"{symbol.replace('/', '_')}.parquet"
        generate_market(config).candles.write_parquet(path)
        files[symbol] = path
    return files


def jobs_into(out: Path, candle_files: dict[str, Path]) -> list[TrainJob]:
    return [
        TrainJob(symbol, path, SETTINGS, out / symbol.replace("/", "_"))
        for symbol, path in candle_files.items()
    ]


@pytest.fixture(scope="module")
def serial_results(
    candle_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> list[TrainResult]:
    out = tmp_path_factory.mktemp("serial")
    return fan_out(jobs_into(out, candle_files), make_executor("serial"))


def executor_of(kind: str, request: pytest.FixtureRequest) -> Executor:
    if kind == "serial":
        return make_executor("serial")
    return request.getfixturevalue(f"{kind}_executor")  # type: ignore[no-any-return]


KINDS = ["serial", "local", pytest.param("ray", marks=needs_ray)]


@pytest.mark.parametrize("kind", KINDS)
def test_map_gives_the_results_in_job_order(kind: str, request: pytest.FixtureRequest) -> None:
    executor = executor_of(kind, request)
    jobs = [5, 3, 8, 1, 9, 2, 7]
    assert executor.map(operator.neg, jobs) == [-5, -3, -8, -1, -9, -2, -7]
    assert executor.map(operator.neg, []) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_job_is_named_with_its_place_and_what_it_raised(
    kind: str, request: pytest.FixtureRequest
) -> None:
    executor = executor_of(kind, request)
    with pytest.raises(JobFailedError) as failure:
        executor.map(math.sqrt, [4.0, -1.0, 9.0])
    assert failure.value.index == 1
    assert "job 2 of 3 failed: -1.0: ValueError: math domain error" in str(failure.value)
    assert isinstance(failure.value.error, ValueError)
    assert executor.map(math.sqrt, [4.0, 9.0]) == [2.0, 3.0]  # the executor still works


@pytest.mark.parametrize("kind", ["serial", "local"])
def test_a_job_failing_on_its_input_stays_a_user_input_error(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    executor = executor_of(kind, request)
    missing = tmp_path / "missing.parquet"
    with pytest.raises(
        UserInputError, match=r"job 1 of 1 failed: .*missing.parquet does not exist"
    ):
        executor.map(read_candles, [missing])


@pytest.mark.parametrize("kind", ["local", pytest.param("ray", marks=needs_ray)])
def test_workers_run_their_math_on_one_thread(kind: str, request: pytest.FixtureRequest) -> None:
    names = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]
    assert executor_of(kind, request).map(os.getenv, names) == ["1", "1", "1"]


def test_an_unknown_executor_kind_is_refused_naming_the_choices() -> None:
    with pytest.raises(UserInputError, match="unknown executor 'dask'; choose one of: local, ray"):
        make_executor("dask")
    assert EXECUTOR_KINDS == ("local", "ray", "serial")
    with pytest.raises(UserInputError, match="workers must be at least 1"):
        make_executor("local", workers=0)


def test_the_executors_close_when_used_as_context_managers() -> None:
    with make_executor("local", workers=1) as executor:
        assert executor.map(abs, [-2]) == [2]
    assert executor._pool is None  # type: ignore[attr-defined]


def test_training_settings_are_those_the_service_trains_with() -> None:
    from tradebrain.strategies.hybrid_config import HybridConfig

    settings = Settings(models={"enabled": ["logistic", "lightgbm"], "seed": 5})
    config = HybridConfig.from_settings(settings)
    evaluation, forecast, feature_sets = training_settings(settings)
    seeded = {"logistic": {"seed": 5}, "lightgbm": {"seed": 5}}  # the one addition
    assert evaluation == replace(config.evaluation_settings(), model_params=seeded)
    assert forecast == config.forecast
    assert feature_sets == list(config.feature_sets)
    single, _, _ = training_settings(settings, seed=9, models=("lightgbm",), threads=1)
    assert single.seed == 9 and single.models == ("lightgbm",)
    assert single.model_params == {"lightgbm": {"seed": 9, "n_jobs": 1}}


def test_serial_training_saves_each_bundle_with_what_it_learned_from(
    serial_results: list[TrainResult], candle_files: dict[str, Path]
) -> None:
    assert [r.symbol for r in serial_results] == list(SYMBOLS)
    for result in serial_results:
        candles = read_candles(candle_files[result.symbol])
        assert result.rows == candles.height == 1_500
        assert result.data_start == "2024-01-01T00:00:00+00:00"
        assert result.data_end == candles["timestamp"][-1].isoformat()
        assert (result.bundle_dir / "manifest.json").exists()
        assert len(result.prediction_hash) == len(result.data_hash) == 64
        assert sorted(p.name for p in result.bundle_dir.parent.iterdir()) == [
            s.replace("/", "_") for s in SYMBOLS
        ]  # no staging folder left behind
    assert serial_results[0].data_hash != serial_results[1].data_hash
    assert serial_results[0].prediction_hash != serial_results[1].prediction_hash


def test_local_and_serial_executors_train_identical_bundles(
    serial_results: list[TrainResult],
    candle_files: dict[str, Path],
    local_executor: Executor,
    tmp_path: Path,
) -> None:
    local = fan_out(jobs_into(tmp_path, candle_files), local_executor)
    assert fingerprints(local) == fingerprints(serial_results)


@needs_ray
def test_the_ray_executor_trains_the_same_bundles_as_the_local_one(
    serial_results: list[TrainResult],
    candle_files: dict[str, Path],
    local_executor: Executor,
    ray_executor: Executor,
    tmp_path: Path,
) -> None:
    local = fan_out(jobs_into(tmp_path / "local", candle_files), local_executor)
    on_ray = fan_out(jobs_into(tmp_path / "ray", candle_files), ray_executor)
    assert fingerprints(on_ray) == fingerprints(local) == fingerprints(serial_results)


def test_retraining_replaces_the_old_bundle_whole(
    candle_files: dict[str, Path], serial_results: list[TrainResult], tmp_path: Path
) -> None:
    job = jobs_into(tmp_path, candle_files)[0]
    job.out_dir.mkdir()
    (job.out_dir / "stale.txt").write_text("from an older bundle")
    result = train_job(job)
    assert not (job.out_dir / "stale.txt").exists()
    assert result.prediction_hash == serial_results[0].prediction_hash
    assert [p.name for p in tmp_path.iterdir()] == [job.out_dir.name]


def test_a_job_seed_overrides_the_settings_seed(
    candle_files: dict[str, Path], serial_results: list[TrainResult], tmp_path: Path
) -> None:
    symbol, path = SYMBOLS[0], candle_files[SYMBOLS[0]]
    same = train_job(TrainJob(symbol, path, SETTINGS, tmp_path / "same", seed=42))
    other = train_job(TrainJob(symbol, path, SETTINGS, tmp_path / "other", seed=7))
    assert same.prediction_hash == serial_results[0].prediction_hash  # 42: the settings' seed
    assert other.prediction_hash != same.prediction_hash


def test_two_jobs_writing_one_folder_are_refused(
    candle_files: dict[str, Path], tmp_path: Path
) -> None:
    jobs = [TrainJob(s, p, SETTINGS, tmp_path / "bundle") for s, p in candle_files.items()]
    with pytest.raises(UserInputError, match="give each job its own out_dir"):
        fan_out(jobs, make_executor("serial"))


def test_a_job_names_its_symbol_but_not_its_settings() -> None:
    job = TrainJob("BTC/USDT", Path("btc.parquet"), SETTINGS, Path("out"))
    assert "BTC/USDT" in repr(job) and "fusion_weights" not in repr(job)


def fingerprints(results: list[TrainResult]) -> list[tuple[Any, ...]]:
    return [
        (r.symbol, r.rows, r.data_start, r.data_end, r.data_hash, r.prediction_hash)
        for r in results
    ]
