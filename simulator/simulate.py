"""A CRM simulator with ground truth: leads from spend-driven channels, a funnel, purchases and churn.

The story (see README "The simulator"): paid channels bring leads through saturating response curves of
their carried-over (adstocked) weekly spend, with an optional annual season; each lead has hidden quality
and size that drive its touchpoints and funnel path; won leads buy repeatedly with heavy-tailed order values
and seasonality until they silently stop; unhappy service tickets precede churn. The same seed always
yields the same data.

The steps have their own homes: `simulator.scenarios` (what to simulate), `simulator.generation` (the
draws), `simulator.tables` (the draws as the contract's tables), `simulator.oracle` (the truth per customer)
and `simulator.writing` (to disk); this module strings them together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator import dynamics as sm
from simulator.generation import (
    FIRST_ORDER_DELAY,
    Calendar,
    draw_arrivals,
    draw_lead_traits,
    draw_leads,
    expected_weekly_leads,
    simulate_funnel,
    simulate_orders,
    simulate_touches,
    weekly_spend,
)
from simulator.oracle import lead_expected_value, oracle_truth, window_seasonality
from simulator.scenarios import PERIOD_DAYS, SCENARIOS, ChannelSpec, Scenario, SimConfig
from simulator.tables import build_tables, customer_ids
from simulator.writing import write_simulation

__all__ = [
    "SCENARIOS",
    "SimConfig",
    "Simulation",
    "channel_truth",
    "channel_value_per_lead",
    "simulate",
    "write_simulation",
]

VALUE_SAMPLE = 12_000


@dataclass
class Simulation:
    """The simulated tables and their ground truth."""

    tables: dict[str, pd.DataFrame]
    truth_customers: pd.DataFrame
    truth_channels: dict
    meta: dict


SIM_STEPS = ("arrivals", "funnel", "orders", "touchpoints", "tables", "truth")


def simulate(cfg: SimConfig, progress=None) -> Simulation:
    """Simulate `cfg.customers` leads and customers with their truth at `cfg.as_of`.

    `progress(step, done, total)`, when given, hears each of the `SIM_STEPS` as it starts.
    """
    scenario = _checked_scenario(cfg)
    say = _stepper(progress)
    streams = _streams(cfg.seed)
    calendar = Calendar.of(cfg)
    names = list(scenario.channels)
    say("arrivals")
    spend = weekly_spend(scenario, calendar.n_weeks, calendar.as_of_week, streams[0])
    created, chan, scale = draw_arrivals(cfg.customers, scenario, spend, calendar, streams[1], streams[2])
    leads = draw_leads(streams[2], [scenario.channels[c] for c in names], created, chan)
    q, z, traits, t_end = leads.quality, leads.size, leads.traits, calendar.t_end
    say("funnel")
    events, segments, won_at, state_at = simulate_funnel(q, z, created, t_end, calendar.t_asof, streams[3])
    death_at = won_at + streams[8].exponential(1.0 / traits.death_rate)  # never-won leads stay at inf
    say("orders")
    orders = simulate_orders(streams[4], won_at, death_at, traits, cfg.start_ts, t_end)
    say("touchpoints")
    touches = simulate_touches(streams[5], names, chan, created, q, segments, won_at, death_at, traits, t_end)
    say("tables")
    tables = build_tables(cfg.start_ts, names, leads, events, touches, orders, spend, calendar, streams[6])
    say("truth")
    first_order = np.where(np.isfinite(won_at), won_at + FIRST_ORDER_DELAY, np.inf)
    truth = oracle_truth(
        ids=customer_ids(len(created)),
        created=created,
        state_at=state_at,
        quality=q,
        size=z,
        traits=traits,
        first_order=first_order,
        death_at=death_at,
        t_asof=calendar.t_asof,
        start=cfg.start_ts,
        cfg=cfg,
    )
    truth_channels = _truth_channels(cfg, scenario, spend, scale, calendar, streams[7])
    return Simulation(tables, truth, truth_channels, _meta(cfg, tables))


def channel_truth(cfg: SimConfig) -> dict:
    """The `truth_channels` that `simulate(cfg)` would give, without simulating the leads (fast at any size).

    The run's scale is the ratio of `customers` to the expected leads of its spend, so no lead is drawn.
    """
    scenario = _checked_scenario(cfg)
    streams = _streams(cfg.seed)
    calendar = Calendar.of(cfg)
    spend = weekly_spend(scenario, calendar.n_weeks, calendar.as_of_week, streams[0])
    scale = cfg.customers / expected_weekly_leads(scenario, spend, calendar).sum()
    return _truth_channels(cfg, scenario, spend, scale, calendar, streams[7])


def _streams(seed: int) -> list:
    """One random stream per concern, so that a change in one step leaves the others' draws as they were."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(10)]


