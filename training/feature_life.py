"""The life families: engagement as a lead (in the funnel stages, before the first order) and as a customer
(since the first order). They read what the channel, funnel and purchase families found, through `Journey`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from training.feature_arrays import DAY_NS, Events
from training.feature_funnel import FunnelEvents
from training.feature_groups import count

if TYPE_CHECKING:
    from training.features import FeatureSpec


@dataclass(frozen=True, kw_only=True)
class Journey:
    """What the earlier families found that the life families read besides feature columns."""

    as_of: int  # int64 ns, exclusive
    touches: Events
    ticket: np.ndarray  # per touch row of `touches`: a service ticket
    funnel: FunnelEvents
    stage_start_age: np.ndarray  # per customer, int64 ns since entering the current stage; 0 without events
    first_order_age: np.ndarray  # per customer, int64 ns since the first order; 0 without one

    @property
    def n(self) -> int:
        """Number of customers."""
        return len(self.first_order_age)


@dataclass(frozen=True, kw_only=True)
class Runs:
    """Stays in one funnel stage (runs of equal stages), in customer then time order."""

    cust: np.ndarray
    stage: np.ndarray  # index in the spec's stages; -1 = lost
    start: np.ndarray  # int64 ns
    end: np.ndarray  # the next run's start, or the cutoff

    @property
    def days(self) -> np.ndarray:
        return (self.end - self.start) / DAY_NS


def stage_runs(fn: FunnelEvents, as_of: int) -> Runs:
    """Each customer's stays in one stage; the last one lasts until the cutoff."""
    starts = np.flatnonzero(fn.run_start)
    cust, start = fn.cust[starts], fn.t[starts]
    end = np.append(start[1:], as_of).astype(np.int64)
    end[np.append(cust[1:] != cust[:-1], True)] = as_of
    return Runs(cust=cust, stage=fn.stage[starts], start=start, end=end)


def touches_per_run(touches: Events, ticket: np.ndarray, first_order_age: np.ndarray, runs: Runs) -> np.ndarray:
    """A lead's touches (tickets and touches from the first order on aside) in each run: each touch belongs to
    the customer's last run begun before it."""
    if not len(runs.cust) or not len(touches.cust):
        return np.zeros(len(runs.cust))
    # One sortable key per (customer, second): runs are already in that order.
    base = min(int(touches.t.min()), int(runs.start.min())) // 10**9
    run_keys = (runs.cust.astype(np.int64) << 34) | (runs.start // 10**9 - base)
    keep = ~ticket & (touches.age > first_order_age[touches.cust])
    cust, t = touches.cust[keep], touches.t[keep]
    idx = np.searchsorted(run_keys, (cust.astype(np.int64) << 34) | (t // 10**9 - base), side="right") - 1
    mine = (idx >= 0) & (runs.cust[np.maximum(idx, 0)] == cust)
    return np.bincount(idx[mine], minlength=len(runs.cust)).astype(float)


def stage_touch_rates(runs: Runs, counts: np.ndarray, stages: tuple[str, ...]) -> dict[str, float]:
    """Touches a day of all leads in each open stage (the won stage and lost aside)."""
    out = {}
    days = runs.days
    for j, name in enumerate(stages[:-1]):
        mine = runs.stage == j
        if days[mine].sum() > 0:
            out[name] = float(counts[mine].sum() / days[mine].sum())
    return out


def build_stage_touch_features(journey: Journey, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """A lead's touches against those usual for the time it spent in each open stage (its engagement with the
    stage mix taken out), before the current stage and in it, and what it would show in the current stage at
    its earlier engagement: a lead gone quiet in its stage (stalled) shows far fewer."""
    n = journey.n
    runs = stage_runs(journey.funnel, journey.as_of)
    counts = touches_per_run(journey.touches, journey.ticket, journey.first_order_age, runs)
    days = runs.days
    names = ("previous_stage_touch_rate", "lead_touch_index", "stage_touch_index", "stage_expected_touches")
    out = {name: np.full(n, np.nan) for name in names}
    if not len(runs.cust):
        return out
    last = np.append(runs.cust[1:] != runs.cust[:-1], True)
    previous = np.flatnonzero(np.append(last[1:], False) & ~last)  # the run before each customer's last
    out["previous_stage_touch_rate"][runs.cust[previous]] = counts[previous] / np.maximum(days[previous], 1.0)
    usual_rates = spec.typical_stage_touch_rate
    typical = np.array([usual_rates.get(s, np.nan) for s in spec.stages[:-1]] + [np.nan])
    rate = typical[np.where((runs.stage >= 0) & (runs.stage < len(typical) - 1), runs.stage, len(typical) - 1)]
    usual = days * rate  # NaN outside the open stages
    earlier = np.isfinite(usual) & ~last
    expected = count(runs.cust[earlier], n, usual[earlier])
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.where(expected > 0, count(runs.cust[earlier], n, counts[earlier]) / expected, np.nan)
        current = last & np.isfinite(usual)
        who = runs.cust[current]
        out["lead_touch_index"] = index
        out["stage_touch_index"][who] = np.where(usual[current] > 0, counts[current] / usual[current], np.nan)
        out["stage_expected_touches"][who] = usual[current] * index[who]
    return out


def build_customer_life_features(journey: Journey, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Touches and tickets at or after each customer's first order, as rates over the customer's tenure."""
    n, touches, ticket = journey.n, journey.touches, journey.ticket
    since = touches.age <= journey.first_order_age[touches.cust]
    engaged = count(touches.cust[since & ~ticket], n)
    tickets = count(touches.cust[since & ticket], n)
    tenure = cols["days_since_first_order"]  # NaN without orders
    days = np.maximum(tenure, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = engaged / days
        out = {
            "customer_touches": np.where(np.isnan(tenure), np.nan, engaged),
            "customer_touch_rate": rate,
            "customer_tickets_per_year": tickets / np.maximum(tenure, 30.0) * 365.0,
            "customer_silence_expected_touches": rate * cols["days_since_last_touch"],
            # Orders after the first one (which only marks the win) per year of tenure.
            "repeat_order_rate": (cols["orders_total"] - 1.0) / np.maximum(tenure, 30.0) * 365.0,
        }
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}


def build_lead_life_features(journey: Journey, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Touches a day since entering the current funnel stage, and before the first order (or the cutoff)."""
    n, touches = journey.n, journey.touches
    in_stage = count(touches.cust[touches.age <= journey.stage_start_age[touches.cust]], n)
    before_order = count(touches.cust[touches.age > journey.first_order_age[touches.cust]], n)
    as_lead = cols["account_age_days"] - np.nan_to_num(cols["days_since_first_order"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "stage_touch_rate": in_stage / np.maximum(cols["days_in_stage"], 1.0),
            "lead_touch_rate": before_order / np.maximum(as_lead, 1.0),
        }
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}
