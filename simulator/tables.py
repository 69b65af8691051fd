"""The simulator's draws as the contract's five tables, with the gaps and noise of a real CRM export.

Times become naive UTC timestamps rounded to the second; every event table is in time order (ties by
customer); optional columns get missing values at fixed rates from their own random stream.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator import dynamics as sm
from simulator.generation import Calendar, Leads
from simulator.scenarios import INDUSTRIES, ORDER_CHANNELS, PRODUCT_CATEGORIES, REGIONS

# Share of missing values per optional customers column.
CUSTOMER_GAPS = (("industry", 0.05), ("region", 0.03), ("employees", 0.08), ("annual_revenue", 0.12))


def customer_ids(n: int) -> np.ndarray:
    """Ids C0000001, C0000002, ... of `n` leads in order of creation."""
    return np.array([f"C{i:07d}" for i in range(1, n + 1)], dtype=object)


def build_tables(
    start: pd.Timestamp,
    names: list[str],
    leads: Leads,
    events: tuple,
    touches: dict,
    orders: dict,
    spend: pd.DataFrame,
    calendar: Calendar,
    rng,
) -> dict[str, pd.DataFrame]:
    """The five tables from the draws; `rng` draws the gaps and noise (customers, touchpoints, then orders)."""
    ids = customer_ids(len(leads.created))
    to_ts = _timestamp_converter(start)
    customers = _customer_frame(leads, names, ids, to_ts, rng)
    return {
        "customers": customers,
        "touchpoints": _touch_frame(touches, ids, to_ts, rng),
        "funnel_events": _funnel_frame(events, ids, to_ts),
        "orders": _order_frame(orders, ids, to_ts, rng),
        "channel_spend": _spend_frame(spend, start, calendar),
    }


def _in_time_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by timestamp, ties by customer, keeping the draw order of full ties; index 0..n-1."""
    return frame.sort_values(["timestamp", "customer_id"], kind="stable").reset_index(drop=True)


def _customer_frame(leads: Leads, names: list[str], ids: np.ndarray, to_ts, rng) -> pd.DataFrame:
    """The customers table in order of creation, with gaps in the optional attributes."""
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "created_at": to_ts(leads.created),
            "source_channel": np.array(names, dtype=object)[leads.chan],
            "industry": np.array(INDUSTRIES, dtype=object)[leads.industry],
            "region": np.array(REGIONS, dtype=object)[leads.region],
            "employees": leads.employees,
            "annual_revenue": leads.annual_revenue,
        }
    )
    for col, p in CUSTOMER_GAPS:
        customers.loc[rng.random(len(ids)) < p, col] = None if customers[col].dtype == object else np.nan
    return customers


def _funnel_frame(events: tuple, ids: np.ndarray, to_ts) -> pd.DataFrame:
    """The funnel_events table from (lead, day, stage index) arrays, in time order."""
    stage_names = np.array((*sm.OPEN_STAGES, "won", "lost"), dtype=object)
    funnel = pd.DataFrame(
        {"customer_id": ids[events[0]], "timestamp": to_ts(events[1]), "stage": stage_names[events[2]]}
    )
    return _in_time_order(funnel)


def _spend_frame(spend: pd.DataFrame, start: pd.Timestamp, calendar: Calendar) -> pd.DataFrame:
    """The channel_spend table: one row per week and paid channel."""
    return pd.DataFrame(
        {
            "period_start": np.repeat(start + pd.to_timedelta(calendar.week_start, unit="D"), len(spend.columns)),
            "channel": np.tile(np.array(spend.columns, dtype=object), calendar.n_weeks),
            "spend": spend.to_numpy().ravel(),
        }
    )


def _timestamp_converter(start: pd.Timestamp):
    """Turn float days since `start` into naive UTC timestamps rounded to the second."""

    def convert(days: np.ndarray) -> pd.DatetimeIndex:
        seconds = np.round(np.asarray(days, dtype=float) * 86400).astype("int64")
        return (start + pd.to_timedelta(seconds, unit="s")).as_unit("us")

    return convert


def _touch_frame(touches: dict, ids: np.ndarray, to_ts, rng) -> pd.DataFrame:
    """The touchpoints table, in time order, with costs on paid touches and campaigns on marketing ones."""
    n = len(touches["who"])
    channel, interaction = touches["channel"], touches["interaction"]
    paid_cost = {
        ("search", "ad_click"): 2.5,
        ("social", "ad_click"): 0.6,
        ("email", "email_click"): 0.1,
        ("event", "event_attend"): 45.0,
    }
    cost = np.full(n, np.nan)
    for (ch, it), mean in paid_cost.items():
        hit = (channel == ch) & (interaction == it)
        cost[hit] = np.round(mean * np.exp(0.3 * rng.standard_normal(hit.sum())), 2)
    ts = to_ts(touches["t"])
    campaign = np.where(
        np.isin(channel, ["search", "social", "email", "event"]) & (interaction != "ticket"),
        channel + "-" + (ts.year * 100 + ts.month).astype(str).to_numpy(dtype=object),
        None,
    ).astype(object)
    campaign[rng.random(n) < 0.1] = None
    satisfaction = touches["satisfaction"].copy()
    satisfaction[rng.random(n) < 0.2] = np.nan
    frame = pd.DataFrame(
        {
            "customer_id": ids[touches["who"]],
            "timestamp": ts,
            "channel": channel,
            "interaction": interaction,
            "campaign_id": campaign,
            "cost": cost,
            "satisfaction": satisfaction,
        }
    )
    return _in_time_order(frame)


def _order_frame(orders: dict, ids: np.ndarray, to_ts, rng) -> pd.DataFrame:
    """The orders table in time order, order ids numbered in that order."""
    frame = pd.DataFrame(
        {
            "customer_id": ids[orders["who"]],
            "timestamp": to_ts(orders["t"]),
            "amount": orders["amount"],
            "channel": np.array(ORDER_CHANNELS, dtype=object)[orders["channel"]],
            "product_category": np.array(PRODUCT_CATEGORIES, dtype=object)[orders["category"]],
        }
    )
    frame.loc[rng.random(len(frame)) < 0.02, "product_category"] = None
    frame = _in_time_order(frame)
    frame.insert(1, "order_id", np.array([f"O{i:08d}" for i in range(1, len(frame) + 1)], dtype=object))
    return frame
