"""A CRM simulator with ground truth: leads from spend-driven channels, a funnel, purchases and churn.

The story (see README "The simulator"): paid channels bring leads through saturating response curves of
their weekly spend; each lead has hidden quality and size that drive its touchpoints and funnel path;
won leads buy repeatedly with heavy-tailed order values and seasonality until they silently stop;
unhappy service tickets precede churn. The same seed always yields the same data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import dynamics as sm
from simulator.oracle import lead_expected_value, oracle_truth, window_seasonality

PERIOD_DAYS = 7
INDUSTRIES = ("software", "manufacturing", "retail", "finance", "healthcare", "education")
INDUSTRY_QUALITY = (0.25, 0.0, -0.2, 0.15, 0.05, -0.25)
REGIONS = ("north", "south", "east", "west", "central")
ORDER_CHANNELS = ("online", "store", "phone", "mail")
PRODUCT_CATEGORIES = ("software", "hardware", "services", "training", "support")


@dataclass(frozen=True)
class ChannelSpec:
    """A source channel: weekly lead response to spend, and the kind of lead it brings."""

    base: float  # leads per week with no spend (organic channels: all their leads)
    max_leads: float = 0.0  # extra leads per week at saturation
    half_saturation: float = 1.0  # weekly spend giving half of `max_leads`
    shape: float = 1.0
    spend: float = 0.0  # typical weekly spend (0 = organic)
    quality: float = 0.0  # mean hidden lead quality
    value: float = 0.0  # log-shift of the customer's order values
    size: float = 0.0  # log-shift of company size
    touch_cost: float = 0.0  # mean cost of one paid touch (click, attendance)

    @property
    def paid(self) -> bool:
        return self.spend > 0


BASE_CHANNELS: dict[str, ChannelSpec] = {
    "search": ChannelSpec(4, 60, 3000, 1.2, 3200, quality=0.1, value=0.0, size=0.0, touch_cost=2.5),
    "social": ChannelSpec(6, 110, 2200, 1.1, 4200, quality=-0.7, value=-0.6, size=-0.5, touch_cost=0.6),
    "email": ChannelSpec(8, 25, 700, 1.0, 650, quality=0.0, value=-0.1, size=0.0, touch_cost=0.1),
    "event": ChannelSpec(1, 26, 5000, 1.4, 2600, quality=0.6, value=0.6, size=0.8, touch_cost=45.0),
    "referral": ChannelSpec(10, quality=0.6, value=0.3, size=0.2),
    "website": ChannelSpec(22, quality=-0.1, value=-0.1, size=-0.2),
}


@dataclass(frozen=True)
class Scenario:
    """A channel mix plus an optional across-the-board budget raise late in the history."""

    channels: dict[str, ChannelSpec]
    raise_weeks: int = 0  # the last N weeks before `as_of` run at raised spend
    raise_factor: dict[str, float] = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {
    "default": Scenario(BASE_CHANNELS),
    # The seeds' first cautionary case, sharpened: a flood of cheap low-value leads next to few valuable ones.
    "volume_vs_value": Scenario(
        {
            **BASE_CHANNELS,
            "social": replace(BASE_CHANNELS["social"], max_leads=180, quality=-0.9, value=-0.9),
            "event": replace(BASE_CHANNELS["event"], max_leads=20, quality=0.8, value=0.9),
        }
    ),
    # The seeds' second case: every budget raised at once; social ends far past saturation.
    "saturated": Scenario(
        BASE_CHANNELS,
        raise_weeks=30,
        raise_factor={"search": 1.3, "social": 2.6, "email": 1.3, "event": 1.2},
    ),
}


@dataclass(frozen=True)
class SimConfig:
    """What to simulate; `as_of` defaults to `end` minus 365 days."""

    customers: int = 10_000
    seed: int = 0
    start: str = "2023-01-01"
    end: str = "2025-12-31"
    as_of: str | None = None
    scenario: str = "default"
    conversion_horizon_days: int = 90
    churn_horizon_days: int = 90
    clv_horizon_days: int = 365

    @property
    def start_ts(self) -> pd.Timestamp:
        return pd.Timestamp(self.start)

    @property
    def end_ts(self) -> pd.Timestamp:
        return pd.Timestamp(self.end)

    @property
    def as_of_ts(self) -> pd.Timestamp:
        return pd.Timestamp(self.as_of) if self.as_of else self.end_ts - pd.Timedelta(days=365)


@dataclass
class Simulation:
    """The simulated tables and their ground truth."""

    tables: dict[str, pd.DataFrame]
    truth_customers: pd.DataFrame
    truth_channels: dict
    meta: dict


def _weekly_spend(cfg: SimConfig, scenario: Scenario, n_weeks: int, as_of_week: int, rng) -> pd.DataFrame:
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


def _expected_leads(spec: ChannelSpec, spend: np.ndarray) -> np.ndarray:
    """Expected leads per week at weekly spend `spend`: base + max * s^k / (s^k + h^k)."""
    s = np.power(np.maximum(spend, 0.0), spec.shape)
    return spec.base + spec.max_leads * s / (s + spec.half_saturation**spec.shape)


def _categorical(rng, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def _simulate_funnel(q, z, created, t_end, as_of, rng):
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
    mixes = {
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
    }[phase]
    pairs = [p for p, _ in mixes]
    probs = np.array([w for _, w in mixes])
    return pairs, probs / probs.sum()


FIRST_TOUCH = {
    "search": "ad_click",
    "social": "ad_click",
    "email": "email_click",
    "event": "event_attend",
    "referral": "referral_visit",
    "website": "web_visit",
}
STAGE_TOUCH_FACTOR = np.array([0.6, 1.0, 1.2, 1.4, 1.5])


def _poisson_points(rng, who, t0, t1, rate):
    """Homogeneous Poisson event times on each segment [t0, t1) at `rate` per day; returns (who, time)."""
    counts = rng.poisson(np.maximum(t1 - t0, 0) * rate)
    rows = np.repeat(np.arange(len(who)), counts)
    times = t0[rows] + rng.random(len(rows)) * (t1 - t0)[rows]
    return who[rows], times, rows


def simulate(cfg: SimConfig) -> Simulation:
    """Simulate `cfg.customers` leads and customers with their truth at `cfg.as_of`."""
    if cfg.scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {cfg.scenario!r}; expected one of {sorted(SCENARIOS)}")
    if cfg.customers < 1:
        raise ValueError("customers must be at least 1")
    scenario = SCENARIOS[cfg.scenario]
    start, end, as_of = cfg.start_ts, cfg.end_ts, cfg.as_of_ts
    if not start < as_of < end:
        raise ValueError(f"as_of {as_of.date()} must lie strictly between start {start.date()} and end {end.date()}")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(10)]
    t_end = (end - start) / pd.Timedelta(days=1)
    t_asof = (as_of - start) / pd.Timedelta(days=1)
    n_weeks = int(np.ceil(t_end / PERIOD_DAYS))
    week_start = np.arange(n_weeks) * PERIOD_DAYS
    week_len = np.minimum(PERIOD_DAYS, t_end - week_start)
    as_of_week = int(t_asof // PERIOD_DAYS)

    # Leads per (week, channel): spend drives paid channels through their response curves.
    spend = _weekly_spend(cfg, scenario, n_weeks, as_of_week, streams[0])
    names = list(scenario.channels)
    expected = (
        np.column_stack(
            [
                _expected_leads(spec, spend[c].to_numpy())
                if spec.paid
                else spec.base * (1 + 0.1 * np.sin(2 * np.pi * week_start / 365.25))
                for c, spec in scenario.channels.items()
            ]
        )
        * (week_len / PERIOD_DAYS)[:, None]
    )
    scale = cfg.customers / expected.sum()
    counts = streams[1].multinomial(cfg.customers, (expected / expected.sum()).ravel()).reshape(expected.shape)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    week, chan = np.divmod(cell, len(names))
    rng = streams[2]
    created = week_start[week] + rng.random(len(cell)) * week_len[week]
    order = np.argsort(created, kind="stable")
    created, chan = created[order], chan[order]
    n = len(created)
    specs = [scenario.channels[c] for c in names]

    # Hidden traits and observable attributes.
    ch_quality = np.array([s.quality for s in specs])[chan]
    ch_value = np.array([s.value for s in specs])[chan]
    ch_size = np.array([s.size for s in specs])[chan]
    industry, region, log_emp, size, quality, traits = _draw_leads(rng, ch_quality, ch_value, ch_size)
    employees = np.maximum(1, np.round(np.exp(log_emp)))
    annual_revenue = np.round(employees * np.exp(np.log(120_000) + 0.5 * rng.standard_normal(n)), -3)

    events, segments, won_at, state_at = _simulate_funnel(quality, size, created, t_end, t_asof, streams[3])
    death_at = won_at + streams[8].exponential(1.0 / traits.death_rate)  # never-won leads stay at inf
    orders = _simulate_orders(streams[4], won_at, death_at, traits, start, t_end)
    touches = _simulate_touches(streams[5], names, chan, created, quality, segments, won_at, death_at, traits, t_end)

    ids = np.array([f"C{i:07d}" for i in range(1, n + 1)], dtype=object)
    to_ts = _timestamp_converter(start)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "created_at": to_ts(created),
            "source_channel": np.array(names, dtype=object)[chan],
            "industry": np.array(INDUSTRIES, dtype=object)[industry],
            "region": np.array(REGIONS, dtype=object)[region],
            "employees": employees,
            "annual_revenue": annual_revenue,
        }
    )
    miss = streams[6]
    for col, p in (("industry", 0.05), ("region", 0.03), ("employees", 0.08), ("annual_revenue", 0.12)):
        customers.loc[miss.random(n) < p, col] = None if customers[col].dtype == object else np.nan
    stage_names = np.array((*sm.OPEN_STAGES, "won", "lost"), dtype=object)
    funnel = pd.DataFrame(
        {"customer_id": ids[events[0]], "timestamp": to_ts(events[1]), "stage": stage_names[events[2]]}
    )
    funnel = funnel.sort_values(["timestamp", "customer_id"], kind="stable").reset_index(drop=True)
    tables = {
        "customers": customers,
        "touchpoints": _touch_frame(touches, ids, to_ts, miss),
        "funnel_events": funnel,
        "orders": _order_frame(orders, ids, to_ts, miss),
        "channel_spend": pd.DataFrame(
            {
                "period_start": np.repeat(start + pd.to_timedelta(week_start, unit="D"), len(spend.columns)),
                "channel": np.tile(np.array(spend.columns, dtype=object), n_weeks),
                "spend": spend.to_numpy().ravel(),
            }
        ),
    }

    first_order = np.where(np.isfinite(won_at), won_at + FIRST_ORDER_DELAY, np.inf)
    truth = oracle_truth(
        ids=ids,
        created=created,
        state_at=state_at,
        quality=quality,
        size=size,
        traits=traits,
        first_order=first_order,
        death_at=death_at,
        t_asof=t_asof,
        start=start,
        cfg=cfg,
    )
    recent = spend.iloc[max(0, as_of_week - 13) : as_of_week].mean()
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
            "value_per_lead": channel_value_per_lead(spec, cfg, streams[7], t_asof),
            "current_spend_per_period": float(recent[c]),
        }
    meta = {
        "as_of": as_of.isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "conversion_horizon_days": cfg.conversion_horizon_days,
        "churn_horizon_days": cfg.churn_horizon_days,
        "clv_horizon_days": cfg.clv_horizon_days,
        "seed": cfg.seed,
        "scenario": cfg.scenario,
        "customers": n,
        "rows": {k: len(v) for k, v in tables.items()},
        "period_days": PERIOD_DAYS,
    }
    return Simulation(tables, truth, {"period_days": PERIOD_DAYS, "channels": channels}, meta)


FIRST_ORDER_DELAY = 1.0 / 48  # the first order follows the win by half an hour


def _draw_leads(rng, ch_quality, ch_value, ch_size):
    """Draw attributes and hidden traits of leads given their channels' quality, value and size shifts."""
    n = len(ch_quality)
    industry = rng.choice(len(INDUSTRIES), size=n, p=[0.25, 0.2, 0.18, 0.15, 0.12, 0.1])
    region = rng.choice(len(REGIONS), size=n)
    log_emp = np.log(40) + ch_size + 1.2 * rng.standard_normal(n)
    size = (log_emp - np.log(40)) / 1.2
    quality = ch_quality + np.array(INDUSTRY_QUALITY)[industry] + 0.25 * size + 0.8 * rng.standard_normal(n)
    traits = _customer_traits(rng, quality, size, ch_value)
    return industry, region, log_emp, size, quality, traits


