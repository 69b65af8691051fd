"""The tables of a CRM export and their columns: which exist, which are required, and how each is parsed.

Ids and text are pandas `str`, timestamps naive UTC `datetime64[ns]`, numbers `float64`; each table has
one time column that `as_of` filters on.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract: its columns and how each is parsed."""

    name: str
    required_columns: tuple[str, ...]
    optional_columns: tuple[str, ...]
    timestamp_columns: tuple[str, ...]
    numeric_columns: tuple[str, ...]
    id_columns: tuple[str, ...]
    required: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """All contract columns, required first."""
        return self.required_columns + self.optional_columns

    @property
    def text_columns(self) -> tuple[str, ...]:
        """Contract columns parsed as strings (ids, channels, stages, categories)."""
        parsed = set(self.timestamp_columns) | set(self.numeric_columns)
        return tuple(c for c in self.columns if c not in parsed)

    @property
    def time_column(self) -> str:
        """The column `as_of` filters on."""
        return TIME_COLUMN[self.name]


TABLES: dict[str, TableSpec] = {
    "customers": TableSpec(
        "customers",
        required_columns=("customer_id", "created_at"),
        optional_columns=("source_channel", "industry", "region", "employees", "annual_revenue"),
        timestamp_columns=("created_at",),
        numeric_columns=("employees", "annual_revenue"),
        id_columns=("customer_id",),
        required=True,
    ),
    "touchpoints": TableSpec(
        "touchpoints",
        required_columns=("customer_id", "timestamp", "channel"),
        optional_columns=("interaction", "campaign_id", "cost", "satisfaction"),
        timestamp_columns=("timestamp",),
        numeric_columns=("cost", "satisfaction"),
        id_columns=("customer_id", "campaign_id"),
    ),
    "funnel_events": TableSpec(
        "funnel_events",
        required_columns=("customer_id", "timestamp", "stage"),
        optional_columns=(),
        timestamp_columns=("timestamp",),
        numeric_columns=(),
        id_columns=("customer_id",),
    ),
    "orders": TableSpec(
        "orders",
        required_columns=("customer_id", "order_id", "timestamp", "amount"),
        optional_columns=("channel", "product_category"),
        timestamp_columns=("timestamp",),
        numeric_columns=("amount",),
        id_columns=("customer_id", "order_id"),
    ),
    "channel_spend": TableSpec(
        "channel_spend",
        required_columns=("period_start", "channel", "spend"),
        optional_columns=(),
        timestamp_columns=("period_start",),
        numeric_columns=("spend",),
        id_columns=(),
    ),
}


TIME_COLUMN: dict[str, str] = {
    "customers": "created_at",
    "touchpoints": "timestamp",
    "funnel_events": "timestamp",
    "orders": "timestamp",
    "channel_spend": "period_start",
}


# Tables whose customer_id must name a row of customers.
REFERENCING_TABLES = ("touchpoints", "funnel_events", "orders")

# Where channel names appear (orders.channel is the transaction channel, a different vocabulary).
CHANNEL_COLUMNS = (("customers", "source_channel"), ("touchpoints", "channel"), ("channel_spend", "channel"))

UNIQUE_COLUMNS = (("customers", "customer_id"), ("orders", "order_id"))

# Counts and amounts that cannot be negative (orders.amount can: a negative amount is a refund).
NON_NEGATIVE_COLUMNS = (
    ("customers", "employees"),
    ("customers", "annual_revenue"),
    ("touchpoints", "cost"),
    ("channel_spend", "spend"),
)

# Ratings on a closed scale: (table, column, lowest, highest).
RANGED_COLUMNS = (("touchpoints", "satisfaction", 1, 5),)


def table_spec(name: str) -> TableSpec:
    """The spec of a contract table, or a ValueError naming the known tables."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; the contract has {', '.join(TABLES)}")
    return TABLES[name]
