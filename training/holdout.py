"""A model's figures on its holdout (the newest snapshot), beside the simple baseline it must beat.

CLV's holdout windows may be cut short at the training cutoff: its predictions are scaled to the share of the
horizon each row observed, so model, baseline and labels all cover the same days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.bundle import ModelBundle
from training.dataset import Snapshot
from training.evaluate import (
    HEADLINE,
    classification_metrics,
    rate_baseline,
    recency_frequency_baseline,
    regression_metrics,
)
from training.features import build_features


@dataclass(frozen=True, kw_only=True)
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


def exposure(snap: Snapshot) -> np.ndarray | float:
    """The share of the horizon each row's label window observed (1 where windows are whole)."""
    return 1.0 if snap.exposure is None else snap.exposure.to_numpy()


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
    pred = bundle.predict(valid.features) * exposure(valid)
    base = baseline_prediction(kind, train, valid)
    y = valid.labels.to_numpy(dtype=float)
    score = regression_metrics if kind == "clv" else classification_metrics
    return ModelResult(
        kind=kind,
        bundle=bundle,
        metrics=score(y, pred),
        baseline=score(y, base),
        holdout=valid,
        holdout_prediction=pred,
        baseline_prediction=base,
        train_rows=len(train.labels),
    )


def holdout_figure(bundle: ModelBundle, tables: dict, result: ModelResult) -> float:
    """A (possibly older) model's headline figure on this run's holdout rows and labels."""
    cutoff = pd.Timestamp(result.bundle.metadata.validation_cutoff)
    features = build_features(tables, cutoff, bundle.spec).reindex(result.holdout.labels.index)
    pred = bundle.predict(features) * exposure(result.holdout)
    y = result.holdout.labels.to_numpy(dtype=float)
    metrics = regression_metrics(y, pred) if result.kind == "clv" else classification_metrics(y, pred)
    return metrics[HEADLINE[result.kind]]
