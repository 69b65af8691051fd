"""Channel routes: performance per channel, budget advice and the what-if of a spend plan, from the CRM export.

They fit or aggregate over the whole export (seconds on the first call), so they run in the threadpool.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Body
from starlette.concurrency import run_in_threadpool

from serving.auth import ReadScope
from serving.channels import ChannelDataMissing
from serving.deps import AdvisorDep, ModelsDep
from serving.routes.responses import FastJSONResponse, invalid, new_router, problem
from serving.schemas import ChannelBudgetRequest, ChannelWhatIfRequest

router = new_router(tags=["channels"])
NO_EXPORT = {404: {"description": "No CRM export configured (CRM_SCORING_DATA_DIR)"}}


@router.get(
    "/v1/channels/performance",
    summary="Spend, leads, conversions, CAC, value and ROI per channel",
    responses=NO_EXPORT,
)
async def channel_performance(
    _: ReadScope,
    models: ModelsDep,
    advisor: AdvisorDep,
    method: Literal["markov", "first_touch", "last_touch", "linear", "time_decay"] = "markov",
):
    """Channel figures with conversions and value credited by `method` (data-driven Markov by default)."""
    try:
        rows = await run_in_threadpool(advisor.performance, models.bundles.get("clv"), method)
    except ChannelDataMissing as exc:
        return problem(404, str(exc))
    return FastJSONResponse({"as_of": advisor.as_of, "method": method, "channels": rows})


@router.post(
    "/v1/channels/budget",
    summary="Recommended channel budget shifts under constraints",
    responses=NO_EXPORT,
)
async def channel_budget(
    body: Annotated[ChannelBudgetRequest, Body()], _: ReadScope, models: ModelsDep, advisor: AdvisorDep
):
    """Per channel: current and recommended spend, change, average and marginal ROI, value change with an 80%
    interval; `objective` "profit" (with `margin`) sizes the total too, and `total` then holds the expected profit."""
    options = body.model_dump()
    current = options.pop("current_spend")
    options["locked"] = tuple(options["locked"])
    clv = models.bundles.get("clv")
    return await _answer(lambda: advisor.budget(clv, current, **options), advisor, ("body",))


@router.post(
    "/v1/channels/what-if",
    summary="Leads, value and profit of a spend plan per channel, with 80% intervals",
    responses=NO_EXPORT,
)
async def channel_what_if(
    body: Annotated[ChannelWhatIfRequest, Body()], _: ReadScope, models: ModelsDep, advisor: AdvisorDep
):
    """Per channel and in total: leads, value (and profit with a margin) at the plan and against current spend;
    channels the plan does not name stay at their current spend; a flag where the plan leaves the spend seen."""
    clv = models.bundles.get("clv")
    plan = dict(body.plan)
    return await _answer(lambda: advisor.what_if(clv, plan, body.margin, body.current_spend), advisor, ("body", "plan"))


async def _answer(compute, advisor, location: tuple[str, ...]):
    """Run `compute` off the event loop: its dict with the cutoff (a time with its zone), 404 without an export,
    422 at `location` for a question the curves cannot answer."""
    try:
        result = await run_in_threadpool(compute)
    except ChannelDataMissing as exc:
        return problem(404, str(exc))
    except ValueError as exc:
        raise invalid(location, str(exc)) from None
    return FastJSONResponse({**result, "as_of": advisor.as_of})
