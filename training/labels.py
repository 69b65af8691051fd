"""Targets as of a cutoff: who is eligible for each model, and what happened in the window after it.

Eligibility reads only rows strictly before `as_of`; outcomes read only the window [as_of, as_of + horizon).
"""

from __future__ import annotations

import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from crmdata.populations import buyers, open_leads


def _window(frame: pd.DataFrame, as_of: pd.Timestamp, days: int) -> pd.DataFrame:
    """Rows with timestamp in [as_of, as_of + days)."""
    ts = frame["timestamp"]
    return frame[(ts >= as_of) & (ts < as_of + pd.Timedelta(days=days))]


def make_conversion_labels(
    funnel_events: pd.DataFrame | None,
    orders: pd.DataFrame | None,
    as_of: pd.Timestamp,
    horizon_days: int,
    funnel: Funnel = DEFAULT_FUNNEL,
) -> pd.Series:
    """1 for an open lead at `as_of` that reaches the won stage or places a first order within the horizon."""
    leads = open_leads(funnel_events, orders, as_of, funnel)
    window = _window(funnel_events, as_of, horizon_days)
    won = set(window.loc[window["stage"] == funnel.won, "customer_id"])
    if orders is not None:
        won |= set(_window(orders, as_of, horizon_days)["customer_id"])
    return pd.Series(leads.isin(list(won)).astype(int), index=leads, name="converted")


def make_churn_labels(orders: pd.DataFrame | None, as_of: pd.Timestamp, horizon_days: int) -> pd.Series:
    """1 for a customer with an order before `as_of` and none in the horizon after it (non-contractual churn)."""
    customers = buyers(orders, as_of)
    active = set(_window(orders, as_of, horizon_days)["customer_id"]) if len(customers) else set()
    return pd.Series((~customers.isin(list(active))).astype(int), index=customers, name="churned")


def make_clv_labels(
    orders: pd.DataFrame | None,
    ids: pd.Index,
    as_of: pd.Timestamp,
    horizon_days: int,
    end: pd.Timestamp | None = None,
) -> pd.Series:
    """Net order amount (refunds included) of each of `ids` in the horizon after `as_of`, 0 without orders.

    With `end`, the window stops there if it comes first (a window still open at the training cutoff).
    """
    if orders is None or orders.empty:
        return pd.Series(0.0, index=ids, name="future_value")
    future = _window(orders, as_of, _observed_days(as_of, horizon_days, end)).groupby("customer_id")["amount"].sum()
    return future.reindex(ids, fill_value=0.0).astype(float).rename("future_value")


def make_clv_order_counts(
    orders: pd.DataFrame | None, ids: pd.Index, as_of: pd.Timestamp, horizon_days: int, end: pd.Timestamp | None = None
) -> pd.Series:
    """Orders (refund rows excluded) of each of `ids` in the same window: CLV's frequency part."""
    if orders is None or orders.empty:
        return pd.Series(0.0, index=ids, name="future_orders")
    future = _window(orders, as_of, _observed_days(as_of, horizon_days, end))
    future = future[~(future["amount"] < 0)]  # a refund is not an order; an order of unknown amount is
    return future.groupby("customer_id").size().reindex(ids, fill_value=0).astype(float).rename("future_orders")


def window_exposure(as_of: pd.Timestamp, horizon_days: int, end: pd.Timestamp | None = None) -> float:
    """The share of the horizon observed before `end` (1.0 for a closed window)."""
    return _observed_days(as_of, horizon_days, end) / horizon_days


def _observed_days(as_of: pd.Timestamp, horizon_days: int, end: pd.Timestamp | None) -> float:
    if end is None:
        return float(horizon_days)
    return float(min(horizon_days, max((end - as_of) / pd.Timedelta(days=1), 0.0)))
