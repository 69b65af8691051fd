"""Targets on tiny hand-written tables: eligibility before the cutoff, outcomes in the window after it."""

from __future__ import annotations

import pandas as pd
import pytest

from crmdata.populations import buyers, open_leads
from tests.factories import funnel_frame, orders_frame
from training.labels import (
    make_churn_labels,
    make_clv_labels,
    make_clv_order_counts,
    make_conversion_labels,
    window_exposure,
)

T = pd.Timestamp("2024-06-01")


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day)


@pytest.fixture
def funnel() -> pd.DataFrame:
    # fmt: off
    rows = [
        ("a", "2024-01-01", "lead"), ("a", "2024-03-01", "mql"), ("a", "2024-07-01", "won"),  # open, converts
        ("b", "2024-01-01", "lead"), ("b", "2024-02-01", "lost"),  # lost before T: not eligible
        ("c", "2024-01-01", "lead"), ("c", "2024-05-31 23:59:59", "won"),  # won before T: not eligible
        ("d", "2024-01-01", "lead"), ("d", "2024-10-01", "won"),  # open, converts after the 90-day window
        ("e", "2024-01-01", "lead"), ("e", "2024-02-01", "lost"), ("e", "2024-04-01", "mql"),  # reopened: open
        ("f", "2024-01-01", "lead"), ("f", "2024-06-01", "won"),  # won exactly at T: open before, converts
        ("g", "2024-06-01", "lead"),  # created at T: not yet a lead
    ]
    # fmt: on
    return funnel_frame(rows)


@pytest.fixture
def orders() -> pd.DataFrame:
    rows = [
        ("c", "o1", "2024-05-31 23:59:59", 100.0),
        ("c", "o2", "2024-07-15", 50.0),
        ("c", "o3", "2024-07-20", -50.0),  # a refund in the window
        ("h", "o4", "2024-01-10", 80.0),  # bought before T, nothing after: churned
        ("i", "o5", "2024-02-10", 30.0),
        ("i", "o6", "2024-08-29", 30.0),  # inside the 90-day window (ends 2024-08-30)
        ("e", "o7", "2024-06-15", 20.0),  # a first order of an open lead counts as conversion
        ("j", "o8", "2024-06-01", 10.0),  # exactly at T: after the cutoff, so j is no buyer yet
    ]
    return orders_frame(rows)


def test_open_leads_are_those_neither_won_nor_lost_before_the_cutoff(funnel, orders):
    assert list(open_leads(funnel, orders, T)) == ["a", "d", "e", "f"]


def test_conversion_label_is_won_or_first_order_within_the_horizon(funnel, orders):
    labels = make_conversion_labels(funnel, orders, T, horizon_days=90)
    assert labels.to_dict() == {"a": 1, "d": 0, "e": 1, "f": 1}


def test_conversion_window_is_half_open(funnel, orders):
    one_day = make_conversion_labels(funnel, orders, T, horizon_days=1)
    assert one_day.to_dict() == {"a": 0, "d": 0, "e": 0, "f": 1}


def test_buyers_have_an_order_strictly_before_the_cutoff(orders):
    assert list(buyers(orders, T)) == ["c", "h", "i"]


def test_churn_label_is_no_order_in_the_horizon(orders):
    assert make_churn_labels(orders, T, horizon_days=90).to_dict() == {"c": 0, "h": 1, "i": 0}
    assert make_churn_labels(orders, T, horizon_days=30).to_dict() == {"c": 1, "h": 1, "i": 1}


def test_clv_label_is_the_net_amount_in_the_horizon_including_refunds(orders):
    ids = pd.Index(["c", "h", "i", "zz"], name="customer_id")
    assert make_clv_labels(orders, ids, T, horizon_days=365).to_dict() == {"c": 0.0, "h": 0.0, "i": 30.0, "zz": 0.0}


def test_clv_window_cut_at_an_end_counts_only_what_came_before_it(orders):
    ids = pd.Index(["c", "i"], name="customer_id")
    end = ts("2024-07-18")  # after c's order o2, before its refund o3 and i's order o6
    assert make_clv_labels(orders, ids, T, 365, end=end).to_dict() == {"c": 50.0, "i": 0.0}
    assert make_clv_order_counts(orders, ids, T, 365, end=end).to_dict() == {"c": 1.0, "i": 0.0}
    assert make_clv_order_counts(orders, ids, T, 365).to_dict() == {"c": 1.0, "i": 1.0}  # refunds are no orders
    assert window_exposure(T, 365, end) == pytest.approx(47 / 365)
    assert window_exposure(T, 365) == window_exposure(T, 365, T + pd.Timedelta(days=400)) == 1.0


@pytest.mark.parametrize(
    "funnel_events, order_rows",
    [(None, None), (pd.DataFrame(columns=["customer_id", "timestamp", "stage"]), None)],
    ids=["no tables", "empty funnel"],
)
def test_missing_tables_give_empty_populations(funnel_events, order_rows):
    assert len(open_leads(funnel_events, order_rows, T)) == 0
    assert len(make_churn_labels(order_rows, T, 90)) == 0
