"""Carryover, season and the fit-quality gate of the response curves, on small generated weekly series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketing.adstock import adstock
from marketing.advice import recommend_budget
from marketing.response_curves import (
    FITTED,
    INSUFFICIENT,
    SATURATED,
    fit_channel_curve,
    fit_response_curves,
    hill,
    hill_slope,
)

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


# ---------------------------------------------------------------------------------------------- carryover


@pytest.mark.parametrize("rate", [0.0, 0.6])
def test_carryover_rate_is_recovered(rate):
    rng = np.random.default_rng(3)
    spend = weekly_spend(156, rng)
    curve = fit(spend, weekly_leads(spend, rate, rng))
    assert curve.carryover == pytest.approx(rate, abs=0.15)
    lo, hi = curve.summary()["carryover"]["interval"]
    assert lo <= curve.carryover <= hi
    assert curve.status == FITTED


def test_carryover_fit_gets_the_marginal_return_right_where_the_naive_one_does_not():
    """With strong carryover the same-week fit sees a flattened curve: it underrates the next unit of money."""
    rng = np.random.default_rng(0)
    spend = weekly_spend(156, rng)
    leads = weekly_leads(spend, 0.7, rng)
    carry, naive = fit(spend, leads), fit(spend, leads, rates=(0.0,))
    current = carry.current_spend
    truth = float(hill_slope(current, CURVE)) * 100.0
    assert abs(float(carry.marginal_roi(current)) / truth - 1) < 0.2
    assert float(naive.marginal_roi(current)) / truth < 0.7
    lo, hi = np.quantile(
        hill_slope(np.full(len(carry.boot_params), current), carry.boot_params) * carry.boot_value_per_lead, [0.1, 0.9]
    )
    assert lo < truth < hi  # the interval carries the uncertainty of the rate as well


def test_curve_keeps_its_steady_state_meaning():
    """Spend held at s for long gives the leads the curve reads at s, whatever the carryover."""
    rng = np.random.default_rng(5)
    spend = weekly_spend(156, rng)
    curve = fit(spend, weekly_leads(spend, 0.6, rng), n_boot=20)
    held = adstock(np.full(60, 4000.0), [curve.carryover])[0]
    assert held[-1] == pytest.approx(4000.0)
    assert float(curve.leads(4000.0)) == pytest.approx(float(hill(4000.0, CURVE)), rel=0.15)


# -------------------------------------------------------------------------------------------------- season


def test_season_is_recovered_from_three_years_and_divided_out():
    rng = np.random.default_rng(6)
    weeks = 156
    channels = {}
    for name, level in (("search", 3000.0), ("social", 2000.0), ("event", 5000.0)):
        spend = weekly_spend(weeks, rng, level)
        curve = CURVE * np.array([1, 1, level / 3000, 1])
        channels[name] = spend, weekly_leads(spend, 0.3, rng, season_factor(weeks, 0.3), curve)
    data, values = tables(channels)
    curves = fit_response_curves(data, START + pd.Timedelta(weeks=weeks), values, n_boot=50)
    season = curves.summary()["season"]
    assert season["amplitude"] == pytest.approx(0.3, abs=0.06)
    assert abs((season["peak_day"] - 200 + 182) % 365.25 - 182) < 20
    for curve in curves.curves.values():
        assert curve.status == FITTED
        assert float(curve.leads(curve.current_spend)) == pytest.approx(
            float(hill(curve.current_spend, curve.params)), rel=1e-9
        )


def test_no_season_under_a_year():
    rng = np.random.default_rng(7)
    spend = weekly_spend(40, rng)
    data, values = tables({"search": (spend, weekly_leads(spend, 0.0, rng, season_factor(40, 0.3)))})
    curves = fit_response_curves(data, START + pd.Timedelta(weeks=40), values, n_boot=20)
    assert curves.season is None
    assert curves.summary()["season"].startswith("none: less than a year")


# ---------------------------------------------------------------------------------------- fit-quality gate


def pure_noise_curves(worth: float):
    """One channel whose weekly leads (about 30) ignore its spend, each lead worth `worth`."""
    rng = np.random.default_rng(8)
    spend = weekly_spend(156, rng)
    data, values = tables({"search": (spend, rng.poisson(30.0, 156).astype(float))})
    return fit_response_curves(data, START + pd.Timedelta(weeks=156), values * worth / 100.0, n_boot=100)


def test_quality_gate_freezes_a_channel_whose_leads_ignore_spend_when_its_return_could_be_high():
    """Valuable leads that ignore spend: the data cannot say whether more money would pay, so nothing moves."""
    curve = pure_noise_curves(worth=3000.0).curves["search"]
    assert curve.status == INSUFFICIENT
    assert curve.summary()["fit_quality"]["quality"] == "poor"


def test_a_flat_channel_whose_return_is_known_to_be_low_may_be_cut_but_never_raised():
    """Cheap leads that ignore spend: each unit of money surely returns less than it costs, so it is saturated."""
    curves = pure_noise_curves(worth=1.0)
    curve = curves.curves["search"]
    assert curve.status == SATURATED
    assert "may be cut, never raised" in curve.reason
    assert curve.summary()["fit_quality"]["quality"] == "poor"
    row = recommend_budget(curves, objective="profit", margin=1.0)["channels"][0]
    assert row["recommended_spend"] < row["current_spend"]
    assert "may be cut" in row["reason"]
    with pytest.raises(ValueError, match="saturated channel is never raised"):
        recommend_budget(curves, objective="profit", margin=1.0, min_spend={"search": 1.1 * curve.current_spend})


def test_realistic_channels_all_stay_fitted():
    """Two to three years of weekly regimes, 0.2 log-sd noise, tens of leads a week: no channel is frozen."""
    rng = np.random.default_rng(9)
    for weeks in (104, 156):
        for rate in (0.0, 0.3, 0.6):
            spend = weekly_spend(weeks, rng)
            small = CURVE * np.array([1, 0.5, 1, 1])  # about 15 leads a week
            for truth in (CURVE, small):
                curve = fit(spend, weekly_leads(spend, rate, rng, curve=truth))
                assert curve.quality in ("good", "weak"), (weeks, rate, curve.summary()["fit_quality"])


# ---------------------------------------------------------------------------------------------- naive fit


def test_naive_fit_reproduces_the_same_week_fit():
    """carryover=False (one rate, 0) gives exactly what the same-week fit gave before carryover existed."""
    rng = np.random.default_rng(42)
    spend = 3000 * rng.uniform(0.5, 1.5, 80)
    leads = rng.poisson(hill(spend, np.array([3, 40, 3000, 1.2]))).astype(float)
    curve = fit_channel_curve("search", periods(spend, leads), np.full(50, 300.0), 3000.0, n_boot=30, seed=3,
                              rates=(0.0,))  # fmt: skip
    recorded = [0.0, 52.359830000042905, 3947.8083167946766, 1.1051721373702259]  # before carryover was added
    np.testing.assert_allclose(curve.params, recorded, rtol=1e-9)
    np.testing.assert_allclose(
        curve.boot_params.mean(axis=0),
        [0.53024734142178054, 53.618567969134908, 4211.7256539915306, 1.1188619760342962],
        rtol=1e-9,
    )
    assert curve.r2 == pytest.approx(0.4049117272207051, rel=1e-12)
    assert curve.carryover == 0.0


def test_naive_response_curves_fit_no_season_and_no_carryover():
    rng = np.random.default_rng(10)
    spend = weekly_spend(104, rng)
    data, values = tables({"search": (spend, weekly_leads(spend, 0.6, rng, season_factor(104, 0.3)))})
    curves = fit_response_curves(data, START + pd.Timedelta(weeks=104), values, n_boot=20, carryover=False)
    assert curves.season is None and curves.summary()["season"].startswith("none")
    assert np.all(curves.curves["search"].boot_carryover == 0.0)
