"""``tradebrain learn ...`` and ``tradebrain models ...``: the learning loop by hand.

``learn`` retrains, reproduces and tunes bundles the way the trading service does, exports a
run's experience and says where learning stands; ``models`` lists the registry's versions,
promotes, rolls back and shows the audit trail. The registry is
:class:`~tradebrain.learning.registry.BundleRegistry` (MLflow: ``HOME/mlflow.db`` unless
``learning.registry_uri`` names another store); MLflow, Optuna and the models load only
inside the command that needs them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from tradebrain.cli._output import Column, print_rows
from tradebrain.cli._shared import console, friendly_errors, settings_of, store_of
from tradebrain.config import Settings
from tradebrain.exceptions import NotFoundError, UserInputError

if TYPE_CHECKING:
    import polars as pl

    from tradebrain.learning.executor import Executor
    from tradebrain.learning.registry import AuditEvent, BundleRegistry, BundleVersion

learn_app = typer.Typer(
    help="The learning loop by hand: retrain, reproduce, tune, export experience, status.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
models_app = typer.Typer(
    help="The model registry: versions, promotions, rollbacks and the audit trail.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

AUDIT_SHOWN = 5
"""Audit events ``learn status`` shows."""

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead.")]
Reason = Annotated[
    str, typer.Option("--reason", help="Why (kept in the audit trail), e.g. 'beat v3 in shadow'.")
]
ExecutorKind = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="Where training runs: local (processes), ray or serial "
        "(default: serial for one job, else learning.executor).",
    ),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed (default: models.seed).")]


# -- the registry ------------------------------------------------------------------------------


@models_app.command("versions")
@friendly_errors
def versions_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List every registered version, newest first, with its lineage and key metrics.

    Piped or redirected, it prints tab-separated rows with every value whole.
    """
    settings = settings_of(ctx)
    found = [] if _registry_is_empty(settings) else _registry(settings).versions()
    if not found and not as_json:
        console.print(f"no model registered yet in {_registry_place(settings)}; {_RETRAIN_HINT}")
        return
    rows = [_version_row(v, as_json=as_json) for v in found]
    print_rows(rows, VERSION_COLUMNS, title="registered versions", as_json=as_json)


@models_app.command("promote")
@friendly_errors
def promote_command(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version to put in production, e.g. 3 or v3.")],
    reason: Reason,
) -> None:
    """Put a version in production (audited); the former production is archived.

    A running service follows the registry's production alias within a few candles.
    """
    settings = settings_of(ctx)
    number = _version_number(version)
    registry = _existing_registry(settings)
    event = registry.promote(number, reason=reason, evidence=_operator())
    was = f" (was v{event.previous}, now archived)" if event.previous is not None else ""
    console.print(f"[green]promoted[/] v{event.version} to production{was}: {escape(reason)}")
    console.print("[dim]a running service follows the production alias within a few candles[/]")


@models_app.command("rollback")
@friendly_errors
def rollback_command(ctx: typer.Context, reason: Reason) -> None:
    """Put the previous production back (audited); the current one is marked rolled back."""
    registry = _existing_registry(settings_of(ctx))
    try:
        event = registry.rollback(reason=reason, evidence=_operator())
    except UserInputError as error:  # the registry names its Python API; name the command
        text = str(error).replace(
            "promote(version, reason=..., evidence=...)",
            "`tradebrain models promote VERSION --reason TEXT`",
        )
        raise UserInputError(text) from None
    console.print(
        f"[green]rolled back[/] production from v{event.previous} to v{event.version}: "
        f"{escape(reason)}"
    )
    console.print("[dim]a running service follows the production alias within a few candles[/]")


@models_app.command("audit")
@friendly_errors
def audit_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest events shown.")] = 20,
    as_json: AsJson = False,
) -> None:
    """Show the audit trail, newest first: registrations, promotions, refusals, rollbacks.

    Each event says why it was made and the evidence it was made on.
    """
    settings = settings_of(ctx)
    events = [] if _registry_is_empty(settings) else _registry(settings).audit(limit)
    if not events and not as_json:
        console.print(f"nothing in the audit trail of {_registry_place(settings)} yet")
        return
    rows = [_audit_row(event, as_json=as_json) for event in events]
    print_rows(rows, AUDIT_COLUMNS, title="model registry audit trail", as_json=as_json)


