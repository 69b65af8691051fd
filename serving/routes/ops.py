"""Operations routes: liveness, readiness (at least one champion loaded, or those an operator requires; the
prospect store readable) and Prometheus metrics; no key needed, so no body carries a path or an internal URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from serving import store
from serving.deps import MetricsDep, RuntimeDep, StoreDep
from serving.routes.responses import FastJSONResponse, invalid, new_router
from training.config import REGISTERED_NAMES

router = new_router(keyed=False, tags=["ops"])
ANY, ALL = "any", "all"
Require = Annotated[
    str,
    Query(
        max_length=64,
        description="What must be loaded for a 200: `any` (default: at least one model), `all`, or one model "
        "(`crm_churn` or `churn`), for a probe in front of that model's routes only.",
    ),
]


@router.get("/health", summary="Liveness")
async def health() -> dict:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: at least one champion model loaded (or those `require` names), the prospect store "
    "readable (or not written yet)",
    responses={
        422: {"description": "`require` is not any, all or a model name"},
        503: {"description": "A part is down: `parts` says which, `models` each model's state, `missing` why."},
    },
)
async def ready(runtime: RuntimeDep, db_path: StoreDep, require: Require = ANY):
    """`models`: each champion's state (ok, loading, retrying, unavailable: why); `parts`: the models as a whole
    (ok, partial, loading, retrying, unavailable) and the prospect store (ok, not written yet, unreadable: why).
    200 when the models `require` asks for are loaded (default: any one, so the routes of the loaded models stay
    behind a load balancer while another is missing) and the store is not unreadable; 503 otherwise."""
    models = runtime.current
    kinds = _required(require)
    loaded = models.any_loaded if kinds is None else all(k in models.bundles for k in kinds)
    prospects = await run_in_threadpool(store.store_state, db_path)
    ok = loaded and not prospects.startswith(store.UNREADABLE)
    body = {
        "ready": ok,
        "require": require,
        "complete": models.ready,
        "models": runtime.model_states(),
        "versions": models.versions(),
        "missing": models.missing,
        "parts": {"models": runtime.state, "prospects": prospects},
    }
    return FastJSONResponse(body, status_code=200 if ok else 503)


def _required(require: str) -> tuple[str, ...] | None:
    """The model kinds `require` names (None: any one will do); a 422 for a name that is not a model's."""
    if require == ANY:
        return None
    if require == ALL:
        return tuple(REGISTERED_NAMES)
    for kind, name in REGISTERED_NAMES.items():
        if require in (kind, name):
            return (kind,)
    choices = ", ".join([ANY, ALL, *REGISTERED_NAMES.values()])
    raise invalid(("query", "require"), f"require must be one of {choices} (or a model kind)")


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def prometheus(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
