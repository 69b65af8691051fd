"""A multiplicative annual season in leads, `1 + a * cos(2 pi (day of year - peak) / 365.25)`.

Leads rise and fall with the season whatever the spend; a curve fitted to raw weekly leads would credit
that to spend whenever a spend regime happened to meet a busy month. The season is estimated pooled over
the paid channels, against what their curves expect from spend alone, and only from at least a year of data.
Organic channels are left out: nothing says their leads share the paid channels' season (the simulator puts
it on paid channels' leads only), and pooling a flat series in would shrink the amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

YEAR_DAYS = 365.25
MIN_SEASON_DAYS = 364  # less than a year of periods cannot tell a season from a trend: no season then
MAX_AMPLITUDE = 0.9  # keeps the season factor positive


@dataclass(frozen=True)
class Season:
    """The fitted season: relative amplitude and the day of the year (1-366) it peaks on."""

    amplitude: float
    peak_day: float

    def factor(self, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """Multiplicative factor on leads at `dates` (1 on average over a year)."""
        day = pd.DatetimeIndex(dates).dayofyear.to_numpy(dtype=float)
        return 1.0 + self.amplitude * np.cos(2 * np.pi * (day - self.peak_day) / YEAR_DAYS)

    def summary(self) -> dict:
        """The season as a JSON-ready dict."""
        return {"amplitude": float(self.amplitude), "peak_day": float(self.peak_day)}


def fit_season(dates: pd.Series, leads: np.ndarray, expected: np.ndarray) -> Season | None:
    """Least squares of leads on expected * (1, cos, sin) of the day of year, pooled over channels and periods.

    `expected` is each period's leads under its channel's curve without a season. Returns None (no season)
    when the dates span less than `MIN_SEASON_DAYS` or nothing is expected.
    """
    dates = pd.DatetimeIndex(dates)
    if len(dates) == 0 or (dates.max() - dates.min()).days < MIN_SEASON_DAYS:
        return None
    angle = 2 * np.pi * dates.dayofyear.to_numpy(dtype=float) / YEAR_DAYS
    design = expected[:, None] * np.column_stack([np.ones_like(angle), np.cos(angle), np.sin(angle)])
    (level, c, s), *_ = np.linalg.lstsq(design, leads, rcond=None)
    if not level > 0:
        return None
    amplitude = min(float(np.hypot(c, s) / level), MAX_AMPLITUDE)
    peak = float(np.arctan2(s, c) * YEAR_DAYS / (2 * np.pi)) % YEAR_DAYS
    return Season(amplitude=amplitude, peak_day=peak if peak > 0 else YEAR_DAYS)
