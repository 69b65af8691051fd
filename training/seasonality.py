"""The purchase season: how buying moves with the day of the year, learnt from the orders before a cutoff.

Each customer's orders strictly between its first and its last are, for a Poisson buyer, spread over that
span in proportion to the season whatever the customer's own rate; fitting the season with a rate per
customer (fixed effects) therefore ignores a growing or dying customer base, which a plain count of
orders by date would mistake for season. The first order marks the win, not the season, and the last
bounds the span, so neither counts.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from sklearn.linear_model import PoissonRegressor
from sklearn.preprocessing import SplineTransformer

DAYS = 366  # profile entries, day of year 0..365
MIN_SPAN_DAYS = 400  # less history than a year and a bit cannot tell the season from a trend
MIN_ORDERS = 500  # fewer orders inside customers' spans and the profile stays flat
KNOTS = 25  # periodic spline knots over the year: about two weeks apart, enough for a year-end peak
ITERATIONS = 6  # alternate customer rates and season; it settles within a few rounds
RIDGE = 1e-4


def fit_purchase_season(orders: pd.DataFrame | None, as_of: pd.Timestamp) -> tuple[float, ...]:
    """Relative purchase intensity per day of year (mean 1) from orders before `as_of`; () when too little.

    () means no season is known: the features then treat every day alike.
    """
    if orders is None or orders.empty:
        return ()
    ts = orders["timestamp"]
    rows = orders[(ts < as_of) & ts.notna() & ~(orders["amount"] < 0)]
    if rows.empty:
        return ()
    start = rows["timestamp"].min().normalize()
    n_days = int((as_of - start) / pd.Timedelta(days=1))
    if n_days < MIN_SPAN_DAYS:
        return ()
    day = ((rows["timestamp"] - start) / pd.Timedelta(days=1)).to_numpy()
    _, cust = np.unique(rows["customer_id"].astype(str).to_numpy(), return_inverse=True)
    first = np.full(cust.max() + 1, np.inf)
    last = np.full(cust.max() + 1, -np.inf)
    np.minimum.at(first, cust, day)
    np.maximum.at(last, cust, day)
    inside = (day > first[cust]) & (day < last[cust])
    if inside.sum() < MIN_ORDERS:
        return ()
    per_customer = np.bincount(cust, weights=inside, minlength=len(first))
    use = per_customer > 0
    lo, hi = np.floor(first[use]).astype(int) + 1, np.floor(last[use]).astype(int)
    counts = np.bincount(day[inside].astype(int), minlength=n_days)[:n_days].astype(float)
    dates = start + pd.to_timedelta(np.arange(n_days), unit="D")
    basis = _basis()
    x = basis.transform((dates.day_of_year.to_numpy() - 1).astype(float).reshape(-1, 1))
    season = np.ones(n_days)
    model = PoissonRegressor(alpha=RIDGE, max_iter=3000)
    for _ in range(ITERATIONS):
        mass = np.concatenate([[0.0], np.cumsum(season)])
        rate = per_customer[use] / np.maximum(mass[hi] - mass[lo], 1e-9)  # each customer's own rate
        edges = np.zeros(n_days + 1)
        np.add.at(edges, lo, rate)
        np.add.at(edges, hi, -rate)
        exposure = np.cumsum(edges)[:n_days]
        seen = exposure > 1e-12
        model.fit(x[seen], counts[seen] / exposure[seen], sample_weight=exposure[seen])
        season = model.predict(x)
        season /= season.mean()
    profile = model.predict(basis.transform(np.arange(DAYS, dtype=float).reshape(-1, 1)))
    return tuple(float(v) for v in profile / profile.mean())


@functools.cache
def _basis() -> SplineTransformer:
    """A periodic cubic spline over the day of year (fitted once: its knots are fixed)."""
    knots = np.linspace(0.0, 365.25, KNOTS).reshape(-1, 1)
    return SplineTransformer(degree=3, knots=knots, extrapolation="periodic").fit(knots)


@functools.lru_cache(maxsize=256)
def season_cumulative(profile: tuple[float, ...], day_of_year: int, back: int, ahead: int) -> np.ndarray:
    """Running sum of the profile over the days from `back` days before a cutoff on `day_of_year` (0-based)
    to `ahead` days after it: entry k covers the days before offset k - back. A flat profile without one."""
    offsets = np.arange(-back, ahead)
    values = np.ones(len(offsets)) if not profile else np.asarray(profile)[(day_of_year + offsets) % DAYS]
    return np.concatenate([[0.0], np.cumsum(values)])


def season_sum(cumulative: np.ndarray, back: int, start: np.ndarray | float, end: np.ndarray | float) -> np.ndarray:
    """The profile summed over the days from offset `start` to `end` (days from the cutoff, fractions allowed)."""
    grid = np.arange(len(cumulative), dtype=float) - back
    return np.interp(end, grid, cumulative) - np.interp(start, grid, cumulative)


def window_means(profile: tuple[float, ...], days: int) -> tuple[float, ...]:
    """The profile's mean over the `days` days from each day of year (a window running into the next year)."""
    values = np.asarray(profile, dtype=float)
    wrapped = np.concatenate([values, np.tile(values, days // DAYS + 1)])
    running = np.concatenate([[0.0], np.cumsum(wrapped)])
    start = np.arange(DAYS)
    return tuple(float(v) for v in (running[start + days] - running[start]) / days)
