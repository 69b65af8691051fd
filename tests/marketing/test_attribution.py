"""Attribution rules on hand-written touch paths, the Markov removal effect, and per-channel performance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketing.attribution import NO_TOUCH, attribute, compare_attribution, markov_removal_effects, touch_paths
from marketing.channels import channel_performance, leads_per_period, spend_periods
from tests.factories import ts

AS_OF = pd.Timestamp("2024-02-01")


@pytest.fixture
def touchpoints() -> pd.DataFrame:
    """Four customers: a converts after 3 touches, b never converts, c converts after 2, d has no touch before T."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "b", "c", "c", "d"],
            "timestamp": ts(
                "2024-01-01",
                "2024-01-08",
                "2024-01-15",
                "2024-01-25",  # after a's conversion: not on its path
                "2024-01-03",
                "2024-01-10",
                "2024-01-05",
                "2024-01-12",
                "2024-02-01",  # exactly at as_of: excluded
            ),
            "channel": ["search", "email", "website", "email", "social", "email", "event", "search", "website"],
        }
    )


OUTCOMES = pd.Series({"a": 100.0, "b": 0.0, "c": 50.0, "d": 10.0})
CONVERTED_AT = pd.Series(pd.to_datetime(["2024-01-20", "2024-01-13"]), index=["a", "c"])
CHANNELS = [NO_TOUCH, "email", "event", "search", "social", "website"]


def credits(**values: float) -> pd.Series:
    """Expected credits over CHANNELS (missing ones 0), with the no-touch bucket from customer d."""
    out = pd.Series({c: 0.0 for c in CHANNELS} | {NO_TOUCH: 10.0} | values, name="credit")
    return out.rename_axis("channel")


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("first_touch", credits(search=100.0, event=50.0)),
        ("last_touch", credits(website=100.0, search=50.0)),
        ("linear", credits(search=100 / 3 + 25, email=100 / 3, website=100 / 3, event=25.0)),
        # a: ages 14, 7, 0 days before its newest touch -> weights 1/4, 1/2, 1; c: 7, 0 -> 1/2, 1.
        ("time_decay", credits(search=100 / 7 + 100 / 3, email=200 / 7, website=400 / 7, event=50 / 3)),
        # Removal effects: search, email, website 2/3 each, social and event 1/3 (worked out in markov_value).
        ("markov", credits(search=37.5, email=37.5, website=37.5, social=18.75, event=18.75)),
    ],
    ids=["first_touch", "last_touch", "linear", "time_decay", "markov"],
)
def test_each_rule_credits_hand_computed_amounts(touchpoints, method, expected):
    got = attribute(touchpoints, OUTCOMES, AS_OF, method=method, converted_at=CONVERTED_AT)
    pd.testing.assert_series_equal(got, expected, check_exact=False, rtol=1e-9)
    assert got.sum() == pytest.approx(OUTCOMES.sum())


def test_time_decay_half_life_is_a_parameter(touchpoints):
    got = attribute(touchpoints, OUTCOMES, AS_OF, method="time_decay", converted_at=CONVERTED_AT, half_life_days=14)
    # c: touches 7 days apart with a 14-day half-life -> weights 2^-0.5 and 1.
    w = 2**-0.5
    assert got["event"] == pytest.approx(50 * w / (1 + w))


def test_markov_removal_effect_on_a_small_chain():
    """start->A 2/3, start->B 1/3, A->B 1/2, A->null 1/2, B->conversion 1: P(conversion) = 2/3.

    Without A: 1/3 (effect 1/2); without B: 0 (effect 1); credits of 2 conversions: A 2/3, B 4/3.
    """
    tp = pd.DataFrame(
        {
            "customer_id": ["x", "x", "y", "z"],
            "timestamp": ts("2024-01-01", "2024-01-02", "2024-01-01", "2024-01-03"),
            "channel": ["A", "B", "A", "B"],
        }
    )
    outcomes = pd.Series({"x": 1.0, "y": 0.0, "z": 1.0})
    paths = touch_paths(tp, outcomes.index, AS_OF)
    effects = markov_removal_effects(paths, outcomes)
    pd.testing.assert_series_equal(
        effects, pd.Series({"A": 0.5, "B": 1.0}, name="removal_effect").rename_axis("channel")
    )
    got = attribute(tp, outcomes, AS_OF)
    pd.testing.assert_series_equal(got, pd.Series({"A": 2 / 3, "B": 4 / 3}, name="credit").rename_axis("channel"))


def test_markov_repeated_touches_on_one_channel_do_not_change_credit():
    """A self-loop only delays absorption: doubling every touch leaves the removal effects as they were."""
    base = pd.DataFrame(
        {
            "customer_id": ["x", "x", "y", "z"],
            "timestamp": ts("2024-01-01", "2024-01-02", "2024-01-01", "2024-01-03"),
            "channel": ["A", "B", "A", "B"],
        }
    )
    doubled = pd.concat([base, base.assign(timestamp=base["timestamp"] + pd.Timedelta(hours=1))])
    outcomes = pd.Series({"x": 1.0, "y": 0.0, "z": 1.0})
    pd.testing.assert_series_equal(attribute(doubled, outcomes, AS_OF), attribute(base, outcomes, AS_OF))


def test_channels_filter_keeps_only_the_named_channels(touchpoints):
    got = attribute(
        touchpoints, OUTCOMES, AS_OF, method="linear", converted_at=CONVERTED_AT, channels=["search", "email"]
    )
    expected = pd.Series({NO_TOUCH: 10.0, "email": 50.0, "search": 100.0}, name="credit").rename_axis("channel")
    pd.testing.assert_series_equal(got, expected)


