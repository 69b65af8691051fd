"""The feature catalogue: every feature column declared once, with its family, its label and its constraints.

A declaration names one column, or a template of columns: one per value of a spec list (`over`, e.g. each
touch channel) and/or per window in days. Templates use two tokens, replaced as text:
- in `name`, `{item}` is the snake_case slug of the spec value and `{window}` the window in days;
- in `label`, `{item}` is the spec value itself, `{item_words}` the value with underscores as spaces, and
  `{window}` the window. `{value...}` stays for the explanation to fill with `label.format(value=...)`.

The column layout (model order), the reason labels, LightGBM's monotone constraints and the columns a model
may not split on when the data has a purchase season are all derived from `FAMILIES`.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from training.config import MODEL_KINDS

TOUCH_WINDOWS = (7, 30, 90, 365)
INTERACTION_WINDOWS = (30, 90, 365)
SPEC_LISTS = ("stages", "channels", "interactions", "order_channels", "categories")


@dataclass(frozen=True, kw_only=True)
class Feature:
    """One feature column, or one template of columns (per spec value of `over`, per window)."""

    name: str
    label: str  # plain words for the top reasons a marketer reads
    over: str = ""  # the spec list the template runs over ("" = a single column)
    windows: tuple[int, ...] = ()  # the windows (days) the template runs over, outer to `over`
    categorical: bool = False
    # Direction per model kind (+1 rises with the value, -1 falls), where the domain knows it.
    monotone: Mapping[str, int] = field(default_factory=dict, hash=False)
    # Model kinds that may not split on this column when the data has a purchase season.
    season_blind: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.over and self.over not in SPEC_LISTS:
            raise ValueError(f"{self.name}: `over` must be one of {SPEC_LISTS}, got {self.over!r}")
        templated = bool(self.over or self.windows)
        if templated and (self.monotone or self.season_blind):
            raise ValueError(f"{self.name}: a template of columns cannot carry constraints")
        if any(d not in (-1, 1) for d in self.monotone.values()):
            raise ValueError(f"{self.name}: monotone directions are -1 or +1")
        unknown = {*self.monotone, *self.season_blind} - set(MODEL_KINDS)
        if unknown:
            raise ValueError(f"{self.name}: unknown model kinds {sorted(unknown)}")


@dataclass(frozen=True, kw_only=True)
class Family:
    """Features computed together by one family function, in model order."""

    name: str
    features: tuple[Feature, ...]


CHANNEL = Family(
    name="channel",
    features=(
        Feature(
            name="touches_{item}_{window}d",
            over="channels",
            windows=TOUCH_WINDOWS,
            label="{value:.0f} {item} touches in the last {window} days",
        ),
        Feature(name="touches_{window}d", windows=TOUCH_WINDOWS, label="{value:.0f} touches in the last {window} days"),
        Feature(name="touches_total", label="{value:.0f} touches in all"),
        Feature(name="distinct_channels_365d", label="touched on {value:.0f} channels in the last 365 days"),
        Feature(
            name="days_since_last_touch",
            label="{value:.0f} days since the last touch",
            monotone={"conversion": -1},  # a longer silence never raises a purchase forecast
        ),
        Feature(
            name="days_since_last_touch_{item}", over="channels", label="{value:.0f} days since the last {item} touch"
        ),
        Feature(name="first_touch_channel", label="first touch was on {value}", categorical=True),
        Feature(name="last_touch_channel", label="last touch was on {value}", categorical=True),
        Feature(
            name="interactions_{item}_{window}d",
            over="interactions",
            windows=INTERACTION_WINDOWS,
            label="{value:.0f} {item_words} interactions in the last {window} days",
        ),
        Feature(name="distinct_campaigns", label="touched by {value:.0f} campaigns"),
        Feature(name="touch_cost_total", label="{value:,.2f} spent on touches in all"),
        Feature(name="touch_cost_90d", label="{value:,.2f} spent on touches in the last 90 days"),
        Feature(name="tickets_90d", label="{value:.0f} service tickets in the last 90 days"),
        Feature(name="tickets_365d", label="{value:.0f} service tickets in the last 365 days"),
        Feature(name="satisfaction_mean", label="mean satisfaction {value:.1f} of 5"),
        Feature(name="satisfaction_last", label="last satisfaction rating {value:.0f} of 5"),
        Feature(name="low_satisfaction_tickets_365d", label="{value:.0f} poorly rated tickets in the last 365 days"),
        Feature(
            name="engagement_trend_30d", label="engagement trend {value:+.2f} (last 30 days against the 30 before)"
        ),
    ),
)

FUNNEL = Family(
    name="funnel",
    features=(
        Feature(name="current_stage", label="current funnel stage is {value}", categorical=True),
        Feature(name="current_stage_index", label="funnel stage number {value:.0f}"),
        Feature(name="is_open_lead", label="open lead: {value:.0f}"),
        Feature(name="furthest_stage_index", label="furthest funnel stage number {value:.0f}"),
        Feature(name="days_in_stage", label="{value:.0f} days in the current stage"),
        Feature(name="stall_ratio", label="{value:.1f} times the usual time in this stage"),
        Feature(name="days_to_{item}", over="stages", label="reached {item} {value:.0f} days after creation"),
        Feature(name="stage_changes", label="{value:.0f} stage changes"),
        Feature(name="stage_regressions", label="moved back a stage {value:.0f} times"),
        Feature(name="lost_reopened", label="reopened after being lost {value:.0f} times"),
        Feature(name="days_since_last_stage_change", label="{value:.0f} days since the last funnel update"),
    ),
)

PURCHASE = Family(
    name="purchase",
    features=(
        Feature(
            name="days_since_last_order",
            label="{value:.0f} days since the last order",
            monotone={"churn": 1, "clv": -1},
        ),
        Feature(name="days_since_first_order", label="{value:.0f} days since the first order"),
        Feature(name="orders_total", label="{value:.0f} orders in all"),
        Feature(name="orders_90d", label="{value:.0f} orders in the last 90 days"),
        Feature(name="orders_365d", label="{value:.0f} orders in the last 365 days"),
        Feature(name="spend_sum_total", label="{value:,.0f} spent in all"),
        Feature(name="spend_sum_365d", label="{value:,.0f} spent in the last 365 days"),
        Feature(name="spend_mean_total", label="{value:,.0f} per order on average"),
        Feature(name="spend_mean_365d", label="{value:,.0f} per order on average in the last 365 days"),
        Feature(name="spend_max_total", label="largest order {value:,.0f}"),
        Feature(name="spend_max_365d", label="largest order in the last 365 days {value:,.0f}"),
        Feature(name="spend_trend_180d", label="spend trend {value:+.2f} (last 180 days against the 180 before)"),
        Feature(name="net_spend_total", label="{value:,.0f} spent net of refunds"),
        Feature(name="order_gap_mean_days", label="{value:.0f} days between orders on average"),
        Feature(name="order_gap_std_days", label="order gaps vary by {value:.0f} days"),
        Feature(name="refunds_total", label="{value:.0f} refunds"),
        Feature(name="refund_amount_total", label="{value:,.0f} refunded"),
        Feature(name="spend_share_category_{item}", over="categories", label="{value:.0%} of spend on {item}"),
        Feature(name="spend_share_channel_{item}", over="order_channels", label="{value:.0%} of spend through {item}"),
        Feature(name="distinct_categories", label="bought in {value:.0f} product categories"),
    ),
)

ATTRIBUTE = Family(
    name="attribute",
    features=(
        Feature(name="source_channel", label="source channel is {value}", categorical=True),
        Feature(name="industry", label="industry is {value}", categorical=True),
        Feature(name="region", label="region is {value}", categorical=True),
        Feature(name="employees", label="{value:,.0f} employees"),
        Feature(name="annual_revenue", label="annual revenue {value:,.0f}"),
        Feature(name="account_age_days", label="account created {value:.0f} days ago"),
    ),
)

# The churn model may not split on the cutoff's season: it enters through the bundle's `SeasonTransfer`
# instead. Twelve monthly snapshots show each season once, so trees learn it as one offset per snapshot,
# and that does not carry over to the season after the training cutoff.
_CHURN_SEASON_BLIND = ("churn",)

# Rates and ratios that let trees read a customer's own rhythm (buy-till-you-die style) and the season.
DERIVED = Family(
    name="derived",
    features=(
        Feature(name="touch_rate_90d", label="{value:.2f} touches a day lately"),
        Feature(name="customer_touch_rate_90d", label="{value:.2f} touches a day as a customer lately"),
        Feature(name="customer_touch_rate_365d", label="{value:.2f} touches a day as a customer this year"),
        Feature(name="stage_touch_rate_30d", label="{value:.2f} touches a day in the current stage"),
        Feature(name="orders_per_year", label="{value:.1f} orders a year"),
        Feature(name="spend_per_year", label="spends {value:,.0f} a year"),
        Feature(name="tickets_per_year", label="{value:.1f} service tickets a year"),
        Feature(name="overdue_ratio", label="{value:.1f}x the usual gap since the last order"),
        Feature(name="touch_silence_ratio", label="silent for {value:.1f}x the usual gap between touches"),
        Feature(name="cutoff_season_sin", label="time of year", season_blind=_CHURN_SEASON_BLIND),
        Feature(name="cutoff_season_cos", label="time of year", season_blind=_CHURN_SEASON_BLIND),
    ),
)

# Engagement since the first order, when the account became a customer: its own buying rhythm (touches come
# far more often than orders, so they estimate it sooner) and how unusual its current silence is for it.
CUSTOMER_LIFE = Family(
    name="customer_life",
    features=(
        Feature(name="customer_touches", label="{value:.0f} touches since the first order"),
        Feature(name="customer_touch_rate", label="{value:.2g} touches a day since the first order"),
        Feature(name="customer_tickets_per_year", label="{value:.1f} service tickets a year since the first order"),
        Feature(
            name="customer_silence_expected_touches", label="silent for as long as {value:.2g} of its usual touches"
        ),
        Feature(name="repeat_order_rate", label="{value:.1f} repeat orders a year"),
    ),
)

# Engagement as a lead: touches a day in the current funnel stage (a stalled lead goes quiet) and before
# the first order (how keen the account was while it was being sold to).
LEAD_LIFE = Family(
    name="lead_life",
    features=(
        Feature(name="stage_touch_rate", label="{value:.2g} touches a day in the current funnel stage"),
        Feature(name="lead_touch_rate", label="{value:.2g} touches a day as a lead"),
        Feature(name="previous_stage_touch_rate", label="{value:.2g} touches a day in the previous funnel stage"),
        Feature(
            name="lead_touch_index", label="{value:.2f}x the usual touches for its time in the earlier funnel stages"
        ),
        Feature(name="stage_touch_index", label="{value:.2f}x the usual touches for its time in the current stage"),
        Feature(
            name="stage_expected_touches", label="{value:.1f} touches expected in the current stage at its earlier pace"
        ),
    ),
)

# The purchase season learnt from the orders (`training.seasonality`): how busy the coming and the last 90 days
# are against an average day, and a customer's repeat orders with the season taken out, as orders per
# average 90 days (over the last year, and over the last 90 days).
SEASON = Family(
    name="season",
    features=(
        Feature(
            name="season_next_90d",
            label="buying season of the next 90 days {value:.2f} (1 = an average day)",
            season_blind=_CHURN_SEASON_BLIND,
        ),
        Feature(
            name="season_last_90d",
            label="buying season of the last 90 days {value:.2f} (1 = an average day)",
            season_blind=_CHURN_SEASON_BLIND,
        ),
        Feature(
            name="paced_orders_90d",
            label="{value:.2g} repeat orders per 90 days this year, season taken out",
            monotone={"churn": -1, "clv": 1},
        ),
        Feature(
            name="paced_orders_90d_recent",
            label="{value:.2g} repeat orders per 90 days lately, season taken out",
            monotone={"churn": -1, "clv": 1},
        ),
    ),
)

# Model order: numeric features family by family, then the categorical ones (each in this order).
FAMILIES = (CHANNEL, FUNNEL, PURCHASE, ATTRIBUTE, DERIVED, CUSTOMER_LIFE, LEAD_LIFE, SEASON)


def slug(value: str) -> str:
    """A snake_case column fragment of a channel, stage or category name ("In Person" -> "in_person")."""
    chars = "".join(ch if ch.isalnum() else "_" for ch in str(value).strip().lower())
    return "_".join(part for part in chars.split("_") if part)


def _escape(value: str) -> str:
    """A spec value as literal text inside a label template (braces doubled)."""
    return str(value).replace("{", "{{").replace("}", "}}")


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column of a spec's layout: the declaration it comes from, made concrete."""

    name: str
    family: str
    label: str
    categorical: bool


