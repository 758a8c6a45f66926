"""The evaluation's explanation as one offline HTML page: features, skill and calibration.

``tradebrain evaluate --explain`` writes it beside ``report.json``. Everything on the page comes
from the report of :func:`tradebrain.evaluation.report.build_report`, out of sample:

* the features the folds kept most often, by their information coefficient (IC) on the training
  rows, with the correlated features each one stood for (hover a bar);
* each model's directional accuracy per fold with error bars of two standard errors, and the
  ensemble weight it had in that fold (a model without skill weighs zero);
* the reliability diagram of every model (confidence against accuracy, dot size = rows).

plotly.js is embedded once; nothing is fetched from the network.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from tradebrain.core.atomic_write import write_text_atomic
from tradebrain.evaluation.html_report import chart_layout, html_table, offline_page

TOP_FEATURES = 20


def write_explain_html(path: Path | str, report: Mapping[str, Any]) -> Path:
    """Write the explanation page of an evaluation ``report``; return its path."""
    title = f"Why the models decide as they do: {report.get('source', '?')}"
    figures = [
        _features_figure(report.get("selection", {})),
        _skill_figure(report),
        _calibration_figure(report.get("calibration", {})),
    ]
    summary = html.escape(report.get("verdict", {}).get("summary", ""))
    body = f"<p class='verdict'>{summary}</p>{_weights_table(report)}"
    page = offline_page(title, body, figures, div_prefix="explain")
    return write_text_atomic(page, Path(path))


def top_features(selection: Mapping[str, Any], limit: int = TOP_FEATURES) -> list[dict[str, Any]]:
    """Return the report's most often kept features (at most ``limit``), strongest first."""
    rows: list[dict[str, Any]] = list(selection.get("features", []))
    return rows[:limit]


def _features_figure(selection: Mapping[str, Any]) -> go.Figure:
    rows = top_features(selection)[::-1]
    folds = max((r["folds"] for r in rows), default=0)
    fig = go.Figure(
        go.Bar(
            x=[r["ic"] for r in rows],
            y=[f"{r['feature']} ({r['folds']}/{folds})" for r in rows],
            orientation="h",
            hovertext=[", ".join(r["cluster"]) or "no correlated feature" for r in rows],
            name="IC on training rows",
        )
    )
    note = (
        "every feature was used (no selection)"
        if selection.get("all_features_used", not rows)
        else f"kept of {selection.get('offered', '?')} offered; (k/n) = folds that kept it"
    )
    height = 200 + 24 * len(rows)
    return chart_layout(fig, f"Features kept, by rank IC: {note}", "", height=height)


def _skill_figure(report: Mapping[str, Any]) -> go.Figure:
    fig = go.Figure()
    section = report.get("ensemble_weights", {})
    weights = {f["fold"]: f["weights"] for f in section.get("per_fold", [])}
    for name, metrics in report.get("models", {}).items():
        per_fold = metrics.get("per_fold", [])
        fig.add_trace(
            go.Scatter(
                x=[f"fold {f['fold'] + 1}" for f in per_fold],
                y=[f["sign_accuracy"] for f in per_fold],
                error_y={"type": "data", "array": [2 * f["sign_accuracy_se"] for f in per_fold]},
                mode="markers+lines",
                name=name,
                hovertext=[_weight_text(weights.get(f["fold"], {}), name) for f in per_fold],
            )
        )
    if "oracle" in report and "accuracy" in report["oracle"]:
        fig.add_hline(y=report["oracle"]["accuracy"], line_dash="dot", annotation_text="oracle")
    fig.add_hline(y=0.5, line_dash="dash", annotation_text="coin flip")
    return chart_layout(fig, "Directional accuracy per fold (± 2 standard errors)", "accuracy")


def _weight_text(weights: Mapping[str, float], name: str) -> str:
    if name not in weights:
        return "not an ensemble member"
    return f"ensemble weight {weights[name]:g}"


def _calibration_figure(calibration: Mapping[str, Sequence[Mapping[str, float]]]) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line={"dash": "dash"})
    )
    for name, rows in calibration.items():
        if name.startswith("baseline_"):
            continue
        counts = [r["count"] for r in rows]
        biggest = max(counts, default=1.0)
        fig.add_trace(
            go.Scatter(
                x=[r["confidence"] for r in rows],
                y=[r["accuracy"] for r in rows],
                mode="markers+lines",
                name=name,
                marker={"size": [6 + 14 * (c / biggest) ** 0.5 for c in counts]},
                hovertext=[f"{int(c):,} rows" for c in counts],
            )
        )
    fig.update_xaxes(title="confidence (largest probability)")
    return chart_layout(fig, "Calibration: confidence against accuracy", "accuracy", height=480)


def _weights_table(report: Mapping[str, Any]) -> str:
    section = report.get("ensemble_weights", {})
    per_fold = section.get("per_fold", [])
    models = list(report.get("settings", {}).get("models", []))
    if not per_fold or not models:
        return ""
    body = []
    for fold in per_fold:
        skill = fold.get("skill", {})
        cells = [
            f"{fold['weights'].get(m, 0):g} (t {skill.get(m, {}).get('t_stat', float('nan')):.1f})"
            for m in models
        ]
        body.append([f"fold {fold['fold'] + 1}", *cells])
    never = section.get("without_skill", [])
    caption = "Ensemble weights (skill t statistic before each fold)"
    if never:
        caption += f"; no skill in any fold: {', '.join(never)}"
    return html_table(("fold", *models), body, html.escape(caption)) + (
        f"<p>{html.escape(section.get('rule', ''))}</p>"
    )
