"""The funnel family: current and furthest stage, time in stage and its stall ratio, days to each stage,
stage changes, regressions and reopenings (see `training.features` for the definitions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crmdata.funnel import Funnel
from training.catalogue import Layout
from training.feature_arrays import DAY_NS, NEVER, Events, lookup
from training.feature_groups import count

if TYPE_CHECKING:
    from training.features import FeatureSpec

NO_STAGE = "none"


@dataclass(frozen=True, kw_only=True)
class FunnelEvents:
    """Known-stage funnel events sorted by customer then time (input order breaks ties)."""

    cust: np.ndarray
    stage: np.ndarray  # index in `stages`; -1 = lost
    t: np.ndarray
    first: np.ndarray  # the customer's first event
    run_start: np.ndarray  # the customer's first event, or a different stage than the event before


def order_funnel(ev: Events, funnel: Funnel) -> FunnelEvents:
    """Order the funnel events; events with a stage outside the funnel's stages and lost stage are ignored."""
    codes, values = ev.codes("stage")
    known = lookup(values, funnel.allowed, -2)
    stage = np.where(known == len(funnel.stages), -1, known)[codes]
    keep = np.flatnonzero(stage >= -1)
    order = keep[np.lexsort((keep, ev.t[keep], ev.cust[keep]))]
    cust, stage, t = ev.cust[order], stage[order], ev.t[order]
    first = np.ones(len(cust), bool)
    first[1:] = cust[1:] != cust[:-1]
    run_start = first.copy()
    run_start[1:] |= stage[1:] != stage[:-1]
    return FunnelEvents(cust=cust, stage=stage, t=t, first=first, run_start=run_start)


def typical_stage_days(fn: FunnelEvents, funnel: Funnel) -> dict[str, float]:
    """Median days of the completed stays (the next stage change came before `as_of`) in each stage."""
    starts = np.flatnonzero(fn.run_start)
    done = fn.cust[starts[1:]] == fn.cust[starts[:-1]]
    stage = fn.stage[starts[:-1]][done]
    days = (fn.t[starts[1:]] - fn.t[starts[:-1]])[done] / DAY_NS
    out = {}
    for j, name in enumerate(funnel.allowed):
        stays = days[stage == (j if j < len(funnel.stages) else -1)]
        if len(stays):
            out[name] = float(np.median(stays))
    return out


def _last_events(fn: FunnelEvents) -> np.ndarray:
    """Position of each customer's last funnel event."""
    cust = fn.cust
    return np.flatnonzero(np.append(cust[1:] != cust[:-1], True)) if len(cust) else np.empty(0, np.int64)


def build_funnel_features(
    fn: FunnelEvents, n: int, as_of: int, created: np.ndarray, spec: FeatureSpec, lay: Layout
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Current and furthest stage, days in stage and stall ratio, days to each stage, regressions, reopens.

    Returns the columns and, per customer, the age of its current stage (int64 ns; 0 without funnel events,
    nothing is newer) and whether that stage is an open one (neither won nor lost).
    """
    out, stage_start_age, open_stage = _current_stage(fn, n, as_of, spec)
    cust, stage, t = fn.cust, fn.stage, fn.t
    n_s = len(spec.stages)
    reached = stage >= 0
    first_t = np.full(n * n_s, NEVER, np.int64)
    np.minimum.at(first_t, cust[reached] * n_s + stage[reached], t[reached])
    first_t = first_t.reshape(n, n_s)
    to_stage = np.where(first_t == NEVER, np.nan, (first_t - created[:, None]) / DAY_NS)
    for j, col in enumerate(lay.each("days_to_{item}")):
        out[col] = to_stage[:, j]

    change = fn.run_start & ~fn.first
    prev = np.append(-9, stage[:-1]) if len(stage) else stage
    out["stage_changes"] = count(cust[change], n)
    out["stage_regressions"] = count(cust[change & (prev >= 0) & (stage >= 0) & (stage < prev)], n)
    out["lost_reopened"] = count(cust[change & (prev == -1) & (stage >= 0)], n)
    return out, stage_start_age, open_stage


def _current_stage(
    fn: FunnelEvents, n: int, as_of: int, spec: FeatureSpec
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Current and furthest stage, days in the current stage and since the last funnel record, stall ratio."""
    stages = tuple(spec.stages)
    n_s, won = len(stages), len(stages) - 1
    cust, stage, t = fn.cust, fn.stage, fn.t
    out: dict[str, np.ndarray] = {}
    last = _last_events(fn)
    who = cust[last]
    current = np.full(n, -3, np.int64)  # -3: no funnel events
    current[who] = stage[last]
    has = current != -3
    names = np.array([*map(str, stages), spec.funnel.lost, NO_STAGE], dtype=object)
    out["current_stage"] = names[np.where(current >= 0, current, np.where(current == -1, n_s, n_s + 1))]
    out["current_stage_index"] = np.where(has, current, np.nan).astype(float)
    furthest = np.full(n, -1, np.int64)
    np.maximum.at(furthest, cust, stage)
    out["furthest_stage_index"] = np.where(furthest >= 0, furthest, np.nan).astype(float)

    start_of = np.maximum.accumulate(np.where(fn.run_start, np.arange(len(cust)), 0))
    in_stage = np.full(n, np.nan)
    in_stage[who] = (as_of - t[start_of[last]]) / DAY_NS
    out["days_in_stage"] = in_stage
    stage_start_age = np.zeros(n, np.int64)
    stage_start_age[who] = as_of - t[start_of[last]]
    typical = np.array([spec.typical_stage_days.get(s, np.nan) for s in stages] + [np.nan], dtype=float)
    typical = np.where(typical > 0, typical, np.nan)
    open_stage = has & (current >= 0) & (current != won)
    out["stall_ratio"] = np.where(open_stage, in_stage / typical[np.where(open_stage, current, n_s)], np.nan)
    since = np.full(n, np.nan)
    since[who] = (as_of - t[last]) / DAY_NS
    out["days_since_last_stage_change"] = since
    return out, stage_start_age, open_stage
