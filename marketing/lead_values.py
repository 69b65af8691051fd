"""The realised value of a lead: its net order amount over a fixed window after it was created."""

from __future__ import annotations

import pandas as pd


def realised_lead_values(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp | str, horizon_days: int = 365
) -> pd.Series:
    """customer_id -> net order amount in each lead's first `horizon_days` (the realised value of a lead).

    Only leads created at least `horizon_days` before `as_of` are valued, so every window has closed before
    the cutoff (no look-ahead); refunds (negative amounts) count.
    """
    as_of = pd.Timestamp(as_of)
    horizon = pd.Timedelta(days=horizon_days)
    customers = tables["customers"]
    old = customers.loc[customers["created_at"] <= as_of - horizon, ["customer_id", "created_at"]]
    orders = tables.get("orders")
    if orders is None or old.empty:
        return pd.Series(0.0, index=pd.Index(old["customer_id"], name="customer_id"), name="lead_value")
    joined = orders[["customer_id", "timestamp", "amount"]].merge(old, on="customer_id")
    inside = (joined["timestamp"] >= joined["created_at"]) & (joined["timestamp"] < joined["created_at"] + horizon)
    amount = joined[inside & (joined["timestamp"] < as_of)].groupby("customer_id")["amount"].sum()
    return amount.reindex(old["customer_id"], fill_value=0.0).astype(float).rename("lead_value")