VALUE_SAMPLE = 12_000


def channel_value_per_lead(spec: ChannelSpec, cfg: SimConfig, rng, t_asof: float) -> float:
    """Expected net revenue in its first CLV-horizon days of one lead the channel brings at `as_of`."""
    ones = np.ones(VALUE_SAMPLE)
    _, _, _, size, quality, traits = _draw_leads(rng, spec.quality * ones, spec.value * ones, spec.size * ones)
    season = window_seasonality(cfg.start_ts, t_asof, cfg.clv_horizon_days)
    _, value = lead_expected_value(quality, size, traits, sm.initial_state_distribution(VALUE_SAMPLE), season)
    return float(value.mean())


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
        return np.exp(self.log_value + 0.5 * ORDER_VALUE_SIGMA**2)


ORDER_VALUE_SIGMA = 0.3


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


SEASON_MAX = 1.7


def _simulate_orders(rng, won_at, death_at, traits: CustomerTraits, start, t_end):
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


def _simulate_touches(rng, names, chan, created, quality, segments, won_at, death_at, traits, t_end):
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


def _timestamp_converter(start: pd.Timestamp):
    """Turn float days since `start` into naive UTC timestamps rounded to the second."""

    def convert(days: np.ndarray) -> pd.DatetimeIndex:
        seconds = np.round(np.asarray(days, dtype=float) * 86400).astype("int64")
        return (start + pd.to_timedelta(seconds, unit="s")).as_unit("us")

    return convert


