"""The purchase season learnt from orders, and churn probabilities carried from one season to another."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.bundle import SeasonTransfer
from training.seasonality import DAYS, fit_purchase_season, window_means

START = pd.Timestamp("2022-01-01")


def true_season(day_of_year: np.ndarray) -> np.ndarray:
    """A summer high and a winter low, mean 1 over the year."""
    return 1.0 + 0.4 * np.cos(2 * np.pi * (np.asarray(day_of_year) - 180) / 365.25)


def seasonal_orders(customers: int, days: int, seed: int = 3) -> pd.DataFrame:
    """Customers won evenly over the span (a growing base), each buying at its own rate times the season
    until an exponential death: the confounders a count of orders by date would mistake for season."""
    rng = np.random.default_rng(seed)
    won = rng.uniform(0, days, customers)
    death = won + rng.exponential(500.0, customers)
    rate = rng.gamma(2.0, 0.02, customers)  # orders a day at season 1
    grid = np.arange(days) + 0.5
    season = true_season((START.dayofyear - 1 + grid) % 365.25)
    rows = []
    for i in range(customers):
        alive = (grid > won[i]) & (grid < death[i])
        n = rng.poisson(rate[i] * season * alive)
        rows += [(f"C{i}", START + pd.Timedelta(days=float(d)), 10.0) for d in np.repeat(grid, n)]
        rows.append((f"C{i}", START + pd.Timedelta(days=float(won[i])), 10.0))  # the first order, at the win
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    return seasonal_orders(customers=3000, days=900)


def test_the_season_is_recovered_from_a_growing_base_of_dying_customers(orders):
    as_of = START + pd.Timedelta(days=900)
    profile = np.array(fit_purchase_season(orders, as_of))
    truth = true_season(np.arange(DAYS))
    assert len(profile) == DAYS and profile.mean() == pytest.approx(1.0)
    assert np.corrcoef(profile, truth)[0, 1] > 0.95
    assert np.abs(profile - truth).max() < 0.15
    assert abs(int(np.argmax(profile)) - 180) <= 20


def test_orders_at_or_after_the_cutoff_do_not_move_the_season(orders):
    as_of = START + pd.Timedelta(days=700)
    later = orders.copy()
    late = later["timestamp"] >= as_of
    later.loc[late, "timestamp"] = later.loc[late, "timestamp"] + pd.Timedelta(days=40)
    assert fit_purchase_season(orders, as_of) == fit_purchase_season(later, as_of)


def test_less_than_a_year_and_a_bit_of_history_gives_no_season(orders):
    assert fit_purchase_season(orders, START + pd.Timedelta(days=300)) == ()
    assert fit_purchase_season(orders.head(100), START + pd.Timedelta(days=900)) == ()
    assert fit_purchase_season(None, START) == ()


def test_window_means_wrap_into_the_next_year():
    profile = np.arange(DAYS, dtype=float)
    means = window_means(tuple(profile), 3)
    assert means[0] == pytest.approx(1.0)
    assert means[DAYS - 1] == pytest.approx((365 + 0 + 1) / 3)


def _transfer(season_of_day: np.ndarray, reference: float) -> SeasonTransfer:
    return SeasonTransfer(tuple(season_of_day), reference, sin_column=0, cos_column=1)


def _cutoff_columns(day_of_year: int) -> np.ndarray:
    angle = 2 * np.pi * day_of_year / 365.25
    return np.array([[np.sin(angle), np.cos(angle)]])


def test_a_quieter_window_raises_churn_and_a_certain_churner_stays_certain():
    season = np.ones(DAYS)
    season[10] = 0.5  # the window from day 10 expects half the orders of the validation window's
    transfer = _transfer(season, reference=1.0)
    x = np.repeat(_cutoff_columns(10), 3, axis=0)
    p = np.array([0.2, 0.6, 1.0])
    moved = transfer.apply(p, x)
    # P(no order) = exp(-orders): half the expected orders is the square root of the probability.
    np.testing.assert_allclose(moved, np.sqrt(p))
    np.testing.assert_allclose(transfer.apply(p, np.repeat(_cutoff_columns(200), 3, axis=0)), p)


def test_an_unknown_cutoff_season_leaves_the_probability_alone():
    transfer = _transfer(np.full(DAYS, 0.5), reference=1.0)
    np.testing.assert_allclose(transfer.apply(np.array([0.3]), np.array([[np.nan, np.nan]])), [0.3])
