"""Features as of a cutoff: hand-computed values per family, edge cases at the cutoff, and no leakage."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from crmdata.funnel import DEFAULT_FUNNEL
from training.features import (
    FeatureSpec,
    build_features,
    feature_labels,
    fit_feature_spec,
)

AS_OF = pd.Timestamp("2024-07-01")
SIM_AS_OF = pd.Timestamp("2024-12-31")  # the cutoff of the shared simulated export (conftest)
SECOND = 1 / 86_400  # one second in days

SPEC = FeatureSpec(
    funnel=DEFAULT_FUNNEL,
    channels=("email", "web"),
    interactions=("open", "visit", "ticket"),
    order_channels=("online", "store"),
    categories=("hw", "sw"),
    typical_stage_days={"lead": 2.0, "mql": 4.0, "sql": 5.0, "opportunity": 5.0, "negotiation": 8.0},
)


def ago(days: float = 0, seconds: float = 0) -> pd.Timestamp:
    return AS_OF - pd.Timedelta(days=days, seconds=seconds)


def customers(*ids: str, created_days_ago: float = 500) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": list(ids),
            "created_at": [ago(created_days_ago)] * len(ids),
            "source_channel": ["search"] * len(ids),
            "industry": ["retail"] * len(ids),
            "region": ["north"] * len(ids),
            "employees": [10.0] * len(ids),
            "annual_revenue": [1e6] * len(ids),
        }
    )


def touches(*rows: tuple) -> pd.DataFrame:
    """Rows of (customer_id, timestamp, channel, interaction, campaign_id, cost, satisfaction)."""
    cols = ["customer_id", "timestamp", "channel", "interaction", "campaign_id", "cost", "satisfaction"]
    frame = pd.DataFrame(list(rows), columns=cols)
    return frame.astype({"timestamp": "datetime64[us]", "cost": float, "satisfaction": float})


def funnel(*rows: tuple) -> pd.DataFrame:
    """Rows of (customer_id, timestamp, stage)."""
    return pd.DataFrame(list(rows), columns=["customer_id", "timestamp", "stage"]).astype(
        {"timestamp": "datetime64[us]"}
    )


def orders(*rows: tuple) -> pd.DataFrame:
    """Rows of (customer_id, timestamp, amount, channel, product_category); order ids are numbered."""
    frame = pd.DataFrame(list(rows), columns=["customer_id", "timestamp", "amount", "channel", "product_category"])
    frame.insert(1, "order_id", [f"O{i}" for i in range(len(frame))])
    return frame.astype({"timestamp": "datetime64[us]", "amount": float})


def expected(ids: list[str], **columns: list) -> pd.DataFrame:
    """An expected slice of the feature frame: float columns, categorical ones as object with None."""
    index = pd.Index(ids, name="customer_id")
    return pd.DataFrame(
        {
            name: pd.Series(values, index=index, dtype=object if name in SPEC.categorical else float)
            for name, values in columns.items()
        }
    )


def check(frame: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(frame[list(want.columns)], want, check_exact=False, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------------------------------------
# Channel history
# --------------------------------------------------------------------------------------------------------

CHANNEL_TOUCHES = touches(
    ("A", ago(seconds=1), "email", "open", "c1", 1.5, None),
    ("A", ago(7), "email", "open", "c1", None, None),  # exactly 7 days before: inside the 7-day window
    ("A", ago(7, seconds=1), "web", "visit", None, None, None),
    ("A", ago(20), "email", "ticket", None, None, 2.0),
    ("A", ago(45), "web", "visit", "c2", None, None),
    ("A", ago(100), "phone", "call", None, 3.0, None),  # a channel the spec does not know
    ("A", ago(200), "email", "ticket", None, None, 4.0),
    ("A", ago(400), "web", "visit", None, None, None),
    ("A", AS_OF, "email", "ticket", "c9", 100.0, 1.0),  # at the cutoff: excluded
)


def test_channel_features_match_hand_computed_values():
    x = build_features({"customers": customers("A", "B"), "touchpoints": CHANNEL_TOUCHES}, AS_OF, SPEC)
    want = expected(
        ["A", "B"],
        touches_email_7d=[2, 0],
        touches_web_7d=[0, 0],
        touches_7d=[2, 0],
        touches_email_30d=[3, 0],
        touches_web_30d=[1, 0],
        touches_30d=[4, 0],
        touches_email_90d=[3, 0],
        touches_web_90d=[2, 0],
        touches_90d=[5, 0],
        touches_email_365d=[4, 0],
        touches_web_365d=[2, 0],
        touches_365d=[7, 0],
        touches_total=[8, 0],
        distinct_channels_365d=[3, 0],
        days_since_last_touch=[SECOND, np.nan],
        days_since_last_touch_email=[SECOND, np.nan],
        days_since_last_touch_web=[7 + SECOND, np.nan],
        first_touch_channel=["web", None],
        last_touch_channel=["email", None],
        interactions_open_30d=[2, 0],
        interactions_visit_30d=[1, 0],
        interactions_ticket_30d=[1, 0],
        interactions_visit_90d=[2, 0],
        interactions_ticket_365d=[2, 0],
        distinct_campaigns=[2, 0],
        touch_cost_total=[4.5, 0],
        touch_cost_90d=[1.5, 0],
        tickets_90d=[1, 0],
        tickets_365d=[2, 0],
        satisfaction_mean=[3.0, np.nan],
        satisfaction_last=[2.0, np.nan],
        low_satisfaction_tickets_365d=[1, 0],
        engagement_trend_30d=[(4 - 1) / (4 + 1 + 1), 0.0],
    )
    check(x, want)


# --------------------------------------------------------------------------------------------------------
# Funnel progression
# --------------------------------------------------------------------------------------------------------

FUNNEL_CUSTOMERS = pd.concat(
    [
        customers("F1", created_days_ago=61),
        customers("F2", "F3", "F4", "F5", created_days_ago=90),
        customers("F6", created_days_ago=2),
    ]
)
FUNNEL_EVENTS = funnel(
    ("F1", ago(60), "lead"),
    ("F1", ago(50), "mql"),
    ("F1", ago(40), "sql"),
    ("F1", ago(30), "opportunity"),
    ("F1", ago(20), "sql"),
    ("F1", ago(10), "opportunity"),
    ("F2", ago(90), "lead"),
    ("F2", ago(80), "lost"),
    ("F2", ago(30), "mql"),
    ("F2", ago(5), "lost"),
    ("F3", ago(10), "lead"),
    ("F3", ago(3), "mql"),
    ("F3", ago(1), "mql"),
    ("F3", AS_OF, "won"),
    ("F5", ago(30), "lead"),
    ("F5", ago(10), "negotiation"),
    ("F5", ago(5), "won"),
    ("F6", ago(2), "lead"),
)
FUNNEL_ORDERS = orders(("F5", ago(4), 100.0, "online", "hw"), ("F6", ago(1), 10.0, "online", "hw"))


def test_funnel_features_match_hand_computed_values():
    tables = {"customers": FUNNEL_CUSTOMERS, "funnel_events": FUNNEL_EVENTS, "orders": FUNNEL_ORDERS}
    x = build_features(tables, AS_OF, SPEC)
    nan = np.nan
    want = expected(
        ["F1", "F2", "F3", "F4", "F5", "F6"],
        current_stage=["opportunity", "lost", "mql", "none", "won", "lead"],
        current_stage_index=[3, -1, 1, nan, 5, 0],
        is_open_lead=[1, 0, 1, 0, 0, 0],  # F6 is open in the funnel but has already ordered
        furthest_stage_index=[3, 1, 1, nan, 5, 0],
        days_in_stage=[10, 5, 3, nan, 5, 2],  # F3's repeated mql record does not restart the stay
        stall_ratio=[10 / 5.0, nan, 3 / 4.0, nan, nan, 2 / 2.0],
        days_to_lead=[1, 0, 80, nan, 60, 0],
        days_to_mql=[11, 60, 87, nan, nan, nan],
        days_to_sql=[21, nan, nan, nan, nan, nan],
        days_to_opportunity=[31, nan, nan, nan, nan, nan],
        days_to_negotiation=[nan, nan, nan, nan, 80, nan],
        days_to_won=[nan, nan, nan, nan, 85, nan],  # F3 wins exactly at the cutoff: not yet
        stage_changes=[5, 3, 1, 0, 2, 0],
        stage_regressions=[1, 0, 0, 0, 0, 0],  # lost -> mql is a reopening, not a regression
        lost_reopened=[0, 1, 0, 0, 0, 0],
        days_since_last_stage_change=[10, 5, 1, nan, 5, 2],
    )
    check(x, want)


def test_stage_touch_features_weigh_touches_by_the_usual_rate_of_each_stage():
    tables = {
        "customers": customers("S1", "S2", "S3"),
        "funnel_events": funnel(
            ("S1", ago(40), "lead"),
            ("S1", ago(30), "mql"),  # 10 days as a lead, then 30 days (so far) in mql
            ("S2", ago(20), "lead"),  # only the current stage
        ),
        "touchpoints": touches(
            *[("S1", ago(d), "email", "open", None, None, None) for d in (39, 35, 31)],  # 3 as a lead
            ("S1", ago(30), "web", "visit", None, None, None),  # at the mql event: counts in mql
            ("S1", ago(10), "email", "ticket", None, None, None),  # a ticket is no engagement
            ("S2", ago(5), "web", "visit", None, None, None),
            ("S3", ago(5), "web", "visit", None, None, None),  # no funnel: no stage to count it in
        ),
    }
    spec = dataclasses.replace(SPEC, typical_stage_touch_rate={"lead": 0.2, "mql": 0.1})
    x = build_features(tables, AS_OF, spec)
    nan = np.nan
    want = expected(
        ["S1", "S2", "S3"],
        previous_stage_touch_rate=[3 / 10, nan, nan],
        lead_touch_index=[3 / (10 * 0.2), nan, nan],
        stage_touch_index=[1 / (30 * 0.1), 1 / (20 * 0.2), nan],
        stage_expected_touches=[30 * 0.1 * 1.5, nan, nan],  # S2 has no earlier stage to set its pace
    )
    check(x, want)


def test_fit_feature_spec_learns_the_usual_touches_a_day_of_each_open_stage():
    tables = {
        "customers": customers("U1", "U2"),
        "funnel_events": funnel(("U1", ago(40), "lead"), ("U1", ago(30), "mql"), ("U2", ago(10), "lead")),
        "touchpoints": touches(
            *[("U1", ago(d), "email", "open", None, None, None) for d in (39, 35, 20)],
            ("U2", ago(2), "web", "visit", None, None, None),
            ("U2", ago(1), "email", "ticket", None, None, None),
        ),
    }
    spec = fit_feature_spec(tables, AS_OF)
    assert spec.typical_stage_touch_rate == pytest.approx({"lead": 3 / 20, "mql": 1 / 30})


def test_fit_feature_spec_learns_frequent_values_and_typical_stays():
    tables = {
        "customers": customers("X1", "X2"),
        "touchpoints": touches(
            *[("X1", ago(d), "web", "visit", None, None, None) for d in (1, 2, 3)],
            *[("X2", ago(d), "email", "open", None, None, None) for d in (1, 2)],
            ("X2", ago(5), "sms", "ping", None, None, None),
            ("X1", ago(8), "Fax Line", "ping", None, None, None),
            *[("X2", ago(-d), "social", "ad_click", None, None, None) for d in range(5)],  # after the cutoff
        ),
        "funnel_events": funnel(
            ("X1", ago(20), "lead"),
            ("X1", ago(18), "mql"),
            ("X1", ago(10), "sql"),
            ("X1", AS_OF, "opportunity"),
            ("X2", ago(30), "lead"),
            ("X2", ago(26), "mql"),
            ("X2", ago(20), "lost"),
            ("X2", ago(-1), "mql"),
        ),
        "orders": orders(
            ("X1", ago(3), 5.0, "store", "hw"), ("X1", ago(2), 5.0, "online", None), ("X2", ago(1), 5.0, "online", "sw")
        ),
    }
    spec = fit_feature_spec(tables, AS_OF)
    assert spec.channels == ("web", "email", "Fax Line", "sms")  # by frequency, then by name
    assert spec.interactions == ("visit", "open", "ping")
    assert spec.order_channels == ("online", "store")
    assert spec.categories == ("hw", "sw")
    # Completed stays only: lead 2 and 4 days, mql 8 and 6 days; sql and lost are still running.
    assert spec.typical_stage_days == {"lead": 3.0, "mql": 7.0}
    assert "touches_fax_line_30d" in spec.columns
    assert set(spec.categorical) <= set(spec.columns)
    assert len(set(spec.columns)) == len(spec.columns)


def test_fit_feature_spec_keeps_at_most_twelve_channels():
    many = touches(*[("X1", ago(1), f"ch{i:02d}", "visit", None, None, None) for i in range(15)])
    spec = fit_feature_spec({"customers": customers("X1"), "touchpoints": many}, AS_OF)
    assert spec.channels == tuple(f"ch{i:02d}" for i in range(12))


# --------------------------------------------------------------------------------------------------------
# Purchase behaviour
# --------------------------------------------------------------------------------------------------------

PURCHASES = orders(
    ("P1", ago(400), 100.0, "online", "hw"),
    ("P1", ago(200), 50.0, "store", "sw"),
    ("P1", ago(100), 30.0, "online", "hw"),
    ("P1", ago(90), -30.0, "online", "hw"),  # refund
    ("P1", ago(10), 20.0, "phone", None),  # unseen channel, no category
    ("P1", AS_OF, 999.0, "online", "hw"),  # at the cutoff: excluded
    ("P2", ago(seconds=1), 80.0, "online", "sw"),
    ("P4", AS_OF + pd.Timedelta(days=3), 50.0, "online", "sw"),
)


def test_purchase_features_match_hand_computed_values():
    x = build_features({"customers": customers("P1", "P2", "P3", "P4"), "orders": PURCHASES}, AS_OF, SPEC)
    nan = np.nan
    gaps = np.array([200.0, 100.0, 90.0])  # P1's days between orders
    want = expected(
        ["P1", "P2", "P3", "P4"],
        days_since_last_order=[10, SECOND, nan, nan],
        days_since_first_order=[400, SECOND, nan, nan],
        orders_total=[4, 1, 0, 0],
        orders_90d=[1, 1, 0, 0],
        orders_365d=[3, 1, 0, 0],
        spend_sum_total=[200, 80, 0, 0],
        spend_sum_365d=[100, 80, 0, 0],
        spend_mean_total=[50, 80, nan, nan],
        spend_mean_365d=[100 / 3, 80, nan, nan],
        spend_max_total=[100, 80, nan, nan],
        spend_max_365d=[50, 80, nan, nan],
        spend_trend_180d=[(50 - 50) / 100, 1.0, nan, nan],
        net_spend_total=[170, 80, 0, 0],
        order_gap_mean_days=[gaps.mean(), nan, nan, nan],
        order_gap_std_days=[gaps.std(ddof=1), nan, nan, nan],
        refunds_total=[1, 0, 0, 0],
        refund_amount_total=[30, 0, 0, 0],
        spend_share_category_hw=[130 / 200, 0, nan, nan],
        spend_share_category_sw=[50 / 200, 1, nan, nan],
        spend_share_channel_online=[130 / 200, 1, nan, nan],
        spend_share_channel_store=[50 / 200, 0, nan, nan],
        distinct_categories=[2, 1, 0, 0],
        # Repeat orders (the first marks the win) per 90 days over the span they fell in; no season: flat.
        paced_orders_90d=[3 / 365 * 90, 0, nan, nan],
        paced_orders_90d_recent=[1, 0, nan, nan],
        season_next_90d=[1, 1, 1, 1],
        season_last_90d=[1, 1, 1, 1],
    )
    check(x, want)


def test_paced_orders_take_the_season_out_of_the_span_they_fell_in():
    profile = np.ones(366)
    today = AS_OF.dayofyear - 1
    profile[today - 90 : today] = 2.0  # the last 90 days were twice as busy as an average day
    spec = dataclasses.replace(SPEC, purchase_season=tuple(profile))
    x = build_features({"customers": customers("P1", "P2", "P3", "P4"), "orders": PURCHASES}, AS_OF, spec)
    want = expected(
        ["P1", "P2", "P3", "P4"],
        season_last_90d=[2, 2, 2, 2],
        season_next_90d=[1, 1, 1, 1],
        paced_orders_90d=[3 / (275 + 2 * 90) * 90, 0, np.nan, np.nan],
        paced_orders_90d_recent=[1 / (2 * 90) * 90, 0, np.nan, np.nan],
    )
    check(x, want)


# --------------------------------------------------------------------------------------------------------
# Attributes and output format
# --------------------------------------------------------------------------------------------------------


def test_attributes_and_output_format():
    people = pd.DataFrame(
        {
            "customer_id": ["c", "a", "b", "late"],
            "created_at": pd.to_datetime([ago(10), ago(2.5), ago(seconds=1), AS_OF]),
            "source_channel": ["search", "event", "referral", "search"],
            "industry": ["retail", None, np.nan, "retail"],
            "region": [None, "north", "south", "east"],
            "employees": [5.0, np.nan, 7.0, 1.0],
            "annual_revenue": [1e5, 2e5, np.nan, 1.0],
            "crm_owner": ["x", "y", "z", "w"],  # extra columns are ignored
        }
    )
    x = build_features({"customers": people}, AS_OF, SPEC)
    assert list(x.columns) == list(SPEC.columns)
    assert list(x.index) == ["a", "b", "c"] and x.index.name == "customer_id"  # created at the cutoff: not yet
    check(
        x,
        expected(
            ["a", "b", "c"],
            source_channel=["event", "referral", "search"],
            industry=[None, None, "retail"],
            region=["north", "south", None],
            employees=[np.nan, 7, 5],
            annual_revenue=[2e5, np.nan, 1e5],
            account_age_days=[2.5, SECOND, 10],
        ),
    )
    for col in SPEC.columns:
        assert x[col].dtype == (object if col in SPEC.categorical else np.float64), col
    for col in SPEC.categorical:
        assert all(v is None or type(v) is str for v in x[col]), col


def test_every_column_has_a_label_that_formats():
    labels = feature_labels(SPEC)
    assert list(labels) == list(SPEC.columns)
    assert labels["touches_email_30d"].format(value=3.0) == "3 email touches in the last 30 days"
    assert labels["days_since_last_order"].format(value=12.4) == "12 days since the last order"
    assert labels["source_channel"].format(value="event") == "source channel is event"
    for col, template in labels.items():
        template.format(value="x" if col in SPEC.categorical else 0.5)


def test_spec_round_trips_through_json():
    spec = fit_feature_spec({"customers": customers("A", "B"), "touchpoints": CHANNEL_TOUCHES}, AS_OF)
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


# --------------------------------------------------------------------------------------------------------
# Edge cases at the cutoff
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamps", "count", "recency"),
    [
        ([], 0, np.nan),
        ([ago(3)], 1, 3.0),
        ([AS_OF], 0, np.nan),
        ([ago(seconds=1)], 1, SECOND),
        ([ago(seconds=1), AS_OF, AS_OF + pd.Timedelta(days=1)], 1, SECOND),
    ],
    ids=["no-events", "one-event", "exactly-at-as-of", "one-second-before", "before-at-and-after"],
)
@pytest.mark.parametrize("family", ["touchpoints", "funnel_events", "orders"])
def test_only_rows_strictly_before_as_of_count(family, stamps, count, recency):
    rows = {
        "touchpoints": lambda: touches(*[("A", t, "email", "open", None, None, None) for t in stamps]),
        "funnel_events": lambda: funnel(*[("A", t, "mql") for t in stamps]),
        "orders": lambda: orders(*[("A", t, 10.0, "online", "hw") for t in stamps]),
    }[family]()
    x = build_features({"customers": customers("A"), family: rows}, AS_OF, SPEC)
    count_col, recency_col = {
        "touchpoints": ("touches_total", "days_since_last_touch"),
        "funnel_events": ("furthest_stage_index", "days_in_stage"),
        "orders": ("orders_total", "days_since_last_order"),
    }[family]
    if family == "funnel_events":
        count = 1.0 if count else np.nan  # mql is stage index 1
    np.testing.assert_allclose(x[[count_col, recency_col]].to_numpy()[0], [count, recency], rtol=1e-9)


def test_no_customers_before_as_of_gives_an_empty_frame():
    x = build_features({"customers": customers("A", created_days_ago=-1), "touchpoints": CHANNEL_TOUCHES}, AS_OF, SPEC)
    assert x.empty and list(x.columns) == list(SPEC.columns) and x.index.name == "customer_id"


# --------------------------------------------------------------------------------------------------------
# Leakage: rows at or after the cutoff never change the features
# --------------------------------------------------------------------------------------------------------

BASE = {
    "customers": pd.concat([customers("A", "B"), FUNNEL_CUSTOMERS, customers("P1", "P2", "P3", "P4")]),
    "touchpoints": CHANNEL_TOUCHES,
    "funnel_events": FUNNEL_EVENTS,
    "orders": pd.concat([FUNNEL_ORDERS, PURCHASES], ignore_index=True),
}
LATER = [AS_OF, AS_OF + pd.Timedelta(seconds=1), AS_OF + pd.Timedelta(days=40)]


def _future_touches(t: pd.DataFrame) -> pd.DataFrame:
    new = touches(*[(c, ts, "email", "ticket", "c7", 9.0, 1.0) for c in ("A", "B", "NEW") for ts in LATER])
    changed = t.assign(channel=t["channel"].where(t["timestamp"] < AS_OF, "tiktok"))
    return pd.concat([changed, new], ignore_index=True)


def _future_funnel(f: pd.DataFrame) -> pd.DataFrame:
    new = funnel(
        *[(c, ts, s) for c in ("F1", "F4", "NEW") for ts, s in zip(LATER, ["won", "lost", "mql"], strict=True)]
    )
    changed = f.assign(stage=f["stage"].where(f["timestamp"] < AS_OF, "lost"))
    return pd.concat([changed, new], ignore_index=True)


def _future_orders(o: pd.DataFrame) -> pd.DataFrame:
    new = orders(
        *[
            (c, ts, a, "store", "sw")
            for c in ("P1", "P3", "F1", "NEW")
            for ts, a in zip(LATER, [5, -5, 50], strict=True)
        ]
    )
    changed = o.assign(amount=o["amount"].where(o["timestamp"] < AS_OF, 1e6))
    return pd.concat([changed, new], ignore_index=True)


def _with_new_customer(c: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([c, customers("NEW", created_days_ago=0), customers("NEWER", created_days_ago=-5)])


@pytest.mark.parametrize(
    "change",
    [
        {"touchpoints": _future_touches},
        {"funnel_events": _future_funnel},
        {"orders": _future_orders},
        {
            "touchpoints": _future_touches,
            "funnel_events": _future_funnel,
            "orders": _future_orders,
            "customers": _with_new_customer,
        },
    ],
    ids=["channel", "funnel", "purchase", "everything"],
)
def test_rows_at_or_after_as_of_do_not_leak(change):
    before = build_features(BASE, AS_OF, SPEC)
    future = {**BASE, **{name: fn(BASE[name]) for name, fn in change.items()}}
    pd.testing.assert_frame_equal(build_features(future, AS_OF, SPEC), before)


# --------------------------------------------------------------------------------------------------------
# Robustness: unseen values, absent tables, inputs untouched, other string storage
# --------------------------------------------------------------------------------------------------------


def test_unseen_values_pass_without_new_columns():
    tables = {
        "customers": customers("A"),
        "touchpoints": touches(
            ("A", ago(40), "tiktok", "sms", "c1", None, None), ("A", ago(5), "email", "open", None, None, None)
        ),
        "funnel_events": funnel(("A", ago(9), "lead"), ("A", ago(8), "demo_booked"), ("A", ago(7), "mql")),
        "orders": orders(("A", ago(3), 10.0, "kiosk", "toys"), ("A", ago(2), 30.0, "online", "hw")),
    }
    x = build_features(tables, AS_OF, SPEC)
    assert list(x.columns) == list(SPEC.columns)
    check(
        x,
        expected(
            ["A"],
            first_touch_channel=["tiktok"],
            touches_total=[2],
            touches_email_90d=[1],
            distinct_channels_365d=[2],
            current_stage=["mql"],
            stage_changes=[1],  # stages outside the spec are ignored
            spend_share_category_hw=[0.75],
            spend_share_channel_online=[0.75],
            distinct_categories=[2],
        ),
    )


@pytest.mark.parametrize(
    "tables",
    [
        {"customers": customers("A"), "touchpoints": None, "funnel_events": None, "orders": None},
        {"customers": customers("A")},
        {"customers": customers("A"), "touchpoints": CHANNEL_TOUCHES.iloc[:0]},
        {"customers": customers("A")[["customer_id", "created_at"]]},
        {"customers": customers("A"), "touchpoints": CHANNEL_TOUCHES[["customer_id", "timestamp", "channel"]]},
    ],
    ids=["tables-none", "tables-missing", "touchpoints-empty", "attributes-missing", "optional-columns-missing"],
)
def test_absent_tables_and_columns_still_give_every_column(tables):
    x = build_features(tables, AS_OF, SPEC)
    assert list(x.columns) == list(SPEC.columns) and list(x.index) == ["A"]
    zero = [
        "orders_total",
        "is_open_lead",
        "stage_changes",
        "interactions_open_30d",
        "tickets_365d",
        "touch_cost_total",
        "distinct_campaigns",
        "refunds_total",
    ]
    missing = ["days_since_last_order", "spend_mean_total", "satisfaction_mean", "days_in_stage", "stall_ratio"]
    check(x, expected(["A"], current_stage=["none"], **{c: [0] for c in zero}, **{c: [np.nan] for c in missing}))


def test_customers_table_is_required():
    with pytest.raises(ValueError, match="customers"):
        build_features({"touchpoints": CHANNEL_TOUCHES}, AS_OF, SPEC)


def test_inputs_are_not_mutated():
    tables = {name: frame.copy(deep=True) for name, frame in BASE.items()}
    pristine = copy.deepcopy(tables)
    build_features(tables, AS_OF, SPEC)
    fit_feature_spec(tables, AS_OF)
    for name, frame in pristine.items():
        pd.testing.assert_frame_equal(tables[name], frame)


@pytest.mark.parametrize("dtype", [object, "string[python]"], ids=["object", "python-strings"])
def test_other_string_storage_gives_the_same_features(dtype):
    def convert(frame: pd.DataFrame) -> pd.DataFrame:
        text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype)]
        return frame.astype(dict.fromkeys(text, dtype))

    default = build_features(BASE, AS_OF, SPEC)
    other = build_features({name: convert(frame) for name, frame in BASE.items()}, AS_OF, SPEC)
    pd.testing.assert_frame_equal(other, default, check_index_type=False)


def test_tz_aware_cutoff_and_timestamps_read_as_utc():
    aware = {
        **BASE,
        "touchpoints": BASE["touchpoints"].assign(timestamp=lambda t: t["timestamp"].dt.tz_localize("UTC")),
    }
    pd.testing.assert_frame_equal(
        build_features(aware, AS_OF.tz_localize("UTC"), SPEC), build_features(BASE, AS_OF, SPEC)
    )


# --------------------------------------------------------------------------------------------------------
# Simulated data: smoke test and leakage on realistic tables
# --------------------------------------------------------------------------------------------------------


def test_simulated_data_builds_every_column(tables):
    """Smoke test on the shared simulated export (conftest: 5,000 customers, loaded through the contract)."""
    as_of = SIM_AS_OF
    spec = fit_feature_spec(tables, as_of)
    x = build_features(tables, as_of, spec)
    assert list(x.columns) == list(spec.columns)
    created = tables["customers"]["created_at"]
    assert len(x) == (created < as_of).sum() and x.index.is_monotonic_increasing
    assert x["is_open_lead"].sum() > 0 and (x["orders_total"] > 0).sum() > 0
    assert set(x["current_stage"]) <= {*spec.stages, "lost", "none"}
    assert x[[c for c in spec.columns if c not in spec.categorical]].notna().any().all()


def test_simulated_data_does_not_leak(tables):
    as_of = SIM_AS_OF - pd.Timedelta(days=200)
    spec = fit_feature_spec(tables, as_of)
    past = {
        name: frame[frame["timestamp"] < as_of] if "timestamp" in frame.columns else frame
        for name, frame in tables.items()
    }
    past["customers"] = past["customers"][past["customers"]["created_at"] < as_of]
    pd.testing.assert_frame_equal(build_features(tables, as_of, spec), build_features(past, as_of, spec))