# -- learning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """The candles one retrain learns from, and where they came from."""

    symbol: str
    timeframe: str
    source: str
    candles: pl.DataFrame
    path: Path


@learn_app.command("retrain")
@friendly_errors
def retrain_command(
    ctx: typer.Context,
    data: Annotated[
        list[str],
        typer.Option(
            "--data", help="Candle file or stored dataset name; repeat it to train one per file."
        ),
    ],
    symbol: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol",
            help="Symbol of each --data, in order (default: the dataset's symbol or file name).",
        ),
    ] = None,
    seed: Seed = None,
    executor: ExecutorKind = None,
) -> None:
    """Train a bundle the service's way and register it as the candidate, with its lineage.

    Each bundle learns from the newest ``learning.max_train_bars`` candles of its data. The
    first version ever registered goes to production at once; later ones wait as candidates
    for ``tradebrain models promote``.
    """
    from tradebrain.core.atomic_write import write_parquet_atomic
    from tradebrain.learning.executor import executor_kind
    from tradebrain.learning.fan_out import TrainJob, fan_out
    from tradebrain.learning.lineage import Lineage, code_version, frame_hash, public_settings

    settings = settings_of(ctx)
    symbols = list(symbol or [])
    if symbols and len(symbols) != len(data):
        raise UserInputError(
            f"{len(symbols)} --symbol for {len(data)} --data; give one --symbol per --data, in "
            "the same order, or none to name each by its dataset or file"
        )
    dump = settings.model_dump(mode="json")
    model_seed = settings.models.seed if seed is None else seed
    work = _work_folder(settings, "retrain")
    try:
        windows = [
            _window(settings, spec, symbols[i] if symbols else None, work / f"{i}.parquet")
            for i, spec in enumerate(data)
        ]
        for window in windows:
            write_parquet_atomic(window.candles, window.path)
        jobs = [
            TrainJob(w.symbol, w.path, dump, work / f"bundle-{i}", seed=model_seed)
            for i, w in enumerate(windows)
        ]
        kind = executor_kind(settings.learning.executor, len(jobs), executor)
        pool = _executor(kind, len(jobs))
        try:
            with console.status(f"training {len(jobs)} bundle(s) on {kind}..."):
                results = fan_out(jobs, pool)
        finally:
            pool.close()
        registry = _registry(settings)
        production = registry.production()
        parent = production.version if production is not None else None
        for window, result in zip(windows, results, strict=True):
            lineage = Lineage(
                symbol=window.symbol, timeframe=window.timeframe, source=window.source,
                data_start=result.data_start, data_end=result.data_end,
                data_hash=frame_hash(window.candles), rows=result.rows,
                feature_sets=tuple(settings.features.sets), settings=public_settings(dump),
                seed=model_seed, code_version=code_version(), parent=parent,
            )  # fmt: skip
            metrics = {"train_seconds": result.seconds, "rows": float(result.rows)}
            version = registry.register(result.bundle_dir, lineage, metrics)
            console.print(
                f"[green]registered[/] v{version.version} ({version.status}) "
                f"{escape(window.symbol)} {window.timeframe}: {result.rows:,} candles "
                f"{_short(result.data_start)} to {_short(result.data_end)}, trained in "
                f"{result.seconds:.1f} s"
            )
        candidate = registry.candidate()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if candidate is not None:
        console.print(
            f"[dim]promote the candidate with `tradebrain models promote {candidate.version} "
            "--reason TEXT`, or let a service with learning.enabled judge it in shadow[/]"
        )


