"""Time helpers shared by every layer: timestamps are naive UTC, and the data's own first and last day."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

EVENT_TABLES = ("touchpoints", "funnel_events", "orders")


def naive_utc(ts: datetime) -> datetime:
    """A datetime as naive UTC (aware ones converted; naive ones are taken as UTC already)."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def utc_cutoff(as_of: pd.Timestamp | str | None) -> pd.Timestamp | None:
    """A cutoff as a naive UTC timestamp (tz-aware cutoffs are converted); None stays None."""
    if as_of is None:
        return None
    stamp = pd.Timestamp(as_of)
    if pd.isna(stamp):
        raise ValueError(f"as_of must be a timestamp, got {as_of!r}")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def data_start(tables: dict) -> pd.Timestamp:
    """The earliest timestamp in the data (customers' creation included)."""
    firsts = [tables["customers"]["created_at"].min()]
    for name in EVENT_TABLES:
        if tables.get(name) is not None and len(tables[name]):
            firsts.append(tables[name]["timestamp"].min())
    return min(firsts)


def data_end(tables: dict) -> pd.Timestamp:
    """The day after the latest timestamp in the data: the default cutoff that keeps every row."""
    lasts = [tables["customers"]["created_at"].max()]
    for name in EVENT_TABLES:
        if tables.get(name) is not None and len(tables[name]):
            lasts.append(tables[name]["timestamp"].max())
    return max(lasts).normalize() + pd.Timedelta(days=1)
