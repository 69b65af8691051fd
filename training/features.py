"""Features of every customer as of a cutoff: channel history, funnel progression, purchases, attributes.

Time semantics: `as_of` is exclusive. Only rows with `timestamp < as_of` are read, and only customers with
`created_at < as_of` get a row. Timestamps are naive UTC (aware ones are converted to UTC). Days are float
days, `as_of` minus the timestamp; the window "last N days" is `[as_of - N days, as_of)`. Money is in the
currency of `orders.amount` (touch cost in that of `touchpoints.cost`).

Everything is vectorised over customers (integer customer codes, `np.bincount`, ufunc `.at`), so the same
function serves a training snapshot of 50,000 customers and a scoring request for one.

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
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from training.seasonality import fit_purchase_season, season_cumulative, season_sum

NO_STAGE = "none"
TICKET = "ticket"
LOW_SATISFACTION = 2.0  # a rating at or below this is a low-satisfaction ticket

TOUCH_WINDOWS = (7, 30, 90, 365)
INTERACTION_WINDOWS = (30, 90, 365)
MAX_CHANNELS, MAX_INTERACTIONS, MAX_ORDER_CHANNELS, MAX_CATEGORIES = 12, 12, 8, 10
ATTRIBUTE_CATEGORICAL = ("source_channel", "industry", "region")
ATTRIBUTE_NUMERIC = ("employees", "annual_revenue")
# Rates and ratios that let trees read a customer's own rhythm (buy-till-you-die style) and the season.
DERIVED = (
    "touch_rate_90d",
    "customer_touch_rate_90d",
    "customer_touch_rate_365d",
    "stage_touch_rate_30d",
    "orders_per_year",
    "spend_per_year",
    "tickets_per_year",
    "overdue_ratio",
    "touch_silence_ratio",
    "cutoff_season_sin",
    "cutoff_season_cos",
)
# Engagement since the first order, when the account became a customer: its own buying rhythm (touches come
# far more often than orders, so they estimate it sooner) and how unusual its current silence is for it.
CUSTOMER_LIFE = (
    "customer_touches",
    "customer_touch_rate",
    "customer_tickets_per_year",
    "customer_silence_expected_touches",
    "repeat_order_rate",
)
# Engagement as a lead: touches a day in the current funnel stage (a stalled lead goes quiet) and before
# the first order (how keen the account was while it was being sold to).
LEAD_LIFE = (
    "stage_touch_rate",
    "lead_touch_rate",
    "previous_stage_touch_rate",
    "lead_touch_index",
    "stage_touch_index",
    "stage_expected_touches",
)
# The purchase season learnt from the orders (`training.seasonality`): how busy the coming and the last 90 days
# are against an average day, and a customer's repeat orders with the season taken out, as orders per
# average 90 days (over the last year, and over the last 90 days).
SEASON = ("season_next_90d", "season_last_90d", "paced_orders_90d", "paced_orders_90d_recent")
SEASON_DAYS = 90

DAY_NS = 86_400 * 10**9
_NAT = np.iinfo(np.int64).min
_NEVER = np.iinfo(np.int64).max
# Touch age buckets (days): 60 serves the engagement trend's "30 days before the last 30".
_TOUCH_EDGES = (7, 30, 60, 90, 365)
# Order age buckets (days): 180 and 360 serve the spend trend.
_ORDER_EDGES = (90, 180, 360, 365)


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


# ---------------------------------------------------------------------------------------------------------
# Column layout and labels
# ---------------------------------------------------------------------------------------------------------


def _slug(value: str) -> str:
    """A snake_case column fragment of a channel, stage or category name ("In Person" -> "in_person")."""
    chars = "".join(ch if ch.isalnum() else "_" for ch in str(value).strip().lower())
    return "_".join(part for part in chars.split("_") if part)


@dataclass(frozen=True)
class _Layout:
    """Every column name of one spec, per family; cached per distinct spec lists."""

    touch_channel: dict[int, tuple[str, ...]]  # window -> one column per spec channel
    touch_total: dict[int, str]
    days_since_channel: tuple[str, ...]
    touch_interaction: dict[int, tuple[str, ...]]
    days_to_stage: tuple[str, ...]
    category_share: tuple[str, ...]
    order_channel_share: tuple[str, ...]
    categorical: tuple[str, ...]
    columns: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _layout(
    stages: tuple[str, ...],
    channels: tuple[str, ...],
    interactions: tuple[str, ...],
    order_channels: tuple[str, ...],
    categories: tuple[str, ...],
) -> _Layout:
    """Name every column; raise if two names collide (the spec lists are de-duplicated by `_slug`)."""
    touch_channel = {w: tuple(f"touches_{_slug(c)}_{w}d" for c in channels) for w in TOUCH_WINDOWS}
    touch_total = {w: f"touches_{w}d" for w in TOUCH_WINDOWS}
    days_since_channel = tuple(f"days_since_last_touch_{_slug(c)}" for c in channels)
    touch_interaction = {w: tuple(f"interactions_{_slug(i)}_{w}d" for i in interactions) for w in INTERACTION_WINDOWS}
    days_to_stage = tuple(f"days_to_{_slug(s)}" for s in stages)
    category_share = tuple(f"spend_share_category_{_slug(c)}" for c in categories)
    order_channel_share = tuple(f"spend_share_channel_{_slug(c)}" for c in order_channels)
    channel = (
        *[c for w in TOUCH_WINDOWS for c in touch_channel[w]],
        *touch_total.values(),
        "touches_total",
        "distinct_channels_365d",
        "days_since_last_touch",
        *days_since_channel,
        "first_touch_channel",
        "last_touch_channel",
        *[c for w in INTERACTION_WINDOWS for c in touch_interaction[w]],
        "distinct_campaigns",
        "touch_cost_total",
        "touch_cost_90d",
        "tickets_90d",
        "tickets_365d",
        "satisfaction_mean",
        "satisfaction_last",
        "low_satisfaction_tickets_365d",
        "engagement_trend_30d",
    )
    funnel = (
        "current_stage",
        "current_stage_index",
        "is_open_lead",
        "furthest_stage_index",
        "days_in_stage",
        "stall_ratio",
        *days_to_stage,
        "stage_changes",
        "stage_regressions",
        "lost_reopened",
        "days_since_last_stage_change",
    )
    purchase = (
        "days_since_last_order",
        "days_since_first_order",
        "orders_total",
        "orders_90d",
        "orders_365d",
        "spend_sum_total",
        "spend_sum_365d",
        "spend_mean_total",
        "spend_mean_365d",
        "spend_max_total",
        "spend_max_365d",
        "spend_trend_180d",
        "net_spend_total",
        "order_gap_mean_days",
        "order_gap_std_days",
        "refunds_total",
        "refund_amount_total",
        *category_share,
        *order_channel_share,
        "distinct_categories",
    )
    attributes = (
        *ATTRIBUTE_CATEGORICAL,
        *ATTRIBUTE_NUMERIC,
        "account_age_days",
        *DERIVED,
        *CUSTOMER_LIFE,
        *LEAD_LIFE,
        *SEASON,
    )
    categorical = ("first_touch_channel", "last_touch_channel", "current_stage", *ATTRIBUTE_CATEGORICAL)
    # Model order: numeric features family by family, then the categorical ones.
    columns = (*(c for c in (*channel, *funnel, *purchase, *attributes) if c not in categorical), *categorical)
    clashes = [c for c, times in Counter(columns).items() if times > 1]
    if clashes:
        raise ValueError(f"feature column names collide: {sorted(clashes)}")
    return _Layout(
        touch_channel,
        touch_total,
        days_since_channel,
        touch_interaction,
        days_to_stage,
        category_share,
        order_channel_share,
        categorical,
        columns,
    )


def _spec_layout(spec: FeatureSpec) -> _Layout:
    return _layout(
        tuple(spec.stages),
        tuple(spec.channels),
        tuple(spec.interactions),
        tuple(spec.order_channels),
        tuple(spec.categories),
    )


def feature_labels(spec: FeatureSpec) -> dict[str, str]:
    """A plain-words template per column for explanations, to fill with `template.format(value=...)`."""
    lay = _spec_layout(spec)

    def esc(name: str) -> str:
        return str(name).replace("{", "{{").replace("}", "}}")

    labels: dict[str, str] = {}
    for w in TOUCH_WINDOWS:
        for c, col in zip(spec.channels, lay.touch_channel[w], strict=True):
            labels[col] = f"{{value:.0f}} {esc(c)} touches in the last {w} days"
        labels[lay.touch_total[w]] = f"{{value:.0f}} touches in the last {w} days"
    for c, col in zip(spec.channels, lay.days_since_channel, strict=True):
        labels[col] = f"{{value:.0f}} days since the last {esc(c)} touch"
    for w in INTERACTION_WINDOWS:
        for i, col in zip(spec.interactions, lay.touch_interaction[w], strict=True):
            labels[col] = f"{{value:.0f}} {esc(i).replace('_', ' ')} interactions in the last {w} days"
    for s, col in zip(spec.stages, lay.days_to_stage, strict=True):
        labels[col] = f"reached {esc(s)} {{value:.0f}} days after creation"
    for c, col in zip(spec.categories, lay.category_share, strict=True):
        labels[col] = f"{{value:.0%}} of spend on {esc(c)}"
    for c, col in zip(spec.order_channels, lay.order_channel_share, strict=True):
        labels[col] = f"{{value:.0%}} of spend through {esc(c)}"
    labels.update(
        {
            "touches_total": "{value:.0f} touches in all",
            "distinct_channels_365d": "touched on {value:.0f} channels in the last 365 days",
            "days_since_last_touch": "{value:.0f} days since the last touch",
            "first_touch_channel": "first touch was on {value}",
            "last_touch_channel": "last touch was on {value}",
            "distinct_campaigns": "touched by {value:.0f} campaigns",
            "touch_cost_total": "{value:,.2f} spent on touches in all",
            "touch_cost_90d": "{value:,.2f} spent on touches in the last 90 days",
            "tickets_90d": "{value:.0f} service tickets in the last 90 days",
            "tickets_365d": "{value:.0f} service tickets in the last 365 days",
            "satisfaction_mean": "mean satisfaction {value:.1f} of 5",
            "satisfaction_last": "last satisfaction rating {value:.0f} of 5",
            "low_satisfaction_tickets_365d": "{value:.0f} poorly rated tickets in the last 365 days",
            "engagement_trend_30d": "engagement trend {value:+.2f} (last 30 days against the 30 before)",
            "current_stage": "current funnel stage is {value}",
            "current_stage_index": "funnel stage number {value:.0f}",
            "is_open_lead": "open lead: {value:.0f}",
            "furthest_stage_index": "furthest funnel stage number {value:.0f}",
            "days_in_stage": "{value:.0f} days in the current stage",
            "stall_ratio": "{value:.1f} times the usual time in this stage",
            "stage_changes": "{value:.0f} stage changes",
            "stage_regressions": "moved back a stage {value:.0f} times",
            "lost_reopened": "reopened after being lost {value:.0f} times",
            "days_since_last_stage_change": "{value:.0f} days since the last funnel update",
            "days_since_last_order": "{value:.0f} days since the last order",
            "days_since_first_order": "{value:.0f} days since the first order",
            "orders_total": "{value:.0f} orders in all",
            "orders_90d": "{value:.0f} orders in the last 90 days",
            "orders_365d": "{value:.0f} orders in the last 365 days",
            "spend_sum_total": "{value:,.0f} spent in all",
            "spend_sum_365d": "{value:,.0f} spent in the last 365 days",
            "spend_mean_total": "{value:,.0f} per order on average",
            "spend_mean_365d": "{value:,.0f} per order on average in the last 365 days",
            "spend_max_total": "largest order {value:,.0f}",
            "spend_max_365d": "largest order in the last 365 days {value:,.0f}",
            "spend_trend_180d": "spend trend {value:+.2f} (last 180 days against the 180 before)",
            "net_spend_total": "{value:,.0f} spent net of refunds",
            "order_gap_mean_days": "{value:.0f} days between orders on average",
            "order_gap_std_days": "order gaps vary by {value:.0f} days",
            "refunds_total": "{value:.0f} refunds",
            "refund_amount_total": "{value:,.0f} refunded",
            "distinct_categories": "bought in {value:.0f} product categories",
            "source_channel": "source channel is {value}",
            "industry": "industry is {value}",
            "region": "region is {value}",
            "employees": "{value:,.0f} employees",
            "annual_revenue": "annual revenue {value:,.0f}",
            "account_age_days": "account created {value:.0f} days ago",
            "touch_rate_90d": "{value:.2f} touches a day lately",
            "customer_touch_rate_90d": "{value:.2f} touches a day as a customer lately",
            "customer_touch_rate_365d": "{value:.2f} touches a day as a customer this year",
            "stage_touch_rate_30d": "{value:.2f} touches a day in the current stage",
            "orders_per_year": "{value:.1f} orders a year",
            "spend_per_year": "spends {value:,.0f} a year",
            "tickets_per_year": "{value:.1f} service tickets a year",
            "overdue_ratio": "{value:.1f}x the usual gap since the last order",
            "touch_silence_ratio": "silent for {value:.1f}x the usual gap between touches",
            "cutoff_season_sin": "time of year",
            "cutoff_season_cos": "time of year",
            "customer_touches": "{value:.0f} touches since the first order",
            "customer_touch_rate": "{value:.2g} touches a day since the first order",
            "customer_tickets_per_year": "{value:.1f} service tickets a year since the first order",
            "customer_silence_expected_touches": "silent for as long as {value:.2g} of its usual touches",
            "repeat_order_rate": "{value:.1f} repeat orders a year",
            "stage_touch_rate": "{value:.2g} touches a day in the current funnel stage",
            "lead_touch_rate": "{value:.2g} touches a day as a lead",
            "previous_stage_touch_rate": "{value:.2g} touches a day in the previous funnel stage",
            "lead_touch_index": "{value:.2f}x the usual touches for its time in the earlier funnel stages",
            "stage_touch_index": "{value:.2f}x the usual touches for its time in the current stage",
            "stage_expected_touches": "{value:.1f} touches expected in the current stage at its earlier pace",
            "season_next_90d": "buying season of the next 90 days {value:.2f} (1 = an average day)",
            "season_last_90d": "buying season of the last 90 days {value:.2f} (1 = an average day)",
            "paced_orders_90d": "{value:.2g} repeat orders per 90 days this year, season taken out",
            "paced_orders_90d_recent": "{value:.2g} repeat orders per 90 days lately, season taken out",
        }
    )
    return {c: labels[c] for c in lay.columns}


# ---------------------------------------------------------------------------------------------------------
# Reading tables as of the cutoff
# ---------------------------------------------------------------------------------------------------------


def _as_of_ns(as_of: pd.Timestamp | str) -> int:
    """The cutoff as int64 nanoseconds since the epoch, naive UTC."""
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.value)


def _timestamps_ns(col: pd.Series) -> np.ndarray:
    """A timestamp column as int64 nanoseconds since the epoch, naive UTC; NaT stays `_NAT`."""
    values = col.values
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[ns]", copy=False).view("i8")
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        col = pd.to_datetime(col, utc=True).dt.tz_localize(None)
    return col.to_numpy(dtype="datetime64[ns]").view("i8")


class ArrayTable:
    """A table as plain numpy columns, for the few rows of an API request (pandas' fixed costs dwarf them).

    `build_features` reads it like a DataFrame, with two differences: in `customers` every row is one
    customer (in output order) and `created_at` is int64 nanoseconds (naive UTC); in an event table
    `customer_id` holds int64 row positions in `customers` and `timestamp` int64 nanoseconds. Text columns
    are object arrays of `str` or None, numeric ones float64 with NaN.
    """

    def __init__(self, columns: dict[str, np.ndarray]):
        self._columns = columns

    @property
    def columns(self):
        return self._columns.keys()

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()), ()))


def _encode(col: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 = missing) and the distinct values (object array) of a column.

    Arrow-backed columns (pandas' default `str`) are encoded by pyarrow directly, and an `ArrayTable`'s
    object arrays by a dict: the same result as `pd.factorize`, at a fraction of its fixed cost on the
    few rows of a scoring request.
    """
    if isinstance(col, np.ndarray) and col.dtype == object and len(col) <= 10_000:
        seen: dict = {}
        codes = [-1 if v is None or v != v else seen.setdefault(v, len(seen)) for v in col]
        return np.array(codes, dtype=np.int64), _texts(list(seen))
    if _is_arrow(col.dtype):
        encoded = pc.dictionary_encode(col.array.__arrow_array__().combine_chunks())
        indices = encoded.indices
        codes = (indices if indices.null_count == 0 else indices.fill_null(-1)).to_numpy()
        uniques = np.array(encoded.dictionary.to_pylist(), dtype=object)
        is_text = pa.types.is_string(encoded.type.value_type) or pa.types.is_large_string(encoded.type.value_type)
        return codes.astype(np.int64), uniques if is_text else _strings(uniques)
    codes, uniques = pd.factorize(col)
    return codes.astype(np.int64, copy=False), _strings(uniques)


def _floats(col: pd.Series) -> np.ndarray:
    """A column as float64, NaN where missing or not a number."""
    if isinstance(col, np.ndarray) and col.dtype.kind == "f":
        return col.astype(np.float64, copy=False)
    if not pd.api.types.is_numeric_dtype(col.dtype):
        col = pd.to_numeric(col, errors="coerce")
    return col.to_numpy(dtype=float, na_value=np.nan)


@functools.lru_cache(maxsize=256)
def _positions(known: tuple[str, ...]) -> dict[str, int]:
    return {value: i for i, value in enumerate(known)}


def _lookup(uniques: np.ndarray, known: tuple[str, ...], missing: int) -> np.ndarray:
    """Map codes from `_encode` (-1 = missing, via the last slot) to positions in `known`, else `missing`."""
    pos = _positions(known)
    # A loop over the distinct values of a column (a handful), not over rows.
    return np.array([pos.get(str(v), missing) for v in uniques] + [missing], dtype=np.int64)


_EMPTY = np.empty(0, np.int64)


def _is_arrow(dtype: Any) -> bool:
    return getattr(dtype, "storage", None) == "pyarrow" or isinstance(dtype, pd.ArrowDtype)


def _arrow_strings(values: pd.Series | pd.Index) -> pa.ChunkedArray | None:
    """The pyarrow string data behind a column or index, None if it is not arrow strings."""
    if not _is_arrow(values.dtype):
        return None
    data = values.array.__arrow_array__()
    return data if pa.types.is_string(data.type) or pa.types.is_large_string(data.type) else None


def _customer_codes(ids: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each row's customer in `index` (-1 if unknown or missing)."""
    values, known = _arrow_strings(ids), _arrow_strings(index)
    if values is not None and known is not None:
        found = pc.index_in(values, value_set=known.combine_chunks().cast(values.type))
        return (found if found.null_count == 0 else found.fill_null(-1)).to_numpy().astype(np.int64)
    codes, uniques = _encode(ids)
    return np.append(index.get_indexer(uniques), -1)[codes]


class _Events:
    """The rows of one event table before `as_of` that belong to known customers, with customer codes."""

    def __init__(self, frame: pd.DataFrame | None, index: pd.Index, as_of: int):
        self.frame = frame
        if frame is None or len(frame) == 0 or not len(index):
            self.rows, self.cust, self.t = _EMPTY, _EMPTY, _EMPTY
        else:
            if isinstance(frame, ArrayTable):  # row positions in the customers table, which `index` keeps whole
                t, cust = frame["timestamp"], frame["customer_id"]
                cust = np.where(cust < len(index), cust, -1)
            else:
                t = _timestamps_ns(frame["timestamp"])
                cust = _customer_codes(frame["customer_id"], index)
            self.rows = np.flatnonzero((t < as_of) & (t != _NAT) & (cust >= 0))
            self.cust = cust[self.rows]
            self.t = t[self.rows]
        self.age = as_of - self.t  # int64 ns, always > 0

    def _has(self, name: str) -> bool:
        return self.frame is not None and len(self.rows) > 0 and name in self.frame.columns

    def codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Codes of column `name` on the kept rows (-1 = missing) and its distinct values."""
        if not self._has(name):
            return np.full(len(self.rows), -1, np.int64), np.empty(0, dtype=object)
        codes, uniques = _encode(self.frame[name])
        return codes[self.rows], uniques

    def floats(self, name: str) -> np.ndarray:
        """Column `name` on the kept rows as float64 (NaN where missing or absent)."""
        if not self._has(name):
            return np.full(len(self.rows), np.nan)
        return _floats(self.frame[name])[self.rows]


def _customers(customers: pd.DataFrame | None, as_of: int) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """Rows of the customers created before `as_of`, one per id (first wins), sorted by id; index; created."""
    if customers is None:
        raise ValueError("the customers table is required to build features")
    if isinstance(customers, ArrayTable):
        created = customers["created_at"]
        if not ((created < as_of) & (created != _NAT)).all():
            raise ValueError("every customer of an ArrayTable must be created before the cutoff")
        rows = np.arange(len(created))
        return rows, pd.RangeIndex(len(rows), name="customer_id"), created
    created = _timestamps_ns(customers["created_at"])
    ids = customers["customer_id"]
    data = _arrow_strings(ids)
    valid = True if data is not None and data.null_count == 0 else ids.notna().to_numpy()
    rows = np.flatnonzero((created < as_of) & (created != _NAT) & valid)
    index = pd.Index(ids if len(rows) == len(ids) else ids.take(rows), name="customer_id", copy=False)
    if len(index) > 1 and not (index.is_monotonic_increasing and index.is_unique):
        order = index.argsort(kind="stable")
        rows, index = rows[order], index.take(order)
        first = ~index.duplicated()
        rows, index = rows[first], index[first]
    return rows, index, created[rows]


def _column_strings(col: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Rows `rows` of a column as Python strings, None where missing (the categorical output format)."""
    if isinstance(col, np.ndarray):
        return _texts(col[rows])
    data = _arrow_strings(col)
    if data is not None:
        return np.array(data.take(rows).to_pylist(), dtype=object)
    return _strings(col.to_numpy(dtype=object)[rows])


def _strings(values: Any) -> np.ndarray:
    """Plain Python `str` objects, None where missing (the categorical output format)."""
    arr = np.asarray(values, dtype=object)
    missing = pd.isna(arr)
    out = arr.astype(str).astype(object)
    out[missing] = None
    return out


def _texts(values) -> np.ndarray:
    """Like `_strings`, but text stays the very `str` object (as arrow text columns give it back)."""
    return np.array(
        [None if v is None or v != v else v if isinstance(v, str) else str(v) for v in values], dtype=object
    )


def _pick(values: np.ndarray, codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The value (distinct values and codes from `_encode`) at each of `rows`; None where a row is -1."""
    return np.append(values, None)[np.append(codes, -1)[rows]]


# ---------------------------------------------------------------------------------------------------------
# Vectorised group helpers (groups are customer codes 0..n-1 or cells of a customer x category grid)
# ---------------------------------------------------------------------------------------------------------


def _count(group: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(group, weights, minlength=n).astype(float)


def _min_age(group: np.ndarray, age: np.ndarray, n: int) -> np.ndarray:
    """Smallest age (int64 ns) per group, `_NEVER` where none."""
    out = np.full(n, _NEVER, np.int64)
    np.minimum.at(out, group, age)
    return out


def _days(age: np.ndarray) -> np.ndarray:
    """Int64 ns ages as float days, NaN where `_NEVER`."""
    return np.where(age == _NEVER, np.nan, age / DAY_NS)


def _first_hit(group: np.ndarray, key: np.ndarray, best: np.ndarray, n: int) -> np.ndarray:
    """Per group, the first row (input order) whose key equals the group's best key; -1 if none."""
    rows = np.flatnonzero(key == best[group])
    groups, first = np.unique(group[rows], return_index=True)
    out = np.full(n, -1, np.int64)
    out[groups] = rows[first]
    return out


def _distinct(group: np.ndarray, codes: np.ndarray, n_codes: int, n: int) -> np.ndarray:
    """Number of distinct non-missing codes per group."""
    ok = codes >= 0
    if not n_codes or not ok.any():
        return np.zeros(n)
    pairs = group[ok] * n_codes + codes[ok]
    # Hashing wins on large inputs, sorting on small ones (less fixed cost).
    pairs = pd.unique(pairs) if len(pairs) > 50_000 else np.unique(pairs)
    return _count(pairs // n_codes, n)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den != 0)


def _buckets(age: np.ndarray, edges: tuple[int, ...]) -> np.ndarray:
    """Index of the smallest window (days) holding each age; len(edges) for older rows."""
    return np.searchsorted(np.asarray(edges, np.int64) * DAY_NS, age, side="left")


# ---------------------------------------------------------------------------------------------------------
# Feature families
# ---------------------------------------------------------------------------------------------------------


def _channel_features(ev: _Events, n: int, spec: FeatureSpec, lay: _Layout) -> dict[str, np.ndarray]:
    """Touches per channel, interaction and window, recency, first/last channel, cost, service and trend."""
    out: dict[str, np.ndarray] = {}
    cust, age = ev.cust, ev.age
    n_b = len(_TOUCH_EDGES) + 1
    bucket = _buckets(age, _TOUCH_EDGES)
    col_of = {w: _TOUCH_EDGES.index(w) for w in (*TOUCH_WINDOWS, 60)}

    ch_codes, ch_values = ev.codes("channel")
    k = len(spec.channels) + 1  # the last slot gathers unseen and missing channels
    ch = _lookup(ch_values, tuple(spec.channels), k - 1)[ch_codes]
    cell = cust * k + ch
    grid = np.bincount(cell * n_b + bucket, minlength=n * k * n_b).reshape(n, k, n_b).cumsum(axis=2).astype(float)
    totals = grid.sum(axis=1)
    for w in TOUCH_WINDOWS:
        for j, col in enumerate(lay.touch_channel[w]):
            out[col] = grid[:, j, col_of[w]]
        out[lay.touch_total[w]] = totals[:, col_of[w]]
    out["touches_total"] = totals[:, -1]
    recent = age <= 365 * DAY_NS
    out["distinct_channels_365d"] = _distinct(cust[recent], ch_codes[recent], len(ch_values), n)

    last_age = _min_age(cell, age, n * k).reshape(n, k)
    last_days = _days(last_age)
    for j, col in enumerate(lay.days_since_channel):
        out[col] = last_days[:, j]
    latest = last_age.min(axis=1)
    out["days_since_last_touch"] = _days(latest)
    earliest = np.full(n, _NEVER, np.int64)
    np.minimum.at(earliest, cust, -age)
    out["first_touch_channel"] = _pick(ch_values, ch_codes, _first_hit(cust, -age, earliest, n))
    out["last_touch_channel"] = _pick(ch_values, ch_codes, _first_hit(cust, age, latest, n))

    it_codes, it_values = ev.codes("interaction")
    k_i = len(spec.interactions) + 1
    it = _lookup(it_values, tuple(spec.interactions), k_i - 1)[it_codes]
    grid_i = np.bincount((cust * k_i + it) * n_b + bucket, minlength=n * k_i * n_b)
    grid_i = grid_i.reshape(n, k_i, n_b).cumsum(axis=2).astype(float)
    for w in INTERACTION_WINDOWS:
        for j, col in enumerate(lay.touch_interaction[w]):
            out[col] = grid_i[:, j, col_of[w]]

    camp_codes, camp_values = ev.codes("campaign_id")
    out["distinct_campaigns"] = _distinct(cust, camp_codes, len(camp_values), n)
    cost = np.nan_to_num(ev.floats("cost"))
    out["touch_cost_total"] = _count(cust, n, cost)
    in_90 = age <= 90 * DAY_NS
    out["touch_cost_90d"] = _count(cust[in_90], n, cost[in_90])

    ticket = _ticket_rows(it_codes, it_values)
    out["_ticket"] = ticket  # per touch row, for the customer-life features
    out["tickets_90d"] = _count(cust[ticket & in_90], n)
    out["tickets_365d"] = _count(cust[ticket & recent], n)
    sat = ev.floats("satisfaction")
    rated = ~np.isnan(sat)
    out["satisfaction_mean"] = _ratio(_count(cust[rated], n, sat[rated]), _count(cust[rated], n))
    sat_r, cust_r, age_r = sat[rated], cust[rated], age[rated]
    last_rated = _first_hit(cust_r, age_r, _min_age(cust_r, age_r, n), n)
    out["satisfaction_last"] = np.where(last_rated >= 0, np.append(sat_r, np.nan)[last_rated], np.nan)
    low = rated & (sat <= LOW_SATISFACTION) & recent
    out["low_satisfaction_tickets_365d"] = _count(cust[low], n)
    last_30 = totals[:, col_of[30]]
    before = totals[:, col_of[60]] - last_30
    out["engagement_trend_30d"] = (last_30 - before) / (last_30 + before + 1.0)
    return out


@dataclass
class _Funnel:
    """Known-stage funnel events sorted by customer then time (input order breaks ties)."""

    cust: np.ndarray
    stage: np.ndarray  # index in `stages`; -1 = lost
    t: np.ndarray
    first: np.ndarray  # the customer's first event
    run_start: np.ndarray  # the customer's first event, or a different stage than the event before


def _funnel(ev: _Events, funnel: Funnel) -> _Funnel:
    """Order the funnel events; events with a stage outside the funnel's stages and lost stage are ignored."""
    codes, values = ev.codes("stage")
    known = _lookup(values, funnel.allowed, -2)
    stage = np.where(known == len(funnel.stages), -1, known)[codes]
    keep = np.flatnonzero(stage >= -1)
    order = keep[np.lexsort((keep, ev.t[keep], ev.cust[keep]))]
    cust, stage, t = ev.cust[order], stage[order], ev.t[order]
    first = np.ones(len(cust), bool)
    first[1:] = cust[1:] != cust[:-1]
    run_start = first.copy()
    run_start[1:] |= stage[1:] != stage[:-1]
    return _Funnel(cust, stage, t, first, run_start)


def _typical_stage_days(fn: _Funnel, funnel: Funnel) -> dict[str, float]:
    """Median days of the completed stays (the next stage change came before `as_of`) in each stage."""
    starts = np.flatnonzero(fn.run_start)
    done = fn.cust[starts[1:]] == fn.cust[starts[:-1]]
    stage = fn.stage[starts[:-1]][done]
    days = (fn.t[starts[1:]] - fn.t[starts[:-1]])[done] / DAY_NS
    out = {}
    for j, name in enumerate(funnel.allowed):
        stays = days[stage == (j if j < len(funnel.stages) else -1)]
        if len(stays):
            out[name] = float(np.median(stays))
    return out


def _funnel_features(
    fn: _Funnel, n: int, as_of: int, created: np.ndarray, spec: FeatureSpec, lay: _Layout
) -> dict[str, np.ndarray]:
    """Current and furthest stage, days in stage and stall ratio, days to each stage, regressions, reopens."""
    stages = tuple(spec.stages)
    n_s, won = len(stages), len(stages) - 1
    cust, stage, t = fn.cust, fn.stage, fn.t
    out: dict[str, np.ndarray] = {}
    last = np.flatnonzero(np.append(cust[1:] != cust[:-1], True)) if len(cust) else np.empty(0, np.int64)
    who = cust[last]
    current = np.full(n, -3, np.int64)  # -3: no funnel events
    current[who] = stage[last]
    has = current != -3
    names = np.array([*map(str, stages), spec.funnel.lost, NO_STAGE], dtype=object)
    out["current_stage"] = names[np.where(current >= 0, current, np.where(current == -1, n_s, n_s + 1))]
    out["current_stage_index"] = np.where(has, current, np.nan).astype(float)
    furthest = np.full(n, -1, np.int64)
    np.maximum.at(furthest, cust, stage)
    out["furthest_stage_index"] = np.where(furthest >= 0, furthest, np.nan).astype(float)

    start_of = np.maximum.accumulate(np.where(fn.run_start, np.arange(len(cust)), 0))
    in_stage = np.full(n, np.nan)
    in_stage[who] = (as_of - t[start_of[last]]) / DAY_NS
    out["days_in_stage"] = in_stage
    out["_stage_start_age"] = np.zeros(n, np.int64)  # int64 ns; 0: no funnel events (nothing is newer)
    out["_stage_start_age"][who] = as_of - t[start_of[last]]
    typical = np.array([spec.typical_stage_days.get(s, np.nan) for s in stages] + [np.nan], dtype=float)
    typical = np.where(typical > 0, typical, np.nan)
    open_stage = has & (current >= 0) & (current != won)
    out["stall_ratio"] = np.where(open_stage, in_stage / typical[np.where(open_stage, current, n_s)], np.nan)

    reached = stage >= 0
    first_t = np.full(n * n_s, _NEVER, np.int64)
    np.minimum.at(first_t, cust[reached] * n_s + stage[reached], t[reached])
    first_t = first_t.reshape(n, n_s)
    to_stage = np.where(first_t == _NEVER, np.nan, (first_t - created[:, None]) / DAY_NS)
    for j, col in enumerate(lay.days_to_stage):
        out[col] = to_stage[:, j]

    change = fn.run_start & ~fn.first
    prev = np.append(-9, stage[:-1]) if len(stage) else stage
    out["stage_changes"] = _count(cust[change], n)
    out["stage_regressions"] = _count(cust[change & (prev >= 0) & (stage >= 0) & (stage < prev)], n)
    out["lost_reopened"] = _count(cust[change & (prev == -1) & (stage >= 0)], n)
    since = np.full(n, np.nan)
    since[who] = (as_of - t[last]) / DAY_NS
    out["days_since_last_stage_change"] = since
    out["_open_stage"] = open_stage
    return out


def _first_order_age(cust: np.ndarray, age: np.ndarray, n: int) -> np.ndarray:
    """Age (int64 ns before the cutoff) of each customer's first order; 0 without one (nothing is newer)."""
    oldest = np.full(n, _NEVER, np.int64)
    np.minimum.at(oldest, cust, -age)
    return np.where(oldest == _NEVER, 0, -oldest)


def _orders_first_age(orders: _Events, n: int) -> np.ndarray:
    """`_first_order_age` of the order rows (refunds aside), as the purchase features count them."""
    order = ~(orders.floats("amount") < 0)
    return _first_order_age(orders.cust[order], orders.age[order], n)


def _purchase_features(ev: _Events, n: int, spec: FeatureSpec, lay: _Layout) -> dict[str, np.ndarray]:
    """Recency, frequency, spend (sum/mean/max, trend, shares), order gaps and refunds."""
    out: dict[str, np.ndarray] = {}
    amount = ev.floats("amount")
    refund = amount < 0  # NaN amounts count as orders of unknown value
    order = ~refund
    cust, age, t, amt = ev.cust[order], ev.age[order], ev.t[order], amount[order]
    positive = np.where(amt > 0, amt, 0.0)
    n_b = len(_ORDER_EDGES) + 1
    cell = cust * n_b + _buckets(age, _ORDER_EDGES)
    counts = np.bincount(cell, minlength=n * n_b).reshape(n, n_b).cumsum(axis=1).astype(float)
    spend = np.bincount(cell, positive, minlength=n * n_b).reshape(n, n_b).cumsum(axis=1)
    paid = np.bincount(cell, (amt > 0).astype(float), minlength=n * n_b).reshape(n, n_b).cumsum(axis=1)
    i90, i180, i360, i365 = range(4)
    out["days_since_last_order"] = _days(_min_age(cust, age, n))
    first_age = _first_order_age(cust, age, n)
    out["days_since_first_order"] = np.where(first_age == 0, np.nan, first_age / DAY_NS)
    out["_first_order_age"] = first_age
    out["orders_total"] = counts[:, -1]
    out["orders_90d"] = counts[:, i90]
    out["orders_365d"] = counts[:, i365]
    out["spend_sum_total"] = spend[:, -1]
    out["spend_sum_365d"] = spend[:, i365]
    out["spend_mean_total"] = _ratio(spend[:, -1], paid[:, -1])
    out["spend_mean_365d"] = _ratio(spend[:, i365], paid[:, i365])
    for suffix, rows in (("total", amt > 0), ("365d", (amt > 0) & (age <= 365 * DAY_NS))):
        top = np.full(n, -np.inf)
        np.maximum.at(top, cust[rows], amt[rows])
        out[f"spend_max_{suffix}"] = np.where(np.isfinite(top), top, np.nan)
    recent, before = spend[:, i180], spend[:, i360] - spend[:, i180]
    out["spend_trend_180d"] = _ratio(recent - before, recent + before)
    refunded = _count(ev.cust[refund], n, -amount[refund])
    out["net_spend_total"] = _count(cust, n, np.nan_to_num(amt)) - refunded

    by_time = np.lexsort((t, cust))
    c_sorted, t_sorted = cust[by_time], t[by_time]
    same = c_sorted[1:] == c_sorted[:-1]
    gap_cust = c_sorted[1:][same]
    gaps = np.diff(t_sorted)[same] / DAY_NS
    n_gaps = _count(gap_cust, n)
    mean_gap = _ratio(_count(gap_cust, n, gaps), n_gaps)
    out["order_gap_mean_days"] = mean_gap
    spread = _count(gap_cust, n, (gaps - mean_gap[gap_cust]) ** 2)
    out["order_gap_std_days"] = np.sqrt(_ratio(spread, np.where(n_gaps >= 2, n_gaps - 1, 0)))

    out["refunds_total"] = _count(ev.cust[refund], n)
    out["refund_amount_total"] = refunded

    for name, known, cols in (
        ("product_category", spec.categories, lay.category_share),
        ("channel", spec.order_channels, lay.order_channel_share),
    ):
        codes, values = ev.codes(name)
        codes = codes[order]
        k = len(known) + 1
        slot = _lookup(values, tuple(known), k - 1)[codes]
        share = np.bincount(cust * k + slot, positive, minlength=n * k).reshape(n, k)
        share = _ratio(share, spend[:, -1:])
        for j, col in enumerate(cols):
            out[col] = share[:, j]
        if name == "product_category":
            out["distinct_categories"] = _distinct(cust, codes, len(values), n)
    return out


def _customer_life_features(
    touches: _Events, ticket: np.ndarray, first_order_age: np.ndarray, cols: dict
) -> dict[str, np.ndarray]:
    """Touches and tickets at or after each customer's first order, as rates over the customer's tenure."""
    n = len(first_order_age)
    since = touches.age <= first_order_age[touches.cust]
    engaged = _count(touches.cust[since & ~ticket], n)
    tickets = _count(touches.cust[since & ticket], n)
    tenure = cols["days_since_first_order"]  # NaN without orders
    days = np.maximum(tenure, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = engaged / days
        out = {
            "customer_touches": np.where(np.isnan(tenure), np.nan, engaged),
            "customer_touch_rate": rate,
            "customer_tickets_per_year": tickets / np.maximum(tenure, 30.0) * 365.0,
            "customer_silence_expected_touches": rate * cols["days_since_last_touch"],
            # Orders after the first one (which only marks the win) per year of tenure.
            "repeat_order_rate": (cols["orders_total"] - 1.0) / np.maximum(tenure, 30.0) * 365.0,
        }
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}


def _lead_life_features(touches: _Events, stage_start_age: np.ndarray, first_order_age: np.ndarray, cols: dict):
    """Touches a day since entering the current funnel stage, and before the first order (or the cutoff)."""
    n = len(stage_start_age)
    in_stage = _count(touches.cust[touches.age <= stage_start_age[touches.cust]], n)
    before_order = _count(touches.cust[touches.age > first_order_age[touches.cust]], n)
    as_lead = cols["account_age_days"] - np.nan_to_num(cols["days_since_first_order"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "stage_touch_rate": in_stage / np.maximum(cols["days_in_stage"], 1.0),
            "lead_touch_rate": before_order / np.maximum(as_lead, 1.0),
        }
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}


@dataclass(frozen=True)
class _Runs:
    """Stays in one funnel stage (runs of equal stages), in customer then time order."""

    cust: np.ndarray
    stage: np.ndarray  # index in the spec's stages; -1 = lost
    start: np.ndarray  # int64 ns
    end: np.ndarray  # the next run's start, or the cutoff

    @property
    def days(self) -> np.ndarray:
        return (self.end - self.start) / DAY_NS


def _runs(fn: _Funnel, as_of: int) -> _Runs:
    starts = np.flatnonzero(fn.run_start)
    cust, start = fn.cust[starts], fn.t[starts]
    end = np.append(start[1:], as_of).astype(np.int64)
    end[np.append(cust[1:] != cust[:-1], True)] = as_of
    return _Runs(cust, fn.stage[starts], start, end)


def _touches_per_run(touches: _Events, ticket: np.ndarray, first_order_age: np.ndarray, runs: _Runs) -> np.ndarray:
    """A lead's touches (tickets and touches from the first order on aside) in each run: each touch belongs to
    the customer's last run begun before it."""
    if not len(runs.cust) or not len(touches.cust):
        return np.zeros(len(runs.cust))
    # One sortable key per (customer, second): runs are already in that order.
    base = min(int(touches.t.min()), int(runs.start.min())) // 10**9
    run_keys = (runs.cust.astype(np.int64) << 34) | (runs.start // 10**9 - base)
    keep = ~ticket & (touches.age > first_order_age[touches.cust])
    cust, t = touches.cust[keep], touches.t[keep]
    idx = np.searchsorted(run_keys, (cust.astype(np.int64) << 34) | (t // 10**9 - base), side="right") - 1
    mine = (idx >= 0) & (runs.cust[np.maximum(idx, 0)] == cust)
    return np.bincount(idx[mine], minlength=len(runs.cust)).astype(float)


def _stage_touch_rates(runs: _Runs, counts: np.ndarray, stages: tuple[str, ...]) -> dict[str, float]:
    """Touches a day of all leads in each open stage (the won stage and lost aside)."""
    out = {}
    days = runs.days
    for j, name in enumerate(stages[:-1]):
        mine = runs.stage == j
        if days[mine].sum() > 0:
            out[name] = float(counts[mine].sum() / days[mine].sum())
    return out


def _stage_touch_features(
    touches: _Events, ticket: np.ndarray, first_order_age: np.ndarray, fn: _Funnel, as_of: int, spec: FeatureSpec
) -> dict[str, np.ndarray]:
    """A lead's touches against those usual for the time it spent in each open stage (its engagement with the
    stage mix taken out), before the current stage and in it, and what it would show in the current stage at
    its earlier engagement: a lead gone quiet in its stage (stalled) shows far fewer."""
    n = len(first_order_age)
    runs = _runs(fn, as_of)
    counts = _touches_per_run(touches, ticket, first_order_age, runs)
    days = runs.days
    names = ("previous_stage_touch_rate", "lead_touch_index", "stage_touch_index", "stage_expected_touches")
    out = {name: np.full(n, np.nan) for name in names}
    if not len(runs.cust):
        return out
    last = np.append(runs.cust[1:] != runs.cust[:-1], True)
    previous = np.flatnonzero(np.append(last[1:], False) & ~last)  # the run before each customer's last
    out["previous_stage_touch_rate"][runs.cust[previous]] = counts[previous] / np.maximum(days[previous], 1.0)
    usual_rates = getattr(spec, "typical_stage_touch_rate", {})  # specs pickled before it have none
    typical = np.array([usual_rates.get(s, np.nan) for s in spec.stages[:-1]] + [np.nan])
    rate = typical[np.where((runs.stage >= 0) & (runs.stage < len(typical) - 1), runs.stage, len(typical) - 1)]
    usual = days * rate  # NaN outside the open stages
    earlier = np.isfinite(usual) & ~last
    expected = _count(runs.cust[earlier], n, usual[earlier])
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.where(expected > 0, _count(runs.cust[earlier], n, counts[earlier]) / expected, np.nan)
        current = last & np.isfinite(usual)
        who = runs.cust[current]
        out["lead_touch_index"] = index
        out["stage_touch_index"][who] = np.where(usual[current] > 0, counts[current] / usual[current], np.nan)
        out["stage_expected_touches"][who] = usual[current] * index[who]
    return out


def _attribute_features(customers: pd.DataFrame, rows: np.ndarray, as_of: int, created: np.ndarray):
    """Source channel, industry, region, company size (employees, annual revenue) and account age."""
    out: dict[str, np.ndarray] = {}
    for col in ATTRIBUTE_CATEGORICAL:
        if col in customers.columns:
            out[col] = _column_strings(customers[col], rows)
        else:
            out[col] = np.full(len(rows), None, dtype=object)
    for col in ATTRIBUTE_NUMERIC:
        out[col] = _floats(customers[col])[rows] if col in customers.columns else np.full(len(rows), np.nan)
    out["account_age_days"] = (as_of - created) / DAY_NS
    return out


# ---------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------


def _derived_features(cols: dict[str, np.ndarray], as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """Per-day rates over each customer's observed span, overdue ratios, and the cutoff's season."""
    with np.errstate(divide="ignore", invalid="ignore"):
        age = np.maximum(cols["account_age_days"], 1.0)
        tenure = cols["days_since_first_order"]  # NaN without orders
        span = np.maximum(tenure, 30.0)
        out = {
            "touch_rate_90d": cols["touches_90d"] / np.minimum(age, 90.0),
            "customer_touch_rate_90d": (cols["touches_90d"] - cols["tickets_90d"])
            / np.minimum(np.maximum(tenure, 1.0), 90.0),
            "customer_touch_rate_365d": (cols["touches_365d"] - cols["tickets_365d"])
            / np.minimum(np.maximum(tenure, 1.0), 365.0),
            "stage_touch_rate_30d": cols["touches_30d"] / np.clip(cols["days_in_stage"], 1.0, 30.0),
            "orders_per_year": cols["orders_total"] / span * 365.0,
            "spend_per_year": cols["spend_sum_total"] / span * 365.0,
            "tickets_per_year": cols["tickets_365d"] / np.minimum(span, 365.0) * 365.0,
            "overdue_ratio": cols["days_since_last_order"] / np.maximum(cols["order_gap_mean_days"], 1.0),
        }
        out["touch_silence_ratio"] = cols["days_since_last_touch"] * out["touch_rate_90d"]
    day = 2 * np.pi * (as_of.dayofyear - 1) / 365.25
    n = len(age)
    out["cutoff_season_sin"] = np.full(n, np.sin(day))
    out["cutoff_season_cos"] = np.full(n, np.cos(day))
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}


def _season_features(cols: dict[str, np.ndarray], as_of: pd.Timestamp, profile: tuple[float, ...]):
    """The purchase season of the coming and the last 90 days, and each customer's repeat orders of the last
    year (and of the last 90 days) over the season they fell in, per average 90 days."""
    back = 365
    running = season_cumulative(profile, as_of.dayofyear - 1, back, SEASON_DAYS)
    n = len(cols["orders_total"])
    out = {
        "season_next_90d": np.full(n, season_sum(running, back, 0.0, float(SEASON_DAYS)) / SEASON_DAYS),
        "season_last_90d": np.full(n, season_sum(running, back, -float(SEASON_DAYS), 0.0) / SEASON_DAYS),
    }
    tenure = cols["days_since_first_order"]  # NaN without orders
    for name, window, orders in (
        ("paced_orders_90d", 365.0, cols["orders_365d"]),
        ("paced_orders_90d_recent", 90.0, cols["orders_90d"]),
    ):
        span = np.clip(tenure, 30.0, window)  # as the yearly rates: a month at least
        repeats = orders - (tenure <= window)  # the first order marks the win, not the pace
        with np.errstate(divide="ignore", invalid="ignore"):
            pace = repeats / season_sum(running, back, -span, 0.0) * SEASON_DAYS
        out[name] = np.where(np.isnan(tenure), np.nan, pace)
    return out


def _ticket_rows(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which touch rows are service tickets, from the interaction column's codes and values."""
    values = list(values)
    return codes == (values.index(TICKET) if TICKET in values else -2)


def _top_values(frame: pd.DataFrame | None, name: str, as_of: int, limit: int) -> tuple[str, ...]:
    """The most frequent values of `frame[name]` before `as_of` (ties by name), at most one per slug."""
    if frame is None or name not in frame.columns or not len(frame):
        return ()
    t = _timestamps_ns(frame["timestamp"])
    counts = frame[name][(t < as_of) & (t != _NAT)].dropna().astype(str).value_counts()
    out: list[str] = []
    slugs: set[str] = set()
    for value, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        slug = _slug(value)
        if slug and slug not in slugs:
            slugs.add(slug)
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
    cutoff = _as_of_ns(as_of)
    touches, orders = tables.get("touchpoints"), tables.get("orders")
    _, index, _ = _customers(tables.get("customers"), cutoff)
    fn = _funnel(_Events(tables.get("funnel_events"), index, cutoff), funnel)
    events = _Events(touches, index, cutoff)
    runs = _runs(fn, cutoff)
    tickets = _ticket_rows(*events.codes("interaction"))
    first_orders = _orders_first_age(_Events(orders, index, cutoff), len(index))
    lead_touches = _touches_per_run(events, tickets, first_orders, runs)
    spec = FeatureSpec(
        funnel=funnel,
        channels=_top_values(touches, "channel", cutoff, MAX_CHANNELS),
        interactions=_top_values(touches, "interaction", cutoff, MAX_INTERACTIONS),
        order_channels=_top_values(orders, "channel", cutoff, MAX_ORDER_CHANNELS),
        categories=_top_values(orders, "product_category", cutoff, MAX_CATEGORIES),
        typical_stage_days=_typical_stage_days(fn, funnel),
        purchase_season=fit_purchase_season(orders, pd.Timestamp(cutoff)),
        typical_stage_touch_rate=_stage_touch_rates(runs, lead_touches, stages),
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
    cutoff = _as_of_ns(as_of)
    lay = _spec_layout(spec)
    customers = tables.get("customers")
    rows, index, created = _customers(customers, cutoff)
    n = len(index)
    touches = _Events(tables.get("touchpoints"), index, cutoff)
    cols = _channel_features(touches, n, spec, lay)
    fn = _funnel(_Events(tables.get("funnel_events"), index, cutoff), spec.funnel)
    cols.update(_funnel_features(fn, n, cutoff, created, spec, lay))
    cols.update(_purchase_features(_Events(tables.get("orders"), index, cutoff), n, spec, lay))
    cols.update(_attribute_features(customers, rows, cutoff, created))
    first_order_age = cols.pop("_first_order_age")
    cols.update(_stage_touch_features(touches, cols["_ticket"], first_order_age, fn, cutoff, spec))
    cols.update(_customer_life_features(touches, cols.pop("_ticket"), first_order_age, cols))
    cols.update(_lead_life_features(touches, cols.pop("_stage_start_age"), first_order_age, cols))
    no_orders = (cols["orders_total"] + cols["refunds_total"]) == 0  # any order row, as labels.buyers reads it
    cols["is_open_lead"] = (cols.pop("_open_stage") & no_orders).astype(float)
    cols.update(_derived_features(cols, pd.Timestamp(cutoff)))
    cols.update(_season_features(cols, pd.Timestamp(cutoff), tuple(spec.purchase_season)))

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
