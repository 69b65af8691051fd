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
from training.cutoffs import CENSORED_KINDS, TRAINING_GAP_CAP_DAYS, CutoffPlan
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
    """Raise InsufficientData when a model's input tables or label windows are missing."""
    missing = [t for t in REQUIRED_TABLES[kind] if tables.get(t) is None or tables[t].empty]
    if missing:
        raise InsufficientData(f"{kind}: skipped, it needs the {', '.join(missing)} table(s) and the data has none")
    horizon = pd.Timedelta(days=plan.horizon_days)
    # CLV learns from windows cut short at its validation cutoff, but needs one whole window among them:
    # the horizon's length is then learnt, not extrapolated from short windows.
    whole = [t for t in plan.training if t + horizon <= plan.validation]
    if not (whole if kind in CENSORED_KINDS else plan.training):
        raise InsufficientData(_no_window_message(kind, plan, config))


def _no_window_message(kind: str, plan: CutoffPlan, config: TrainConfig) -> str:
    """Why no training snapshot fits, and what is needed: more history, or (CLV) more snapshots back in time.

    Training cutoffs step back `snapshot_step_days` from the first one, `snapshot_count(kind)` of them; a censored
    kind (CLV) needs one whose whole window closes by the validation cutoff, a whole-window kind any at all.
    """
    step = pd.Timedelta(days=config.snapshot_step_days)
    first = plan.training[0] if plan.training else None
    if first is None:  # the first cutoff is as in `plan_cutoffs`, whether or not the history reaches it
        gap = config.snapshot_step_days if kind in CENSORED_KINDS else min(plan.horizon_days, TRAINING_GAP_CAP_DAYS)
        first = plan.validation - pd.Timedelta(days=gap)
    latest = plan.validation - pd.Timedelta(days=plan.horizon_days) if kind in CENSORED_KINDS else first
    steps = max(0, -(-(first - latest) // step))  # steps back from the first cutoff to a usable one
    cutoff = first - step * steps
    history = (plan.as_of - cutoff).days + config.min_history_days
    earliest = plan.data_start + pd.Timedelta(days=config.min_history_days)
    window = f"{kind}: skipped, its {plan.horizon_days}-day label windows cannot fit before {plan.as_of.date()}"
    if kind in CENSORED_KINDS and steps + 1 > config.snapshot_count(kind):
        return (
            f"{window}: one training snapshot's whole window must close by the validation cutoff "
            f"{plan.validation.date()}, so the snapshots, {config.snapshot_step_days} days apart, must reach back to "
            f"{cutoff.date()}: {steps + 1} of them are needed and the setting {kind}_snapshots allows "
            f"{config.snapshot_count(kind)} (raise it, or pass a shorter --{kind}-horizon-days)"
            + ("" if cutoff >= earliest else f"; the data, starting {plan.data_start.date()}, is also short of it")
        )
    return (
        f"{window}: the data starts {plan.data_start.date()}, and a training snapshot at {cutoff.date()}, "
        f"{config.min_history_days} days into the data, needs at least {history} days of history before "
        f"{plan.as_of.date()} (or pass a shorter --{kind}-horizon-days)"
    )


def check_positives(kind: str, config: TrainConfig, train: Snapshot, valid: Snapshot) -> str | None:
    """Which model the positive examples justify: None for the full model, else why the fallback is trained.

    The rule: fewer than `config.min_positives` positives in the training or the validation snapshots and the
    full LightGBM model is not justified, so the small fallback model is trained; fewer than
    `config.fallback_min_positives` (or every example positive) and InsufficientData is raised: nothing is trained.
    """
    what = "customer(s) with later orders" if kind == "clv" else "positive example(s)"
    counts = {part: int((snap.labels > 0).sum()) for part, snap in (("training", train), ("validation", valid))}
    floor = min(config.fallback_min_positives, config.min_positives)
    for part, snap in (("training", train), ("validation", valid)):
        if counts[part] < floor:
            raise InsufficientData(
                f"{kind}: skipped, only {counts[part]} {what} in the {part} snapshots; even the fallback model needs "
                f"at least {floor} (setting fallback_min_positives) and the full model {config.min_positives} "
                f"(setting min_positives); more history or more customers would be needed"
            )
        if kind != "clv" and counts[part] == len(snap.labels):
            raise InsufficientData(f"{kind}: skipped, every {part} example is positive; nothing to learn from")
    if min(counts.values()) >= config.min_positives:
        return None
    return (
        f"{kind}: fallback model, only {counts['training']} {what} in the training and {counts['validation']} in "
        f"the validation snapshots; the full LightGBM model needs {config.min_positives} in each "
        f"(setting min_positives)"
    )
