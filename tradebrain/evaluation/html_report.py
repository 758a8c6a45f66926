"""The backtest report as one self-contained HTML page with interactive charts.

The page works offline: plotly.js is embedded inline once, and nothing is fetched from the
network. It shows an honest header (period, candles, costs, and whether the strategy beat
buy-and-hold after costs, with its PSR and DSR), the metrics table, cost sensitivity, and
charts: equity vs buy-and-hold, drawdown, trades on price (with regime shading when decisions
carry regimes) and each model's vote attribution (when decisions carry votes). Long series
are thinned to at most ``MAX_POINTS`` points per line, keeping each bucket's low and high.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl

from tradebrain.core.atomic_write import write_text_atomic
from tradebrain.evaluation.backtest_metrics import METRIC_ROWS, format_metric

MAX_POINTS = 5_000
MAX_BANDS = 400
REGIME_COLORS = {
    "trend_up": "#2ca02c",
    "trend_down": "#d62728",
    "range": "#7f7f7f",
    "high_vol": "#ff7f0e",
    "chop": "#9467bd",
    "panic": "#8c564b",
}
PAGE_STYLE = """body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}
td,th{padding:4px 12px;border-bottom:1px solid #ddd}td{text-align:right}
td:first-child{text-align:left}
.verdict{font-size:1.1em;background:#f6f6f6;padding:12px;border-left:4px solid #888}"""


def write_html_report(
    path: Path | str,
    report: Mapping[str, Any],
    candles: pl.DataFrame,
    equity: np.ndarray,
    *,
    benchmark_equity: np.ndarray | None = None,
    decisions: pl.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    title: str | None = None,
) -> Path:
    """Write the backtest report as one offline HTML file; return its path.

    Parameters
    ----------
    path
        The HTML file to write (atomically).
    report
        The JSON-ready report of
        :func:`tradebrain.research.backtest_report.backtest_report`: ``settings``,
        ``data``, ``metrics``, ``benchmark``, ``cost_sensitivity`` and ``trades``.
    candles
        The candles replayed (``timestamp``, ``close``), one row per ``equity`` value.
    equity
        (n,) the strategy's equity at each candle's close.
    benchmark_equity
        (n,) buy-and-hold equity; None draws buy-and-hold from the price, before costs.
    decisions
        Optional, one row per decision (a polars frame or a list of dicts): ``timestamp``
        (datetime or int epoch microseconds); ``action`` (``buy``/``long`` and
        ``sell``/``short`` are directional; anything else, e.g. ``hold`` or ``exit``, is not);
        optionally ``regime`` (str, shaded on the price chart; ``unknown`` is not) and
        ``votes`` (dict model -> vote, or that dict as JSON text as
        :func:`tradebrain.strategies.hybrid.decisions_frame` writes it; a vote is
        ``(p_down, p_flat, p_up)``, a dict with ``p_up`` and ``p_down``, or a signed number in
        [-1, 1]; charted as mean ``p_up - p_down`` per model per month). Other columns
        (``confidence``, ``filters``, ``reasons``) are ignored.
    title
        Page title; defaults to the strategy and symbol.
    """
    settings = report.get("settings", {})
    title = title or f"Backtest: {settings.get('strategy', '?')} on {settings.get('symbol', '?')}"
    times = _naive(candles["timestamp"])
    close = candles["close"].to_numpy().astype(np.float64)
    equity = np.asarray(equity, dtype=np.float64)
    cash = float(settings.get("cash") or equity[0])
    price_benchmark = benchmark_equity is None
    bench = cash * close / close[0] if price_benchmark else np.asarray(benchmark_equity, float)
    bench_name = "buy & hold (price, before costs)" if price_benchmark else "buy & hold"
    rows = _decision_rows(decisions)
    figures = [
        _equity_figure(times, equity, bench, bench_name),
        _drawdown_figure(times, equity, bench, bench_name, cash),
        _price_figure(times, close, report.get("trades", []), rows),
    ]
    votes = _vote_figure(rows)
    if votes is not None:
        figures.append(votes)
    body = _header(report) + _tables(report, rows)
    page = offline_page(title, body, figures, div_prefix="chart")
    return write_text_atomic(page, Path(path))


def offline_page(title: str, body: str, figures: Sequence[go.Figure], div_prefix: str) -> str:
    """Return one self-contained HTML page: ``title``, ``body`` (HTML), then the charts.

    plotly.js is inlined once, with the first chart; nothing is fetched from the network.
    """
    charts = "".join(
        fig.to_html(
            full_html=False,
            include_plotlyjs=i == 0,
            div_id=f"{div_prefix}-{i}",
            config={"displaylogo": False},
        )
        for i, fig in enumerate(figures)
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{PAGE_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"{body}{charts}</body></html>"
    )


def _naive(series: pl.Series) -> np.ndarray:
    """Return datetimes (or int epoch microseconds) as naive UTC ``datetime64[us]``."""
    if series.dtype.is_integer():
        series = pl.from_epoch(series, "us")
    if getattr(series.dtype, "time_zone", None):
        series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return series.cast(pl.Datetime("us")).to_numpy()


def _thin(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Return sorted indices of at most ``max_points`` points keeping each bucket's low/high."""
    n = values.size
    if n <= max_points:
        return np.arange(n)
    edges = np.linspace(0, n, max_points // 2 + 1).astype(int)
    keep = [n - 1]
    for start, stop in itertools.pairwise(edges):
        chunk = values[start:stop]
        keep += [start + int(np.nanargmin(chunk)), start + int(np.nanargmax(chunk))]
    return np.unique(keep)


def _line(x: np.ndarray, y: np.ndarray, name: str, **style: Any) -> go.Scatter:
    idx = _thin(y)
    return go.Scatter(x=x[idx], y=y[idx], name=name, mode="lines", **style)


def chart_layout(fig: go.Figure, title: str, y_title: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        yaxis_title=y_title,
        hovermode="x unified",
        template="plotly_white",
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def _equity_figure(x: np.ndarray, equity: np.ndarray, bench: np.ndarray, name: str) -> go.Figure:
    fig = go.Figure(
        [
            _line(x, equity, "strategy", line={"color": "#1f77b4"}),
            _line(x, bench, name, line={"color": "#999", "dash": "dot"}),
        ]
    )
    buttons = [
        {"label": kind, "method": "relayout", "args": [{"yaxis.type": kind}]}
        for kind in ("linear", "log")
    ]
    fig.update_layout(
        updatemenus=[
            {
                "buttons": buttons,
                "type": "buttons",
                "direction": "right",
                "x": 1.0,
                "y": 1.15,
                "xanchor": "right",
            }
        ]
    )
    return chart_layout(fig, "Equity vs buy-and-hold", "equity (quote)")


def _drawdown_figure(
    x: np.ndarray, equity: np.ndarray, bench: np.ndarray, name: str, cash: float
) -> go.Figure:
    def drawdown(curve: np.ndarray) -> np.ndarray:
        return curve / np.maximum.accumulate(np.maximum(curve, cash)) - 1.0

    fig = go.Figure(
        [
            _line(x, drawdown(equity), "strategy", fill="tozeroy", line={"color": "#d62728"}),
            _line(x, drawdown(bench), name, line={"color": "#999", "dash": "dot"}),
        ]
    )
    fig.update_yaxes(tickformat=".0%")
    return chart_layout(fig, "Drawdown", "from running peak", height=300)


def _price_figure(
    x: np.ndarray,
    close: np.ndarray,
    trades: Sequence[Mapping[str, Any]],
    rows: list[dict[str, Any]],
) -> go.Figure:
    fig = go.Figure([_line(x, close, "close", line={"color": "#444", "width": 1})])
    for side, symbol, color in (
        ("long", "triangle-up", "#2ca02c"),
        ("short", "triangle-down", "#d62728"),
    ):
        chosen = [t for t in trades if t.get("side") == side]
        if not chosen:
            continue
        text = [f"{side} entry {t['entry_price']:,.2f}" for t in chosen]
        fig.add_scatter(
            x=[_iso(t["entry_time"]) for t in chosen],
            name=f"{side} entry",
            y=[t["entry_price"] for t in chosen],
            mode="markers",
            hovertext=text,
            marker={"symbol": symbol, "color": color, "size": 9},
        )
        text = [f"{side} exit ({t.get('exit_reason')}) pnl {t['pnl']:+,.2f}" for t in chosen]
        fig.add_scatter(
            x=[_iso(t["exit_time"]) for t in chosen],
            name=f"{side} exit",
            y=[t["exit_price"] for t in chosen],
            mode="markers",
            hovertext=text,
            marker={"symbol": "x", "color": color, "size": 7},
        )
    bands = _regime_bands(rows)
    for regime in dict.fromkeys(b[2] for b in bands):
        fig.add_scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=f"regime: {regime}",
            marker={"symbol": "square", "size": 12, "color": _color(regime)},
        )
    fig.update_layout(
        shapes=[
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": _color(regime),
                "opacity": 0.15,
                "line": {"width": 0},
                "layer": "below",
            }
            for x0, x1, regime in bands
        ]
    )
    title = "Price, trades" + (" and regimes" if bands else "")
    return chart_layout(fig, title, "price", height=520).update_layout(hovermode="closest")


def _iso(text: str) -> str:
    """Return an ISO timestamp as naive UTC text (plotly.js ignores offsets)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat()


def _color(regime: str) -> str:
    palette = ("#17becf", "#bcbd22", "#e377c2", "#1f77b4")
    return REGIME_COLORS.get(regime, palette[sum(map(ord, regime)) % len(palette)])


def _decision_rows(
    decisions: pl.DataFrame | Sequence[Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Return the decisions as dicts with a naive ``datetime64`` ``time``, sorted by time."""
    if decisions is None:
        return []
    rows = (
        decisions.to_dicts() if isinstance(decisions, pl.DataFrame) else list(map(dict, decisions))
    )
    if not rows:
        return []
    times = _naive(pl.Series([row["timestamp"] for row in rows]))
    for row, moment in zip(rows, times, strict=True):
        row["time"] = moment
    return sorted(rows, key=lambda row: row["time"])


def _regime_bands(rows: list[dict[str, Any]]) -> list[tuple[Any, Any, str]]:
    """Return (start, end, regime) runs, sampled so there are at most ``MAX_BANDS`` of them."""
    rows = [row for row in rows if str(row.get("regime")) not in ("None", "unknown", "")]
    if not rows:
        return []
    step = max(1, -(-len(rows) // MAX_BANDS))
    sampled = [*rows[::step], rows[-1]]
    bands: list[list[Any]] = []
    for row in sampled:
        if bands and bands[-1][2] == str(row["regime"]):
            bands[-1][1] = row["time"]
        else:
            if bands:
                bands[-1][1] = row["time"]
            bands.append([row["time"], row["time"], str(row["regime"])])
    return [(str(a), str(b), regime) for a, b, regime in bands if a != b]


def _vote(value: Any) -> float | None:
    """Return a model's signed vote ``p_up - p_down`` (None when missing or NaN)."""
    if isinstance(value, Mapping):
        value = (value.get("p_down"), None, value.get("p_up"))
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        if value[0] is None or value[2] is None:
            return None
        value = float(value[2]) - float(value[0])
    if value is None or not np.isfinite(float(value)):
        return None
    return float(value)


def _direction(action: Any) -> int:
    text = str(action).lower()
    return 1 if text in ("long", "buy") else -1 if text in ("short", "sell") else 0


def _votes_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Return one row per (decision, model): ``month``, ``model``, ``vote``, ``agrees``."""
    records = []
    for row in rows:
        direction = _direction(row.get("action"))
        votes = row.get("votes") or {}
        for model, value in (json.loads(votes) if isinstance(votes, str) else votes).items():
            vote = _vote(value)
            if vote is not None:
                agrees = None if direction == 0 else bool(np.sign(vote) == direction)
                month = str(row["time"].astype("datetime64[M]"))
                records.append(
                    {"month": month, "model": str(model), "vote": vote, "agrees": agrees}
                )
    schema = {"month": pl.String, "model": pl.String, "vote": pl.Float64, "agrees": pl.Boolean}
    return pl.DataFrame(records, schema=schema)


def _vote_figure(rows: list[dict[str, Any]]) -> go.Figure | None:
    votes = _votes_frame(rows)
    if votes.is_empty():
        return None
    monthly = votes.group_by("month", "model").agg(pl.col("vote").mean()).sort("month", "model")
    fig = go.Figure()
    for model in sorted(monthly["model"].unique()):
        part = monthly.filter(pl.col("model") == model)
        fig.add_bar(x=part["month"].to_list(), y=part["vote"].to_list(), name=model)
    fig.update_layout(barmode="relative")
    title = "Vote attribution: mean p_up − p_down per model per month"
    return chart_layout(fig, title, "mean vote (stacked)", height=380)


def _header(report: Mapping[str, Any]) -> str:
    data, settings = report.get("data", {}), report.get("settings", {})
    metrics, bench = report.get("metrics", {}), report.get("benchmark", {})
    mine, theirs = metrics.get("total_return"), bench.get("total_return")
    if mine is None or theirs is None:
        verdict = "Total returns are undefined, so no comparison with buy-and-hold is possible."
    else:
        beat = "beat" if mine > theirs else "did not beat"
        verdict = (
            f"After costs the strategy returned {mine:+.2%} against {theirs:+.2%} for "
            f"buy-and-hold on the same data: it <b>{beat}</b> buy-and-hold."
        )
    sharpe, bench_sharpe = (format_metric(m.get("sharpe"), "{:.2f}") for m in (metrics, bench))
    psr, dsr = (format_metric(metrics.get(key), "{:.3f}") for key in ("psr", "dsr"))
    verdict += (
        f" Sharpe {sharpe} vs {bench_sharpe}. PSR {psr} (chance the true Sharpe is above zero); "
        f"DSR {dsr} (the same, deflated for {metrics.get('n_trials', 1)} trial(s)); below 0.95 "
        "is not convincing evidence of skill."
    )
    facts = {
        "period": f"{data.get('start')} → {data.get('end')}",
        "candles": f"{data.get('candles', 0):,} × {settings.get('timeframe', '?')}",
        "costs": settings.get("costs", "n/a"),
        "market": settings.get("market", "n/a"),
        "fees paid": format_metric(metrics.get("fees"), "{:,.2f}"),
        "funding paid": format_metric(metrics.get("funding"), "{:,.2f}"),
    }
    items = "".join(f"<li><b>{k}</b>: {html.escape(str(v))}</li>" for k, v in facts.items())
    return f"<ul>{items}</ul><p class='verdict'>{verdict}</p>"


def html_table(head: Sequence[str], body: list[list[str]], caption: str) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    lines = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
    return f"<h2>{caption}</h2><table><tr>{cells}</tr>{lines}</table>"


def _tables(report: Mapping[str, Any], rows: list[dict[str, Any]]) -> str:
    metrics, bench = report.get("metrics", {}), report.get("benchmark", {})
    body = [
        [label, format_metric(metrics.get(key), pat), format_metric(bench.get(key), pat)]
        for key, label, pat in METRIC_ROWS
    ]
    out = html_table(("metric", "strategy", "buy & hold"), body, "Metrics (after costs)")
    sensitivity = report.get("cost_sensitivity", {})
    if sensitivity:
        factors = list(sensitivity)
        keys = next(iter(sensitivity.values()))
        body = [
            [label, *(format_metric(sensitivity[f].get(key), pat) for f in factors)]
            for key, label, pat in METRIC_ROWS
            if key in keys
        ]
        out += html_table(("metric", *(f"{f} costs" for f in factors)), body, "Cost sensitivity")
    votes = _votes_frame(rows).drop_nulls("agrees")
    if not votes.is_empty():
        agree = votes.group_by("model").agg(pl.col("agrees").mean(), pl.len()).sort("model")
        body = [
            [html.escape(r["model"]), f"{r['agrees']:.1%}", f"{r['len']:,}"]
            for r in agree.iter_rows(named=True)
        ]
        out += html_table(
            ("model", "agreed with the final decision", "directional decisions"),
            body,
            "Model agreement",
        )
    return out
