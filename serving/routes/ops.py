"""Operations routes: liveness, readiness (every champion loaded, the prospect store readable) and Prometheus
metrics; no key needed, so no body carries a path or an internal URL."""

from __future__ import annotations

from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from serving import store
from serving.deps import MetricsDep, RuntimeDep, StoreDep
from serving.routes.responses import FastJSONResponse, new_router

router = new_router(keyed=False, tags=["ops"])


@router.get("/health", summary="Liveness")
async def health() -> dict:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: every champion model loaded, the prospect store readable (or not written yet)",
    responses={503: {"description": "A part is down: `parts` says which, `missing` which model and why."}},
)
async def ready(runtime: RuntimeDep, db_path: StoreDep):
    """`parts`: the models (ok, loading, retrying, unavailable) and the prospect store (ok, not written yet,
    unreadable: why)."""
    models = runtime.current
    prospects = await run_in_threadpool(store.store_state, db_path)
    ready = models.ready and not prospects.startswith(store.UNREADABLE)
    parts = {"models": runtime.state, "prospects": prospects}
    body = {"ready": ready, "versions": models.versions(), "missing": models.missing, "parts": parts}
    return FastJSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def prometheus(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
