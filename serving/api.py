"""The FastAPI app: real-time lead and customer scores, the ranked prospect list, model management.

Start it with `crm-score serve` (which calls `serve`) or `uvicorn serving.api:create_app --factory`.
`create_app` assembles the app: settings, the model runtime, metrics and the channel advisor on `app.state`
(read only by `serving.deps`), the middleware, the error handlers and one router per resource
(`serving.routes`). The @champion models load in the background at start-up, so the app answers at once
(`/health` 200, `/ready` 503 until one is loaded); a model that cannot be loaded leaves the app up, its routes
answering 503 with the reason, and `/ready` naming it (`/ready?require=all` 503 until every model is in).
Single-lead scoring (a few milliseconds of work) runs inline on the event loop (`CRM_SCORING_INLINE_MAX`);
batches and blocking work (SQLite, the registry) go to the threadpool.
"""

from __future__ import annotations

import gc
import os
import time
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from serving.auth import KeyRing
from serving.channels import ChannelAdvisor
from serving.metrics import Metrics
from serving.routes import channels, models, ops, prospects, scores
from serving.routes.checks import HISTORY_LISTS
from serving.routes.responses import FastJSONResponse, problem
from serving.runtime import ModelRuntime, ModelsUnavailable, load_model_set
from serving.settings import InvalidSettings, Settings, get_settings

ROUTERS = (ops.router, scores.router, prospects.router, channels.router, models.router)


# ------------------------------------------------------------------------------------------------ middleware


class _TooLarge(HTTPException):
    """A body over the limit, found while it is read: an HTTPException, as FastAPI's body parsing passes those
    through (any other error there, as with a chunked body that has no Content-Length, becomes a 400)."""


class GuardAndMeasure:
    """Pure ASGI middleware: 413 for bodies over the limit, and request counts and latency by route."""

    def __init__(self, app, max_body: int, metrics: Metrics):
        self.app, self.max_body, self.metrics = app, max_body, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await self._too_large(send_wrapper)
            else:
                seen = 0

                async def receive_wrapper():
                    nonlocal seen
                    message = await receive()
                    if message["type"] == "http.request":
                        seen += len(message.get("body", b""))
                        if seen > self.max_body:
                            raise _TooLarge(413, detail=f"request body larger than {self.max_body} bytes")
                    return message

                try:
                    await self.app(scope, receive_wrapper, send_wrapper)
                except _TooLarge:
                    if not status["started"]:
                        await self._too_large(send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            code = str(status["code"])
            method = scope.get("method", "")
            self.metrics.requests.labels(method, label, code).inc()
            self.metrics.latency.labels(method, label, code).observe(time.perf_counter() - start)

    async def _too_large(self, send):
        body = orjson.dumps({"detail": f"request body larger than {self.max_body} bytes"})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------------------------ the app


def create_app(settings: Settings | None = None, loader=load_model_set) -> FastAPI:
    """The API; settings default to the environment (`CRM_SCORING_*`), models to the registry's champions."""
    settings = settings or get_settings()
    metrics = Metrics()
    app = FastAPI(
        title="crm-scoring API",
        version="1",
        summary="Lead and customer scores, ranked prospects and model management for a CRM.",
        lifespan=_lifespan,
        default_response_class=FastJSONResponse,
    )
    app.state.settings = settings
    app.state.keys = KeyRing(
        settings.keys(),
        disabled=settings.auth_disabled,
        rate=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
    )
    app.state.metrics = metrics
    app.state.runtime = ModelRuntime(
        loader=loader,
        metrics=metrics,
        attempts=settings.model_load_attempts,
        backoff_s=settings.model_load_backoff_s,
        refuse_mixed=settings.refuse_mixed_champions,
    )
    app.state.advisor = ChannelAdvisor(settings.data_dir)
    app.add_middleware(GuardAndMeasure, max_body=settings.max_body_bytes, metrics=metrics)
    app.add_exception_handler(ModelsUnavailable, _unavailable)
    app.add_exception_handler(RequestValidationError, _validation)
    for router in ROUTERS:
        app.include_router(router)
    _publish_limits(app, settings)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Start loading the champions in the background: the server listens at once, whatever the registry does."""
    app.state.runtime.start()
    try:
        yield
    finally:
        app.state.runtime.stop()
        gc.unfreeze()  # an app in a longer-lived process (tests) leaves the collector as it found it


def _publish_limits(app: FastAPI, settings: Settings) -> None:
    """State the settings' batch and history limits in the OpenAPI schema (`maxItems`), as the routes check them."""
    limits = {"leads": settings.max_batch, "customers": settings.max_batch}
    limits.update(dict.fromkeys(HISTORY_LISTS, settings.max_history_events))

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)  # builds and caches app.openapi_schema, amended here in place
            for component in schema.get("components", {}).get("schemas", {}).values():
                for name, prop in component.get("properties", {}).items():
                    if name in limits and prop.get("type") == "array":
                        prop["maxItems"] = limits[name]
        return app.openapi_schema

    app.openapi = openapi


async def _unavailable(request: Request, exc: ModelsUnavailable) -> FastJSONResponse:
    return problem(503, str(exc))


async def _validation(request: Request, exc: RequestValidationError) -> FastJSONResponse:
    """422 with each error's location, message and type, and a one-line summary of the fields."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    return problem(422, errors, message=f"invalid request: {fields}")


def serve(host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the API with uvicorn (one process; uvloop and httptools when installed); exit 1 on a bad setting.

    MLflow's HTTP retries and timeout come from the settings unless the environment sets them (see `Settings`).
    """
    import uvicorn

    try:
        settings = get_settings()  # a bad setting ends here in one line, not in the app factory with a traceback
    except InvalidSettings as exc:
        raise SystemExit(f"error: {exc}") from None
    for name, value in settings.mlflow_http_env().items():
        os.environ.setdefault(name, value)

    uvicorn.run(
        "serving.api:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        loop="auto",
        http="auto",
        access_log=False,
    )
