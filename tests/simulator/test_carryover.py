"""Media carryover and seasonality in lead response: the adstock, the season, the new scenarios' truth, and the
old scenarios left exactly as they were."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from simulator import dynamics as sm
from simulator.generation import Calendar, adstock, draw_arrivals, season_factor, weekly_spend
from simulator.scenarios import SCENARIOS, ChannelSpec, Scenario
from simulator.simulate import SimConfig, channel_truth, simulate

# Digests of the tables and truth of `SimConfig(customers=500, seed=3, scenario=...)`, recorded before carryover
# and season existed: with both at 0 the old scenarios must keep every draw and every byte
# (volume_vs_value differs from default in channel numbers only, through the same code).
RECORDED = {
    "default": {
        "customers": "f55621db45c7d0ea",
        "touchpoints": "dee0421741542983",
        "funnel_events": "452711389d0db9e5",
        "orders": "d64f60870557601b",
        "channel_spend": "ef0c4e116ccc3355",
        "truth_customers": "4cda88088b559ebe",
        "truth_channels": "a7739a0e663baa78",
    },
    "saturated": {
        "customers": "34e826bf8042fb6e",
        "touchpoints": "e345820164ab2980",
        "funnel_events": "a001aff97a93dd11",
        "orders": "df025d49a6118fc2",
        "channel_spend": "c7dea1125edfac89",
        "truth_customers": "f508862c2f0fcc10",
        "truth_channels": "dde4c72a54a2fdf5",
    },
}


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()).hexdigest()[:16]


def _old_truth_channels(truth: dict) -> dict:
    """The truth without the keys added with carryover and season."""
    channels = {c: {k: v for k, v in ch.items() if k != "carryover"} for c, ch in truth["channels"].items()}
    return {"period_days": truth["period_days"], "channels": channels}


def _marginal_return(ch: dict) -> float:
    """Value per unit of extra spend at current spend: v * d/ds (base + max * s^k / (s^k + h^k))."""
    curve, s = ch["leads_per_period"], ch["current_spend_per_period"]
    h, k = curve["half_saturation"], curve["shape"]
    return ch["value_per_lead"] * curve["max"] * k * s ** (k - 1) * h**k / (s**k + h**k) ** 2


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_old_scenarios_give_the_same_tables_and_truth_as_before(scenario):
    sim = simulate(SimConfig(customers=500, seed=3, scenario=scenario))
    got = {name: _digest(table) for name, table in sim.tables.items()}
    got["truth_customers"] = _digest(sim.truth_customers)
    old = json.dumps(_old_truth_channels(sim.truth_channels), sort_keys=True).encode()
    got["truth_channels"] = hashlib.sha256(old).hexdigest()[:16]
    assert got == RECORDED[scenario]
    assert sim.truth_channels["season"] == {"amplitude": 0.0, "peak_day": 1}
    assert {ch["carryover"] for ch in sim.truth_channels["channels"].values()} == {0.0}


def test_adstock_recursion_equals_the_closed_form():
    spend, lam = np.array([5.0, 1.0, 0.0, 8.0, 3.0, 3.0, 10.0]), 0.6
    # (1 - lam) * sum_k lam^k s_(w-k), the weeks before the first at s_0: their sum is lam^(w+1) * s_0.
    closed = [
        (1 - lam) * sum(lam**k * spend[w - k] for k in range(w + 1)) + lam ** (w + 1) * spend[0] for w in range(7)
    ]
    np.testing.assert_allclose(adstock(spend, lam), closed, rtol=1e-12)
    assert adstock(spend, lam)[3] == pytest.approx(lam * adstock(spend, lam)[2] + (1 - lam) * 8.0)


def test_constant_spend_is_its_own_adstock_and_no_carryover_changes_nothing():
    np.testing.assert_allclose(adstock(np.full(30, 1234.5), 0.8), 1234.5, rtol=1e-12)
    spend = np.array([3.0, 7.0, 1.0])
    assert adstock(spend, 0.0) is spend or np.array_equal(adstock(spend, 0.0), spend)


def test_bad_carryover_or_season_is_refused():
    with pytest.raises(ValueError, match="carryover"):
        ChannelSpec(1.0, carryover=1.0)
    with pytest.raises(ValueError, match="season"):
        Scenario({}, season=1.2)


def test_season_factor_averages_to_one_over_a_year_and_peaks_on_its_day():
    scenario = Scenario({}, season=0.3, season_peak_day=300)
    days = np.linspace(0, 365.25, 100_001)[:-1]
    assert season_factor(scenario, days).mean() == pytest.approx(1.0, abs=1e-9)
    assert season_factor(scenario, np.array([300.0]))[0] == pytest.approx(1.3)
    assert season_factor(scenario, days).max() == pytest.approx(1.3)
    assert season_factor(Scenario({}), days).tolist() == [1.0] * len(days)


@pytest.fixture(scope="module")
def carryover_sim():
    """A small simulation of the carryover scenario."""
    cfg = SimConfig(customers=700, seed=4, scenario="carryover")
    return cfg, simulate(cfg)


def test_carryover_scenario_truth_has_the_lambdas_and_the_season(carryover_sim):
    truth = carryover_sim[1].truth_channels
    spec = SCENARIOS["carryover"]
    assert {c: ch["carryover"] for c, ch in truth["channels"].items()} == {
        c: s.carryover for c, s in spec.channels.items() if s.paid
    }
    assert max(ch["carryover"] for ch in truth["channels"].values()) >= 0.6
    assert truth["season"] == {"amplitude": 0.25, "peak_day": 300}
    assert set(truth["channels"]["event"]["leads_per_period"]) == {"base", "max", "half_saturation", "shape"}


def test_fast_channel_truth_equals_the_simulated_one(carryover_sim):
    cfg, sim = carryover_sim
    assert channel_truth(cfg) == sim.truth_channels


def _weekly_leads_and_spend(scenario_name: str, channel: str, seed: int):
    """Drawn leads per full week (season divided out) and the weekly spend of one channel, for many leads."""
    scenario = SCENARIOS[scenario_name]
    cfg = SimConfig(customers=300_000, seed=seed, scenario=scenario_name)
    calendar = Calendar.of(cfg)
    rng = np.random.default_rng(seed)
    spend = weekly_spend(scenario, calendar.n_weeks, calendar.as_of_week, rng)
    created, chan, _ = draw_arrivals(cfg.customers, scenario, spend, calendar, rng, rng)
    counts = np.bincount((created[chan == list(scenario.channels).index(channel)] // 7).astype(int))
    middle = sm.day_of_year(calendar.start_day, calendar.week_start + calendar.week_len / 2) + 1
    full = calendar.week_len == 7
    return (counts / season_factor(scenario, middle))[full], spend[channel].to_numpy(), full


@pytest.mark.parametrize("seed", [0, 1])
def test_leads_follow_carried_over_spend_for_a_slow_channel(seed):
    leads, spend, full = _weekly_leads_and_spend("carryover", "event", seed)
    corr = {lam: np.corrcoef(leads, adstock(spend, lam)[full])[0, 1] for lam in np.round(np.arange(0, 0.95, 0.1), 1)}
    assert corr[0.7] > corr[0.0] + 0.1
    assert abs(max(corr, key=corr.get) - 0.7) <= 0.1


def test_leads_follow_same_week_spend_without_carryover():
    leads, spend, full = _weekly_leads_and_spend("default", "event", 0)
    assert np.corrcoef(leads, spend[full])[0, 1] > np.corrcoef(leads, adstock(spend, 0.7)[full])[0, 1] + 0.1


def test_unprofitable_scenario_pays_at_the_margin_only_for_one_channel_and_not_at_a_30_percent_margin():
    truth = channel_truth(SimConfig(customers=10_000, seed=1, scenario="unprofitable"))
    for size in (1, 2):  # 10,000 and 20,000 customers: the truth's lead counts, so the returns, scale with the size
        returns = {c: size * _marginal_return(ch) for c, ch in truth["channels"].items()}
        assert all(0.3 * r < 1 for r in returns.values()), returns
        assert min(returns.values()) < 1 < max(returns.values()), returns
