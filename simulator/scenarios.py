"""What the simulator can simulate: channel specs, the named scenarios and the run configuration.

A scenario is a mix of source channels (paid ones answer their carried-over weekly spend through saturating
response curves, organic ones bring a steady flow), an optional annual season in paid lead response and an
optional budget raise late in the history; `SimConfig` picks one with the size, seed, time span and horizons
of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

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
    carryover: float = 0.0  # geometric adstock decay lambda in [0, 1): the share of last week's effect kept

    def __post_init__(self) -> None:
        if not 0 <= self.carryover < 1:
            raise ValueError(f"carryover must lie in [0, 1), got {self.carryover}")

    @property
    def paid(self) -> bool:
        """Whether the channel is bought (organic channels have no spend)."""
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
    """A channel mix, an optional annual season of paid lead response and an optional late budget raise."""

    channels: dict[str, ChannelSpec]
    raise_weeks: int = 0  # the last N weeks before `as_of` run at raised spend
    raise_factor: dict[str, float] = field(default_factory=dict)
    season: float = 0.0  # amplitude of the paid channels' annual factor 1 + season * cos(...), in [0, 1)
    season_peak_day: int = 1  # day of year (1 = 1 January) on which that factor peaks

    def __post_init__(self) -> None:
        if not 0 <= self.season < 1:
            raise ValueError(f"season must lie in [0, 1), got {self.season}")


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
    # Spend keeps working for weeks after it is spent (events longest), and paid leads peak in autumn.
    "carryover": Scenario(
        {
            **BASE_CHANNELS,
            "search": replace(BASE_CHANNELS["search"], carryover=0.3),
            "social": replace(BASE_CHANNELS["social"], carryover=0.5),
            "email": replace(BASE_CHANNELS["email"], carryover=0.2),
            "event": replace(BASE_CHANNELS["event"], carryover=0.7),
        },
        season=0.25,
        season_peak_day=300,
    ),
    # Overspending: search, social and email run far past saturation (email's leads also worth less), so only
    # events still pay at the margin, and none does at a 30% gross margin (at 10,000 to 20,000 customers).
    "unprofitable": Scenario(
        {
            **BASE_CHANNELS,
            "search": replace(BASE_CHANNELS["search"], spend=9000),
            "social": replace(BASE_CHANNELS["social"], spend=9000),
            "email": replace(BASE_CHANNELS["email"], spend=2100, value=-0.4),
            "event": replace(BASE_CHANNELS["event"], spend=2200),
        }
    ),
    # Paid leads peak in autumn; spend works within its week.
    "seasonal": Scenario(BASE_CHANNELS, season=0.3, season_peak_day=300),
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
