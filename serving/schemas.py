"""Request and response models of the API, with limits and OpenAPI examples.

Requests forbid unknown fields (a typo like `touchpionts` would otherwise silently score a lead without its
history). Channel and category values are free text: values the models never saw score as unseen. Stages
must be stages of the funnel the models were trained with, which the scoring routes check (it can change with
a reload). The batch and history limits are settings (`serving.settings`), checked by the routes too.
Timestamps are ISO 8601 text (`2024-12-31` or `2024-12-31T09:30:00Z`); naive ones are UTC, others are converted.
Anything else is a 422 naming the field and an accepted form: day- or month-first dates (`31/12/2024`), and
numbers, which pydantic would otherwise take as Unix times (`"20241231"` would become 1970-08-23).
`as_of` is exclusive: only history before it is read.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from crmdata.funnel import DEFAULT_FUNNEL
from crmdata.timeutil import ISO_EXAMPLE

EARLIEST, LATEST = datetime(1970, 1, 2), datetime(2200, 1, 1)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:$|[Tt ])")  # the extended form's date, as RFC 3339 writes it
_NOT_ISO = f"Input should be an ISO 8601 timestamp, e.g. {ISO_EXAMPLE}"
_UNIX_TIME = re.compile(r"[+-]?\d+(?:\.\d*)?")


def _iso_instant(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
    """Text in ISO 8601's extended form (or a datetime from Python callers), within range; else a 422 showing
    an accepted form. Pydantic alone would read numbers as Unix times and say nothing of the form it wants."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value) is not None):
        try:
            return _in_range(handler(value))
        except ValidationError:
            pass
    number = isinstance(value, int | float) or (isinstance(value, str) and _UNIX_TIME.fullmatch(value) is not None)
    raise PydanticCustomError("datetime_iso8601", _NOT_ISO + ("; numbers are not read as Unix times" if number else ""))


