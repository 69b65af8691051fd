"""Scoring routes: real-time lead scores (conversion, value) and customer scores (churn, CLV).

A few leads (`Settings.inline_max`, a few milliseconds each) are scored inline on the event loop, which
measured faster than a threadpool hand-off; larger batches go to the threadpool so that they do not hold up
the single-lead requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Body, Query
from starlette.concurrency import run_in_threadpool

from serving import scorer
from serving.auth import ReadScope
from serving.deps import MetricsDep, ModelsDep, SettingsDep
from serving.routes.checks import check_records
from serving.routes.responses import FastJSONResponse, new_router
from serving.runtime import ModelSet
from serving.schemas import (
    CustomerRequest,
    CustomerScore,
    CustomerScores,
    LeadBatch,
    LeadRequest,
    LeadScore,
    LeadScores,
    Record,
)
from serving.settings import Settings

router = new_router(tags=["scores"])
LEAD_KINDS, CUSTOMER_KINDS = ("conversion", "clv"), ("churn", "clv")  # the first one's funnel is checked
TopReasons = Annotated[
    int | None,
    Query(
        ge=0,
        le=10,
        description="Reasons per side (positive, negative) and model; default the server's setting (3). "
        "0 answers without reasons, which saves most of the time of a large batch.",
    ),
]


async def _score(score: Callable, models: ModelSet, records: Sequence[Record], settings: Settings, top: int | None):
    """`score(models, records, top)`: inline when at most `inline_max` records, else in the threadpool."""
    top = settings.top_reasons if top is None else top
    if len(records) <= settings.inline_max:
        return score(models, records, top)
    return await run_in_threadpool(score, models, records, top)


@router.post(
    "/v1/leads/score",
    summary="Score one lead or a batch of up to 1,000",
    response_model=LeadScore | LeadScores,
    responses={
        401: {"description": "No or wrong API key"},
        413: {"description": "Body too large"},
        503: {"description": "The conversion model is not loaded"},
    },
)
async def score_leads(
    body: Annotated[LeadRequest, Body()],
    _: ReadScope,
    models: ModelsDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    top_reasons: TopReasons = None,
):
    """Conversion probability, 0-100 score, tier A-D, expected value and top reasons per lead.

    Send one lead as the body, or `{"leads": [...]}`. Unknown channels and categories score as unseen; a
    stage outside the trained funnel is a 422. `as_of` (exclusive, default now) is the cutoff: history at or
    after it is ignored.
    """
    batch = isinstance(body, LeadBatch)
    leads = body.leads if batch else [body]
    check_records(leads, settings, models.funnel(LEAD_KINDS), "leads" if batch else None)
    scores = await _score(scorer.score_leads, models, leads, settings, top_reasons)
    metrics.observe_leads(scores)
    return FastJSONResponse({"scores": scores} if batch else scores[0])


@router.post(
    "/v1/customers/score",
    summary="Churn risk and expected value of one customer or a batch of up to 1,000",
    response_model=CustomerScore | CustomerScores,
    responses={
        401: {"description": "No or wrong API key"},
        413: {"description": "Body too large"},
        503: {"description": "The churn or CLV model is not loaded"},
    },
)
async def score_customers(
    body: Annotated[CustomerRequest, Body()],
    _: ReadScope,
    models: ModelsDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    top_reasons: TopReasons = None,
):
    """Churn probability and risk (customers with an order before `as_of`), expected CLV and value decile."""
    batch = hasattr(body, "customers")
    rows = body.customers if batch else [body]
    check_records(rows, settings, models.funnel(CUSTOMER_KINDS), "customers" if batch else None)
    scores = await _score(scorer.score_existing_customers, models, rows, settings, top_reasons)
    metrics.observe_scores("crm_churn", [s["churn_probability"] for s in scores])
    return FastJSONResponse({"scores": scores} if batch else scores[0])
