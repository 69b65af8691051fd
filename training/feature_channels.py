"""The channel family: touches per channel, interaction and window, recency, first and last channel, touch cost,
service tickets and satisfaction, and the engagement trend (see `training.features` for the definitions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from training.catalogue import INTERACTION_WINDOWS, TOUCH_WINDOWS, Layout
from training.feature_arrays import DAY_NS, NEVER, Events, lookup, pick
from training.feature_groups import age_days, buckets, count, distinct, first_hit, min_age, ratio

if TYPE_CHECKING:
    from training.features import FeatureSpec

TICKET = "ticket"
LOW_SATISFACTION = 2.0  # a rating at or below this is a low-satisfaction ticket
# Touch age buckets (days): 60 serves the engagement trend's "30 days before the last 30".
_TOUCH_EDGES = (7, 30, 60, 90, 365)
_EDGE_OF = {w: _TOUCH_EDGES.index(w) for w in (*TOUCH_WINDOWS, *INTERACTION_WINDOWS, 60)}


def ticket_rows(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which touch rows are service tickets, from the interaction column's codes and values."""
    values = list(values)
    return codes == (values.index(TICKET) if TICKET in values else -2)


def build_channel_features(
    ev: Events, n: int, spec: FeatureSpec, lay: Layout
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Touches per channel, interaction and window, recency, first/last channel, cost, service and trend.

    Returns the columns, and per touch row of `ev` whether it is a service ticket (the life families read it).
    """
    bucket = buckets(ev.age, _TOUCH_EDGES)
    recent = ev.age <= 365 * DAY_NS
    ch_codes, ch_values = ev.codes("channel")
    k = len(spec.channels) + 1  # the last slot gathers unseen and missing channels
    cell = ev.cust * k + lookup(ch_values, tuple(spec.channels), k - 1)[ch_codes]
    out = _touch_counts(cell, bucket, n, k, lay)
    out["distinct_channels_365d"] = distinct(ev.cust[recent], ch_codes[recent], len(ch_values), n)
    out.update(_touch_recency(ev, cell, ch_codes, ch_values, n, k, lay))
    it_codes, it_values = ev.codes("interaction")
    out.update(_interaction_counts(ev.cust, it_codes, it_values, bucket, n, spec, lay))
    ticket = ticket_rows(it_codes, it_values)
    out.update(_cost_and_service(ev, ticket, recent, n))
    return out, ticket


def _touch_counts(cell: np.ndarray, bucket: np.ndarray, n: int, k: int, lay: Layout) -> dict[str, np.ndarray]:
    """Touches per channel and window, in all per window and ever, and the engagement trend."""
    out: dict[str, np.ndarray] = {}
    n_b = len(_TOUCH_EDGES) + 1
    grid = np.bincount(cell * n_b + bucket, minlength=n * k * n_b).reshape(n, k, n_b).cumsum(axis=2).astype(float)
    totals = grid.sum(axis=1)
    for w in TOUCH_WINDOWS:
        for j, col in enumerate(lay.each("touches_{item}_{window}d", w)):
            out[col] = grid[:, j, _EDGE_OF[w]]
        (total,) = lay.each("touches_{window}d", w)
        out[total] = totals[:, _EDGE_OF[w]]
    out["touches_total"] = totals[:, -1]
    last_30 = totals[:, _EDGE_OF[30]]
    before = totals[:, _EDGE_OF[60]] - last_30
    out["engagement_trend_30d"] = (last_30 - before) / (last_30 + before + 1.0)
    return out


def _touch_recency(
    ev: Events, cell: np.ndarray, ch_codes: np.ndarray, ch_values: np.ndarray, n: int, k: int, lay: Layout
) -> dict[str, np.ndarray]:
    """Days since the last touch (per channel and on any), and the channel of the first and the last touch."""
    out: dict[str, np.ndarray] = {}
    cust, age = ev.cust, ev.age
    last_age = min_age(cell, age, n * k).reshape(n, k)
    last_days = age_days(last_age)
    for j, col in enumerate(lay.each("days_since_last_touch_{item}")):
        out[col] = last_days[:, j]
    latest = last_age.min(axis=1)
    out["days_since_last_touch"] = age_days(latest)
    earliest = np.full(n, NEVER, np.int64)
    np.minimum.at(earliest, cust, -age)
    out["first_touch_channel"] = pick(ch_values, ch_codes, first_hit(cust, -age, earliest, n))
    out["last_touch_channel"] = pick(ch_values, ch_codes, first_hit(cust, age, latest, n))
    return out


def _interaction_counts(
    cust: np.ndarray,
    it_codes: np.ndarray,
    it_values: np.ndarray,
    bucket: np.ndarray,
    n: int,
    spec: FeatureSpec,
    lay: Layout,
) -> dict[str, np.ndarray]:
    """Touches per interaction type and window."""
    out: dict[str, np.ndarray] = {}
    n_b = len(_TOUCH_EDGES) + 1
    k_i = len(spec.interactions) + 1
    it = lookup(it_values, tuple(spec.interactions), k_i - 1)[it_codes]
    grid_i = np.bincount((cust * k_i + it) * n_b + bucket, minlength=n * k_i * n_b)
    grid_i = grid_i.reshape(n, k_i, n_b).cumsum(axis=2).astype(float)
    for w in INTERACTION_WINDOWS:
        for j, col in enumerate(lay.each("interactions_{item}_{window}d", w)):
            out[col] = grid_i[:, j, _EDGE_OF[w]]
    return out


def _cost_and_service(ev: Events, ticket: np.ndarray, recent: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Distinct campaigns, touch cost, service tickets and their satisfaction ratings."""
    out: dict[str, np.ndarray] = {}
    cust, age = ev.cust, ev.age
    camp_codes, camp_values = ev.codes("campaign_id")
    out["distinct_campaigns"] = distinct(cust, camp_codes, len(camp_values), n)
    cost = np.nan_to_num(ev.floats("cost"))
    out["touch_cost_total"] = count(cust, n, cost)
    in_90 = age <= 90 * DAY_NS
    out["touch_cost_90d"] = count(cust[in_90], n, cost[in_90])
    out["tickets_90d"] = count(cust[ticket & in_90], n)
    out["tickets_365d"] = count(cust[ticket & recent], n)
    sat = ev.floats("satisfaction")
    rated = ~np.isnan(sat)
    out["satisfaction_mean"] = ratio(count(cust[rated], n, sat[rated]), count(cust[rated], n))
    sat_r, cust_r, age_r = sat[rated], cust[rated], age[rated]
    last_rated = first_hit(cust_r, age_r, min_age(cust_r, age_r, n), n)
    out["satisfaction_last"] = np.where(last_rated >= 0, np.append(sat_r, np.nan)[last_rated], np.nan)
    low = rated & (sat <= LOW_SATISFACTION) & recent
    out["low_satisfaction_tickets_365d"] = count(cust[low], n)
    return out
