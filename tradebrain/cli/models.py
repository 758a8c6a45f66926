"""``tradebrain evaluate`` and ``tradebrain train``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich import box
from rich.table import Table

from tradebrain.cli._shared import console, errors, friendly_errors, settings_of, store_of
from tradebrain.exceptions import UserInputError
from tradebrain.labels import LabelKind

LABELS: dict[str, LabelKind] = {"direction": "direction", "triple-barrier": "triple_barrier"}

Data = Annotated[str, typer.Option("--data", help="Candle file or stored dataset name.")]
Timeframe = Annotated[
    str | None, typer.Option("--timeframe", "-t", help="Candle timeframe (default: inferred).")
]
Horizon = Annotated[int, typer.Option("--horizon", help="Candles each label looks ahead.")]
Label = Annotated[str, typer.Option("--label", help="direction or triple-barrier.")]
Models = Annotated[
    str | None, typer.Option("--models", help="Comma-separated (default: logistic,lightgbm,...).")
]
Sets = Annotated[str | None, typer.Option("--sets", help="Feature sets (default: all that fit).")]
Window = Annotated[int, typer.Option("--window", help="Candles per sequence-model window.")]


@friendly_errors
def evaluate_command(
    ctx: typer.Context,
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the report.")],
    timeframe: Timeframe = None,
    horizon: Horizon = 1,
    label: Label = "direction",
    models: Models = None,
    folds: Annotated[int, typer.Option("--folds", help="Walk-forward test folds.")] = 5,
    sets: Sets = None,
    window: Window = 32,
    placebo: Annotated[
        int | None,
        typer.Option("--placebo", help="Shuffle the labels with this seed: skill must vanish."),
    ] = None,
) -> None:
    """Walk-forward, out-of-sample evaluation; writes report.json and predictions.parquet."""
    from tradebrain.data.atomic import write_parquet_atomic, write_text_atomic
    from tradebrain.evaluation.evaluate import evaluate
    from tradebrain.evaluation.statistics import TrialLedger

    app_settings = settings_of(ctx)
    candles, source, oracle = _load(ctx, data, timeframe)
    settings = _settings(horizon, label, models, folds, window, app_settings.models.seed)
    settings = dataclasses.replace(settings, placebo_seed=placebo)
    with console.status("evaluating...") as status:
        result = evaluate(
            candles,
            settings,
            feature_sets=_split(sets),
            oracle=oracle,
            source=source,
            progress=lambda text: status.update(f"evaluating: {text}"),
        )
    out.mkdir(parents=True, exist_ok=True)
    ledger = TrialLedger(app_settings.home / "trials.jsonl")
    for name in settings.models:
        config = {"model": name, "source": source, **result.report["settings"]}
        ledger.record(config, result.report["models"][name]["log_loss"], name=name)
    result.report["trials_in_ledger"] = ledger.n_trials
    from tradebrain.engine.report import finite

    text = json.dumps(finite(result.report), indent=2, default=str, allow_nan=False)
    write_text_atomic(text, out / "report.json")
    write_parquet_atomic(result.predictions, out / "predictions.parquet")
    _print_report(result.report)
    console.print(f"[green]wrote[/] {out / 'report.json'} and {out / 'predictions.parquet'}")


@friendly_errors
def train_command(
    ctx: typer.Context,
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    timeframe: Timeframe = None,
    horizon: Annotated[
        int | None,
        typer.Option(
            "--horizon",
            help="Candles the forecast looks ahead (default: the best of "
            "models.horizons, chosen on the data's newest half).",
        ),
    ] = None,
    label: Label = "direction",
    models: Models = None,
    sets: Sets = None,
    window: Annotated[
        int | None,
        typer.Option("--window", help="Candles per sequence-model window (default: settings)."),
    ] = None,
) -> None:
    """Train the trading forecast on all the data, for ``serve --models`` and backtests.

    The models are trained as the hybrid backtest and the service train them
    (:func:`~tradebrain.models.forecaster.train_forecaster`, settings from
    :meth:`HybridConfig.from_settings`): the horizon, the features, each model's skill and the
    calibration that turns votes into expected returns are fitted on the data given, so the
    saved folder trades as the service's own models would.
    """
    from tradebrain.engine.hybrid_config import HybridConfig
    from tradebrain.features import compute_features
    from tradebrain.models.forecaster import train_forecaster

    app_settings = settings_of(ctx)
    if label not in LABELS:
        raise UserInputError(f"--label {label!r} is not one of {', '.join(LABELS)}")
    if horizon is not None and horizon < 1:
        raise UserInputError(f"--horizon must be at least 1 candle, got {horizon}")
    candles, source, _ = _load(ctx, data, timeframe)
    config = HybridConfig.from_settings(
        app_settings,
        models=None if models is None else tuple(_split(models) or ()),
        feature_sets=None if sets is None else tuple(_split(sets) or ()),
        window=window,
        label=LABELS[label],
        label_parameters=None if LABELS[label] == "direction" else {},  # dead zone: direction's
        horizons=None if horizon is None else (horizon,),
    )  # fmt: skip
    feature_sets = list(config.feature_sets)
    with console.status("computing features and training..."):
        features = compute_features(candles, feature_sets)
        bundle = train_forecaster(
            candles, features, config.evaluation_settings(), config.forecast,
            feature_sets=feature_sets, source=source,
        )  # fmt: skip
        bundle.save(out)
    span = f"{bundle.manifest['data_start'][:16]} to {bundle.manifest['data_end'][:16]}"
    console.print(
        f"[green]trained[/] {', '.join(bundle.models)} on {bundle.manifest['rows']:,} rows "
        f"({span}); saved to {out}"
    )
    calibration = bundle.calibration
    if calibration is not None:
        voters = ", ".join(bundle.voters()) or "none"
        console.print(
            f"forecast over {calibration.horizon} candles: beta {calibration.beta:.3f} "
            f"(t {calibration.t_stat:.2f}); models with skill (they vote): {voters}"
        )
        if not bundle.voters():
            errors.print(
                "[bold red]no model showed skill out of sample: with these models the brain "
                "never opens a position (give more history, or other models or features)[/]"
            )


def _load(
    ctx: typer.Context, data: str, timeframe: str | None
) -> tuple[pl.DataFrame, str, dict[str, Any] | None]:
    from tradebrain.data.loading import load_market_data

    loaded = load_market_data(data, store_of(settings_of(ctx)), timeframe=timeframe)
    oracle = None
    sidecar = Path(data).with_name(Path(data).name.removesuffix(".parquet") + ".oracle.json")
    if Path(data).exists() and sidecar.exists():
        oracle = json.loads(sidecar.read_text(encoding="utf-8"))
        console.print(f"[dim]oracle found ({sidecar.name}): ceiling {oracle['accuracy']:.4f}[/]")
    return loaded.frame, loaded.source, oracle


def _settings(
    horizon: int, label: str, models: str | None, folds: int, window: int, seed: int
) -> Any:
    from tradebrain.evaluation.walk_forward import DEFAULT_MODELS, EvaluationSettings
    from tradebrain.labels import LabelSettings

    if label not in LABELS:
        raise UserInputError(f"--label {label!r} is not one of {', '.join(LABELS)}")
    chosen = tuple(_split(models) or DEFAULT_MODELS)
    return EvaluationSettings(
        label=LabelSettings(LABELS[label], horizon=horizon),
        models=chosen,
        folds=folds,
        window=window,
        seed=seed,
    )


def _print_report(report: dict[str, Any]) -> None:
    table = Table(title=f"out of sample, walk-forward: {report['source']}", box=box.SIMPLE_HEAD)
    table.add_column("model", no_wrap=True)
    for column in ("acc", "logloss", "AUC", "ECE", "IC", "dir acc", "beats"):
        table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    beats = report["verdict"]["beats_baselines"]
    for name, m in report["models"].items():
        verdict = "-" if name not in beats else ("[green]yes[/]" if beats[name] else "no")
        table.add_row(
            name.replace("baseline_", "base: "), _f(m["accuracy"], 3), _f(m["log_loss"], 3),
            _f(m["auc"], 3), _f(m["ece"], 3), _f(m["information_coefficient"], 3),
            _f(m["sign_accuracy"], 3), verdict,
        )  # fmt: skip
    console.print(table)
    console.print(
        "[dim]dir acc: share of candles whose next move has the sign of p_up - p_down "
        "(standard errors, per-fold tables and training times are in report.json)[/]"
    )
    console.print(report["verdict"]["summary"])
    if "oracle" in report:
        ensemble = report["oracle"]["models"].get("ensemble", {})
        console.print(
            f"oracle ceiling {report['oracle']['accuracy']:.4f}; the ensemble recovers "
            f"{ensemble.get('edge_recovered', math.nan):.0%} of the oracle's edge over 50%"
        )
    for warning in report["warnings"]:
        errors.print(f"[bold red]{warning}[/]")


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _f(value: float, digits: int = 4) -> str:
    return "nan" if value is None or value != value else f"{value:.{digits}f}"
