"""``tradebrain evaluate`` and ``tradebrain train``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer
from rich import box
from rich.table import Table

from tradebrain.cli._shared import (
    console,
    errors,
    friendly_errors,
    report_json,
    settings_of,
    split_list,
    store_of,
    track_run,
)
from tradebrain.exceptions import UserInputError

if TYPE_CHECKING:
    from tradebrain.labels import LabelKind

LABELS: dict[str, LabelKind] = {"direction": "direction", "triple-barrier": "triple_barrier"}
MIN_BIN_ROWS = 30
"""Fewest rows in a confidence bin for ``--explain`` to print its accuracy."""

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
    max_features: Annotated[
        int | None,
        typer.Option(
            "--max-features",
            help="Features kept per fold for the tabular models (default: models.max_features; "
            "0 keeps all).",
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Also print the kept features, each model's skill per fold and its "
            "calibration, and write explain.html.",
        ),
    ] = False,
) -> None:
    """Walk-forward, out-of-sample evaluation; writes report.json and predictions.parquet.

    In each fold the features are selected and the ensemble's members weighed by their skill
    on the training rows only; ``--explain`` shows both, with each model's calibration.
    """
    from tradebrain.core.atomic_write import write_parquet_atomic, write_text_atomic
    from tradebrain.data.loading import load_planted_edge
    from tradebrain.evaluation.evaluate import evaluate
    from tradebrain.evaluation.statistics import home_ledger

    app_settings = settings_of(ctx)
    cap = app_settings.models.max_features if max_features is None else max_features
    if cap < 0:
        raise UserInputError(f"--max-features must be 0 (keep all) or more; got {cap}")
    candles, source, oracle = _load(ctx, data, timeframe)
    settings = _settings(horizon, label, models, folds, window, app_settings.models.seed)
    settings = dataclasses.replace(settings, placebo_seed=placebo, max_features=cap or None)
    with console.status("evaluating...") as status:
        result = evaluate(
            candles,
            settings,
            feature_sets=split_list(sets) or None,
            oracle=oracle,
            planted=load_planted_edge(source, candles),
            source=source,
            progress=lambda text: status.update(f"evaluating: {text}"),
        )
    out.mkdir(parents=True, exist_ok=True)
    ledger = home_ledger(app_settings.home)
    for name in settings.models:
        config = {"model": name, "source": source, **result.report["settings"]}
        ledger.record(config, result.report["models"][name]["log_loss"], name=name)
    result.report["trials_in_ledger"] = ledger.n_trials
    from tradebrain.research.backtest_report import finite

    write_text_atomic(report_json(finite(result.report)), out / "report.json")
    write_parquet_atomic(result.predictions, out / "predictions.parquet")
    _print_report(result.report)
    console.print(f"[green]wrote[/] {out / 'report.json'} and {out / 'predictions.parquet'}")
    track_run(
        app_settings, "evaluate", {"source": source, **result.report["settings"]},
        {f"{name}.{metric}": value for name, scores in result.report["models"].items()
         for metric, value in scores.items()},
    )  # fmt: skip
    if explain:
        from tradebrain.evaluation.explain_html import write_explain_html

        print_explanation(result.report)
        page = write_explain_html(out / "explain.html", result.report)
        console.print(f"[green]wrote[/] {page}")


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
    (:func:`~tradebrain.learning.forecaster.train_forecaster`, settings from
    :meth:`HybridConfig.from_settings`): the horizon, the features, each model's skill and the
    calibration that turns votes into expected returns are fitted on the data given, so the
    saved folder trades as the service's own models would.
    """
    from tradebrain.features import compute_features
    from tradebrain.learning.forecaster import train_forecaster
    from tradebrain.strategies.hybrid_config import HybridConfig

    app_settings = settings_of(ctx)
    if label not in LABELS:
        raise UserInputError(f"--label {label!r} is not one of {', '.join(LABELS)}")
    if horizon is not None and horizon < 1:
        raise UserInputError(f"--horizon must be at least 1 candle, got {horizon}")
    candles, source, _ = _load(ctx, data, timeframe)
    config = HybridConfig.from_settings(
        app_settings,
        models=None if models is None else tuple(split_list(models)),
        feature_sets=None if sets is None else tuple(split_list(sets)),
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
    metrics: dict[str, Any] = {"rows": bundle.manifest["rows"]}
    if calibration is not None:
        metrics.update(horizon=calibration.horizon, beta=calibration.beta,
                       t_stat=calibration.t_stat, voters=len(bundle.voters()))  # fmt: skip
    params = {"source": source, "out": str(out), "models": list(bundle.models),
              "feature_sets": feature_sets, "data_start": bundle.manifest["data_start"],
              "data_end": bundle.manifest["data_end"]}  # fmt: skip
    track_run(app_settings, "train", params, metrics)


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
    chosen = tuple(split_list(models) or DEFAULT_MODELS)
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
    oracle = report.get("oracle", {})
    if "accuracy" in oracle:
        ensemble = oracle["models"].get("ensemble", {})
        console.print(
            f"oracle ceiling {oracle['accuracy']:.4f}; the ensemble recovers "
            f"{ensemble.get('edge_recovered', math.nan):.0%} of the oracle's edge over 50%"
        )
    if "drift" in oracle:
        drift = oracle["drift"]
        console.print(
            f"known drift's IC at this horizon {drift['drift_ic']:.3f}; the ensemble's IC keeps "
            f"{drift['ic_kept'].get('ensemble', math.nan):.0%} of it"
        )
    for warning in report["warnings"]:
        errors.print(f"[bold red]{warning}[/]")


def print_explanation(report: dict[str, Any]) -> None:
    """Print the kept features, each model's skill per fold and the models' calibration."""
    from tradebrain.evaluation.explain_html import top_features

    selection = report.get("selection", {})
    rows = top_features(selection)
    n_folds = len(report.get("ensemble_weights", {}).get("per_fold", [])) or 1
    if rows:
        table = Table(
            title=f"features kept per fold (of {selection['offered']} offered), by rank IC on "
            "the training rows",
            box=box.SIMPLE_HEAD,
        )
        for column in ("feature", "folds", "IC", "stable", "stands for"):
            table.add_column(
                column, justify="left" if column in ("feature", "stands for") else "right"
            )
        for row in rows:
            cluster = row["cluster"]
            shown = ", ".join(cluster[:3]) + (f" +{len(cluster) - 3}" if len(cluster) > 3 else "")
            table.add_row(
                row["feature"], f"{row['folds']}/{n_folds}", _f(row["ic"], 3),
                f"{row['stability']:.0%}", shown or "-",
            )  # fmt: skip
        console.print(table)
    else:
        console.print("every feature was offered to every model (no selection)")
    weights = report.get("ensemble_weights", {})
    per_fold = weights.get("per_fold", [])
    table = Table(
        title="directional accuracy per fold (± 2 s.e.); * = weighed 0 in the ensemble",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("model", no_wrap=True)
    for fold in per_fold:
        table.add_column(f"fold {fold['fold'] + 1}", justify="right", no_wrap=True)
    for name, metrics in report["models"].items():
        cells = []
        for fold, found in zip(per_fold, _by_fold(metrics, per_fold), strict=True):
            if found is None:
                cells.append("-")
                continue
            star = "*" if fold["weights"].get(name, 1.0) == 0.0 else ""
            accuracy, se = found["sign_accuracy"], found["sign_accuracy_se"]
            cells.append(f"{accuracy:.3f}±{2 * se:.3f}{star}")
        table.add_row(name.replace("baseline_", "base: "), *cells)
    console.print(table)
    if weights.get("without_skill"):
        console.print(
            f"no out-of-sample skill in any fold (never voted in the ensemble): "
            f"{', '.join(weights['without_skill'])}"
        )
    table = Table(title="calibration: accuracy of the rows at each confidence", box=box.SIMPLE_HEAD)
    table.add_column("model", no_wrap=True)
    for low in range(3, 10):
        table.add_column(f".{low}-", justify="right", no_wrap=True)
    for name, bins in report.get("calibration", {}).items():
        if name.startswith("baseline_"):
            continue
        by_bin = {min(int(b["confidence"] * 10), 9): b for b in bins}
        table.add_row(
            name,
            *(
                f"{by_bin[k]['accuracy']:.2f}"
                if k in by_bin and by_bin[k]["count"] >= MIN_BIN_ROWS
                else "-"
                for k in range(3, 10)
            ),
        )
    console.print(table)
    console.print(
        f"[dim]a calibrated model's accuracy falls inside its bin (.5- = confidence 0.5-0.6); "
        f"'-': fewer than {MIN_BIN_ROWS} rows; counts are in report.json[/]"
    )


def _by_fold(
    metrics: dict[str, Any], per_fold: list[dict[str, Any]]
) -> list[dict[str, Any] | None]:
    rows = {row["fold"]: row for row in metrics.get("per_fold", [])}
    return [rows.get(fold["fold"]) for fold in per_fold]


def _f(value: float, digits: int = 4) -> str:
    return "nan" if value is None or value != value else f"{value:.{digits}f}"
