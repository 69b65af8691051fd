"""The feature catalogue: the layout, labels and LightGBM constraints derived from its declarations."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from crmdata.funnel import DEFAULT_FUNNEL
from training.catalogue import FAMILIES, Feature, layout, monotone_constraints, season_blind
from training.config import MODEL_KINDS, TrainConfig
from training.features import FeatureSpec, _feature_columns, feature_labels

AS_OF = pd.Timestamp("2024-07-01")
SPEC = FeatureSpec(
    funnel=DEFAULT_FUNNEL,
    channels=("email",),
    interactions=("open",),
    order_channels=("online",),
    categories=("hw",),
    typical_stage_days={},
)
# The model order of SPEC as trained models store it: numeric family by family, then the categorical ones.
_SPEC_COLUMN_TEXT = """
touches_email_7d touches_email_30d touches_email_90d touches_email_365d touches_7d touches_30d touches_90d
touches_365d touches_total distinct_channels_365d days_since_last_touch days_since_last_touch_email
interactions_open_30d interactions_open_90d interactions_open_365d distinct_campaigns touch_cost_total
touch_cost_90d tickets_90d tickets_365d satisfaction_mean satisfaction_last low_satisfaction_tickets_365d
engagement_trend_30d current_stage_index is_open_lead furthest_stage_index days_in_stage stall_ratio
days_to_lead days_to_mql days_to_sql days_to_opportunity days_to_negotiation days_to_won stage_changes
stage_regressions lost_reopened days_since_last_stage_change days_since_last_order days_since_first_order
orders_total orders_90d orders_365d spend_sum_total spend_sum_365d spend_mean_total spend_mean_365d
spend_max_total spend_max_365d spend_trend_180d net_spend_total order_gap_mean_days order_gap_std_days
refunds_total refund_amount_total spend_share_category_hw spend_share_channel_online distinct_categories
employees annual_revenue account_age_days touch_rate_90d customer_touch_rate_90d customer_touch_rate_365d
stage_touch_rate_30d orders_per_year spend_per_year tickets_per_year overdue_ratio touch_silence_ratio
cutoff_season_sin cutoff_season_cos customer_touches customer_touch_rate customer_tickets_per_year
customer_silence_expected_touches repeat_order_rate stage_touch_rate lead_touch_rate
previous_stage_touch_rate lead_touch_index stage_touch_index stage_expected_touches season_next_90d
season_last_90d paced_orders_90d paced_orders_90d_recent first_touch_channel last_touch_channel
current_stage source_channel industry region
"""
SPEC_COLUMNS = _SPEC_COLUMN_TEXT.split()
# The directions and season-blind columns `training.train` held before the catalogue.
PREVIOUS_MONOTONE = {
    "conversion": {"days_since_last_touch": -1},
    "churn": {"days_since_last_order": 1, "paced_orders_90d": -1, "paced_orders_90d_recent": -1},
    "clv": {"days_since_last_order": -1, "paced_orders_90d": 1, "paced_orders_90d_recent": 1},
}
PREVIOUS_SEASON_BLIND = {"churn": ("cutoff_season_sin", "cutoff_season_cos", "season_next_90d", "season_last_90d")}


def _layout_of(spec: FeatureSpec):
    return layout(spec.stages, spec.channels, spec.interactions, spec.order_channels, spec.categories)


def test_layout_keeps_the_model_column_order():
    assert list(SPEC.columns) == SPEC_COLUMNS
    assert SPEC.categorical == ("first_touch_channel", "last_touch_channel", "current_stage", *SPEC_COLUMNS[-3:])


def test_every_layout_column_has_a_family_and_a_label():
    lay = _layout_of(SPEC)
    families = {family.name for family in FAMILIES}
    assert list(lay.by_name) == list(lay.columns)
    for name, column in lay.by_name.items():
        assert column.name == name and column.family in families and column.label, name
    assert lay.by_name["touches_email_30d"].family == "channel"
    assert lay.by_name["days_to_won"].family == "funnel"
    assert lay.by_name["paced_orders_90d"].family == "season"
    assert feature_labels(SPEC) == lay.labels()


def test_templates_expand_per_window_then_per_spec_value():
    lay = _layout_of(dataclasses.replace(SPEC, channels=("email", "In Person"), columns=(), categorical=()))
    assert lay.each("touches_{item}_{window}d", 7) == ("touches_email_7d", "touches_in_person_7d")
    assert lay.each("touches_{window}d", 90) == ("touches_90d",)
    assert lay.each("days_to_{item}") == tuple(f"days_to_{s}" for s in DEFAULT_FUNNEL.slugs())
    assert lay.by_name["touches_in_person_30d"].label == "{value:.0f} In Person touches in the last 30 days"


def test_spec_values_stay_literal_in_labels():
    spec = dataclasses.replace(SPEC, interactions=("email_open", "{item}"), columns=(), categorical=())
    labels = feature_labels(spec)
    assert labels["interactions_email_open_90d"].format(value=2.0) == "2 email open interactions in the last 90 days"
    assert labels["interactions_item_30d"].format(value=1.0) == "1 {item} interactions in the last 30 days"


def test_families_build_exactly_the_catalogue_columns():
    tables = {
        "customers": pd.DataFrame({"customer_id": ["A"], "created_at": [AS_OF - pd.Timedelta(days=90)]}),
        "touchpoints": pd.DataFrame(
            {"customer_id": ["A"], "timestamp": [AS_OF - pd.Timedelta(days=3)], "channel": ["email"]}
        ),
    }
    _, cols = _feature_columns(tables, AS_OF.value, SPEC)
    assert sorted(cols) == sorted(SPEC.columns)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_monotone_constraints_and_season_blind_columns_match_the_previous_lists(kind):
    constraints = monotone_constraints(kind, SPEC.columns)
    assert {c: d for c, d in zip(SPEC.columns, constraints, strict=True) if d} == PREVIOUS_MONOTONE[kind]
    assert season_blind(kind) == PREVIOUS_SEASON_BLIND.get(kind, ())


def test_lightgbm_params_take_the_constraints_from_the_catalogue():
    from training.fitting import lightgbm_params

    seasonal = dataclasses.replace(SPEC, purchase_season=(1.0,) * 366)
    params = lightgbm_params("churn", TrainConfig(), seasonal)
    assert params["monotone_constraints"] == monotone_constraints("churn", SPEC.columns)
    blind = [c for c, w in zip(SPEC.columns, params["feature_contri"], strict=True) if w == 0.0]
    assert blind == list(PREVIOUS_SEASON_BLIND["churn"])
    assert "feature_contri" not in lightgbm_params("churn", TrainConfig(), SPEC)  # no season learnt
    assert "feature_contri" not in lightgbm_params("clv", TrainConfig(), seasonal)


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ({"name": "x_{item}", "over": "channels", "monotone": {"churn": 1}}, "cannot carry constraints"),
        ({"name": "x", "monotone": {"churn": 2}}, "-1 or \\+1"),
        ({"name": "x", "season_blind": ("upsell",)}, "unknown model kinds"),
        ({"name": "x_{item}", "over": "products"}, "`over` must be one of"),
    ],
    ids=["constraint-on-template", "bad-direction", "unknown-kind", "unknown-list"],
)
def test_declarations_are_checked(declaration, message):
    with pytest.raises(ValueError, match=message):
        Feature(label="{value}", **declaration)
