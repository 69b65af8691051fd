"""Time helpers: naive UTC everywhere, cutoffs parsed once, and the data's own first and last day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from crmdata.timeutil import data_end, data_start, naive_utc, utc_cutoff


def _frame(*stamps: str, column: str = "timestamp") -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(len(stamps))], column: pd.to_datetime(list(stamps), format="ISO8601")}
    )


@pytest.fixture
def tables() -> dict:
    return {
        "customers": _frame("2024-01-05", "2024-02-01 08:00", column="created_at"),
        "touchpoints": _frame("2024-01-03 12:00", "2024-03-05 17:30"),  # the first and the last row
        "funnel_events": _frame("2024-01-05"),
        "orders": None,  # absent tables are left out
        "channel_spend": _frame("2023-12-01"),  # not an event table: spend does not stretch the data
    }


def test_naive_utc_converts_aware_datetimes_and_keeps_naive_ones():
    aware = datetime(2024, 6, 1, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    assert naive_utc(aware) == datetime(2024, 6, 1, 0, 30) and naive_utc(aware).tzinfo is None
    assert naive_utc(datetime(2024, 6, 1, 2, 30)) == datetime(2024, 6, 1, 2, 30)


@pytest.mark.parametrize(
    "as_of, expected",
    [
        (None, None),
        ("2024-06-01", pd.Timestamp("2024-06-01")),
        ("2024-06-01T02:00:00+02:00", pd.Timestamp("2024-06-01")),
        (pd.Timestamp("2024-06-01 09:00", tz="America/New_York"), pd.Timestamp("2024-06-01 13:00")),
    ],
    ids=["none", "naive", "offset", "zone"],
)
def test_utc_cutoff(as_of, expected):
    cutoff = utc_cutoff(as_of)
    assert cutoff == expected
    assert cutoff is None or cutoff.tzinfo is None


@pytest.mark.parametrize("as_of", [pd.NaT, "not a date"], ids=["NaT", "garbage"])
def test_utc_cutoff_refuses_what_is_not_a_timestamp(as_of):
    with pytest.raises(ValueError):
        utc_cutoff(as_of)


def test_data_start_is_the_earliest_creation_or_event(tables):
    assert data_start(tables) == pd.Timestamp("2024-01-03 12:00")


def test_data_end_is_the_day_after_the_last_row(tables):
    assert data_end(tables) == pd.Timestamp("2024-03-06")
    # A last row at midnight still falls before the default cutoff, which is exclusive.
    tables["touchpoints"] = _frame("2024-03-05")
    assert data_end(tables) == pd.Timestamp("2024-03-06")


def test_empty_event_tables_leave_the_customers_to_bound_the_data(tables):
    tables.update(touchpoints=_frame(), funnel_events=_frame())
    assert data_start(tables) == pd.Timestamp("2024-01-05")
    assert data_end(tables) == pd.Timestamp("2024-02-02")
