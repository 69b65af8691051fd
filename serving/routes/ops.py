"""Operations routes: liveness, readiness (every champion loaded) and Prometheus metrics; no key needed."""

from __future__ import annotations

from fastapi.responses import PlainTextResponse, Response

from serving.deps import MetricsDep, ModelsDep
from serving.routes.responses import FastJSONResponse, new_router

router = new_router(tags=["ops"])


@router.get("/health", summary="Liveness")
async def health() -> dict:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: every champion model loaded",
    responses={503: {"description": "A model is not loaded; the body says which and why."}},
)
async def ready(models: ModelsDep):
    body = {"ready": models.ready, "versions": models.versions(), "missing": models.missing}
    return FastJSONResponse(body, status_code=200 if models.ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def prometheus(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