def _touch_frame(touches: dict, ids: np.ndarray, to_ts, rng) -> pd.DataFrame:
    """The touchpoints table, in time order, with costs on paid touches and campaigns on marketing ones."""
    n = len(touches["who"])
    channel, interaction = touches["channel"], touches["interaction"]
    paid_cost = {
        ("search", "ad_click"): 2.5,
        ("social", "ad_click"): 0.6,
        ("email", "email_click"): 0.1,
        ("event", "event_attend"): 45.0,
    }
    cost = np.full(n, np.nan)
    for (ch, it), mean in paid_cost.items():
        hit = (channel == ch) & (interaction == it)
        cost[hit] = np.round(mean * np.exp(0.3 * rng.standard_normal(hit.sum())), 2)
    ts = to_ts(touches["t"])
    campaign = np.where(
        np.isin(channel, ["search", "social", "email", "event"]) & (interaction != "ticket"),
        channel + "-" + (ts.year * 100 + ts.month).astype(str).to_numpy(dtype=object),
        None,
    ).astype(object)
    campaign[rng.random(n) < 0.1] = None
    satisfaction = touches["satisfaction"].copy()
    satisfaction[rng.random(n) < 0.2] = np.nan
    frame = pd.DataFrame(
        {
            "customer_id": ids[touches["who"]],
            "timestamp": ts,
            "channel": channel,
            "interaction": interaction,
            "campaign_id": campaign,
            "cost": cost,
            "satisfaction": satisfaction,
        }
    )
    return frame.sort_values(["timestamp", "customer_id"], kind="stable").reset_index(drop=True)


