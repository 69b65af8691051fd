"""Carryover, season and the fit-quality gate of the response curves, on small generated weekly series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketing.adstock import adstock
from marketing.response_curves import FITTED, INSUFFICIENT, fit_channel_curve, fit_response_curves, hill, hill_slope

START = pd.Timestamp("2022-01-02")
CURVE = np.array([2.0, 60.0, 3000.0, 1.1])  # b, m, h, k: about 30 leads a week at the level spend of 3000


def weekly_spend(weeks: int, rng, level: float = 3000.0) -> np.ndarray:
    """Spend in 8-week regimes between 0.55 and 1.45 times `level`, with 0.2 log-sd weekly noise."""
    regimes = rng.uniform(0.55, 1.45, weeks // 8 + 1)
    return level * np.repeat(regimes, 8)[:weeks] * np.exp(rng.normal(0.0, 0.2, weeks))


def season_factor(weeks: int, amplitude: float, peak_day: float = 200.0) -> np.ndarray:
    """The simulator's multiplicative season at each week's middle."""
    day = pd.DatetimeIndex(START + pd.Timedelta(days=3.5) + pd.to_timedelta(7 * np.arange(weeks), unit="D")).dayofyear
    return 1.0 + amplitude * np.cos(2 * np.pi * (day.to_numpy() - peak_day) / 365.25)


def weekly_leads(spend: np.ndarray, rate: float, rng, season: np.ndarray | float = 1.0, curve=CURVE) -> np.ndarray:
    """Poisson leads around the curve of the adstocked spend, times the season."""
    return rng.poisson(season * hill(adstock(spend, [rate])[0], curve)).astype(float)


def periods(spend: np.ndarray, leads: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"spend": spend, "leads": leads})


def fit(spend, leads, n_boot: int = 100, **kwargs):
    return fit_channel_curve("search", periods(spend, leads), np.full(200, 100.0), float(spend[-13:].mean()),
                             n_boot=n_boot, **kwargs)  # fmt: skip


def tables(channels: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """An export with each channel's weekly spend and leads (spread over the week); every lead is worth 100."""
    rng = np.random.default_rng(0)
    starts = START + pd.to_timedelta(7 * np.arange(len(next(iter(channels.values()))[0])), unit="D")
    spend_rows, created, source = [], [], []
    for channel, (spend, leads) in channels.items():
        spend_rows.append(pd.DataFrame({"period_start": starts, "channel": channel, "spend": spend}))
        for start, n in zip(starts, leads.astype(int), strict=True):
            created += list(start + pd.to_timedelta(rng.uniform(0, 167, n), unit="h"))
            source += [channel] * n
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(len(created))], "created_at": created})
    customers["source_channel"] = source
    values = pd.Series(100.0, index=customers["customer_id"])
    return {"customers": customers, "channel_spend": pd.concat(spend_rows, ignore_index=True)}, values