def _in_range(ts: datetime) -> datetime:
    if ts.tzinfo is None and EARLIEST <= ts < LATEST:  # the common case, without a call (thousands a batch)
        return ts
    try:
        naive = _naive(ts)
    except OverflowError:  # an offset that takes year 1 or 9999 out of range: a 422, not a 500
        naive = None
    if naive is None or not EARLIEST <= naive < LATEST:
        raise ValueError(f"timestamp must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return ts


def _naive(ts: datetime) -> datetime:
    from datetime import UTC

    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


Instant = Annotated[datetime, WrapValidator(_iso_instant)]
Text = Annotated[str, Field(min_length=1, max_length=128)]
Money = Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Touchpoint(_Strict):
    """One interaction on any channel before `as_of`."""

    timestamp: Instant
    channel: Text
    interaction: Text | None = None
    campaign_id: Text | None = None
    cost: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = None
    satisfaction: Annotated[float, Field(ge=1, le=5, allow_inf_nan=False)] | None = None


class FunnelEvent(_Strict):
    """A change of funnel stage: one of the trained funnel's stages or its lost stage (`/v1/models`)."""

    timestamp: Instant
    stage: Text


class Order(_Strict):
    """A purchase (a negative amount is a refund), in the currency of the training data."""

    timestamp: Instant
    amount: Money
    order_id: Text | None = None
    channel: Text | None = None
    product_category: Text | None = None


class Record(_Strict):
    """A lead or customer: attributes, optional recent history and an optional cutoff (default now, UTC)."""

    customer_id: Text | None = Field(default=None, description="Echoed back; generated when absent.")
    created_at: Instant | None = Field(
        default=None, description="Default: the earliest history event, else one second before as_of."
    )
    source_channel: Text | None = None
    industry: Text | None = None
    region: Text | None = None
    employees: Annotated[float, Field(ge=0, le=1e8, allow_inf_nan=False)] | None = None
    annual_revenue: Annotated[float, Field(ge=0, le=1e13, allow_inf_nan=False)] | None = None
    touchpoints: list[Touchpoint] = Field(default_factory=list)
    funnel_events: list[FunnelEvent] = Field(default_factory=list)
    orders: list[Order] = Field(default_factory=list)
    as_of: Instant | None = Field(default=None, description="Exclusive cutoff; default now (UTC).")

    @model_validator(mode="after")
    def _created_before_as_of(self) -> Record:
        if self.created_at is not None and self.as_of is not None and _naive(self.created_at) >= _naive(self.as_of):
            raise ValueError("created_at must be before as_of")
        return self


_LEAD_EXAMPLE: dict[str, Any] = {
    "customer_id": "L-1001",
    "created_at": "2024-11-02T09:15:00Z",
    "source_channel": "search",
    "industry": "software",
    "region": "west",
    "employees": 40,
    "touchpoints": [
        {"timestamp": "2024-11-02T09:15:00Z", "channel": "search", "interaction": "ad_click", "cost": 1.2},
        {"timestamp": "2024-11-20T14:00:00Z", "channel": "email", "interaction": "email_open"},
    ],
    "funnel_events": [
        {"timestamp": "2024-11-02T09:15:00Z", "stage": DEFAULT_FUNNEL.stages[0]},
        {"timestamp": "2024-11-25T10:00:00Z", "stage": DEFAULT_FUNNEL.stages[1]},
    ],
    "as_of": "2024-12-31T00:00:00Z",
}
_CUSTOMER_EXAMPLE: dict[str, Any] = {
    "customer_id": "C-2002",
    "created_at": "2023-03-01T00:00:00Z",
    "source_channel": "referral",
    "industry": "retail",
    "region": "north",
    "orders": [
        {"timestamp": "2024-02-10T12:00:00Z", "amount": 120.0, "channel": "online", "product_category": "software"},
        {"timestamp": "2024-09-18T12:00:00Z", "amount": 80.5, "channel": "phone", "product_category": "services"},
    ],
    "touchpoints": [
        {"timestamp": "2024-10-01T08:00:00Z", "channel": "service", "interaction": "ticket", "satisfaction": 2}
    ],
    "as_of": "2024-12-31T00:00:00Z",
}


class Lead(Record):
    model_config = ConfigDict(json_schema_extra={"examples": [_LEAD_EXAMPLE]})


class Customer(Record):
    model_config = ConfigDict(json_schema_extra={"examples": [_CUSTOMER_EXAMPLE]})


class LeadBatch(_Strict):
    """Leads in one request: at most the server's `max_batch` (default 1,000)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"leads": [_LEAD_EXAMPLE]}]})
    leads: list[Lead] = Field(min_length=1)


class CustomerBatch(_Strict):
    """Customers in one request: at most the server's `max_batch` (default 1,000)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"customers": [_CUSTOMER_EXAMPLE]}]})
    customers: list[Customer] = Field(min_length=1)


def _batch_or_one(key: str):
    def pick(value: Any) -> str:
        if isinstance(value, dict):
            return "batch" if key in value else "one"
        return "batch" if hasattr(value, key) else "one"

    return pick


LeadRequest = Annotated[
    Annotated[LeadBatch, Tag("batch")] | Annotated[Lead, Tag("one")], Discriminator(_batch_or_one("leads"))
]
CustomerRequest = Annotated[
    Annotated[CustomerBatch, Tag("batch")] | Annotated[Customer, Tag("one")],
    Discriminator(_batch_or_one("customers")),
]


# ------------------------------------------------------------------------------------------------ responses


class Reason(BaseModel):
    feature: str
    value: float | str | None
    contribution: float = Field(description="Signed, on the model's raw (log-odds or log) scale.")
    text: str


Evidence = Literal["none", "thin", "normal"]
EVIDENCE_DOC = (
    "How much the score rests on: none (no touchpoint, funnel event or order before as_of), thin (fewer than 3 "
    "of them, or created less than 14 days before as_of), normal otherwise."
)
ModelKind = Literal["lightgbm", "fallback"]
MODEL_KIND_DOC = "lightgbm (the full model) or fallback (the small model trained when the data was too thin)."


class LeadScore(BaseModel):
    customer_id: str | None
    as_of: datetime
    conversion_probability: float
    conversion_score: int = Field(ge=0, le=100)
    conversion_tier: Literal["A", "B", "C", "D"]
    expected_value: float | None = Field(description="Expected revenue over the CLV horizon (CLV model).")
    reasons: list[Reason]
    model_version: str
    clv_model_version: str | None
    evidence: Evidence = Field(description=EVIDENCE_DOC)
    model_kind: ModelKind = Field(description=f"The conversion model's kind: {MODEL_KIND_DOC}")
    clv_model_kind: ModelKind | None = Field(description="The CLV model's kind (None when it is not loaded).")


class LeadScores(BaseModel):
    scores: list[LeadScore]


class CustomerScore(BaseModel):
    customer_id: str | None
    as_of: datetime
    churn_probability: float | None = Field(description="None for a customer without an order before as_of.")
    churn_risk: Literal["low", "medium", "high"] | None
    expected_clv: float | None
    value_decile: int | None = Field(default=None, ge=1, le=10)
    reasons: dict[str, list[Reason]]
    model_versions: dict[str, str]
    evidence: Evidence = Field(description=EVIDENCE_DOC)
    model_kinds: dict[str, ModelKind] = Field(description=f"Each model's kind (churn, clv): {MODEL_KIND_DOC}")


class CustomerScores(BaseModel):
    scores: list[CustomerScore]


class Prospect(BaseModel):
    customer_id: str
    conversion_probability: float | None
    conversion_score: int | None
    conversion_tier: str | None
    churn_probability: float | None
    churn_risk: str | None
    expected_clv: float | None
    expected_value: float | None
    value_decile: int | None
    source_channel: str | None
    current_stage: str | None
    industry: str | None
    region: str | None
    stall_ratio: float | None
    stalled: bool
    top_reasons: Any
    evidence: Evidence | None = Field(description=f"{EVIDENCE_DOC} None in a list written before it was recorded.")
    model_kind: ModelKind | None = Field(description=f"The conversion model's kind: {MODEL_KIND_DOC}")


class ProspectPage(BaseModel):
    items: list[Prospect]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None on the last page.")
    scored_at: str | None
    note: str | None = Field(
        default=None,
        description="Why the page is empty: the list is (no conversion model, or no open lead at the cutoff, when "
        "it was written) or no prospect matches the filters. None on a page with items.",
    )


class ModelInfo(BaseModel):
    kind: str
    name: str
    version: str
    alias: str
    trained_at: str | None
    data_window: Any
    validation_cutoff: str | None
    horizon_days: int | None
    holdout_metrics: dict[str, Any]


class ChampionSet(BaseModel):
    """Whether the loaded champions were put in place by one training, and each one's training (run id)."""

    consistent: bool
    trainings: dict[str, str | None]


class ModelsStatus(BaseModel):
    ready: bool
    models: list[ModelInfo]
    missing: dict[str, str]
    champion_set: ChampionSet
    loaded_at: str | None


class Problem(BaseModel):
    detail: Any


ChannelName = Annotated[str, Field(min_length=1, max_length=128)]


class ChannelBudgetRequest(_Strict):
    """Constraints of a budget question; every field is optional (defaults: today's total, +-20% per channel)."""

    current_spend: dict[ChannelName, Annotated[float, Field(ge=0, le=1e12)]] | None = Field(
        default=None, max_length=100, description="Spend per period to start from, per channel (default: observed)"
    )
    total_budget: Annotated[float, Field(ge=0, le=1e12)] | None = Field(
        default=None, description="Spend per period to allocate (default: the current total)"
    )
    max_shift: Annotated[float, Field(ge=0, le=1)] = 0.2
    min_spend: dict[ChannelName, Annotated[float, Field(ge=0, le=1e12)]] | None = Field(default=None, max_length=100)
    max_spend: dict[ChannelName, Annotated[float, Field(ge=0, le=1e12)]] | None = Field(default=None, max_length=100)
    locked: list[ChannelName] = Field(default_factory=list, max_length=100)
    objective: Literal["value", "profit"] = Field(
        default="value",
        description="value: the most lead value for the same total; profit: the most margin x value - spend, "
        "the total free (total_budget is then refused)",
    )
    margin: Annotated[float, Field(gt=0, le=100)] = Field(
        default=1.0, description="Share of a lead's value that is profit (profit objective; 1: values are profits)"
    )
    min_move: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.03, description="A move smaller than this share of a channel's spend is not made (kept)"
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"max_shift": 0.2, "locked": ["email"]},
                {"total_budget": 12000},
                {"objective": "profit", "margin": 0.3, "max_spend": {"search": 5000}},
            ]
        }
    )


class ChannelWhatIfRequest(_Strict):
    """A spend plan per channel (the channels not named stay at their current spend), and optionally a margin."""

    plan: dict[ChannelName, Annotated[float, Field(ge=0, le=1e12)]] = Field(
        min_length=1, max_length=100, description="Spend per period per channel to evaluate"
    )
    margin: Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=None, description="Share of a lead's value that is profit: adds profit = margin x value - spend"
    )
    current_spend: dict[ChannelName, Annotated[float, Field(ge=0, le=1e12)]] | None = Field(
        default=None, max_length=100, description="Spend per period to compare against (default: observed)"
    )
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"plan": {"search": 4000, "event": 3000}, "margin": 0.3}]}
    )
