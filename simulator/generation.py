"""The simulator's draws: weekly spend, lead arrivals and traits, funnel paths, touches and orders.

Every function takes its own random stream and returns arrays indexed by lead (days since the start as
floats); `simulator.tables` turns them into the contract's tables. Draw order within a stream is part of
the contract with the seed: the same seed always yields the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator import dynamics as sm
from simulator.scenarios import (
    INDUSTRIES,
    INDUSTRY_QUALITY,
    PERIOD_DAYS,
    PRODUCT_CATEGORIES,
    REGIONS,
    ChannelSpec,
    Scenario,
    SimConfig,
)

FIRST_ORDER_DELAY = 1.0 / 48  # the first order follows the win by half an hour
ORDER_VALUE_SIGMA = 0.3  # sd of a log order value around the customer's mean
SEASON_MAX = 1.7  # bound of the seasonal factor: purchases are thinned from this rate
# The touch that brings a lead in, per source channel.
FIRST_TOUCH = {
    "search": "ad_click",
    "social": "ad_click",
    "email": "email_click",
    "event": "event_attend",
    "referral": "referral_visit",
    "website": "web_visit",
}
STAGE_TOUCH_FACTOR = np.array([0.6, 1.0, 1.2, 1.4, 1.5])  # touch rate by funnel stage

# (channel, interaction) pairs and their weights for marketing/sales touches in each phase of a lead's life.
TOUCH_MIXES: dict[str, list[tuple[tuple[str, str], float]]] = {
    "early": [
        (("email", "email_open"), 0.33),
        (("email", "email_click"), 0.1),
        (("website", "web_visit"), 0.25),
        (("social", "ad_click"), 0.1),
        (("search", "ad_click"), 0.1),
        (("event", "event_attend"), 0.05),
        (("phone", "call"), 0.07),
    ],
    "late": [
        (("phone", "call"), 0.3),
        (("in_person", "meeting"), 0.22),
        (("email", "email_open"), 0.15),
        (("website", "web_visit"), 0.15),
        (("in_person", "demo"), 0.1),
        (("event", "event_attend"), 0.08),
    ],
    "lost": [(("email", "email_open"), 0.6), (("website", "web_visit"), 0.4)],
    "customer": [
        (("email", "email_open"), 0.4),
        (("website", "web_visit"), 0.3),
        (("event", "event_attend"), 0.1),
        (("phone", "call"), 0.2),
    ],
}


@dataclass(frozen=True, kw_only=True)
class Calendar:
    """The run's time axis in days since the start: its end, the cutoff, and the weeks spend is set in."""

    t_end: float
    t_asof: float
    week_start: np.ndarray  # first day of each week
    week_len: np.ndarray  # days of each week inside the run (the last one may be short)
    as_of_week: int  # the week holding the cutoff
    start_day: int  # day of year of the start (1 = 1 January)

    @property
    def n_weeks(self) -> int:
        """Weeks in the run, the last one possibly short."""
        return len(self.week_start)

    @classmethod
    def of(cls, cfg: SimConfig) -> Calendar:
        """The calendar of a run from its start, end and as_of."""
        start = cfg.start_ts
        t_end = (cfg.end_ts - start) / pd.Timedelta(days=1)
        t_asof = (cfg.as_of_ts - start) / pd.Timedelta(days=1)
        week_start = np.arange(int(np.ceil(t_end / PERIOD_DAYS))) * PERIOD_DAYS
        return cls(
            t_end=t_end,
            t_asof=t_asof,
            week_start=week_start,
            week_len=np.minimum(PERIOD_DAYS, t_end - week_start),
            as_of_week=int(t_asof // PERIOD_DAYS),
            start_day=start.dayofyear,
        )


@dataclass(frozen=True, kw_only=True)
class Leads:
    """Every lead in order of creation: when and where from, its observable attributes and hidden traits."""

    created: np.ndarray  # days since the start
    chan: np.ndarray  # index into the scenario's channels
    industry: np.ndarray  # index into INDUSTRIES
    region: np.ndarray  # index into REGIONS
    employees: np.ndarray
    annual_revenue: np.ndarray
    size: np.ndarray  # standardised log company size
    quality: np.ndarray  # hidden lead quality
    traits: CustomerTraits


@dataclass(frozen=True)
class CustomerTraits:
    """Hidden buying traits drawn for every lead (used once it is won)."""

    purchase_rate: np.ndarray  # orders per day at seasonal factor 1
    death_rate: np.ndarray  # per day
    log_value: np.ndarray  # mean log order value (currency units)
    unhappiness: np.ndarray  # drives ticket frequency, low satisfaction and churn
    order_channel_probs: np.ndarray
    category_probs: np.ndarray

    @property
    def mean_order_value(self) -> np.ndarray:
        """Mean order value of each lead (currency units): the lognormal mean of its order amounts."""
        return np.exp(self.log_value + 0.5 * ORDER_VALUE_SIGMA**2)


def weekly_spend(scenario: Scenario, n_weeks: int, as_of_week: int, rng) -> pd.DataFrame:
    """Weekly spend per paid channel: a typical level moved by 8-week regimes and weekly noise."""
    out = {}
    for name, spec in scenario.channels.items():
        if not spec.paid:
            continue
        regimes = rng.uniform(0.55, 1.45, size=n_weeks // 8 + 1).repeat(8)[:n_weeks]
        spend = spec.spend * regimes * np.exp(0.2 * rng.standard_normal(n_weeks))
        if scenario.raise_weeks:
            raised = np.arange(n_weeks) >= as_of_week - scenario.raise_weeks
            spend = np.where(raised, spend * scenario.raise_factor.get(name, 1.0), spend)
        out[name] = np.round(spend, 2)
    return pd.DataFrame(out)


def adstock(spend: np.ndarray, carryover: float) -> np.ndarray:
    """Geometric adstock `A_w = lambda * A_(w-1) + (1 - lambda) * s_w`, started as if spend had always been `s_0`.

    Equal to `(1 - lambda) * sum_k lambda^k * s_(w-k)` with the weeks before the first at its level, so a
    constant spend gives A = s and the response curve keeps its steady-state meaning; lambda 0 gives A = s.
    """
    spend = np.asarray(spend, dtype=float)
    if carryover == 0 or len(spend) == 0:
        return spend
    out = np.empty_like(spend)
    level = spend[0]
    for w, s in enumerate(spend):
        level = carryover * level + (1 - carryover) * s
        out[w] = level
    return out


def season_factor(scenario: Scenario, day_of_year: np.ndarray) -> np.ndarray:
    """The paid channels' annual factor `1 + season * cos(2 pi (doy - peak) / 365.25)` (mean 1 over a year)."""
    phase = 2 * np.pi * (np.asarray(day_of_year, dtype=float) - scenario.season_peak_day) / 365.25
    return 1 + scenario.season * np.cos(phase)


def _expected_leads(spec: ChannelSpec, spend: np.ndarray) -> np.ndarray:
    """Expected leads per week at weekly (adstocked) spend `spend`: base + max * s^k / (s^k + h^k)."""
    s = np.power(np.maximum(spend, 0.0), spec.shape)
    return spec.base + spec.max_leads * s / (s + spec.half_saturation**spec.shape)


def expected_weekly_leads(scenario: Scenario, spend: pd.DataFrame, calendar: Calendar) -> np.ndarray:
    """Expected leads per (week, channel) before scaling to the run's size, in the scenario's channel order.

    A paid channel answers its adstocked spend times the annual season (taken at the week's middle); an
    organic one brings its own mildly seasonal base. Short weeks bring proportionally fewer leads.
    """
    week_start, week_len = calendar.week_start, calendar.week_len
    season = season_factor(scenario, sm.day_of_year(calendar.start_day, week_start + week_len / 2) + 1)
    columns = [
        _expected_leads(spec, adstock(spend[c].to_numpy(), spec.carryover)) * season
        if spec.paid
        else spec.base * (1 + 0.1 * np.sin(2 * np.pi * week_start / 365.25))
        for c, spec in scenario.channels.items()
    ]
    return np.column_stack(columns) * (week_len / PERIOD_DAYS)[:, None]


def draw_arrivals(
    customers: int, scenario: Scenario, spend: pd.DataFrame, calendar: Calendar, count_rng, time_rng
) -> tuple[np.ndarray, np.ndarray, float]:
    """Creation day and channel of every lead, in time order, and the scale from expected to drawn leads.

    Leads per (week, channel) follow `expected_weekly_leads`, scaled so the run holds exactly `customers` leads.
    """
    week_start, week_len = calendar.week_start, calendar.week_len
    expected = expected_weekly_leads(scenario, spend, calendar)
    scale = customers / expected.sum()
    counts = count_rng.multinomial(customers, (expected / expected.sum()).ravel()).reshape(expected.shape)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    week, chan = np.divmod(cell, len(scenario.channels))
    created = week_start[week] + time_rng.random(len(cell)) * week_len[week]
    order = np.argsort(created, kind="stable")
    return created[order], chan[order], scale


def draw_leads(rng, specs: list[ChannelSpec], created: np.ndarray, chan: np.ndarray) -> Leads:
    """Attributes and hidden traits of leads given their channels (`specs` in the scenario's order)."""
    ch_quality = np.array([s.quality for s in specs])[chan]
    ch_value = np.array([s.value for s in specs])[chan]
    ch_size = np.array([s.size for s in specs])[chan]
    industry, region, log_emp, size, quality, traits = draw_lead_traits(rng, ch_quality, ch_value, ch_size)
    employees = np.maximum(1, np.round(np.exp(log_emp)))
    annual_revenue = np.round(employees * np.exp(np.log(120_000) + 0.5 * rng.standard_normal(len(created))), -3)
    return Leads(
        created=created,
        chan=chan,
        industry=industry,
        region=region,
        employees=employees,
        annual_revenue=annual_revenue,
        size=size,
        quality=quality,
        traits=traits,
    )


def draw_lead_traits(rng, ch_quality, ch_value, ch_size):
    """Draw attributes and hidden traits of leads given their channels' quality, value and size shifts."""
    n = len(ch_quality)
    industry = rng.choice(len(INDUSTRIES), size=n, p=[0.25, 0.2, 0.18, 0.15, 0.12, 0.1])
    region = rng.choice(len(REGIONS), size=n)
    log_emp = np.log(40) + ch_size + 1.2 * rng.standard_normal(n)
    size = (log_emp - np.log(40)) / 1.2
    quality = ch_quality + np.array(INDUSTRY_QUALITY)[industry] + 0.25 * size + 0.8 * rng.standard_normal(n)
    traits = _customer_traits(rng, quality, size, ch_value)
    return industry, region, log_emp, size, quality, traits


def _customer_traits(rng, quality, size, value_shift) -> CustomerTraits:
    """Draw each lead's would-be buying behaviour: larger, better accounts buy more and more often."""
    n = len(quality)
    rate = rng.gamma(8.0, 1 / 8.0, size=n) / 60.0 * np.exp(0.35 * size)
    unhappy = rng.standard_normal(n)
    death = np.exp(0.8 * unhappy - 0.2 * quality) / 1100.0
    log_value = np.log(180) + 0.45 * size + value_shift + 0.8 * rng.standard_normal(n)
    return CustomerTraits(
        purchase_rate=rate,
        death_rate=death,
        log_value=log_value,
        unhappiness=unhappy,
        order_channel_probs=rng.dirichlet([5.5, 2.0, 1.7, 0.8], size=n),
        category_probs=rng.dirichlet([1.0] * len(PRODUCT_CATEGORIES), size=n),
    )


def _categorical(rng, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def simulate_funnel(q, z, created, t_end, as_of, rng):
    """Walk every lead's funnel chain; return stage events, state segments, won day and state at as_of."""
    n = len(q)
    rates, jumps = sm.funnel_dynamics(q, z)
    state = np.where(rng.random(n) < sm.STALL_PROBABILITY, sm.N_OPEN, 0)
    t = created.copy()
    won_at = np.full(n, np.inf)
    state_at = np.full(n, -1)
    ev_idx, ev_t, ev_stage = [np.arange(n)], [created.copy()], [np.zeros(n, dtype=int)]
    seg = []
    active = np.arange(n)
    while len(active):
        s = state[active]
        t_next = t[active] + rng.exponential(1.0 / rates[active, s])
        cross = (t[active] <= as_of) & (t_next > as_of)
        state_at[active[cross]] = s[cross]
        seg.append((active, t[active], np.minimum(t_next, t_end), s))
        going = t_next < t_end
        mover = active[going]
        new = _categorical(rng, jumps[mover, state[mover]])
        ev_idx.append(mover)
        ev_t.append(t_next[going])
        ev_stage.append(sm.stage_of_state(new))
        state[mover] = new
        t[mover] = t_next[going]
        done = new == sm.WON
        won_at[mover[done]] = t_next[going][done]
        active = mover[~done]
    state_at[won_at <= as_of] = sm.WON
    events = (np.concatenate(ev_idx), np.concatenate(ev_t), np.concatenate(ev_stage))
    segments = tuple(np.concatenate([x[i] for x in seg]) for i in range(4))
    return events, segments, won_at, state_at


def _touch_mix(phase: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    """(channel, interaction) pairs and their probabilities for marketing/sales touches in a phase."""
    mixes = TOUCH_MIXES[phase]
    pairs = [p for p, _ in mixes]
    probs = np.array([w for _, w in mixes])
    return pairs, probs / probs.sum()


def _poisson_points(rng, who, t0, t1, rate):
    """Homogeneous Poisson event times on each segment [t0, t1) at `rate` per day; returns (who, time)."""
    counts = rng.poisson(np.maximum(t1 - t0, 0) * rate)
    rows = np.repeat(np.arange(len(who)), counts)
    times = t0[rows] + rng.random(len(rows)) * (t1 - t0)[rows]
    return who[rows], times, rows


def simulate_orders(rng, won_at, death_at, traits: CustomerTraits, start, t_end):
    """First order at the win, then seasonal Poisson purchases until the hidden death time; refunds."""
    won = np.flatnonzero(np.isfinite(won_at))
    first = won_at[won] + FIRST_ORDER_DELAY
    stop = np.minimum(death_at[won], t_end)
    who, times, _ = _poisson_points(rng, won, first, np.maximum(stop, first), traits.purchase_rate[won] * SEASON_MAX)
    keep = rng.random(len(times)) < sm.seasonality(sm.day_of_year(start.dayofyear, times)) / SEASON_MAX
    who = np.concatenate([won[first < t_end], who[keep]])
    times = np.concatenate([first[first < t_end], times[keep]])
    amount = np.round(np.exp(traits.log_value[who] + ORDER_VALUE_SIGMA * rng.standard_normal(len(who))), 2)
    channel = _categorical(rng, traits.order_channel_probs[who])
    category = _categorical(rng, traits.category_probs[who])
    refund = rng.random(len(who)) < sm.REFUND_PROBABILITY
    refund_t = times + rng.uniform(1, 14, len(who))
    refund &= refund_t < t_end
    return {
        "who": np.concatenate([who, who[refund]]),
        "t": np.concatenate([times, refund_t[refund]]),
        "amount": np.concatenate([amount, -amount[refund]]),
        "channel": np.concatenate([channel, channel[refund]]),
        "category": np.concatenate([category, category[refund]]),
    }


def simulate_touches(rng, names, chan, created, quality, segments, won_at, death_at, traits, t_end):
    """Marketing, sales and service touches: engagement follows hidden quality, stage, stalls and churn."""
    seg_who, seg_t0, seg_t1, seg_state = segments
    stage = sm.stage_of_state(seg_state)
    stalled = sm.is_stalled(seg_state)
    is_open = seg_state < sm.WON
    rate = np.where(
        is_open,
        0.8 * np.exp(0.6 * quality[seg_who]) * STAGE_TOUCH_FACTOR[np.minimum(stage, 4)] * np.where(stalled, 0.15, 1.0),
        0.012,
    )
    parts = []
    for phase, mask in (("early", is_open & (stage <= 1)), ("late", is_open & (stage >= 2)), ("lost", ~is_open)):
        who, t, _ = _poisson_points(rng, seg_who[mask], seg_t0[mask], seg_t1[mask], rate[mask])
        parts.append((phase, who, t))
    won = np.flatnonzero(np.isfinite(won_at))
    alive_end = np.minimum(death_at[won], t_end)
    who, t, _ = _poisson_points(rng, won, won_at[won], alive_end, 0.4 * (60.0 * traits.purchase_rate[won]) ** 0.8)
    parts.append(("customer", who, t))
    who, t, _ = _poisson_points(rng, won, alive_end, np.full(len(won), t_end), np.full(len(won), 0.002))
    parts.append(("customer", who, t))

    out_who, out_t, out_ch, out_int = [np.arange(len(created))], [created], [np.array(names, dtype=object)[chan]], []
    out_int.append(np.array([FIRST_TOUCH[c] for c in names], dtype=object)[chan])
    for phase, who, t in parts:
        pairs, probs = _touch_mix(phase)
        pick = rng.choice(len(pairs), size=len(who), p=probs)
        out_who.append(who)
        out_t.append(t)
        out_ch.append(np.array([p[0] for p in pairs], dtype=object)[pick])
        out_int.append(np.array([p[1] for p in pairs], dtype=object)[pick])
    # Service tickets while alive; unhappy customers raise more tickets and rate them lower.
    who, t, _ = _poisson_points(rng, won, won_at[won], alive_end, np.exp(0.6 * traits.unhappiness[won]) / 30.0)
    ticket_channels = np.array(["phone", "chat", "email"], dtype=object)
    out_who.append(who)
    out_t.append(t)
    out_ch.append(ticket_channels[rng.choice(3, size=len(who), p=[0.4, 0.35, 0.25])])
    out_int.append(np.full(len(who), "ticket", dtype=object))
    satisfaction = np.clip(np.round(3.9 - 0.9 * traits.unhappiness[who] + 0.6 * rng.standard_normal(len(who))), 1, 5)
    n_before = sum(len(x) for x in out_who[:-1])
    sat = np.full(n_before + len(who), np.nan)
    sat[n_before:] = satisfaction
    return {
        "who": np.concatenate(out_who),
        "t": np.concatenate(out_t),
        "channel": np.concatenate(out_ch),
        "interaction": np.concatenate(out_int),
        "satisfaction": sat,
    }
