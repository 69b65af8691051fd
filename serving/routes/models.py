"""Model routes: the loaded champions, and reloading them from the registry (admin)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from serving.auth import AdminScope, ReadScope
from serving.deps import ModelsDep, RuntimeDep
from serving.routes.responses import FastJSONResponse, new_router, problem
from serving.runtime import model_status
from serving.schemas import ModelsStatus

router = new_router(tags=["models"])


@router.get("/v1/models", summary="The loaded champion models", response_model=ModelsStatus)
async def list_models(_: ReadScope, models: ModelsDep):
    return FastJSONResponse(model_status(models))


@router.post(
    "/v1/models/reload",
    summary="Load the current champions and swap them in atomically (admin)",
    response_model=ModelsStatus,
    responses={
        409: {"description": "Reload failed; the loaded models stay and the body says why"},
        403: {"description": "The key lacks the admin scope"},
    },
)
async def reload_models(_: AdminScope, runtime: RuntimeDep):
    outcome = await run_in_threadpool(runtime.reload)
    if not outcome.swapped:
        body = model_status(outcome.models)
        return problem(409, "reload failed; the loaded models are kept", errors=outcome.errors, **body)
    return FastJSONResponse({"reloaded": True, **model_status(outcome.models)})
