"""Who is who at a cutoff on literal tables: open leads under any funnel, buyers, and each model's rows."""

from __future__ import annotations

import pandas as pd
import pytest

from crmdata.funnel import Funnel
from crmdata.populations import MODEL_POPULATIONS, buyers, eligible_ids, open_leads
from tests.factories import funnel_frame, orders_frame
from training.config import MODEL_KINDS

T = pd.Timestamp("2024-06-01")
FUNNEL = Funnel.of(["Prospect", "Demo", "Closed Won"], "Closed Lost")


@pytest.fixture
def tables() -> dict:
    # fmt: off
    events = [
        ("a", "2024-01-01", "Prospect"), ("a", "2024-03-01", "Demo"),  # open
        ("b", "2024-01-01", "Prospect"), ("b", "2024-02-01", "Closed Lost"),  # lost
        ("c", "2024-01-01", "Prospect"), ("c", "2024-05-01", "Closed Won"),  # won (and bought)
        ("d", "2024-01-01", "Prospect"), ("d", "2024-06-01", "Closed Won"),  # won exactly at T: still open
        ("e", "2024-01-01", "Prospect"), ("e", "2024-02-01", "Closed Lost"), ("e", "2024-04-01", "Demo"),  # reopened
        ("f", "2024-01-01", "Prospect"),  # open, but bought before T
        ("g", "2024-07-01", "Prospect"),  # a lead only after T
    ]
    orders = [
        ("c", "o1", "2024-05-02", 100.0),
        ("f", "o2", "2024-05-20", 40.0),
        ("h", "o3", "2024-01-10", 80.0),  # a buyer without funnel events
        ("i", "o4", "2024-06-01", 10.0),  # exactly at T: not a buyer yet
    ]
    # fmt: on
    return {
        "funnel_events": funnel_frame(events),
        "orders": orders_frame(orders),
    }


def test_open_leads_follow_the_funnel_they_are_given(tables):
    leads = open_leads(tables["funnel_events"], tables["orders"], T, FUNNEL)
    assert list(leads) == ["a", "d", "e"] and leads.name == "customer_id"


def test_the_won_and_lost_stages_come_from_the_funnel(tables):
    # Under another vocabulary, "Closed Won" and "Closed Lost" are no terminal stages: b and c look open.
    other = Funnel.of(["Prospect", "Demo", "Signed"], "Dropped")
    assert list(open_leads(tables["funnel_events"], tables["orders"], T, other)) == ["a", "b", "d", "e"]


def test_buyers_ordered_strictly_before_the_cutoff(tables):
    assert list(buyers(tables["orders"], T)) == ["c", "f", "h"]
    assert buyers(None, T).empty and buyers(tables["orders"].iloc[:0], T).empty


@pytest.mark.parametrize(
    "kind, expected",
    [("conversion", ["a", "d", "e"]), ("churn", ["c", "f", "h"]), ("clv", ["a", "c", "d", "e", "f", "h"])],
    ids=["conversion: open leads", "churn: buyers", "clv: both"],
)
def test_each_model_scores_its_population(tables, kind, expected):
    assert list(eligible_ids(kind, tables, T, FUNNEL)) == expected


def test_without_funnel_events_only_buyers_remain(tables):
    tables["funnel_events"] = None
    assert eligible_ids("conversion", tables, T, FUNNEL).empty
    assert list(eligible_ids("clv", tables, T, FUNNEL)) == ["c", "f", "h"]


def test_every_model_names_its_population():
    assert set(MODEL_POPULATIONS) == set(MODEL_KINDS)