def _truth_channels(cfg: SimConfig, scenario: Scenario, spend, scale: float, calendar: Calendar, rng) -> dict:
    """`channels.json`: the period, each paid channel's truth and the scenario's season (for information)."""
    channels = _channel_truth(cfg, scenario, spend, scale, calendar, rng)
    season = {"amplitude": scenario.season, "peak_day": scenario.season_peak_day}
    return {"period_days": PERIOD_DAYS, "channels": channels, "season": season}


def _stepper(progress):
    """`say(step)`: tells `progress` the step's name and its place among `SIM_STEPS` (nothing without one)."""

    def say(step: str) -> None:
        if progress:
            progress(f"simulating the {step}", SIM_STEPS.index(step), len(SIM_STEPS))

    return say


def _checked_scenario(cfg: SimConfig) -> Scenario:
    """The configured scenario, or a ValueError for an unknown one, no customers or a misplaced as_of."""
    if cfg.scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {cfg.scenario!r}; expected one of {sorted(SCENARIOS)}")
    if cfg.customers < 1:
        raise ValueError("customers must be at least 1")
    start, end, as_of = cfg.start_ts, cfg.end_ts, cfg.as_of_ts
    if not start < as_of < end:
        raise ValueError(f"as_of {as_of.date()} must lie strictly between start {start.date()} and end {end.date()}")
    return SCENARIOS[cfg.scenario]


def _channel_truth(
    cfg: SimConfig, scenario: Scenario, spend: pd.DataFrame, scale: float, calendar: Calendar, rng
) -> dict:
    """Per paid channel: its true response curve in leads per period, value per lead, current spend, carryover.

    The curve is the steady state (spend held at `s` long enough) of an average-season week; carryover and
    season are given for information.
    """
    recent = spend.iloc[max(0, calendar.as_of_week - 13) : calendar.as_of_week].mean()
    channels = {}
    for c, spec in scenario.channels.items():
        if not spec.paid:
            continue
        channels[c] = {
            "leads_per_period": {
                "base": spec.base * scale,
                "max": spec.max_leads * scale,
                "half_saturation": spec.half_saturation,
                "shape": spec.shape,
            },
            "value_per_lead": channel_value_per_lead(spec, cfg, rng, calendar.t_asof),
            "current_spend_per_period": float(recent[c]),
            "carryover": spec.carryover,
        }
    return channels


def _meta(cfg: SimConfig, tables: dict[str, pd.DataFrame]) -> dict:
    """What was simulated: the time span, horizons, seed, scenario and row counts."""
    return {
        "as_of": cfg.as_of_ts.isoformat(),
        "start": cfg.start_ts.isoformat(),
        "end": cfg.end_ts.isoformat(),
        "conversion_horizon_days": cfg.conversion_horizon_days,
        "churn_horizon_days": cfg.churn_horizon_days,
        "clv_horizon_days": cfg.clv_horizon_days,
        "seed": cfg.seed,
        "scenario": cfg.scenario,
        "customers": len(tables["customers"]),
        "rows": {k: len(v) for k, v in tables.items()},
        "period_days": PERIOD_DAYS,
    }


def channel_value_per_lead(spec: ChannelSpec, cfg: SimConfig, rng, t_asof: float) -> float:
    """Expected net revenue in its first CLV-horizon days of one lead the channel brings at `as_of`."""
    ones = np.ones(VALUE_SAMPLE)
    _, _, _, size, quality, traits = draw_lead_traits(rng, spec.quality * ones, spec.value * ones, spec.size * ones)
    season = window_seasonality(cfg.start_ts, t_asof, cfg.clv_horizon_days)
    _, value = lead_expected_value(quality, size, traits, sm.initial_state_distribution(VALUE_SAMPLE), season)
    return float(value.mean())
