"""Who is who at a cutoff: open leads, buyers, and the rows each model scores. Reads only rows before `as_of`."""

from __future__ import annotations

import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL, Funnel

MODEL_POPULATIONS = {"conversion": "open leads", "churn": "buyers", "clv": "buyers and open leads"}


def _empty() -> pd.Index:
    return pd.Index([], name="customer_id", dtype=object)


def buyers(orders: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.Index:
    """Customers with at least one order before `as_of` (the population of churn and CLV)."""
    if orders is None or orders.empty:
        return _empty()
    return pd.Index(orders.loc[orders["timestamp"] < as_of, "customer_id"].unique(), name="customer_id").sort_values()


def open_leads(
    funnel_events: pd.DataFrame | None,
    orders: pd.DataFrame | None,
    as_of: pd.Timestamp,
    funnel: Funnel = DEFAULT_FUNNEL,
) -> pd.Index:
    """Leads not yet won or lost at `as_of` (by their last stage before it) and without an order before it."""
    if funnel_events is None or funnel_events.empty:
        return _empty()
    past = funnel_events[funnel_events["timestamp"] < as_of]
    last = past.sort_values("timestamp", kind="stable").groupby("customer_id", sort=True)["stage"].last()
    ids = last.index[~last.isin(funnel.closed)]
    return ids.difference(buyers(orders, as_of)).rename("customer_id")


def eligible_ids(kind: str, tables: dict, as_of: pd.Timestamp, funnel: Funnel = DEFAULT_FUNNEL) -> pd.Index:
    """The rows a model scores at `as_of`: open leads (conversion), buyers (churn), both (clv)."""
    events, orders = tables.get("funnel_events"), tables.get("orders")
    if kind == "conversion":
        return open_leads(events, orders, as_of, funnel)
    if kind == "churn":
        return buyers(orders, as_of)
    return buyers(orders, as_of).union(open_leads(events, orders, as_of, funnel))
