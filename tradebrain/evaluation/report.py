"""The evaluation report: metrics per model and per fold, baselines, and plain verdicts.

Beside the metrics it explains itself: which features each fold kept and why (``selection``),
each model's weight in the ensemble and the skill behind it (``ensemble_weights``), and the
reliability diagram of every model (``calibration``).

Two verdicts keep the report honest:

- **beats the naive baselines** — a model does when its log loss is below every baseline's and
  its directional accuracy exceeds every baseline's by more than two standard errors; the
  report says so model by model, and says plainly when no model does;
- **leakage suspected** — when the data comes with an oracle (the synthetic market's planted
  signal), no honest model can beat the oracle's directional accuracy by more than three
  standard errors; one that does has read the future, and the report says so loudly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tradebrain.evaluation.metrics import (
    classification_report,
    rank_ic,
    reliability_table,
)
from tradebrain.evaluation.walk_forward import (
    BASELINES,
    Dataset,
    EvaluationSettings,
    FoldPredictions,
    model_names,
)

SIGNIFICANCE_SE = 2.0
LEAKAGE_SE = 3.0


def sign_accuracy(proba: np.ndarray, next_return: np.ndarray) -> dict[str, float]:
    """Share of rows where ``sign(p_up - p_down)`` matches the sign of the next return.

    Rows with a zero or missing return are skipped; a tie (p_up == p_down) counts one half.
    This is the number comparable with the synthetic market's oracle accuracy.
    """
    scored = np.isfinite(next_return) & (next_return != 0)
    n = int(scored.sum())
    if n == 0:
        return {"sign_accuracy": math.nan, "sign_accuracy_se": math.nan, "n_sign": 0.0}
    call = np.sign(proba[scored, 2] - proba[scored, 0])
    truth = np.sign(next_return[scored])
    hits = np.where(call == 0, 0.5, (call == truth).astype(np.float64))
    rate = float(hits.mean())
    return {
        "sign_accuracy": rate,
        "sign_accuracy_se": math.sqrt(max(rate * (1 - rate), 1e-12) / n),
        "n_sign": float(n),
    }


def build_report(
    data: Dataset,
    folds: list[FoldPredictions],
    settings: EvaluationSettings,
    *,
    source: str,
    oracle: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the JSON-ready report of a walk-forward evaluation."""
    models: dict[str, Any] = {}
    for name in model_names(folds):
        models[name] = _model_section(name, data, folds)
    verdict = _verdict(models, settings)
    report: dict[str, Any] = {
        "source": source,
        "settings": {
            "label": settings.label.to_dict(),
            "models": list(settings.models),
            "folds": settings.folds,
            "mode": settings.mode,
            "window": settings.window,
            "calibrate": settings.calibrate,
            "stacking": settings.stacking,
            "validation_fraction": settings.validation_fraction,
            "placebo_seed": settings.placebo_seed,
        },
        "data": {
            "rows_evaluated": int(sum(f.fold.test.size for f in folds)),
            "rows_with_labels": int(data.y.size),
            "first": str(data.timestamps[0]),
            "last": str(data.timestamps[-1]),
            "features": len(data.feature_names),
            "class_shares": [float(s) for s in np.bincount(data.y, minlength=3) / data.y.size],
        },
        "models": models,
        "verdict": verdict,
        "warnings": [],
    }
    report["settings"].update(
        max_features=settings.max_features,
        cluster_corr=settings.cluster_corr,
        skill_weights=settings.skill_weights,
    )
    report["selection"] = selection_section(folds, len(data.feature_names))
    report["ensemble_weights"] = weights_section(folds, settings.models)
    report["calibration"] = {
        name: reliability_table(*_stacked(name, data, folds)) for name in models
    }
    if oracle is not None:
        report["oracle"] = _oracle_section(models, oracle)
        report["warnings"].extend(report["oracle"]["warnings"])
    if data.planted is not None:
        report.setdefault("oracle", {"models": {}, "warnings": []})
        report["oracle"]["drift"] = _drift_section(data, folds, models)
    return report


def selection_section(folds: list[FoldPredictions], offered: int) -> dict[str, Any]:
    """Return the features each fold kept, and one row per feature over all folds.

    A feature's row: in how many folds it was kept, its mean IC and stability there, and the
    correlated features its cluster stood for. Rows are sorted by folds kept, then by |IC|.
    """
    chosen = [(f.fold.index, f.selection) for f in folds if f.selection is not None]
    if not chosen:
        return {"offered": offered, "all_features_used": True, "features": [], "per_fold": []}
    rows: dict[str, dict[str, Any]] = {}
    for _, selection in chosen:
        for name in selection.names:
            row = rows.setdefault(name, {"feature": name, "folds": 0, "ic": [], "stability": [],
                                         "cluster": set()})  # fmt: skip
            row["folds"] += 1
            row["ic"].append(selection.importance.get(name, math.nan))
            row["stability"].append(selection.stability.get(name, math.nan))
            row["cluster"].update(selection.clusters.get(name, []))
    features = [
        {
            "feature": row["feature"],
            "folds": row["folds"],
            "ic": float(np.mean(row["ic"])),
            "stability": float(np.mean(row["stability"])),
            "cluster": sorted(row["cluster"] - {row["feature"]}),
        }
        for row in rows.values()
    ]
    features.sort(key=lambda r: (-r["folds"], -abs(r["ic"]), r["feature"]))
    return {
        "offered": offered,
        "all_features_used": False,
        "features": features,
        "per_fold": [{"fold": index, **selection.to_dict()} for index, selection in chosen],
    }


