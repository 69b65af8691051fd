"""What a trained model records about itself: its target, time boundaries, rows, holdout figures and serving rules.

Stored as JSON next to the model's boosters (see `training.artifact`); read by attribute, never by string key.
Times are ISO strings of naive UTC timestamps; `as_of` is the exclusive training cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ModelMetadata:
    """One model's record: how it was trained, how it did on its holdout, and the thresholds serving applies."""

    kind: str  # conversion | churn | clv
    registered_name: str
    as_of: str  # the training cutoff (exclusive)
    horizon_days: int  # the label window the model predicts over
    validation_cutoff: str  # the holdout snapshot's cutoff
    holdout_window_days: int  # how much of the horizon the holdout's labels observed
    training_cutoffs: tuple[str, ...]
    train_rows: int
    holdout_rows: int
    best_iteration: int
    refit_on_holdout: bool
    holdout_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    data_window: tuple[str, str]  # (first event, training cutoff)
    data_fingerprint: str
    trained_at: str  # ISO time in UTC, to the second
    tier_thresholds: tuple[float, ...] = ()  # conversion: probability at the top share of each tier (A, B, C)
    risk_thresholds: tuple[float, ...] = ()  # churn: probabilities of medium and high risk
    value_deciles: tuple[float, ...] = ()  # CLV: the nine cut points of the holdout's whole-horizon values
    # "lightgbm": the full model; "fallback": the small calibrated model trained when the data is too thin for it
    model_kind: str = "lightgbm"
    version: str | None = None  # the registry version, set when loaded from the registry
    champion_set: str | None = None  # the training that put the champions in place, set when loaded as one

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for tuples)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, dict) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """The record stored by `to_dict`."""
        sequences = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
        return cls(**{k: tuple(v) if k in sequences else v for k, v in data.items()})
