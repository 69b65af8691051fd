"""Fit, evaluate and describe the conversion, churn and CLV models as of a training cutoff.

`train_models` is pure computation (tests call it without MLflow), one small step each per model: plan the
cutoffs, build the rows, fit, evaluate on the holdout, refit on every row, describe. `run_training` then hands
the outcome to `training.tracking`, which logs, registers and promotes it in MLflow.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from crmdata.timeutil import data_start
from training.config import MODEL_KINDS, REGISTERED_NAMES, TrainConfig
from training.cutoffs import CutoffPlan, plan_cutoffs
from training.dataset import (
    FeatureCache,
    InsufficientData,
    Snapshot,
    check_positives,
    check_sufficiency,
    snapshot,
)
from training.features import FeatureSpec, fit_feature_spec
from training.fitting import fit_bundle
from training.holdout import ModelResult, evaluate_result, exposure
from training.metadata import ModelMetadata
from training.summary import TrainSummary

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainOutcome:
    """All models of one training run, and the ones skipped with the reason."""

    as_of: pd.Timestamp
    spec: FeatureSpec
    results: dict[str, ModelResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)  # models trained as the fallback, with the reason
    data_window: tuple[str, str] = ("", "")
    fingerprint: str = ""


@dataclass(frozen=True, kw_only=True)
class TrainingRows:
    """One model's rows: the training snapshots, the holdout (the validation snapshot), and, when they are too
    few positives for the full model, why the fallback is trained instead (see `check_positives`)."""

    train: Snapshot
    holdout: Snapshot
    fallback_reason: str | None = None


def fingerprint(tables: dict) -> str:
    """A short content hash of the tables a run was trained on."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        if tables[name] is not None:
            digest.update(name.encode())
            digest.update(pd.util.hash_pandas_object(tables[name], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def build_rows(kind: str, plan: CutoffPlan, tables: dict, features: FeatureCache, config: TrainConfig) -> TrainingRows:
    """The training and holdout rows of `plan`, with the fallback's reason if the full model is not justified;
    raises InsufficientData when the data cannot support even the fallback."""
    check_sufficiency(kind, plan, config, tables)
    funnel = features.spec.funnel
    horizon = plan.horizon_days
    train = snapshot(kind, tables, list(plan.training), horizon, features, plan.train_label_end, funnel)
    holdout = snapshot(kind, tables, [plan.validation], horizon, features, plan.holdout_label_end, funnel)
    reason = check_positives(kind, config, train, holdout)
    return TrainingRows(train=train, holdout=holdout, fallback_reason=reason)


def refit_rows(kind: str, plan: CutoffPlan, tables: dict, features: FeatureCache) -> Snapshot:
    """Every row again, holdout's cutoff included, with windows observed up to the training cutoff."""
    cutoffs = list(plan.refit_cutoffs)
    return snapshot(kind, tables, cutoffs, plan.horizon_days, features, plan.holdout_label_end, features.spec.funnel)


def serving_thresholds(result: ModelResult, config: TrainConfig) -> dict[str, tuple[float, ...]]:
    """Tier thresholds and value deciles from the holdout predictions, as `ModelMetadata` fields."""
    pred = result.holdout_prediction
    if result.kind == "conversion":
        return {"tier_thresholds": tuple(float(np.quantile(pred, 1 - s)) for s in config.conversion_tiers)}
    if result.kind == "churn":
        return {"risk_thresholds": tuple(config.churn_risk_thresholds)}
    whole = pred / exposure(result.holdout)  # deciles of the whole-horizon values the model serves
    return {"value_deciles": tuple(float(q) for q in np.quantile(whole, np.linspace(0.1, 0.9, 9)))}


def describe(result: ModelResult, plan: CutoffPlan, outcome: TrainOutcome, config: TrainConfig) -> None:
    """Store with the bundle what it is: cutoffs, rows, size, holdout figures, data, and serving thresholds."""
    kind, bundle = result.kind, result.bundle
    bundle.metadata = ModelMetadata(
        kind=kind,
        registered_name=REGISTERED_NAMES[kind],
        as_of=str(plan.as_of),
        horizon_days=plan.horizon_days,
        validation_cutoff=str(plan.validation),
        holdout_window_days=plan.holdout_window_days,
        training_cutoffs=tuple(str(t) for t in plan.training),
        train_rows=result.train_rows,
        holdout_rows=len(result.holdout.labels),
        best_iteration=int(bundle.booster.current_iteration()),
        refit_on_holdout=kind in config.refit_on_holdout,
        holdout_metrics=result.metrics,
        baseline_metrics=result.baseline,
        data_window=tuple(outcome.data_window),
        data_fingerprint=outcome.fingerprint,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_kind="fallback" if kind in outcome.fallbacks else "lightgbm",
        **serving_thresholds(result, config),
    )


def train_one(
    plan: CutoffPlan, rows: TrainingRows, tables: dict, features: FeatureCache, config: TrainConfig
) -> ModelResult:
    """Fit on the training rows, evaluate on the holdout, then (if configured) refit on every row.

    A fallback keeps the regularisation scaled to its first fit's rows in the refit.
    """
    kind, spec = plan.kind, features.spec
    small = len(rows.train.labels) if rows.fallback_reason else None
    bundle = fit_bundle(kind, rows.train, rows.holdout, spec, config, fallback_rows=small)
    result = evaluate_result(kind, bundle, rows.train, rows.holdout)  # holdout figures of the fit that never saw it
    if kind not in config.refit_on_holdout:
        return result
    # Every row again, windows now observed up to the training cutoff, for the rounds chosen above.
    every = refit_rows(kind, plan, tables, features)
    refitted = fit_bundle(kind, every, rows.holdout, spec, config, refit=bundle, fallback_rows=small)
    return replace(result, bundle=refitted)


def train_models(
    tables: dict, as_of: pd.Timestamp, config: TrainConfig, kinds=MODEL_KINDS, progress=None
) -> TrainOutcome:
    """Build snapshots, fit and evaluate each model; skip (with the reason) those the data cannot support.

    `progress(step, done, total)`, when given, hears "training KIND (i of n)" before each model is built and fit.
    """
    start = data_start(tables)
    spec = fit_feature_spec(tables, as_of, funnel=config.funnel)
    outcome = TrainOutcome(
        as_of=as_of, spec=spec, fingerprint=fingerprint(tables), data_window=(str(start), str(as_of))
    )
    features = FeatureCache(tables, spec)
    for i, kind in enumerate(kinds):
        if progress:
            progress(f"training {kind} ({i + 1} of {len(kinds)})", i, len(kinds))
        plan = plan_cutoffs(kind, as_of=as_of, data_start=start, config=config)
        try:
            rows = build_rows(kind, plan, tables, features, config)
        except InsufficientData as why:
            outcome.skipped[kind] = str(why)
            log.info("%s", why)  # reported once, in the training table (`TrainSummary`) and the run's tags
            continue
        if rows.fallback_reason:
            outcome.fallbacks[kind] = rows.fallback_reason
            log.info("%s", rows.fallback_reason)
        result = train_one(plan, rows, tables, features, config)
        describe(result, plan, outcome, config)
        outcome.results[kind] = result
    return outcome


def run_training(
    tables: dict,
    as_of: pd.Timestamp,
    config: TrainConfig,
    promote: str = "auto",
    data_dir: str = "",
    kinds=MODEL_KINDS,
    extra_logging=None,
    parent_run_id: str | None = None,
    progress=None,
) -> TrainSummary:
    """Train every model the data supports, then log, register and promote them in MLflow.

    `extra_logging(outcome, tables)` runs inside the parent run (the pipeline logs its channel report there);
    `parent_run_id` is a run to log into as the parent (the one `mlflow run` opened), else a new run opens.
    `progress(step, done, total)` hears each model's training, then the logging (the CLI shows it).
    """
    from training.tracking import log_and_register  # MLflow is imported only when a run is logged

    outcome = train_models(tables, as_of, config, kinds, progress=progress)
    if progress:
        progress("logging and registering the models in MLflow", len(kinds), len(kinds))
    decisions = (
        log_and_register(outcome, tables, config, promote, data_dir, extra_logging, parent_run_id)
        if outcome.results
        else {}
    )
    return TrainSummary(outcome=outcome, decisions=decisions)