def weights_section(folds: list[FoldPredictions], models: tuple[str, ...]) -> dict[str, Any]:
    """Return each fold's ensemble weights and skill, and the models that never had skill."""
    per_fold = [
        {
            "fold": f.fold.index,
            "weights": dict(f.weights),
            "skill": dict(f.skill),
            "stacking": f.stacking_choice,
        }
        for f in folds
    ]
    never = [m for m in models if folds and all(f.weights.get(m, 1.0) == 0.0 for f in folds)]
    return {
        "rule": "weight 1 when the model's out-of-sample slope of realized return on its "
        "forecast score is positive with t >= 2 (overlap-corrected) before the fold; else 0",
        "per_fold": per_fold,
        "without_skill": never,
    }


def _stacked(
    name: str, data: Dataset, folds: list[FoldPredictions]
) -> tuple[np.ndarray, np.ndarray]:
    present = [f for f in folds if name in f.proba]
    rows = np.concatenate([f.fold.test for f in present])
    return np.vstack([f.proba[name] for f in present]), data.y[rows]


def _drift_section(
    data: Dataset, folds: list[FoldPredictions], models: dict[str, Any]
) -> dict[str, Any]:
    """Compare each model's IC with the IC of the known drift on the same evaluated rows."""
    assert data.planted is not None
    planted = data.planted

    def drift_ic_on(present: list[FoldPredictions]) -> float:
        rows = np.concatenate([f.fold.test for f in present])
        return rank_ic(planted[rows], data.forward_return[rows])

    drift_ic = drift_ic_on(folds)
    kept = {}
    for name, metrics in models.items():
        own = drift_ic_on([f for f in folds if name in f.proba])
        ic = metrics["information_coefficient"]
        kept[name] = ic / own if own > 0 and math.isfinite(ic) else math.nan
    return {
        "drift_ic": drift_ic,
        "ic_kept": kept,
        "note": "ic_kept = the model's information coefficient / the known drift's, at the "
        "label horizon, on the evaluated rows",
    }


def _model_section(name: str, data: Dataset, folds: list[FoldPredictions]) -> dict[str, Any]:
    present = [f for f in folds if name in f.proba]
    rows = np.concatenate([f.fold.test for f in present])
    proba = np.vstack([f.proba[name] for f in present])
    overall = classification_report(proba, data.y[rows], data.forward_return[rows])
    overall.update(sign_accuracy(proba, data.next_return[rows]))
    per_fold = []
    for result in present:
        test = result.fold.test
        metrics = classification_report(result.proba[name], data.y[test], data.forward_return[test])
        metrics.update(sign_accuracy(result.proba[name], data.next_return[test]))
        per_fold.append(
            {
                "fold": result.fold.index,
                "first": str(data.timestamps[int(test[0])]),
                "last": str(data.timestamps[int(test[-1])]),
                "train_rows": int(result.fold.train.size),
                "train_seconds": result.seconds.get(name, 0.0),
                **metrics,
            }
        )
    return {
        **overall,
        "folds_predicted": len(present),
        "training_seconds": float(sum(r.seconds.get(name, 0.0) for r in present)),
        "per_fold": per_fold,
    }


def _verdict(models: dict[str, Any], settings: EvaluationSettings) -> dict[str, Any]:
    baselines = {b: models[b] for b in BASELINES if b in models}
    best_loss = min(b["log_loss"] for b in baselines.values())
    best_sign = max(b["sign_accuracy"] for b in baselines.values())
    beats: dict[str, bool] = {}
    for name, metrics in models.items():
        if name in BASELINES:
            continue
        margin = SIGNIFICANCE_SE * metrics["sign_accuracy_se"]
        beats[name] = bool(
            metrics["log_loss"] < best_loss and metrics["sign_accuracy"] > best_sign + margin
        )
    winners = [name for name, won in beats.items() if won]
    if winners:
        summary = (
            f"{', '.join(winners)} beat{'s' if len(winners) == 1 else ''} the naive baselines "
            f"out of sample (lower log loss than every baseline, and directional accuracy above "
            f"the best baseline's {best_sign:.4f} by more than {SIGNIFICANCE_SE:.0f} standard "
            "errors). Forecast skill is not profit: a small edge on short candles can vanish "
            "in the spread; only a backtest after fees, slippage and funding says whether it "
            "pays."
        )
    else:
        summary = (
            "No model beats the naive baselines out of sample: none has both a lower log loss "
            f"than the best baseline ({best_loss:.4f}) and a directional accuracy above "
            f"{best_sign:.4f} by more than {SIGNIFICANCE_SE:.0f} standard errors. "
            "Do not trade on these models."
        )
    return {"beats_baselines": beats, "summary": summary}


def _oracle_section(models: dict[str, Any], oracle: dict[str, Any]) -> dict[str, Any]:
    ceiling = float(oracle["accuracy"])
    ceiling_se = float(oracle.get("accuracy_stderr") or 0.0)
    section: dict[str, Any] = {"accuracy": ceiling, "accuracy_se": ceiling_se, "models": {}}
    warnings = []
    for name, metrics in models.items():
        accuracy, se = metrics["sign_accuracy"], metrics["sign_accuracy_se"]
        edge = ceiling - 0.5
        recovered = (accuracy - 0.5) / edge if edge > 1e-12 else math.nan
        limit = ceiling + LEAKAGE_SE * math.sqrt(se**2 + ceiling_se**2)
        leak = bool(accuracy > limit)
        section["models"][name] = {
            "sign_accuracy": accuracy,
            "edge_recovered": recovered,
            "leakage_suspected": leak,
        }
        if leak:
            warnings.append(
                f"LEAKAGE SUSPECTED: {name} has directional accuracy {accuracy:.4f}, above the "
                f"oracle's ceiling {ceiling:.4f} by more than {LEAKAGE_SE:.0f} standard errors. "
                "No honest model can beat the oracle; a feature or label reads the future."
            )
    section["warnings"] = warnings
    return section
