"""Time helpers shared by every layer: timestamps are naive UTC, dates the user gives are ISO 8601, and the data's
own first and last day.

A date the user types (a CLI option, a cutoff) is read as ISO 8601 only: `31/12/2024` or `01/02/2024` are
refused rather than guessed day- or month-first. Without a zone a timestamp is UTC; with one it is converted.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

EVENT_TABLES = ("touchpoints", "funnel_events", "orders")

# The accepted forms shown in every refusal of a date.
ISO_EXAMPLE = "2024-12-31 or 2024-12-31T09:30:00Z (no zone means UTC)"


def naive_utc(ts: datetime) -> datetime:
    """A datetime as naive UTC (aware ones converted; naive ones are taken as UTC already)."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def utc_cutoff(as_of: pd.Timestamp | str | None) -> pd.Timestamp | None:
    """A cutoff as a naive UTC timestamp (tz-aware cutoffs are converted); None stays None."""
    if as_of is None:
        return None
    if isinstance(as_of, str):
        return parse_iso(as_of, "as_of")
    stamp = pd.Timestamp(as_of)
    if pd.isna(stamp):
        raise ValueError(f"as_of must be a timestamp, got {as_of!r}")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def parse_iso(text: str, where: str) -> pd.Timestamp:
    """An ISO 8601 date or timestamp as naive UTC; a ValueError naming `where` and an accepted form otherwise.

    Only ISO 8601 is read, so that `01/02/2024` is never taken month-first (or day-first) without a word.
    """
    try:
        stamp = pd.to_datetime(text.strip(), format="ISO8601", utc=True)
    except (ValueError, OverflowError, TypeError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise ValueError(f"{where} {text!r} is not an ISO 8601 date; use e.g. {ISO_EXAMPLE}")
    return stamp.tz_localize(None)


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