def _order_frame(orders: dict, ids: np.ndarray, to_ts, rng) -> pd.DataFrame:
    """The orders table in time order, order ids numbered in that order."""
    frame = pd.DataFrame(
        {
            "customer_id": ids[orders["who"]],
            "timestamp": to_ts(orders["t"]),
            "amount": orders["amount"],
            "channel": np.array(ORDER_CHANNELS, dtype=object)[orders["channel"]],
            "product_category": np.array(PRODUCT_CATEGORIES, dtype=object)[orders["category"]],
        }
    )
    frame.loc[rng.random(len(frame)) < 0.02, "product_category"] = None
    frame = frame.sort_values(["timestamp", "customer_id"], kind="stable").reset_index(drop=True)
    frame.insert(1, "order_id", np.array([f"O{i:08d}" for i in range(1, len(frame) + 1)], dtype=object))
    return frame


def write_simulation(sim: Simulation, out_dir: Path, fmt: str = "parquet") -> Path:
    """Write the five tables and `truth/` (customers, channels.json, meta.json) under `out_dir`."""
    from crmdata.contract import write_table

    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    for name, frame in sim.tables.items():
        write_table(frame, out_dir, name, fmt)
    write_table(sim.truth_customers, out_dir / "truth", "customers", fmt)
    (out_dir / "truth" / "channels.json").write_text(json.dumps(sim.truth_channels, indent=2) + "\n")
    (out_dir / "truth" / "meta.json").write_text(json.dumps(sim.meta, indent=2) + "\n")
    return out_dir