_TOKEN = re.compile(r"\{(item|item_words|window)\}")


def _fill(template: str, tokens: Mapping[str, str]) -> str:
    """Replace the template tokens in one pass (a spec value that holds a token stays as it is)."""
    return _TOKEN.sub(lambda m: tokens.get(m[1], m[0]), template)


def _expand(feature: Feature, family: str, lists: Mapping[str, tuple[str, ...]]) -> list[tuple[int | None, Column]]:
    """The columns of one declaration (window outer, spec value inner), each with its window."""
    out = []
    for window in feature.windows or (None,):
        for item in lists[feature.over] if feature.over else (None,):
            names: dict[str, str] = {} if window is None else {"window": str(window)}
            labels = dict(names)
            if item is not None:
                names["item"] = slug(item)
                labels.update(item=_escape(item), item_words=_escape(item).replace("_", " "))
            name, label = _fill(feature.name, names), _fill(feature.label, labels)
            out.append((window, Column(name=name, family=family, label=label, categorical=feature.categorical)))
    return out


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Every column of one spec, in model order, with what the families and the explanations read."""

    columns: tuple[str, ...]
    categorical: tuple[str, ...]
    by_name: Mapping[str, Column]  # in model order
    templated: Mapping[tuple[str, int | None], tuple[str, ...]]  # (declared name, window) -> one per spec value

    def each(self, name: str, window: int | None = None) -> tuple[str, ...]:
        """The columns of template `name` (as declared) for `window`, one per value of its spec list."""
        return self.templated[name, window]

    def labels(self) -> dict[str, str]:
        """A plain-words template per column, in model order."""
        return {name: column.label for name, column in self.by_name.items()}


@functools.lru_cache(maxsize=64)
def layout(
    stages: tuple[str, ...],
    channels: tuple[str, ...],
    interactions: tuple[str, ...],
    order_channels: tuple[str, ...],
    categories: tuple[str, ...],
) -> Layout:
    """Name every column of the spec lists; raise if two names collide (the lists are de-duplicated by slug)."""
    lists = dict(zip(SPEC_LISTS, (stages, channels, interactions, order_channels, categories), strict=True))
    declared: list[Column] = []
    templated: dict[tuple[str, int | None], tuple[str, ...]] = {}
    for family in FAMILIES:
        for feature in family.features:
            expanded = _expand(feature, family.name, lists)
            declared.extend(column for _, column in expanded)
            if feature.over or feature.windows:
                for window in feature.windows or (None,):
                    templated[feature.name, window] = tuple(c.name for w, c in expanded if w == window)
    ordered = [c for c in declared if not c.categorical] + [c for c in declared if c.categorical]
    columns = tuple(c.name for c in ordered)
    clashes = [c for c, times in Counter(columns).items() if times > 1]
    if clashes:
        raise ValueError(f"feature column names collide: {sorted(clashes)}")
    return Layout(
        columns=columns,
        categorical=tuple(c.name for c in ordered if c.categorical),
        by_name={c.name: c for c in ordered},
        templated=templated,
    )


@functools.cache
def _plain_features() -> dict[str, Feature]:
    """The single-column declarations by name (the ones that may carry constraints)."""
    return {f.name: f for family in FAMILIES for f in family.features if not (f.over or f.windows)}


def monotone_constraints(kind: str, columns: Sequence[str]) -> list[int]:
    """LightGBM's `monotone_constraints` of model `kind` over `columns` (0 where the domain says nothing)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    plain = _plain_features()
    return [plain[c].monotone.get(kind, 0) if c in plain else 0 for c in columns]


def season_blind(kind: str) -> tuple[str, ...]:
    """Columns model `kind` may not split on when the data has a purchase season, in catalogue order."""
    return tuple(name for name, f in _plain_features().items() if kind in f.season_blind)
