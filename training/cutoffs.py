"""Every boundary in time of one model's training, named in one record and computed by one pure function.

`as_of` is the training cutoff and is exclusive: no row at or after it is read, for features or labels. A
snapshot at cutoff `t` reads features from rows strictly before `t` and labels from the window [t, t + horizon),
stopped at a label end when one is given. The newest snapshot (the validation cutoff) is the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from training.config import TrainConfig

# Kinds that learn from label windows cut short at the validation cutoff: CLV's year-long windows would
# otherwise close too long before the training cutoff to leave recent, grown-up customers among its rows.
CENSORED_KINDS = frozenset({"clv"})
# A censored kind's holdout window: at most this many days, ending at `as_of` (CLV sees its year's first 90).
HOLDOUT_WINDOW_CAP_DAYS = 90
# A whole-window kind's gap from the validation cutoff back to its first training cutoff: the horizon, at most
# this many days, so that training windows barely overlap the holdout's.
TRAINING_GAP_CAP_DAYS = 90


@dataclass(frozen=True, kw_only=True)
class CutoffPlan:
    """One model's cutoffs and label ends; every window is [cutoff, cutoff + horizon), cut at its end if given."""

    kind: str
    as_of: pd.Timestamp  # the training cutoff (exclusive): every label window closes by it
    data_start: pd.Timestamp  # the first day of data
    horizon_days: int  # the length of a whole label window
    validation: pd.Timestamp  # the holdout's one cutoff, the newest snapshot
    training: tuple[pd.Timestamp, ...]  # newest first, all before `validation`, none within min_history_days of start
    train_label_end: pd.Timestamp | None  # where training windows stop (exclusive); None: whole windows
    holdout_label_end: pd.Timestamp | None  # where the holdout's and the refit's windows stop; None: whole windows

    @property
    def holdout_window_days(self) -> int:
        """Days of the holdout's label window observed before `as_of`."""
        return int(min(self.horizon_days, (self.as_of - self.validation).days))

    @property
    def refit_cutoffs(self) -> tuple[pd.Timestamp, ...]:
        """The cutoffs of a refit on every row: the validation cutoff, then the training cutoffs."""
        return (self.validation, *self.training)


def plan_cutoffs(kind: str, *, as_of: pd.Timestamp, data_start: pd.Timestamp, config: TrainConfig) -> CutoffPlan:
    """The cutoffs of `kind` trained as of `as_of` (exclusive) on data from `data_start`.

    Whole-window kinds: the validation cutoff is `as_of - horizon`, so its window closes at `as_of`; training
    cutoffs start the gap (horizon, capped) before it. Censored kinds: the validation cutoff is `as_of` minus
    the horizon capped at the holdout cap, training cutoffs start a step before it, and their windows stop at
    it, so every training row sees only the past of the holdout window. Training cutoffs step back by
    `snapshot_step_days`, `snapshot_count(kind)` of them, none within `min_history_days` of the data start.
    """
    horizon = config.horizon(kind)
    censored = kind in CENSORED_KINDS
    if censored:
        validation = as_of - pd.Timedelta(days=min(horizon, HOLDOUT_WINDOW_CAP_DAYS))
        first = validation - pd.Timedelta(days=config.snapshot_step_days)
    else:
        validation = as_of - pd.Timedelta(days=horizon)
        first = validation - pd.Timedelta(days=min(horizon, TRAINING_GAP_CAP_DAYS))
    earliest = data_start + pd.Timedelta(days=config.min_history_days)
    steps = (first - pd.Timedelta(days=config.snapshot_step_days * k) for k in range(config.snapshot_count(kind)))
    return CutoffPlan(
        kind=kind,
        as_of=as_of,
        data_start=data_start,
        horizon_days=horizon,
        validation=validation,
        training=tuple(t for t in steps if t >= earliest),
        train_label_end=validation if censored else None,
        holdout_label_end=as_of if censored else None,
    )
