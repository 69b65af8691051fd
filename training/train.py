"""Fit, evaluate, log and register the conversion, churn and CLV models as of a training cutoff.

`train_models` is pure computation (tests call it without MLflow); `run_training` adds MLflow: one parent
run per call with a child run per model, the model logged as a pyfunc, registered, aliased `challenger`,
and promoted to `champion` when it is not worse than the current champion on the same holdout.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from crmdata.timeutil import data_start
from training.bundle import Calibrator, CategoryEncoder, ModelBundle, SeasonTransfer
from training.catalogue import monotone_constraints, season_blind
from training.config import MODEL_KINDS, REGISTERED_NAMES, TrainConfig
from training.dataset import (
    FeatureCache,
    InsufficientData,
    Snapshot,
    check_positives,
    check_sufficiency,
    snapshot,
)
from training.evaluate import (
    HEADLINE,
    classification_metrics,
    rate_baseline,
    recency_frequency_baseline,
    regression_metrics,
)
from training.features import FeatureSpec, fit_feature_spec
from training.labels import censored_cutoffs, snapshot_cutoffs
from training.seasonality import window_means

log = logging.getLogger(__name__)


@dataclass
class ModelResult:
    """One fitted and evaluated model with its holdout."""

    kind: str
    bundle: ModelBundle
    metrics: dict[str, float]
    baseline: dict[str, float]
    holdout: Snapshot
    holdout_prediction: np.ndarray
    baseline_prediction: np.ndarray
    train_rows: int


@dataclass
class TrainOutcome:
    """All models of one training run, and the ones skipped with the reason."""

    as_of: pd.Timestamp
    spec: FeatureSpec
    results: dict[str, ModelResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    data_window: tuple[str, str] = ("", "")
    fingerprint: str = ""


def fingerprint(tables: dict) -> str:
    """A short content hash of the tables a run was trained on."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        if tables[name] is not None:
            digest.update(name.encode())
            digest.update(pd.util.hash_pandas_object(tables[name], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def lightgbm_params(kind: str, config: TrainConfig, spec: FeatureSpec) -> dict:
    """LightGBM parameters: binary for the classifiers; for CLV, Poisson for its order count (log link)."""
    p = config.lightgbm
    params = {
        "objective": "poisson" if kind == "clv" else "binary",
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "min_data_in_leaf": p.min_data_in_leaf,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": p.bagging_freq,
        "lambda_l2": p.lambda_l2,
        "num_threads": p.num_threads,
        "seed": p.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
        "cat_smooth": 20,
        "min_data_per_group": 50,
    }
    # Season-blind columns and monotone directions are declared per feature in `training.catalogue`.
    blind = season_blind(kind) if spec.purchase_season else ()
    if any(c in blind for c in spec.columns):
        params["feature_contri"] = [0.0 if c in blind else 1.0 for c in spec.columns]
    constraints = monotone_constraints(kind, spec.columns)
    if any(constraints):
        params["monotone_constraints"] = constraints
        params["monotone_constraints_method"] = "advanced"
    return params


def value_params(config: TrainConfig, spec: FeatureSpec) -> dict:
    """CLV's order-value booster: gamma regression (log link, the mean of a skewed positive amount)."""
    params = lightgbm_params("clv", config, spec)
    params.pop("monotone_constraints", None)
    params.pop("monotone_constraints_method", None)
    return {**params, "objective": "gamma"}


def season_transfer(spec: FeatureSpec, horizon: int, validation: pd.Timestamp) -> SeasonTransfer | None:
    """Churn's move from the validation window's season to any cutoff's (None without a purchase season)."""
    columns = list(spec.columns)
    if not spec.purchase_season or not {"cutoff_season_sin", "cutoff_season_cos"} <= set(columns):
        return None
    means = window_means(tuple(spec.purchase_season), horizon)
    return SeasonTransfer(
        window_season=means,
        reference=means[validation.dayofyear - 1],
        sin_column=columns.index("cutoff_season_sin"),
        cos_column=columns.index("cutoff_season_cos"),
    )


def _train_booster(params, x, y, valid, config: TrainConfig, spec: FeatureSpec, rounds=None, weight=None, offset=None):
    """One booster: early stopping on `valid` (x, y, weight, offset), or exactly `rounds` rounds without it."""
    categorical = [i for i, c in enumerate(spec.columns) if c in set(spec.categorical)]
    data = lgb.Dataset(
        x,
        y,
        weight=weight,
        init_score=offset,
        feature_name=list(spec.columns),
        categorical_feature=categorical,
        free_raw_data=False,
    )
    if rounds is not None:
        return lgb.train(params, data, num_boost_round=max(rounds, 1))
    x_v, y_v, w_v, o_v = valid
    return lgb.train(
        params,
        data,
        num_boost_round=config.lightgbm.max_rounds,
        valid_sets=[lgb.Dataset(x_v, y_v, weight=w_v, init_score=o_v, reference=data)],
        callbacks=[lgb.early_stopping(config.lightgbm.early_stopping_rounds, verbose=False)],
    )


def _order_values(snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CLV's value rows: (mask of rows with orders in their window, net value per order, orders).

    A value at or below zero (every order refunded) is floored just above it, as gamma regression needs;
    the gamma mean is the weighted mean of the targets, so the floor does not bias it.
    """
    counts = snap.counts.to_numpy(dtype=float)
    has = counts > 0
    per_order = snap.labels.to_numpy(dtype=float)[has] / counts[has]
    floor = 1e-3 * max(float(np.median(per_order)) if len(per_order) else 1.0, 1e-9)
    return has, np.maximum(np.nan_to_num(per_order), floor), counts[has]


def fit_bundle(
    kind: str,
    train: Snapshot,
    valid: Snapshot,
    spec: FeatureSpec,
    config: TrainConfig,
    refit: ModelBundle | None = None,
) -> ModelBundle:
    """Fit with early stopping on the validation snapshot, then calibrate on it (classifiers).

    With `refit` (a bundle fitted that way), fit again on `train` alone for the rounds `refit` chose and keep
    its encoder and calibrator: how a model that has chosen its size on a holdout is refitted on all rows.
    """
    encoder = refit.encoder if refit else CategoryEncoder(spec.categorical).fit(train.features)
    bundle = ModelBundle(kind=kind, spec=spec, encoder=encoder, booster=None)  # type: ignore[arg-type]
    x_train, x_valid = bundle.matrix(train.features), bundle.matrix(valid.features)
    params = lightgbm_params(kind, config, spec)
    rounds = refit.booster.current_iteration() if refit else None
    if kind != "clv":
        y_train, y_valid = train.labels.to_numpy(dtype=float), valid.labels.to_numpy(dtype=float)
        bundle.booster = _train_booster(params, x_train, y_train, (x_valid, y_valid, None, None), config, spec, rounds)
        if refit:
            bundle.calibrator, bundle.season_transfer = refit.calibrator, refit.season_transfer
        else:
            margin = bundle.booster.predict(x_valid, raw_score=True, num_threads=config.lightgbm.num_threads)
            bundle.calibrator = Calibrator().fit(margin, y_valid)
            if kind == "churn":
                bundle.season_transfer = season_transfer(spec, config.horizon(kind), valid.cutoffs.iloc[0])
        return bundle
    # CLV = expected orders x expected value per order, both with a log link, so reasons add up. Orders are
    # Poisson with the log of each window's observed share as offset: a window cut short by the cutoff
    # still counts, at its exposure, and the booster predicts the whole horizon.
    valid_counts = (x_valid, valid.counts.to_numpy(dtype=float), None, np.log(valid.exposure.to_numpy()))
    bundle.booster = _train_booster(
        params,
        x_train,
        train.counts.to_numpy(dtype=float),
        valid_counts,
        config,
        spec,
        rounds,
        offset=np.log(train.exposure.to_numpy()),
    )
    has_t, value_t, weight_t = _order_values(train)
    has_v, value_v, weight_v = _order_values(valid)
    bundle.value_booster = _train_booster(
        value_params(config, spec),
        x_train[has_t],
        value_t,
        (x_valid[has_v], value_v, weight_v, None),
        config,
        spec,
        refit.value_booster.current_iteration() if refit else None,
        weight=weight_t,
    )
    return bundle


def baseline_prediction(kind: str, train: Snapshot, valid: Snapshot) -> np.ndarray:
    """The simple heuristic each model must beat: stage x source rate, or recency/frequency bands."""
    if kind == "conversion":
        keys = [c for c in ("current_stage", "source_channel") if c in train.features.columns]
        return rate_baseline(train.features, train.labels, valid.features, keys)
    if kind == "clv":  # per whole horizon, then at each holdout row's exposure
        annual = train.labels.clip(lower=0) / train.exposure
        return recency_frequency_baseline(train.features, annual, valid.features) * valid.exposure.to_numpy()
    return recency_frequency_baseline(train.features, train.labels, valid.features)


def evaluate_result(kind: str, bundle: ModelBundle, train: Snapshot, valid: Snapshot) -> ModelResult:
    """Holdout figures of the model and of its baseline (CLV: over the part of the horizon the holdout saw)."""
    pred = bundle.predict(valid.features) * _exposure(valid)
    base = baseline_prediction(kind, train, valid)
    y = valid.labels.to_numpy(dtype=float)
    score = regression_metrics if kind == "clv" else classification_metrics
    return ModelResult(kind, bundle, score(y, pred), score(y, base), valid, pred, base, len(train.labels))


def _exposure(snap: Snapshot) -> np.ndarray | float:
    """The share of the horizon each row's label window observed (1 where windows are whole)."""
    return 1.0 if snap.exposure is None else snap.exposure.to_numpy()


def add_serving_metadata(result: ModelResult, config: TrainConfig) -> None:
    """Tier thresholds and value deciles from the holdout predictions, stored with the bundle."""
    pred, meta = result.holdout_prediction, result.bundle.metadata
    if result.kind == "conversion":
        shares = config.conversion_tiers
        meta["tier_thresholds"] = [float(np.quantile(pred, 1 - s)) for s in shares]
    elif result.kind == "churn":
        meta["risk_thresholds"] = list(config.churn_risk_thresholds)
    else:
        whole = pred / _exposure(result.holdout)  # deciles of the whole-horizon values the model serves
        meta["value_deciles"] = [float(q) for q in np.quantile(whole, np.linspace(0.1, 0.9, 9))]


def train_models(
    tables: dict, as_of: pd.Timestamp, config: TrainConfig, kinds=MODEL_KINDS, progress=None
) -> TrainOutcome:
    """Build snapshots, fit and evaluate each model; skip (with the reason) those the data cannot support."""
    start = data_start(tables)
    spec = fit_feature_spec(tables, as_of, funnel=config.funnel)
    outcome = TrainOutcome(
        as_of=as_of, spec=spec, fingerprint=fingerprint(tables), data_window=(str(start), str(as_of))
    )
    cache = FeatureCache(tables, spec)
    for kind in kinds:
        horizon = config.horizon(kind)
        # CLV learns from windows cut short at the validation cutoff (see `censored_cutoffs`); the
        # classifiers' windows are short enough to close whole before it.
        cut = kind == "clv"
        validation, train_cutoffs = (censored_cutoffs if cut else snapshot_cutoffs)(
            as_of,
            horizon,
            start,
            config.snapshot_count(kind),
            config.snapshot_step_days,
            config.min_history_days,
        )
        try:
            check_sufficiency(kind, config, tables, as_of, train_cutoffs, start)
            train = snapshot(kind, tables, train_cutoffs, horizon, cache, validation if cut else None, spec.funnel)
            valid = snapshot(kind, tables, [validation], horizon, cache, as_of if cut else None, spec.funnel)
            check_positives(kind, config, train, valid)
        except InsufficientData as why:
            outcome.skipped[kind] = str(why)
            log.warning("%s", why)
            continue
        bundle = fit_bundle(kind, train, valid, spec, config)
        result = evaluate_result(kind, bundle, train, valid)  # holdout figures of the fit that never saw it
        if kind in config.refit_on_holdout:
            # Every row again, windows now observed up to the training cutoff, for the rounds chosen above.
            rows = snapshot(
                kind, tables, [validation, *train_cutoffs], horizon, cache, as_of if cut else None, spec.funnel
            )
            result.bundle = bundle = fit_bundle(kind, rows, valid, spec, config, refit=bundle)
        bundle.metadata = {
            "kind": kind,
            "registered_name": REGISTERED_NAMES[kind],
            "as_of": str(as_of),
            "horizon_days": horizon,
            "validation_cutoff": str(validation),
            "holdout_window_days": int(min(horizon, (as_of - validation).days)),
            "training_cutoffs": [str(t) for t in train_cutoffs],
            "train_rows": len(train.labels),
            "holdout_rows": len(valid.labels),
            "best_iteration": int(bundle.booster.current_iteration()),
            "refit_on_holdout": kind in config.refit_on_holdout,
            "holdout_metrics": result.metrics,
            "baseline_metrics": result.baseline,
            "data_window": list(outcome.data_window),
            "data_fingerprint": outcome.fingerprint,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        add_serving_metadata(result, config)
        outcome.results[kind] = result
        if progress:
            progress(kind)
    return outcome


def holdout_figure(bundle: ModelBundle, tables: dict, result: ModelResult) -> float:
    """A (possibly older) model's headline figure on this run's holdout rows and labels."""
    from training.features import build_features

    cutoff = pd.Timestamp(result.bundle.metadata["validation_cutoff"])
    features = build_features(tables, cutoff, bundle.spec).reindex(result.holdout.labels.index)
    pred = bundle.predict(features) * _exposure(result.holdout)
    y = result.holdout.labels.to_numpy(dtype=float)
    metrics = regression_metrics(y, pred) if result.kind == "clv" else classification_metrics(y, pred)
    return metrics[HEADLINE[result.kind]]


def _plots(result: ModelResult, out: Path) -> list[Path]:
    """Write the model's evaluation plots into `out`."""
    from training import plots

    y = result.holdout.labels.to_numpy(dtype=float)
    pred, base = result.holdout_prediction, result.baseline_prediction
    bundle = result.bundle
    x = bundle.matrix(result.holdout.features.iloc[:5000])
    shap = np.abs(bundle.contributions(x)).mean(axis=0)
    files = [plots.importance_plot(list(bundle.spec.columns), shap, out / "shap_importance.png")]
    curves = {"model": pred, "baseline": base}
    if result.kind == "clv":
        files += [
            plots.clv_decile_plot(y, pred, out / "clv_by_decile.png"),
            plots.gains_plot(np.maximum(y, 0), curves, out / "cumulative_gains.png"),
        ]
    else:
        files += [
            plots.roc_plot(y, curves, out / "roc.png"),
            plots.reliability_plot(y, pred, out / "reliability.png"),
            plots.gains_plot(y, curves, out / "cumulative_gains.png"),
        ]
    return files


def _flatten(prefix: str, values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(f"{prefix}{key}.", value))
        else:
            out[f"{prefix}{key}"] = value if not isinstance(value, list | tuple) else ",".join(map(str, value))
    return out


def log_and_register(
    outcome: TrainOutcome, tables: dict, config: TrainConfig, promote: str, data_dir: str, extra_logging=None
) -> dict[str, dict]:
    """Log one parent run with a child run per model; register, alias and maybe promote each model."""
    import mlflow
    from mlflow import MlflowClient

    from training.pyfunc import log_bundle
    from training.registry import (
        CHALLENGER,
        CHAMPION,
        alias_version,
        configure,
        ensure_experiment,
        load_bundle,
    )

    configure()
    # Set by `mlflow run`: that run becomes the parent. Cleared while we log, or every nested
    # start_run would resume it instead of opening a child run.
    launched = os.environ.pop("MLFLOW_RUN_ID", None)
    experiment_id = mlflow.get_run(launched).info.experiment_id if launched else ensure_experiment()
    client = MlflowClient()
    decisions: dict[str, dict] = {}
    parent_run = (
        mlflow.start_run(run_id=launched)
        if launched
        else mlflow.start_run(experiment_id=experiment_id, run_name=f"train as of {outcome.as_of.date()}")
    )
    with parent_run as parent:
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
        for kind, reason in outcome.skipped.items():
            mlflow.set_tag(f"skipped.{kind}", reason)
        for kind, result in outcome.results.items():
            name = REGISTERED_NAMES[kind]
            with (
                mlflow.start_run(experiment_id=experiment_id, run_name=kind, nested=True) as child,
                tempfile.TemporaryDirectory() as tmp,
            ):
                meta = result.bundle.metadata
                mlflow.log_params(
                    {
                        "kind": kind,
                        "horizon_days": meta["horizon_days"],
                        "validation_cutoff": meta["validation_cutoff"],
                        "training_cutoffs": ",".join(meta["training_cutoffs"]),
                        "train_rows": meta["train_rows"],
                        "holdout_rows": meta["holdout_rows"],
                        "best_iteration": meta["best_iteration"],
                        "features": len(result.bundle.spec.columns),
                        "data_fingerprint": outcome.fingerprint,
                        "as_of": str(outcome.as_of),
                        **_flatten("lgb.", lightgbm_params(kind, config, outcome.spec)),
                    }
                )
                mlflow.log_metrics({f"holdout_{k}": v for k, v in result.metrics.items() if np.isfinite(v)})
                mlflow.log_metrics({f"baseline_{k}": v for k, v in result.baseline.items() if np.isfinite(v)})
                for path in _plots(result, Path(tmp)):
                    mlflow.log_artifact(str(path), artifact_path="plots")
                example = result.holdout.features.head(5)
                info = log_bundle(result.bundle, tmp, name, example)
                version = str(info.registered_model_version)
                client.set_registered_model_alias(name, CHALLENGER, version)
                decision = _promotion(name, version, result, tables, promote, alias_version, load_bundle)
                if decision["promoted"]:
                    client.set_registered_model_alias(name, CHAMPION, version)
                mlflow.log_params({f"promotion.{k}": v for k, v in decision.items()})
                mlflow.set_tags(
                    {"promotion": "champion" if decision["promoted"] else "challenger", "registered_version": version}
                )
                decisions[kind] = {**decision, "version": version, "run_id": child.info.run_id}
        if extra_logging:
            extra_logging(outcome, tables)
        mlflow.set_tag("decisions", str({k: v["promoted"] for k, v in decisions.items()}))
        for d in decisions.values():
            d["parent_run_id"] = parent.info.run_id
    return decisions


def _promotion(name, version, result, tables, promote, alias_version, load_bundle) -> dict:
    """Decide whether the new version becomes champion: `always`, `never`, or `auto` (not worse on holdout)."""
    new_figure = result.metrics[HEADLINE[result.kind]]
    current = alias_version(name, "champion")
    decision = {
        "policy": promote,
        "metric": HEADLINE[result.kind],
        "new_figure": round(new_figure, 6),
        "champion_version": current.version if current else "none",
        "champion_figure": "none",
    }
    if promote == "never":
        return {**decision, "promoted": False, "reason": "--promote never"}
    if promote == "always" or current is None:
        reason = "--promote always" if promote == "always" else "no champion yet"
        return {**decision, "promoted": True, "reason": reason}
    champion, _ = load_bundle(name, version=current.version)
    if pd.Timestamp(champion.metadata.get("as_of", "1970-01-01")) > pd.Timestamp(result.holdout.cutoffs.iloc[0]):
        # The champion learnt from labels inside this holdout's window: scoring it there would flatter it.
        # Its own holdout figure (of the fit that had not seen that holdout) stands in.
        old_figure = float(champion.metadata["holdout_metrics"][HEADLINE[result.kind]])
        decision["champion_figure_source"] = "its own holdout (it has seen this one)"
    else:
        old_figure = holdout_figure(champion, tables, result)
        decision["champion_figure_source"] = "this holdout"
    decision["champion_figure"] = round(old_figure, 6)
    promoted = bool(new_figure >= old_figure - 1e-9)
    reason = "not worse than the champion on the same holdout" if promoted else "worse than the champion"
    return {**decision, "promoted": promoted, "reason": reason}


@dataclass
class TrainSummary:
    """What `crm-score train` reports: the outcome and each model's registry decision."""

    outcome: TrainOutcome
    decisions: dict[str, dict]

    def table(self):
        """A rich table: model, holdout figure vs baseline, version and promotion."""
        from rich.table import Table

        table = Table(title=f"crm-scoring models trained as of {self.outcome.as_of.date()}")
        for col in ("model", "rows (train/holdout)", "metric", "model", "baseline", "version", "champion?"):
            table.add_column(col)
        for kind, result in self.outcome.results.items():
            metric = HEADLINE[kind]
            d = self.decisions.get(kind, {})
            table.add_row(
                REGISTERED_NAMES[kind],
                f"{result.train_rows:,}/{len(result.holdout.labels):,}",
                metric,
                f"{result.metrics[metric]:.3f}",
                f"{result.baseline[metric]:.3f}",
                str(d.get("version", "-")),
                f"yes ({d.get('reason')})" if d.get("promoted") else f"no ({d.get('reason', '-')})",
            )
        for kind, reason in self.outcome.skipped.items():
            table.add_row(REGISTERED_NAMES[kind], "-", "skipped", "-", "-", "-", reason[:60])
        return table


def run_training(
    tables: dict,
    as_of: pd.Timestamp,
    config: TrainConfig,
    promote: str = "auto",
    data_dir: str = "",
    kinds=MODEL_KINDS,
    extra_logging=None,
) -> TrainSummary:
    """Train every model the data supports, then log, register and promote them in MLflow.

    `extra_logging(outcome, tables)` runs inside the parent run (the pipeline logs its channel report there).
    """
    import sys

    from rich.progress import Progress

    with Progress(disable=not sys.stderr.isatty(), transient=True) as bar:
        task = bar.add_task("training", total=len(kinds))
        outcome = train_models(tables, as_of, config, kinds, progress=lambda kind: bar.advance(task))
    decisions = (
        log_and_register(outcome, tables, config, promote, data_dir, extra_logging=extra_logging)
        if outcome.results
        else {}
    )
    return TrainSummary(outcome, decisions)