@pytest.mark.parametrize("method", ["markov", "first_touch", "last_touch", "linear", "time_decay"])
def test_touches_after_the_path_end_change_nothing(touchpoints, method):
    later = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "timestamp": ts("2024-01-21", "2024-02-01", "2024-03-01", "2024-02-02"),
            "channel": ["social", "event", "social", "search"],
        }
    )
    before = attribute(touchpoints, OUTCOMES, AS_OF, method=method, converted_at=CONVERTED_AT)
    after = attribute(pd.concat([touchpoints, later]), OUTCOMES, AS_OF, method=method, converted_at=CONVERTED_AT)
    pd.testing.assert_series_equal(before, after)


def test_without_conversion_times_paths_run_to_as_of(touchpoints):
    got = attribute(touchpoints, OUTCOMES, AS_OF, method="last_touch")
    assert got["email"] == pytest.approx(100.0)  # a's touch of 2024-01-25 is now its last


def test_compare_attribution_puts_methods_side_by_side(touchpoints):
    table = compare_attribution(touchpoints, OUTCOMES, AS_OF, converted_at=CONVERTED_AT)
    assert list(table.columns) == ["markov", "first_touch", "last_touch", "linear", "time_decay"]
    np.testing.assert_allclose(table.sum().to_numpy(), OUTCOMES.sum())


def test_unknown_method_is_rejected(touchpoints):
    with pytest.raises(ValueError, match="unknown attribution method 'shapley'"):
        attribute(touchpoints, OUTCOMES, AS_OF, method="shapley")


# ------------------------------------------------------------------------------------------ channel performance


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    """Three weeks of spend (a fourth still running at T), four leads, two conversions."""
    customers = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5"],
            "created_at": ts("2024-01-02", "2024-01-09", "2024-01-03", "2024-01-04", "2024-01-27"),
            "source_channel": ["search", "search", "social", "referral", "search"],
        }
    )
    touchpoints = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c2", "c3", "c4", "c1"],
            "timestamp": ts("2024-01-02", "2024-01-05", "2024-01-09", "2024-01-03", "2024-01-04", "2024-01-22"),
            "channel": ["search", "phone", "search", "social", "referral", "social"],
        }
    )
    funnel = pd.DataFrame(
        {"customer_id": ["c1", "c3"], "timestamp": ts("2024-01-20", "2024-01-25"), "stage": ["won", "won"]}
    )
    orders = pd.DataFrame(
        {
            "customer_id": ["c1", "c3", "c1"],
            "order_id": ["o1", "o2", "o3"],
            "timestamp": ts("2024-01-20", "2024-01-25", "2024-03-10"),
            "amount": [100.0, 50.0, 30.0],
        }
    )
    spend = pd.DataFrame(
        {
            "period_start": ts(*["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"] * 2),
            "channel": ["search"] * 4 + ["social"] * 4,
            "spend": [100.0, 200.0, 300.0, 999.0, 50.0, 50.0, 50.0, 999.0],
        }
    )
    return {"customers": customers, "touchpoints": touchpoints, "funnel_events": funnel, "orders": orders,
            "channel_spend": spend}  # fmt: skip


def test_spend_periods_drop_the_period_still_running(tables):
    periods = spend_periods(tables["channel_spend"], "2024-01-26")
    assert periods.groupby("channel")["spend"].sum().to_dict() == {"search": 600.0, "social": 150.0}
    assert (periods["period_end"] - periods["period_start"]).eq(pd.Timedelta(days=7)).all()


def test_leads_are_counted_in_their_period(tables):
    periods = leads_per_period(tables["customers"], spend_periods(tables["channel_spend"], "2024-02-05"))
    search = periods[periods["channel"] == "search"].set_index("period_start")["leads"]
    assert search.to_dict() == {
        pd.Timestamp("2024-01-01"): 1.0,
        pd.Timestamp("2024-01-08"): 1.0,
        pd.Timestamp("2024-01-15"): 0.0,
        pd.Timestamp("2024-01-22"): 1.0,
    }


def test_channel_performance_by_hand(tables):
    got = channel_performance(tables, "2024-01-26", method="first_touch")
    columns = ["spend_total", "spend_per_period", "leads", "conversions", "conversion_rate", "cac", "value", "roi",
               "mean_lead_value"]  # fmt: skip
    expected = pd.DataFrame(
        {
            "spend_total": [0.0, 600.0, 150.0],
            "spend_per_period": [np.nan, 200.0, 50.0],
            "leads": [1.0, 2.0, 1.0],  # c5 is created after T
            "conversions": [0.0, 1.0, 1.0],
            "conversion_rate": [0.0, 0.5, 1.0],
            "cac": [np.nan, 600.0, 150.0],
            "value": [0.0, 100.0, 50.0],  # realised revenue before T (c1's March order is later)
            "roi": [np.nan, 100 / 600, 50 / 150],
            "mean_lead_value": [0.0, 50.0, 50.0],
        },
        index=pd.Index(["referral", "search", "social"], name="channel"),
    )
    pd.testing.assert_frame_equal(got[columns], expected)


def test_channel_performance_uses_given_lead_values_and_ignores_sales_touches(tables):
    values = pd.Series({"c1": 10.0, "c2": 20.0, "c3": 30.0, "c4": 40.0})
    got = channel_performance(tables, "2024-01-26", lead_values=values, method="last_touch")
    # c1's path is search, (phone: not a marketing channel), social at 01-22 is after its win on 01-20.
    assert got.loc["search", "value"] == pytest.approx(30.0)
    assert got.loc["social", "value"] == pytest.approx(30.0)
    assert got.loc["search", "mean_lead_value"] == pytest.approx(15.0)
    assert "phone" not in got.index
