"""Features derived from the other families' columns: per-day rates over each customer's observed span,
overdue ratios, the cutoff's time of year, and the purchase season learnt from the orders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.seasonality import season_cumulative, season_sum

SEASON_DAYS = 90


def build_derived_features(cols: dict[str, np.ndarray], as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """Per-day rates over each customer's observed span, overdue ratios, and the cutoff's season."""
    with np.errstate(divide="ignore", invalid="ignore"):
        age = np.maximum(cols["account_age_days"], 1.0)
        tenure = cols["days_since_first_order"]  # NaN without orders
        span = np.maximum(tenure, 30.0)
        out = {
            "touch_rate_90d": cols["touches_90d"] / np.minimum(age, 90.0),
            "customer_touch_rate_90d": (cols["touches_90d"] - cols["tickets_90d"])
            / np.minimum(np.maximum(tenure, 1.0), 90.0),
            "customer_touch_rate_365d": (cols["touches_365d"] - cols["tickets_365d"])
            / np.minimum(np.maximum(tenure, 1.0), 365.0),
            "stage_touch_rate_30d": cols["touches_30d"] / np.clip(cols["days_in_stage"], 1.0, 30.0),
            "orders_per_year": cols["orders_total"] / span * 365.0,
            "spend_per_year": cols["spend_sum_total"] / span * 365.0,
            "tickets_per_year": cols["tickets_365d"] / np.minimum(span, 365.0) * 365.0,
            "overdue_ratio": cols["days_since_last_order"] / np.maximum(cols["order_gap_mean_days"], 1.0),
        }
        out["touch_silence_ratio"] = cols["days_since_last_touch"] * out["touch_rate_90d"]
    day = 2 * np.pi * (as_of.dayofyear - 1) / 365.25
    n = len(age)
    out["cutoff_season_sin"] = np.full(n, np.sin(day))
    out["cutoff_season_cos"] = np.full(n, np.cos(day))
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}


def build_season_features(
    cols: dict[str, np.ndarray], as_of: pd.Timestamp, profile: tuple[float, ...]
) -> dict[str, np.ndarray]:
    """The purchase season of the coming and the last 90 days, and each customer's repeat orders of the last
    year (and of the last 90 days) over the season they fell in, per average 90 days."""
    back = 365
    running = season_cumulative(profile, as_of.dayofyear - 1, back, SEASON_DAYS)
    n = len(cols["orders_total"])
    out = {
        "season_next_90d": np.full(n, season_sum(running, back, 0.0, float(SEASON_DAYS)) / SEASON_DAYS),
        "season_last_90d": np.full(n, season_sum(running, back, -float(SEASON_DAYS), 0.0) / SEASON_DAYS),
    }
    tenure = cols["days_since_first_order"]  # NaN without orders
    for name, window, orders in (
        ("paced_orders_90d", 365.0, cols["orders_365d"]),
        ("paced_orders_90d_recent", 90.0, cols["orders_90d"]),
    ):
        span = np.clip(tenure, 30.0, window)  # as the yearly rates: a month at least
        repeats = orders - (tenure <= window)  # the first order marks the win, not the pace
        with np.errstate(divide="ignore", invalid="ignore"):
            pace = repeats / season_sum(running, back, -span, 0.0) * SEASON_DAYS
        out[name] = np.where(np.isnan(tenure), np.nan, pace)
    return out
