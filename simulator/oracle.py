"""The simulator's oracle: exact conversion, churn and value expectations from the hidden state at a cutoff.

Never reads the realised future: every figure is a function of the hidden state at `as_of` (funnel state,
alive or not, and the hidden buying traits), so a model can be judged against both truth and outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator import dynamics as sm

CHUNK = 4000  # leads per batched matrix exponential (bounds memory)


def window_seasonality(start: pd.Timestamp, t0: float, days: int) -> np.ndarray:
    """Seasonal factor at the middle of each day of the window starting `t0` days after `start`."""
    return sm.seasonality(sm.day_of_year(start.dayofyear, t0 + np.arange(days) + 0.5))


def churn_probability(purchase_rate, death_rate, seasonal: np.ndarray) -> np.ndarray:
    """P(no order in the window) for customers alive at its start; exact for day-wise constant rates."""
    p_none = np.zeros(len(purchase_rate))
    entry = np.ones(len(purchase_rate))  # P(alive and no order so far)
    for s in seasonal:
        a = purchase_rate * s
        total = a + death_rate
        leave = 1 - np.exp(-total)
        p_none += entry * (death_rate / total) * leave  # died this day before any order
        entry = entry * (1 - leave)
    return p_none + entry


def lead_expected_value(
    quality, size, traits, start_dist, seasonal: np.ndarray, cdf_days: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(P(won by day d) for d=0..max(H, cdf_days), expected net order amount in the H-day window).

    For leads whose funnel state at the window's start is distributed as `start_dist` (n, 12).
    """
    days = len(seasonal)
    horizon = max(days, cdf_days)
    cdfs, values = [], []
    for lo in range(0, len(quality), CHUNK):
        sl = slice(lo, lo + CHUNK)
        cdf = sm.daily_won_cdf(quality[sl], size[sl], start_dist[sl], horizon)
        mass = sm.remaining_purchase_mass(traits.purchase_rate[sl], traits.death_rate[sl], seasonal)
        mid = 0.5 * (mass[:, :-1] + mass[:, 1:])
        won_density = np.diff(cdf[:, : days + 1], axis=1)
        net_value = traits.mean_order_value[sl] * (1 - sm.REFUND_PROBABILITY)
        values.append(net_value * (won_density * (1.0 + mid)).sum(axis=1))
        cdfs.append(cdf)
    if not cdfs:
        return np.zeros((0, horizon + 1)), np.zeros(0)
    return np.concatenate(cdfs), np.concatenate(values)


def oracle_truth(*, ids, created, state_at, quality, size, traits, first_order, death_at, t_asof, start, cfg):
    """Truth per lead/customer created before `as_of`: p_conversion, p_churn, expected_clv (see README)."""
    exists = created < t_asof
    n = len(ids)
    p_conv = np.full(n, np.nan)
    p_churn = np.full(n, np.nan)
    clv = np.zeros(n)
    clv_season = window_seasonality(start, t_asof, cfg.clv_horizon_days)

    # Leads: open ones get p_conversion; open and lost ones may still be won and buy within the window.
    pre_won = np.flatnonzero(exists & (state_at >= 0) & (state_at != sm.WON))
    start_dist = np.zeros((len(pre_won), sm.N_STATES))
    start_dist[np.arange(len(pre_won)), state_at[pre_won]] = 1.0
    sub = _subset(traits, pre_won)
    cdf, value = lead_expected_value(
        quality[pre_won], size[pre_won], sub, start_dist, clv_season, cfg.conversion_horizon_days
    )
    is_open = state_at[pre_won] < sm.WON
    p_conv[pre_won[is_open]] = cdf[is_open, cfg.conversion_horizon_days]
    clv[pre_won] = value

    # Customers: alive ones keep buying until their hidden death; the dead never buy again.
    won = np.flatnonzero(exists & (state_at == sm.WON))
    alive = death_at[won] > t_asof
    bought_before = first_order[won] < t_asof
    churn_season = window_seasonality(start, t_asof, cfg.churn_horizon_days)
    p = np.ones(len(won))
    p[alive] = churn_probability(traits.purchase_rate[won[alive]], traits.death_rate[won[alive]], churn_season)
    p_churn[won[bought_before]] = p[bought_before]
    mass = sm.remaining_purchase_mass(traits.purchase_rate[won], traits.death_rate[won], clv_season)[:, 0]
    expected_orders = np.where(alive, mass + (~bought_before), 0.0)
    clv[won] = traits.mean_order_value[won] * (1 - sm.REFUND_PROBABILITY) * expected_orders

    keep = np.flatnonzero(exists)
    return pd.DataFrame(
        {
            "customer_id": ids[keep],
            "p_conversion": p_conv[keep],
            "p_churn": p_churn[keep],
            "expected_clv": clv[keep],
        }
    )


def _subset(traits, idx):
    """The hidden traits of a subset of leads."""
    return type(traits)(**{k: v[idx] for k, v in vars(traits).items()})
