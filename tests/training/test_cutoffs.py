"""The cutoff plan: hand-computed cutoffs and label ends of a small config, and no window past `as_of`."""

from __future__ import annotations

import pandas as pd
import pytest

from training.config import MODEL_KINDS, TrainConfig
from training.cutoffs import plan_cutoffs

AS_OF = pd.Timestamp("2024-12-31")
SMALL = TrainConfig(
    conversion_horizon_days=30,
    churn_horizon_days=120,
    clv_horizon_days=365,
    conversion_snapshots=3,
    snapshots=2,
    clv_snapshots=4,
    snapshot_step_days=30,
    min_history_days=60,
)


def ts(*days: str) -> tuple[pd.Timestamp, ...]:
    return tuple(pd.Timestamp(d) for d in days)


@pytest.mark.parametrize(
    "kind, validation, training, train_end, holdout_end, holdout_days",
    [
        # 30-day windows: the holdout's closes at as_of, training starts one horizon before it.
        ("conversion", "2024-12-01", ts("2024-11-01", "2024-10-02", "2024-09-02"), None, None, 30),
        # 120-day windows: the gap to the first training cutoff is capped at 90 days.
        ("churn", "2024-09-02", ts("2024-06-04", "2024-05-05"), None, None, 120),
        # A year cut short: the holdout sees its first 90 days, training windows stop at the validation cutoff.
        ("clv", "2024-10-02", ts("2024-09-02", "2024-08-03", "2024-07-04", "2024-06-04"), "2024-10-02", AS_OF, 90),
    ],
    ids=["conversion 30d", "churn 120d", "clv 365d"],
)
def test_plan_names_hand_computed_cutoffs_and_label_ends(
    kind, validation, training, train_end, holdout_end, holdout_days
):
    plan = plan_cutoffs(kind, as_of=AS_OF, data_start=pd.Timestamp("2024-01-01"), config=SMALL)
    assert plan.validation == pd.Timestamp(validation)
    assert plan.training == training
    assert plan.train_label_end == (None if train_end is None else pd.Timestamp(train_end))
    assert plan.holdout_label_end == holdout_end
    assert plan.holdout_window_days == holdout_days
    assert plan.refit_cutoffs == (pd.Timestamp(validation), *training)
    assert (plan.as_of, plan.horizon_days) == (AS_OF, SMALL.horizon(kind))


def test_training_cutoffs_keep_the_minimum_history_after_the_data_start():
    late = pd.Timestamp("2024-07-01")  # cutoffs from 2024-08-30 on
    plans = {kind: plan_cutoffs(kind, as_of=AS_OF, data_start=late, config=SMALL) for kind in MODEL_KINDS}
    assert plans["conversion"].training == ts("2024-11-01", "2024-10-02", "2024-09-02")
    assert plans["churn"].training == ()
    assert plans["clv"].training == ts("2024-09-02")


def test_a_short_clv_horizon_closes_its_holdout_window_at_as_of():
    plan = plan_cutoffs(
        "clv", as_of=AS_OF, data_start=pd.Timestamp("2023-01-01"), config=TrainConfig(clv_horizon_days=30)
    )
    assert plan.validation == pd.Timestamp("2024-12-01")
    assert plan.holdout_window_days == 30


@pytest.mark.parametrize("horizon", [7, 30, 90, 91, 180, 365, 500])
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_no_label_window_reaches_as_of_and_training_precedes_the_holdout(kind, horizon):
    config = TrainConfig(conversion_horizon_days=horizon, churn_horizon_days=horizon, clv_horizon_days=horizon)
    plan = plan_cutoffs(kind, as_of=AS_OF, data_start=pd.Timestamp("2020-01-01"), config=config)
    window = pd.Timedelta(days=horizon)
    holdout_end = plan.validation + window if plan.holdout_label_end is None else plan.holdout_label_end
    assert min(holdout_end, plan.validation + window) == AS_OF
    for t in plan.training:
        end = t + window if plan.train_label_end is None else min(t + window, plan.train_label_end)
        assert t < plan.validation and end <= AS_OF


def plan(kind: str, horizon: int, start: str, count: int) -> object:
    config = TrainConfig(
        conversion_horizon_days=horizon,
        churn_horizon_days=horizon,
        clv_horizon_days=horizon,
        snapshots=count,
        conversion_snapshots=count,
        clv_snapshots=count,
        snapshot_step_days=30,
        min_history_days=60,
    )
    return plan_cutoffs(kind, as_of=T, data_start=pd.Timestamp(start), config=config)


T = pd.Timestamp("2024-06-01")


def test_censored_cutoffs_keep_every_window_before_the_validation_cutoff():
    long = plan("clv", 365, "2023-01-01", count=30)
    assert long.validation == T - pd.Timedelta(days=90)
    train = list(long.training)
    assert train[0] == long.validation - pd.Timedelta(days=30) and train == sorted(train, reverse=True)
    assert min(train) >= pd.Timestamp("2023-03-02") and len(train) == 12  # 2024-03-03 back to 2023-03-09
    # A short horizon closes whole before the validation cutoff.
    short = plan("clv", 30, "2023-01-01", count=3)
    assert short.validation == T - pd.Timedelta(days=30)
    assert all(t + pd.Timedelta(days=30) <= short.validation for t in short.training)


def test_snapshot_windows_close_by_the_training_cutoff():
    churn = plan("churn", 90, "2023-01-01", count=20)
    assert churn.validation == T - pd.Timedelta(days=90)
    assert churn.training[0] == churn.validation - pd.Timedelta(days=90)
    assert all(t + pd.Timedelta(days=90) <= churn.validation for t in churn.training)
    assert min(churn.training) >= pd.Timestamp("2023-01-01") + pd.Timedelta(days=60)
    assert list(churn.training) == sorted(churn.training, reverse=True)


def test_snapshots_are_empty_when_the_history_is_too_short():
    assert plan("churn", 365, "2024-01-01", count=12).training == ()
