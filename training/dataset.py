"""Point-in-time training sets: features and labels at several snapshot cutoffs, split by time.

Every snapshot reads only rows before its cutoff for features and only its label window for labels; the
windows of all snapshots close by the training cutoff, and the newest snapshot is the validation set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from crmdata.populations import eligible_ids
from training.config import TrainConfig
from training.cutoffs import CENSORED_KINDS, HOLDOUT_WINDOW_CAP_DAYS, CutoffPlan
from training.features import FeatureSpec, build_features
from training.labels import (
    make_churn_labels,
    make_clv_labels,
    make_clv_order_counts,
    make_conversion_labels,
    window_exposure,
)

log = logging.getLogger(__name__)

REQUIRED_TABLES = {"conversion": ("funnel_events",), "churn": ("orders",), "clv": ("orders",)}


class InsufficientData(Exception):
    """A model cannot be trained on this data; the message says why and what data would be needed."""


@dataclass
class Snapshot:
    """Features, labels and cutoff of one model's rows at one or more cutoffs."""

    features: pd.DataFrame
    labels: pd.Series
    cutoffs: pd.Series  # the cutoff of each row
    counts: pd.Series | None = None  # CLV only: orders in each row's window (the labels are their net value)
    exposure: pd.Series | None = None  # CLV only: the share of the horizon each row's window observed


def labels_at(
    kind: str,
    tables: dict,
    as_of: pd.Timestamp,
    horizon: int,
    end: pd.Timestamp | None = None,
    funnel: Funnel = DEFAULT_FUNNEL,
) -> pd.Series:
    """The target of `kind` for its eligible rows at `as_of` (CLV's window cut at `end` if given)."""
    events, orders = tables.get("funnel_events"), tables.get("orders")
    if kind == "conversion":
        return make_conversion_labels(events, orders, as_of, horizon, funnel)
    if kind == "churn":
        return make_churn_labels(orders, as_of, horizon)
    return make_clv_labels(orders, eligible_ids("clv", tables, as_of, funnel), as_of, horizon, end)


class FeatureCache:
    """Feature frames by cutoff, so that models sharing a cutoff build its features once."""

    def __init__(self, tables: dict, spec: FeatureSpec):
        self.tables, self.spec, self._frames = tables, spec, {}

    def __call__(self, as_of: pd.Timestamp) -> pd.DataFrame:
        if as_of not in self._frames:
            self._frames[as_of] = build_features(self.tables, as_of, self.spec)
        return self._frames[as_of]


def snapshot(
    kind: str,
    tables: dict,
    cutoffs: list[pd.Timestamp],
    horizon: int,
    features: Callable[[pd.Timestamp], pd.DataFrame],
    end: pd.Timestamp | None = None,
    funnel: Funnel = DEFAULT_FUNNEL,
) -> Snapshot:
    """Stack the features and labels of `kind` at each cutoff (CLV's windows cut at `end` if given)."""
    frames, labels, stamps, counts, exposure = [], [], [], [], []
    for cutoff in cutoffs:
        y = labels_at(kind, tables, cutoff, horizon, end, funnel)
        x = features(cutoff).reindex(y.index)
        frames.append(x)
        labels.append(y)
        stamps.append(pd.Series(cutoff, index=y.index))
        if kind == "clv":
            counts.append(make_clv_order_counts(tables.get("orders"), y.index, cutoff, horizon, end))
            exposure.append(pd.Series(window_exposure(cutoff, horizon, end), index=y.index))
    if not frames:
        return Snapshot(pd.DataFrame(), pd.Series(dtype=float), pd.Series(dtype="datetime64[ns]"))
    if kind != "clv":
        return Snapshot(pd.concat(frames), pd.concat(labels), pd.concat(stamps))
    return Snapshot(pd.concat(frames), pd.concat(labels), pd.concat(stamps), pd.concat(counts), pd.concat(exposure))


def check_sufficiency(kind: str, plan: CutoffPlan, config: TrainConfig, tables: dict) -> None:
    """Raise InsufficientData when a model's inputs, label windows or positives are missing."""
    missing = [t for t in REQUIRED_TABLES[kind] if tables.get(t) is None or tables[t].empty]
    if missing:
        raise InsufficientData(f"{kind}: skipped, it needs the {', '.join(missing)} table(s) and the data has none")
    horizon = pd.Timedelta(days=plan.horizon_days)
    # CLV learns from windows cut short at its validation cutoff, but needs one whole window among them:
    # the horizon's length is then learnt, not extrapolated from short windows.
    whole = [t for t in plan.training if t + horizon <= plan.validation]
    if not (whole if kind in CENSORED_KINDS else plan.training):
        need = min(plan.horizon_days, HOLDOUT_WINDOW_CAP_DAYS) + plan.horizon_days + config.min_history_days
        raise InsufficientData(
            f"{kind}: skipped, its {plan.horizon_days}-day label windows cannot fit before {plan.as_of.date()}: the "
            f"data starts {plan.data_start.date()}, and a validation window plus one training snapshot need at least "
            f"{need} days of history (or pass a shorter --{kind}-horizon-days)"
        )


def check_positives(kind: str, config: TrainConfig, train: Snapshot, valid: Snapshot) -> None:
    """Raise InsufficientData when the training or validation rows hold too few positive examples."""
    for part, snap in (("training", train), ("validation", valid)):
        positives = int((snap.labels > 0).sum())
        if kind != "clv" and positives < config.min_positives:
            raise InsufficientData(
                f"{kind}: skipped, only {positives} positive example(s) in the {part} snapshots "
                f"(at least {config.min_positives} needed); more history or more customers would be needed"
            )
        if kind == "clv" and positives < config.min_positives:
            raise InsufficientData(
                f"{kind}: skipped, only {positives} customer(s) with later orders in the {part} snapshots "
                f"(at least {config.min_positives} needed)"
            )
        if kind != "clv" and positives == len(snap.labels):
            raise InsufficientData(f"{kind}: skipped, every {part} example is positive; nothing to learn from")