@learn_app.command("reproduce")
@friendly_errors
def reproduce_command(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Registered version to reproduce, e.g. 3.")],
    data: Annotated[
        str, typer.Option("--data", help="The candles it learned from (file or dataset name).")
    ],
) -> None:
    """Retrain a registered version from its lineage and compare the predictions.

    The settings and seed are the recorded ones, and the data must hash as recorded over the
    recorded span. Exits 0 when the retrained bundle predicts exactly as the registered one,
    1 when the predictions differ.
    """
    from tradebrain.core.atomic_write import write_parquet_atomic
    from tradebrain.features import compute_features
    from tradebrain.learning.fan_out import (
        PREDICTION_ROWS,
        TrainJob,
        bundle_prediction_hash,
        read_candles,
        train_job,
        training_settings,
    )
    from tradebrain.learning.lineage import code_version

    settings = settings_of(ctx)
    number = _version_number(version)
    registry = _existing_registry(settings)
    found = registry.get(number)
    if found is None:
        known = [v.version for v in registry.versions()]
        raise NotFoundError(f"version {number} is not registered; registered: {known}")
    lineage = found.lineage
    candles = _recorded_span(settings, data, found)
    work = _work_folder(settings, "reproduce")
    try:
        path = write_parquet_atomic(candles, work / "candles.parquet")
        job = TrainJob(lineage.symbol, path, lineage.settings, work / "bundle", seed=lineage.seed)
        with console.status(f"retraining v{number} from its lineage..."):
            result = train_job(job)  # checks the recorded settings first
            recorded = Settings.model_validate(lineage.settings)
            _, _, feature_sets = training_settings(recorded, seed=lineage.seed, threads=1)
            features = compute_features(read_candles(path), feature_sets, threads=1)
            registered = bundle_prediction_hash(
                registry.bundle_dir(number), features.tail(PREDICTION_ROWS)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    console.print(
        f"retrained v{number} on {result.rows:,} candles {_short(result.data_start)} to "
        f"{_short(result.data_end)} (seed {lineage.seed}) in {result.seconds:.1f} s"
    )
    current = code_version()
    if current != lineage.code_version:
        console.print(
            f"[yellow]note:[/] v{number} was trained by tradebrain {lineage.code_version}; "
            f"this is {current}"
        )
    if result.prediction_hash == registered:
        console.print(
            f"[green]identical predictions[/]: the retrained bundle predicts the newest "
            f"{PREDICTION_ROWS} rows exactly as registered v{number} (hash {registered[:12]})"
        )
        return
    console.print(
        f"[bold red]predictions differ[/]: registered v{number} hashes {registered[:12]}, the "
        f"retrained bundle {result.prediction_hash[:12]} (newest {PREDICTION_ROWS} rows); "
        "same data, settings and seed, so the code or a library changed"
    )
    raise typer.Exit(1)


@learn_app.command("status")
@friendly_errors
def status_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Say where learning stands: production and candidate, trials, audit, experience."""
    from tradebrain.evaluation.statistics import TrialLedger
    from tradebrain.learning.experience import ExperienceLog

    settings = settings_of(ctx)
    production = candidate = None
    events: list[AuditEvent] = []
    if not _registry_is_empty(settings):
        registry = _registry(settings)
        production, candidate = registry.production(), registry.candidate()
        events = registry.audit(AUDIT_SHOWN)
    ledger = TrialLedger(_ledger_path(settings))
    experience = ExperienceLog(settings.home / "experience")
    counts = experience.counts()
    trials = ledger.n_trials
    if as_json:
        report = {
            "registry": _registry_place(settings),
            "production": None if production is None else _version_row(production, as_json=True),
            "candidate": None if candidate is None else _version_row(candidate, as_json=True),
            "audit": [_audit_row(event, as_json=True) for event in events],
            "trials": trials,
            "ledger": str(ledger.path),
            "experience": counts,
            "experience_root": str(experience.root),
        }
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        return
    if production is None and candidate is None and not trials and not any(counts.values()):
        console.print(
            f"nothing recorded yet in {settings.home}: no model registered, no trial, no "
            f"experience; {_RETRAIN_HINT}"
        )
        return
    for label, found in (("production", production), ("candidate", candidate)):
        console.print(f"{label}: {_version_line(found)}")
    console.print(f"trials in the ledger: {trials} ({ledger.path})")
    if events:
        console.print("last changes of the registry:")
        for event in events:
            console.print(f"  {_event_line(event)}")
    shown = ", ".join(f"{count:,} {kind}" for kind, count in counts.items())
    console.print(f"experience log: {shown} ({experience.root})")


@learn_app.command("export")
@friendly_errors
def export_command(
    ctx: typer.Context,
    state: Annotated[
        str | None,
        typer.Option("--state", help="State database: a file or URL (default: HOME/serve/RUN.db)."),
    ] = None,
    run: Annotated[str, typer.Option("--run", help="The run to export (paper or live).")] = "paper",
) -> None:
    """Copy a run's new decisions, orders, fills and trades to the experience log (Parquet).

    Safe to repeat: only what is new is written, never twice.
    """
    from tradebrain.learning.experience import ExperienceLog
    from tradebrain.state import StateStore

    settings = settings_of(ctx)
    if state is None or "://" not in state:  # where `tradebrain serve` keeps it by default
        path = Path(state) if state else settings.home / "serve" / f"{run}.db"
        if state and not path.is_file():
            raise UserInputError(f"--state {state}: no such file; name the service's state store")
        if not path.is_file():
            console.print(
                f"nothing recorded yet: no state store at {path}; `tradebrain serve` writes "
                "one, or name it with --state"
            )
            return
        store = StateStore.for_path(path)
    else:
        store = StateStore(state)
    log = ExperienceLog(settings.home / "experience")
    try:
        written = log.export(store, run)
    finally:
        store.close()
    held = log.counts(run)
    if not any(held.values()):
        console.print(f"nothing recorded yet for run {run!r} in {escape(store.url)}")
        return
    console.print(
        f"exported run {run!r} to {log.root}: "
        + ", ".join(f"{written[kind]:,} new {kind}" for kind in written)
    )
    console.print("read it with DuckDB, e.g.:")
    for kind, count in held.items():
        if count:
            console.print(
                f"  select * from read_parquet('{log.glob(kind)}', hive_partitioning=true)",
                soft_wrap=True,
            )


@learn_app.command("tune")
@friendly_errors
def tune_command(
    ctx: typer.Context,
    data: Annotated[str, typer.Option("--data", help="Candle file or stored dataset name.")],
    trials: Annotated[int, typer.Option("--trials", min=1, help="Trials to add.")] = 20,
    study: Annotated[
        str, typer.Option("--study", help="Study name; an existing one is resumed.")
    ] = "tradebrain",
    seed: Seed = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor", help="Run trials in batches on local, ray or serial (default: here)."
        ),
    ] = None,
) -> None:
    """Search the entry/exit bars and features kept (Optuna TPE), judged after costs.

    Each trial trades walk-forward, out of sample; every trial is recorded in
    ``HOME/trials.jsonl``, so the deflated Sharpe of what is chosen counts them all.
    The study lives in ``HOME/optuna.db``.
    """
    import optuna

    from tradebrain.data.loading import load_market_data
    from tradebrain.learning.study import run_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial drowns the result
    settings = settings_of(ctx)
    candles = load_market_data(data, store_of(settings)).frame
    storage = f"sqlite:///{(settings.home / 'optuna.db').resolve()}"
    pool = None if executor is None else _executor(executor, None)
    try:
        with console.status(f"running {trials} trial(s) of study {study!r}..."):
            result = run_study(
                candles, settings.model_dump(mode="json"), n_trials=trials, storage=storage,
                study_name=study, ledger_path=_ledger_path(settings),
                seed=settings.models.seed if seed is None else seed, executor=pool,
            )  # fmt: skip
    finally:
        if pool is not None:
            pool.close()
    console.print(
        f"study {study!r}: {result.n_trials} finished trial(s), {result.new_trials} new; best "
        f"out-of-sample after-cost Sharpe per candle {result.best_value:.4f} with:"
    )
    for key, value in sorted(result.best_params.items()):
        shown = f"{value:.6g}" if isinstance(value, float) else value
        console.print(f"  {key} = {shown}")
    console.print(f"trials in the ledger (what the deflated Sharpe counts): {result.ledger_trials}")
    console.print("to trade with them, set these keys in the settings file (tradebrain.yaml):")
    console.print(escape(_yaml_lines(result.best_params)), soft_wrap=True)
    env = " ".join(
        f"TRADEBRAIN_{key.upper().replace('.', '__')}={_value(value)}"
        for key, value in sorted(result.best_params.items())
    )
    console.print(f"or in the environment: {escape(env)}", soft_wrap=True)


# -- helpers ---------------------------------------------------------------------------------

_RETRAIN_HINT = "train one with `tradebrain learn retrain --data FILE`"


def _registry(settings: Settings) -> BundleRegistry:
    from tradebrain.learning.registry import BundleRegistry

    return BundleRegistry(settings.home, settings.learning.registry_uri)


def _registry_is_empty(settings: Settings) -> bool:
    """Whether the embedded store was never made (so nothing is registered; nothing opened)."""
    return settings.learning.registry_uri is None and not (settings.home / "mlflow.db").exists()


def _existing_registry(settings: Settings) -> BundleRegistry:
    if _registry_is_empty(settings):
        raise UserInputError(
            f"no model is registered yet in {_registry_place(settings)}; {_RETRAIN_HINT}"
        )
    return _registry(settings)


def _registry_place(settings: Settings) -> str:
    return settings.learning.registry_uri or str(settings.home / "mlflow.db")


def _ledger_path(settings: Settings) -> Path:
    from tradebrain.evaluation.statistics import LEDGER_FILE

    return settings.home / LEDGER_FILE


def _work_folder(settings: Settings, what: str) -> Path:
    folder = settings.home / "learning"
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{what}-", dir=folder))


def _executor(kind: str, jobs: int | None) -> Executor:
    from tradebrain.learning.executor import make_executor

    workers = None if jobs is None else max(1, min(jobs, os.cpu_count() or 1))
    return make_executor(kind, workers=workers)


def _version_number(text: str) -> int:
    digits = text.strip().removeprefix("v").removeprefix("V")
    if not digits.isdigit():
        raise UserInputError(
            f"{text!r} is not a version number; give one such as 3 or v3 (see "
            "`tradebrain models versions`)"
        )
    return int(digits)


def _operator() -> dict[str, str]:
    """The evidence of a change made by hand: who made it, from where."""
    import getpass

    try:
        operator = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        operator = "unknown"
    return {"via": "tradebrain cli", "operator": operator}


def _window(settings: Settings, spec: str, symbol: str | None, path: Path) -> _Window:
    """Load ``spec`` and keep its newest ``learning.max_train_bars`` candles."""
    from tradebrain.data.loading import load_market_data
    from tradebrain.data.store import DatasetKey

    loaded = load_market_data(spec, store_of(settings))
    if symbol is None:
        symbol = Path(spec).stem if Path(spec).exists() else DatasetKey.parse(spec).symbol
    longest = settings.learning.max_train_bars
    candles = loaded.frame if longest is None else loaded.frame.tail(longest)
    timeframe = loaded.timeframe or settings.data.default_timeframe
    return _Window(symbol, timeframe, loaded.source, candles, path)


def _recorded_span(settings: Settings, data: str, found: BundleVersion) -> pl.DataFrame:
    """Return the candles of ``data`` over the version's recorded span, checked by hash.

    The hash is :func:`frame_hash` (what ``learn retrain`` records) or the candles' OHLCV
    hash (what the service's retraining records).

    Raises
    ------
    UserInputError
        When the data holds other candles than the version learned from.
    """
    import polars as pl

    from tradebrain.data.loading import load_market_data
    from tradebrain.learning.fan_out import candles_hash
    from tradebrain.learning.lineage import frame_hash

    lineage = found.lineage
    loaded = load_market_data(data, store_of(settings))
    if loaded.timeframe is not None and loaded.timeframe != lineage.timeframe:
        raise UserInputError(
            f"{data} holds {loaded.timeframe} candles; v{found.version} learned from "
            f"{lineage.timeframe} candles of {lineage.source}"
        )
    start = datetime.fromisoformat(lineage.data_start)
    end = datetime.fromisoformat(lineage.data_end)
    span = loaded.frame.filter(pl.col("timestamp").is_between(start, end))
    hashes = (frame_hash(span), candles_hash(span)) if span.height else ()
    if lineage.data_hash not in hashes:
        raise UserInputError(
            f"{data} is not the data v{found.version} learned from: over its span "
            f"{lineage.data_start} to {lineage.data_end} it holds {span.height:,} candles "
            f"(recorded: {lineage.rows:,}) hashing "
            f"{hashes[0][:12] if hashes else 'nothing'} (recorded: {lineage.data_hash[:12]}); "
            f"pass the same candles ({lineage.source}) — on other data, equal predictions "
            "would prove nothing"
        )
    return span


def _version_row(found: BundleVersion, *, as_json: bool) -> dict[str, Any]:
    lineage = found.lineage
    return {
        "version": found.version,
        "status": found.status,
        "aliases": list(found.aliases) if as_json else (",".join(found.aliases) or None),
        "created": found.created_at.isoformat(),
        "symbol": lineage.symbol,
        "timeframe": lineage.timeframe,
        "source": lineage.source,
        "data_start": lineage.data_start,
        "data_end": lineage.data_end,
        "rows": lineage.rows,
        "data_hash": lineage.data_hash,
        "seed": lineage.seed,
        "code_version": lineage.code_version,
        "parent": lineage.parent,
        "metrics": found.metrics if as_json else _metrics_text(found.metrics),
    }


def _audit_row(event: AuditEvent, *, as_json: bool) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "action": event.action,
        "version": event.version,
        "previous": event.previous,
        "reason": event.reason,
        "evidence": event.evidence if as_json else _evidence_text(event.evidence),
    }


def _version_line(found: BundleVersion | None) -> str:
    if found is None:
        return "none"
    lineage = found.lineage
    return (
        f"v{found.version} ({found.status}) {escape(lineage.symbol)} {lineage.timeframe}, "
        f"{lineage.rows:,} candles {_short(lineage.data_start)} to {_short(lineage.data_end)}, "
        f"seed {lineage.seed}, code {lineage.code_version}"
    )


def _event_line(event: AuditEvent) -> str:
    previous = f" (previous v{event.previous})" if event.previous is not None else ""
    return (
        f"{_short(event.at.isoformat())} {event.action} v{event.version}{previous}: "
        f"{escape(event.reason)}"
    )


def _metrics_text(metrics: Mapping[str, float]) -> str | None:
    return " ".join(f"{key}={value:.4g}" for key, value in sorted(metrics.items())) or None


def _evidence_text(evidence: Mapping[str, Any]) -> str | None:
    return json.dumps(dict(evidence), sort_keys=True) if evidence else None


def _short(moment: str) -> str:
    """``2024-01-01T00:00:00+00:00`` -> ``2024-01-01 00:00`` (UTC)."""
    return moment[:16].replace("T", " ")


def _value(value: Any) -> str:
    """A parameter as YAML and the environment read it back (floats whole: ``repr``)."""
    return json.dumps(value) if isinstance(value, list | dict | bool) else str(value)


def _yaml_lines(params: Mapping[str, Any]) -> str:
    """Return dotted ``section.key`` parameters as YAML lines (one level of sections)."""
    sections: dict[str, list[str]] = {}
    for key, value in sorted(params.items()):
        section, _, name = key.partition(".")
        sections.setdefault(section, []).append(f"    {name}: {_value(value)}")
    return "\n".join(f"  {section}:\n" + "\n".join(lines) for section, lines in sections.items())


VERSION_COLUMNS: Sequence[Column] = (
    Column("version", "version", numeric=True),
    Column("status", "status"),
    Column("aliases", "aliases"),
    Column("created", "created", show=_short),
    Column("symbol", "symbol"),
    Column("data_start", "data from", show=_short),
    Column("data_end", "data to", show=_short),
    Column("rows", "rows", numeric=True, show="{:,}".format),
    Column("data_hash", "data hash", show=lambda text: text[:12]),
    Column("seed", "seed", numeric=True),
    Column("code_version", "code"),
    Column("metrics", "metrics"),
)
"""What ``models versions`` shows (``--json`` adds timeframe, source and parent)."""

AUDIT_COLUMNS: Sequence[Column] = (
    Column("at", "at", show=_short),
    Column("action", "action"),
    Column("version", "version", numeric=True),
    Column("previous", "previous", numeric=True),
    Column("reason", "reason"),
    Column("evidence", "evidence"),
)
"""What ``models audit`` shows."""
