"""Features of every customer as of a cutoff: channel history, funnel progression, purchases, attributes.

Time semantics: `as_of` is exclusive. Only rows with `timestamp < as_of` are read, and only customers with
`created_at < as_of` get a row. Timestamps are naive UTC (aware ones are converted to UTC). Days are float
days, `as_of` minus the timestamp; the window "last N days" is `[as_of - N days, as_of)`. Money is in the
currency of `orders.amount` (touch cost in that of `touchpoints.cost`).

Everything is vectorised over customers (integer customer codes, `np.bincount`, ufunc `.at`), so the same
function serves a training snapshot of 50,000 customers and a scoring request for one.

This module is the public face. Each column is declared once in `training.catalogue` (name, family, label,
monotone direction, season-blind); the tables are read by `training.feature_arrays`, and each family is
computed in its own module (`feature_channels`, `feature_funnel`, `feature_purchases`, `feature_attributes`,
`feature_life`, `feature_derived`). The life families read what the others found through a frozen `Journey`.

Definitions that are not obvious from the column names:
- Funnel: events with a stage outside the spec's funnel (its ordered stages and its lost stage) are ignored.
  A stage change is an event whose stage differs from the customer's previous event (the first event is an
  entry, not a change); a repeated record of the same stage does not restart `days_in_stage` but does reset
  `days_since_last_stage_change`
  (time since the last funnel record). A regression is a change to an earlier stage, neither side "lost";
  a reopening is a change from "lost" to any stage. `current_stage_index` is -1 for lost, NaN without events.
  `stall_ratio` = days in an open stage / `spec.typical_stage_days` of that stage (NaN for won and lost).
- Purchases: rows with amount < 0 are refunds, every other row an order. Spend (sum, mean, max, trend,
  shares) counts positive amounts; `net_spend_total` subtracts refunds. Gaps are days between consecutive
  orders; their std is the sample std (NaN with fewer than two gaps). Shares divide by all positive spend,
  so unseen or missing categories and channels lower the listed shares instead of adding columns.
- Trends: engagement (a - b) / (a + b + 1) with touches in the last 30 days and the 30 before; spend
  (a - b) / (a + b) with the last 180 days and the 180 before (NaN without spend in either).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from training.catalogue import Layout, layout, slug
from training.feature_arrays import NAT, ArrayTable, Events, as_of_ns, read_customers, timestamps_ns
from training.feature_attributes import build_attribute_features
from training.feature_channels import build_channel_features, ticket_rows
from training.feature_derived import build_derived_features, build_season_features
from training.feature_funnel import build_funnel_features, order_funnel, typical_stage_days
from training.feature_life import (
    Journey,
    build_customer_life_features,
    build_lead_life_features,
    build_stage_touch_features,
    stage_runs,
    stage_touch_rates,
    touches_per_run,
)
from training.feature_purchases import build_purchase_features, orders_first_age
from training.seasonality import fit_purchase_season

__all__ = [
    "ArrayTable",
    "FeatureBlocks",
    "FeatureSpec",
    "build_feature_blocks",
    "build_features",
    "feature_labels",
    "fit_feature_spec",
]

MAX_CHANNELS, MAX_INTERACTIONS, MAX_ORDER_CHANNELS, MAX_CATEGORIES = 12, 12, 8, 10


@dataclass
class FeatureSpec:
    """What the features look like, learned from training data once and stored with the model."""

    funnel: Funnel  # the stage vocabulary the model was trained with; every command and the API use it
    channels: tuple[str, ...]  # touch channels seen in training (most frequent first, at most 12)
    interactions: tuple[str, ...]  # interactions seen (at most 12)
    order_channels: tuple[str, ...]  # transaction channels (at most 8)
    categories: tuple[str, ...]  # product categories (at most 10)
    typical_stage_days: dict[str, float]  # median days of completed stays in each stage, for the stall ratio
    categorical: tuple[str, ...] = ()  # names of the categorical feature columns (filled in if empty)
    columns: tuple[str, ...] = ()  # every feature column, in model order (filled in if empty)
    purchase_season: tuple[float, ...] = ()  # relative purchase intensity per day of year; () = flat
    # Touches a day (tickets aside) of all leads in each open stage, for the lead touch index; {} = unknown.
    typical_stage_touch_rate: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.columns:
            lay = _spec_layout(self)
            self.categorical, self.columns = lay.categorical, lay.columns

    @property
    def stages(self) -> tuple[str, ...]:
        """The funnel's ordered stages (won last)."""
        return self.funnel.stages

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for tuples), to store next to the model."""
        plain = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "funnel"}
        out = {k: (list(v) if isinstance(v, tuple) else dict(v)) for k, v in plain.items()}
        return {"funnel": self.funnel.to_dict(), **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """The spec stored by `to_dict`."""
        dicts = ("typical_stage_days", "typical_stage_touch_rate")
        rest = {k: (dict(v) if k in dicts else tuple(v)) for k, v in data.items() if k != "funnel"}
        return cls(funnel=Funnel.from_dict(data["funnel"]), **rest)


def _spec_layout(spec: FeatureSpec) -> Layout:
    """The catalogue's column layout of the spec's lists (cached per distinct lists)."""
    return layout(
        tuple(spec.stages),
        tuple(spec.channels),
        tuple(spec.interactions),
        tuple(spec.order_channels),
        tuple(spec.categories),
    )


def feature_labels(spec: FeatureSpec) -> dict[str, str]:
    """A plain-words template per column for explanations, to fill with `template.format(value=...)`."""
    return _spec_layout(spec).labels()


def _top_values(frame: pd.DataFrame | None, name: str, as_of: int, limit: int) -> tuple[str, ...]:
    """The most frequent values of `frame[name]` before `as_of` (ties by name), at most one per slug."""
    if frame is None or name not in frame.columns or not len(frame):
        return ()
    t = timestamps_ns(frame["timestamp"])
    counts = frame[name][(t < as_of) & (t != NAT)].dropna().astype(str).value_counts()
    out: list[str] = []
    slugs: set[str] = set()
    for value, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        fragment = slug(value)
        if fragment and fragment not in slugs:
            slugs.add(fragment)
            out.append(value)
        if len(out) == limit:
            break
    return tuple(out)


def fit_feature_spec(
    tables: dict[str, pd.DataFrame | None], as_of: pd.Timestamp, funnel: Funnel = DEFAULT_FUNNEL
) -> FeatureSpec:
    """Learn the feature layout from the training tables' rows before `as_of` (exclusive).

    Channel, interaction, order-channel and category lists keep the most frequent values (ties by name);
    `typical_stage_days` is the median length of the completed stays in each stage before `as_of`.
    The funnel (its stages, won last, and its lost stage) is stored in the spec.
    """
    stages = funnel.stages
    cutoff = as_of_ns(as_of)
    touches, orders = tables.get("touchpoints"), tables.get("orders")
    _, index, _ = read_customers(tables.get("customers"), cutoff)
    fn = order_funnel(Events(tables.get("funnel_events"), index, cutoff), funnel)
    events = Events(touches, index, cutoff)
    runs = stage_runs(fn, cutoff)
    tickets = ticket_rows(*events.codes("interaction"))
    first_orders = orders_first_age(Events(orders, index, cutoff), len(index))
    lead_touches = touches_per_run(events, tickets, first_orders, runs)
    spec = FeatureSpec(
        funnel=funnel,
        channels=_top_values(touches, "channel", cutoff, MAX_CHANNELS),
        interactions=_top_values(touches, "interaction", cutoff, MAX_INTERACTIONS),
        order_channels=_top_values(orders, "channel", cutoff, MAX_ORDER_CHANNELS),
        categories=_top_values(orders, "product_category", cutoff, MAX_CATEGORIES),
        typical_stage_days=typical_stage_days(fn, funnel),
        purchase_season=fit_purchase_season(orders, pd.Timestamp(cutoff)),
        typical_stage_touch_rate=stage_touch_rates(runs, lead_touches, stages),
    )
    return spec


@dataclass(frozen=True)
class FeatureBlocks:
    """The rows of `build_features` before they become a DataFrame: numeric columns as one float64 matrix,
    categorical ones as one object matrix (the API's per-request path reads these directly)."""

    index: pd.Index
    numeric: np.ndarray  # (rows, numeric columns), float64
    categorical: np.ndarray  # (rows, categorical columns), `str` or None
    numeric_columns: pd.Index
    categorical_columns: pd.Index
    order: list[str] | None  # `spec.columns`, when the spec interleaves the two kinds

    def to_frame(self) -> pd.DataFrame:
        # Two blocks (float64, object) joined once: far cheaper than inserting columns one by one.
        frame = pd.concat(
            [
                pd.DataFrame(self.numeric, index=self.index, columns=self.numeric_columns, copy=False),
                pd.DataFrame(
                    self.categorical, index=self.index, columns=self.categorical_columns, dtype=object, copy=False
                ),
            ],
            axis=1,
        )
        return frame if self.order is None else frame[self.order]


def build_feature_blocks(
    tables: dict[str, pd.DataFrame | ArrayTable | None], as_of: pd.Timestamp, spec: FeatureSpec
) -> FeatureBlocks:
    """`build_features` as blocks; tables may also be `ArrayTable`s (then the rows are `customers`' rows)."""
    index, cols = _feature_columns(tables, as_of_ns(as_of), spec)
    n = len(index)
    numeric, categorical, reorder = _output_columns(tuple(spec.columns), tuple(spec.categorical))
    unknown = [c for c in (*numeric[0], *categorical[0]) if c not in cols]
    if unknown:
        raise ValueError(f"the feature spec names columns this version cannot build: {unknown}")
    block = np.empty((len(numeric[0]), n))
    for i, col in enumerate(numeric[0]):
        block[i] = cols[col]
    labels = np.empty((n, len(categorical[0])), dtype=object)
    for j, col in enumerate(categorical[0]):
        labels[:, j] = cols[col]
    return FeatureBlocks(index, block.T, labels, numeric[1], categorical[1], reorder)


def _feature_columns(
    tables: dict[str, pd.DataFrame | ArrayTable | None], cutoff: int, spec: FeatureSpec
) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """Every family's columns (one array per column, in customer order) and the customer index."""
    lay = _spec_layout(spec)
    customers = tables.get("customers")
    rows, index, created = read_customers(customers, cutoff)
    n = len(index)
    touches = Events(tables.get("touchpoints"), index, cutoff)
    fn = order_funnel(Events(tables.get("funnel_events"), index, cutoff), spec.funnel)
    cols, ticket = build_channel_features(touches, n, spec, lay)
    funnel_cols, stage_start_age, open_stage = build_funnel_features(fn, n, cutoff, created, spec, lay)
    purchase_cols, first_order_age = build_purchase_features(Events(tables.get("orders"), index, cutoff), n, spec, lay)
    cols.update(funnel_cols)
    cols.update(purchase_cols)
    cols.update(build_attribute_features(customers, rows, cutoff, created))
    journey = Journey(
        as_of=cutoff,
        touches=touches,
        ticket=ticket,
        funnel=fn,
        stage_start_age=stage_start_age,
        first_order_age=first_order_age,
    )
    cols.update(build_stage_touch_features(journey, spec))
    cols.update(build_customer_life_features(journey, cols))
    cols.update(build_lead_life_features(journey, cols))
    no_orders = (cols["orders_total"] + cols["refunds_total"]) == 0  # any order row, as labels.buyers reads it
    cols["is_open_lead"] = (open_stage & no_orders).astype(float)
    cols.update(build_derived_features(cols, pd.Timestamp(cutoff)))
    cols.update(build_season_features(cols, pd.Timestamp(cutoff), tuple(spec.purchase_season)))
    return index, cols


def build_features(tables: dict[str, pd.DataFrame | None], as_of: pd.Timestamp, spec: FeatureSpec) -> pd.DataFrame:
    """Every feature of every customer created before `as_of`, from rows with timestamp before `as_of`.

    Returns one row per customer (index `customer_id`, sorted) with exactly `spec.columns`: numeric
    columns float64 (NaN where not applicable), categorical ones Python `str` objects or None. Values
    not in the spec (channels, interactions, categories, stages) pass without adding columns.
    `current_stage` ("none" without funnel events) and `is_open_lead` (funnel events, stage neither
    won nor lost, no order before `as_of`) serve label eligibility. Inputs are not modified.
    """
    return build_feature_blocks(tables, as_of, spec).to_frame()


@functools.lru_cache(maxsize=64)
def _output_columns(
    columns: tuple[str, ...], categorical: tuple[str, ...]
) -> tuple[tuple[list[str], pd.Index], tuple[list[str], pd.Index], list[str] | None]:
    """Numeric and categorical column names as lists (to iterate) and indexes (built once per spec), and
    the order to restore if the spec interleaves them."""
    is_cat = set(categorical)
    numeric = [c for c in columns if c not in is_cat]
    categorical = [c for c in columns if c in is_cat]
    reorder = None if [*numeric, *categorical] == list(columns) else list(columns)
    return (numeric, pd.Index(numeric)), (categorical, pd.Index(categorical)), reorder
