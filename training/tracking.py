"""Log a training outcome to MLflow, register each model and move its aliases.

The `log_*` functions write into the active run, which their caller opens; `log_and_register` strings them
together: one parent run per training, a child run per model, the model logged as a pyfunc, registered,
aliased `challenger`; at the end, the versions `decide_promotion` promotes are aliased `champion` together.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
from mlflow import MlflowClient

from training import plots
from training.artifact import ModelLoadError, OutdatedModelFormat
from training.config import REGISTERED_NAMES, TrainConfig
from training.evaluate import HEADLINE
from training.fitting import model_params
from training.holdout import ModelResult, holdout_figure
from training.promotion import (
    OWN_HOLDOUT,
    THIS_HOLDOUT,
    PromotionDecision,
    champion_has_seen,
    decide_promotion,
    needs_champion_figure,
)
from training.pyfunc import log_bundle
from training.registry import (
    CHALLENGER,
    CHAMPION,
    CHAMPION_SET,
    CHAMPION_SET_AT,
    alias_version,
    configure,
    ensure_experiment,
    load_bundle,
)

if TYPE_CHECKING:
    from training.train import TrainOutcome

log = logging.getLogger(__name__)
_REGISTRY_NOTICES = ("Successfully registered model", "Created version", "Registered model")


def log_and_register(
    outcome: TrainOutcome,
    tables: dict,
    config: TrainConfig,
    promote: str,
    data_dir: str,
    extra_logging=None,
    parent_run_id: str | None = None,
) -> dict[str, dict]:
    """Log one parent run with a child run per model; register and decide each model, then move the aliases.

    The parent is `parent_run_id` when given (the run `mlflow run` opened for this job), else a new run. Every
    decision is taken before any @champion moves, and the moves happen together at the end (`move_champions`),
    so a training that dies midway leaves the champions as they were. A run that ends on an exception ends
    FAILED (MLflow's run context does that); `training.maintenance.fail_stale_runs` marks killed ones.
    """
    configure()
    experiment_id = mlflow.get_run(parent_run_id).info.experiment_id if parent_run_id else ensure_experiment()
    parent_run = (
        mlflow.start_run(run_id=parent_run_id)
        if parent_run_id
        else mlflow.start_run(experiment_id=experiment_id, run_name=f"train as of {outcome.as_of.date()}")
    )
    decisions: dict[str, dict] = {}
    with parent_run as parent:
        log_run_params(outcome, tables, config, promote, data_dir)
        log_skipped(outcome.skipped)
        mlflow.set_tags({f"fallback.{kind}": reason for kind, reason in outcome.fallbacks.items()})
        for kind, result in outcome.results.items():
            with mlflow.start_run(experiment_id=experiment_id, run_name=kind, nested=True) as child:
                decision, version = log_model_run(result, outcome, tables, config, promote)
            decisions[kind] = {**decision.to_dict(), "version": version, "run_id": child.info.run_id}
        if extra_logging:
            extra_logging(outcome, tables)
        moves = {REGISTERED_NAMES[k]: d["version"] for k, d in decisions.items() if d["promoted"]}
        move_champions(moves, parent.info.run_id)
        mlflow.set_tag("decisions", str({k: v["promoted"] for k, v in decisions.items()}))
    return {kind: {**d, "parent_run_id": parent.info.run_id} for kind, d in decisions.items()}


def move_champions(moves: dict[str, str], training_run_id: str) -> None:
    """Alias each `name: version` of `moves` champion, then mark every champion with this training's run id
    (and when the move began, which tells `training.champion_set.repair` the newest move of a mixed set).

    The new versions are marked first and the champions kept in place last, so a set cut short at any point
    carries two marks and `training.registry.champion_set_is_consistent` calls it mixed. A training that promotes
    nothing changes nothing: the champions keep the mark of the training that put them in place.
    """
    if not moves:
        return
    client = MlflowClient()
    began = str(int(time.time() * 1000))

    def mark(name: str, version: str) -> None:
        client.set_model_version_tag(name, version, CHAMPION_SET_AT, began)
        client.set_model_version_tag(name, version, CHAMPION_SET, training_run_id)

    for name, version in moves.items():
        mark(name, version)
    for name, version in moves.items():
        client.set_registered_model_alias(name, CHAMPION, version)
    for name in REGISTERED_NAMES.values():
        current = alias_version(name, CHAMPION)
        if current is not None and name not in moves:
            mark(name, str(current.version))


def log_model_run(
    result: ModelResult, outcome: TrainOutcome, tables: dict, config: TrainConfig, promote: str
) -> tuple[PromotionDecision, str]:
    """Log one model's parameters, figures, plots and pyfunc into the active run; register it and decide it.

    Deciding moves no alias: `move_champions` moves the aliases of the whole training at its end.
    """
    name = REGISTERED_NAMES[result.kind]
    with tempfile.TemporaryDirectory() as tmp:
        log_model_params(result, outcome, config)
        log_metrics(result)
        log_plots(result, Path(tmp))
        version = log_model(result, name, tmp)
    decision = decide_version(name, version, result, tables, promote)
    log_promotion(decision, version)
    return decision, version


def log_run_params(outcome: TrainOutcome, tables: dict, config: TrainConfig, promote: str, data_dir: str) -> None:
    """The parent run's parameters: the config, the training cutoff, the data and the promotion policy."""
    mlflow.log_params(
        {
            # Named apart from the MLproject parameters, which `mlflow run` logs on this run already.
            **_flatten("config.", config.to_dict()),
            "training_cutoff": str(outcome.as_of),
            "data_dir": data_dir,
            "data_fingerprint": outcome.fingerprint,
            "data_window_start": outcome.data_window[0],
            "promote_policy": promote,
            **{f"rows.{k}": len(v) for k, v in tables.items() if v is not None},
        }
    )


def log_skipped(skipped: dict[str, str]) -> None:
    """Tag each model the data could not support with the reason."""
    for kind, reason in skipped.items():
        mlflow.set_tag(f"skipped.{kind}", reason)


def log_model_params(result: ModelResult, outcome: TrainOutcome, config: TrainConfig) -> None:
    """A model run's parameters: its cutoffs, rows, size, data, model kind and LightGBM settings.

    A fallback (`meta.model_kind`) logs its own booster settings and is tagged with the reason it was trained.
    """
    meta = result.bundle.metadata
    fallback_rows = meta.train_rows if meta.model_kind == "fallback" else None
    if result.kind in outcome.fallbacks:
        mlflow.set_tag("fallback_reason", outcome.fallbacks[result.kind])
    mlflow.set_tag("model_kind", meta.model_kind)
    mlflow.log_params(
        {
            "kind": result.kind,
            "model_kind": meta.model_kind,
            "horizon_days": meta.horizon_days,
            "validation_cutoff": meta.validation_cutoff,
            "training_cutoffs": ",".join(meta.training_cutoffs),
            "train_rows": meta.train_rows,
            "holdout_rows": meta.holdout_rows,
            "best_iteration": meta.best_iteration,
            "features": len(result.bundle.spec.columns),
            "data_fingerprint": outcome.fingerprint,
            "as_of": str(outcome.as_of),
            **_flatten("lgb.", model_params(result.kind, config, outcome.spec, fallback_rows)),
        }
    )


def log_metrics(result: ModelResult) -> None:
    """The model's and the baseline's holdout figures (finite ones: MLflow refuses NaN)."""
    mlflow.log_metrics({f"holdout_{k}": v for k, v in result.metrics.items() if np.isfinite(v)})
    mlflow.log_metrics({f"baseline_{k}": v for k, v in result.baseline.items() if np.isfinite(v)})


def log_plots(result: ModelResult, out: Path) -> None:
    """Write the evaluation plots into `out` and log them under `plots/`."""
    for path in evaluation_plots(result, out):
        mlflow.log_artifact(str(path), artifact_path="plots")


def evaluation_plots(result: ModelResult, out: Path) -> list[Path]:
    """Write the model's evaluation plots into `out`."""
    y = result.holdout.labels.to_numpy(dtype=float)
    pred, base = result.holdout_prediction, result.baseline_prediction
    bundle = result.bundle
    x = bundle.matrix(result.holdout.features.iloc[:5000])
    shap = np.abs(bundle.contributions(x)).mean(axis=0)
    files = [plots.importance_plot(list(bundle.spec.columns), shap, out / "shap_importance.png")]
    curves = {"model": pred, "baseline": base}
    if result.kind == "clv":
        return [
            *files,
            plots.clv_decile_plot(y, pred, out / "clv_by_decile.png"),
            plots.gains_plot(np.maximum(y, 0), curves, out / "cumulative_gains.png"),
        ]
    return [
        *files,
        plots.roc_plot(y, curves, out / "roc.png"),
        plots.reliability_plot(y, pred, out / "reliability.png"),
        plots.gains_plot(y, curves, out / "cumulative_gains.png"),
    ]


def log_model(result: ModelResult, name: str, tmp: str) -> str:
    """Log the bundle as a pyfunc, register it as `name` and alias it `challenger`; returns its version.

    MLflow prints "Successfully registered model ..." and "Created version ..." straight to stderr; those lines
    go to this module's log at INFO instead (shown with `--verbose`), so a training prints only what it decided.
    """
    with _printed_to_log():
        info = log_bundle(result.bundle, tmp, name, result.holdout.features.head(5))
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(name, version, "model_kind", result.bundle.metadata.model_kind)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


@contextmanager
def _printed_to_log() -> Iterator[None]:
    """Lines printed to stderr inside the block are logged: MLflow's registration notices at INFO, anything else
    (a warning, say) at WARNING, so nothing printed is lost."""
    printed = io.StringIO()
    try:
        with redirect_stderr(printed):
            yield
    finally:
        for line in filter(str.strip, printed.getvalue().splitlines()):
            log.log(logging.INFO if line.startswith(_REGISTRY_NOTICES) else logging.WARNING, "%s", line)


def log_promotion(decision: PromotionDecision, version: str) -> None:
    """The promotion decision as parameters, and the version's role as tags."""
    mlflow.log_params({f"promotion.{k}": v for k, v in decision.to_dict().items()})
    mlflow.set_tags({"promotion": "champion" if decision.promoted else "challenger", "registered_version": version})


def decide_version(name: str, version: str, result: ModelResult, tables: dict, policy: str) -> PromotionDecision:
    """Look up the champion of `name` and decide whether `version` replaces it (no alias moves here).

    A champion that cannot be loaded (an older format, a file cut short) cannot serve, so it gives way.
    """
    metric = HEADLINE[result.kind]
    current = alias_version(name, CHAMPION)
    champion_version = current.version if current else None
    figure, source, outdated, broken = None, None, False, None
    if needs_champion_figure(policy, champion_version):
        try:
            figure, source = champion_figure(name, champion_version, result, tables)
        except OutdatedModelFormat:
            outdated = True
        except ModelLoadError as exc:
            broken = str(exc.__cause__ or exc)
    return decide_promotion(
        policy,
        result.metrics[metric],
        figure,
        metric=metric,
        champion_version=champion_version,
        champion_figure_source=source,
        champion_outdated=outdated,
        champion_broken=broken,
    )


def champion_figure(name: str, version: str, result: ModelResult, tables: dict) -> tuple[float, str]:
    """The champion's headline figure to compare with, and where it comes from (see `champion_has_seen`)."""
    champion, _ = load_bundle(name, version=version)
    if champion_has_seen(champion.metadata.as_of, result.holdout.cutoffs.iloc[0]):
        return float(champion.metadata.holdout_metrics[HEADLINE[result.kind]]), OWN_HOLDOUT
    return holdout_figure(champion, tables, result), THIS_HOLDOUT


def _flatten(prefix: str, values: dict) -> dict:
    """Nested settings as flat `prefix.key` parameters, lists joined by commas."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(f"{prefix}{key}.", value))
        else:
            out[f"{prefix}{key}"] = value if not isinstance(value, list | tuple) else ",".join(map(str, value))
    return out
