"""The FastAPI app: real-time lead and customer scores, the ranked prospect list, model management.

Start it with `crm-score serve` (which calls `serve`) or `uvicorn serving.api:create_app --factory`.
The @champion models load once at start-up; a model that cannot be loaded leaves the app up with
`/ready` answering 503 and the reason. Single-lead scoring (a few milliseconds of work) runs inline on the
event loop (`CRM_SCORING_INLINE_MAX`); batches and blocking work (SQLite, the registry) go to the threadpool.
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from crmdata.timeutil import naive_utc
from serving import scorer, store
from serving.auth import AdminScope, KeyRing, ReadScope
from serving.channels import ChannelAdvisor, ChannelDataMissing
from serving.metrics import Metrics
from serving.schemas import (
    ChannelBudgetRequest,
    CustomerRequest,
    CustomerScore,
    CustomerScores,
    LeadBatch,
    LeadRequest,
    LeadScore,
    LeadScores,
    ModelsStatus,
    ProspectPage,
    Record,
)
from serving.settings import Settings, get_settings
from training.config import REGISTERED_NAMES

log = logging.getLogger(__name__)
CSV_MAX = 100_000
TopReasons = Annotated[
    int | None,
    Query(
        ge=0,
        le=10,
        description="Reasons per side (positive, negative) and model; default the server's setting (3). "
        "0 answers without reasons, which saves most of the time of a large batch.",
    ),
]


def _default(obj: Any) -> Any:
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


class FastJSONResponse(JSONResponse):
    """JSON through orjson (numpy values, NaN as null, datetimes as ISO 8601)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class _OrjsonRequest(Request):
    """A request whose JSON body orjson parses (several times faster than `json` on a batch of leads).

    orjson's JSONDecodeError is a `json.JSONDecodeError`, so a malformed body still answers 422.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class _OrjsonRoute(APIRoute):
    def get_route_handler(self):
        handler = super().get_route_handler()

        async def parse_with_orjson(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return parse_with_orjson


def _error(status: int, detail: Any, **extra) -> FastJSONResponse:
    return FastJSONResponse({"detail": detail, **extra}, status_code=status)


def _invalid(errors: list[dict]) -> RequestValidationError:
    return RequestValidationError(errors)


# ------------------------------------------------------------------------------------------------ middleware


class _TooLarge(Exception):
    pass


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
                            raise _TooLarge
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


def create_app(settings: Settings | None = None, loader=scorer.load_model_set) -> FastAPI:
    """The API; settings default to the environment (`CRM_SCORING_*`), models to the registry's champions."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        holder = scorer.ModelHolder(loader=loader)
        app.state.models = holder
        await run_in_threadpool(holder.reload)
        _settle_heap()
        _publish_versions(metrics, holder.current)
        if not holder.current.ready:
            log.warning("serving without all models: %s", holder.current.missing)
        try:
            yield
        finally:
            gc.unfreeze()  # an app in a longer-lived process (tests) leaves the collector as it found it

    app = FastAPI(
        title="crm-scoring API",
        version="1",
        summary="Lead and customer scores, ranked prospects and model management for a CRM.",
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
    )
    app.router.route_class = _OrjsonRoute
    app.state.settings = settings
    app.state.keys = KeyRing(settings.keys(), disabled=settings.auth_disabled)
    app.state.metrics = metrics
    app.add_middleware(GuardAndMeasure, max_body=settings.max_body_bytes, metrics=metrics)

    @app.exception_handler(scorer.ModelsUnavailable)
    async def _unavailable(request: Request, exc: scorer.ModelsUnavailable):
        return _error(503, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        return _error(422, errors, message=f"invalid request: {fields}")

    _routes(app, settings, metrics)
    return app


def _settle_heap() -> None:
    """Take what is loaded now (libraries, models), which lives as long as the process or the model set, out of
    the cyclic collector's full passes: they otherwise pause a request for 100+ ms now and then (the p99).
    After a model reload, the previous set's frozen objects are released and collected first."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _publish_versions(metrics: Metrics, models: scorer.ModelSet) -> None:
    versions = models.versions()
    metrics.set_versions({name: versions.get(kind) for kind, name in REGISTERED_NAMES.items()})


def _check(records: list[Record], settings: Settings, batch: str | None) -> None:
    """422 for limits the settings tighten beyond the schema's, and for leads created after their cutoff.

    `batch` names the body's list field (`leads`, `customers`), or is None for a single record.
    """
    errors = []
    if batch and len(records) > settings.max_batch:
        errors.append({"type": "too_long", "loc": ("body", batch), "msg": f"at most {settings.max_batch} per request"})
    now = datetime.now(UTC).replace(tzinfo=None)
    for i, rec in enumerate(records):
        loc = ("body", batch, i) if batch else ("body",)
        for name in ("touchpoints", "funnel_events", "orders"):
            if len(getattr(rec, name)) > settings.max_history_events:
                msg = f"at most {settings.max_history_events} events per lead"
                errors.append({"type": "too_long", "loc": (*loc, name), "msg": msg})
        if rec.created_at is not None and rec.as_of is None and naive_utc(rec.created_at) >= now:
            errors.append({"type": "value_error", "loc": (*loc, "created_at"), "msg": "created_at is in the future"})
    if errors:
        raise _invalid(errors)


def _routes(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    def models(request: Request) -> scorer.ModelSet:
        return request.app.state.models.current

    @app.get("/health", tags=["ops"], summary="Liveness")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["ops"],
        summary="Readiness: every champion model loaded",
        responses={503: {"description": "A model is not loaded; the body says which and why."}},
    )
    async def ready(request: Request):
        current = models(request)
        body = {"ready": current.ready, "versions": current.versions(), "missing": current.missing}
        return FastJSONResponse(body, status_code=200 if current.ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def run_scoring(score, request: Request, records, top_reasons: int | None):
        """Score `records` with the loaded models: small requests inline on the event loop, larger ones in
        the threadpool (`inline_max`), so one big batch does not hold up the single-lead requests."""
        current, top = models(request), settings.top_reasons if top_reasons is None else top_reasons
        if len(records) <= settings.inline_max:
            return score(current, records, top)
        return await run_in_threadpool(score, current, records, top)

    @app.post(
        "/v1/leads/score",
        tags=["scores"],
        summary="Score one lead or a batch of up to 1,000",
        response_model=LeadScore | LeadScores,
        responses={
            401: {"description": "No or wrong API key"},
            413: {"description": "Body too large"},
            503: {"description": "The conversion model is not loaded"},
        },
    )
    async def score_leads(
        request: Request, body: Annotated[LeadRequest, Body()], _: ReadScope, top_reasons: TopReasons = None
    ):
        """Conversion probability, 0-100 score, tier A-D, expected value and top reasons per lead.

        Send one lead as the body, or `{"leads": [...]}`. Unknown channels, stages and categories score as
        unseen. `as_of` (exclusive, default now) is the cutoff: history at or after it is ignored.
        """
        batch = isinstance(body, LeadBatch)
        leads = body.leads if batch else [body]
        _check(leads, settings, "leads" if batch else None)
        scores = await run_scoring(scorer.score_leads, request, leads, top_reasons)
        metrics.observe_scores("crm_conversion", [s["conversion_probability"] for s in scores])
        for s in scores:
            if s["expected_value"] is not None:
                metrics.values.observe(s["expected_value"])
        return FastJSONResponse({"scores": scores} if batch else scores[0])

    @app.post(
        "/v1/customers/score",
        tags=["scores"],
        summary="Churn risk and expected value of one customer or a batch of up to 1,000",
        response_model=CustomerScore | CustomerScores,
        responses={
            401: {"description": "No or wrong API key"},
            413: {"description": "Body too large"},
            503: {"description": "The churn or CLV model is not loaded"},
        },
    )
    async def score_customers(
        request: Request, body: Annotated[CustomerRequest, Body()], _: ReadScope, top_reasons: TopReasons = None
    ):
        """Churn probability and risk (customers with an order before `as_of`), expected CLV and value decile."""
        batch = hasattr(body, "customers")
        rows = body.customers if batch else [body]
        _check(rows, settings, "customers" if batch else None)
        scores = await run_scoring(scorer.score_existing_customers, request, rows, top_reasons)
        metrics.observe_scores("crm_churn", [s["churn_probability"] for s in scores])
        return FastJSONResponse({"scores": scores} if batch else scores[0])

    @app.get(
        "/v1/prospects",
        tags=["prospects"],
        summary="The ranked prospect list of the latest batch scoring run",
        response_model=ProspectPage,
        responses={
            404: {"description": "No prospect list written yet"},
            200: {"content": {"text/csv": {}}, "description": "A page of prospects (JSON or CSV)"},
        },
    )
    def prospects(
        _: ReadScope,
        order: Literal["expected_value", "probability"] = "expected_value",
        tier: Literal["A", "B", "C", "D"] | None = None,
        min_score: Annotated[int | None, Query(ge=0, le=100)] = None,
        source_channel: Annotated[str | None, Query(max_length=128)] = None,
        current_stage: Annotated[str | None, Query(max_length=128)] = None,
        industry: Annotated[str | None, Query(max_length=128)] = None,
        region: Annotated[str | None, Query(max_length=128)] = None,
        stalled: Annotated[bool | None, Query(description="stall_ratio >= 2: twice the typical stage time")] = None,
        limit: Annotated[int, Query(ge=1, le=CSV_MAX, description="JSON pages: at most 1,000")] = 50,
        cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
        format: Literal["json", "csv"] = "json",
    ):
        """Open leads ranked by expected value (default) or probability, ties by customer id; keyset pages.

        A lead is *stalled* when it has spent at least twice the typical time of its current stage there.
        With `format=csv` the page comes as a spreadsheet; the next page's cursor is in `X-Next-Cursor`.
        """
        if format == "json" and limit > settings.max_page_size:
            raise _invalid(
                [
                    {
                        "type": "less_than_equal",
                        "loc": ("query", "limit"),
                        "msg": f"JSON pages hold at most {settings.max_page_size}",
                    }
                ]
            )
        q = store.ProspectQuery(
            order, tier, min_score, source_channel, current_stage, industry, region, stalled, limit, cursor
        )
        try:
            page = store.query_prospects(settings.prospects_path(), q)
        except store.BadCursor as exc:
            raise _invalid([{"type": "value_error", "loc": ("query", "cursor"), "msg": str(exc)}]) from None
        except store.StoreMissing as exc:
            return _error(404, str(exc))
        if format == "csv":
            headers = {"Content-Disposition": 'attachment; filename="prospects.csv"'}
            if page["next_cursor"]:
                headers["X-Next-Cursor"] = page["next_cursor"]
            return Response(store.to_csv(page["items"]), media_type="text/csv; charset=utf-8", headers=headers)
        return FastJSONResponse(page)

    advisor = ChannelAdvisor(settings.data_dir)

    @app.get(
        "/v1/channels/performance",
        tags=["channels"],
        summary="Spend, leads, conversions, CAC, value and ROI per channel",
        responses={404: {"description": "No CRM export configured (CRM_SCORING_DATA_DIR)"}},
    )
    async def channel_performance(
        request: Request,
        _: ReadScope,
        method: Literal["markov", "first_touch", "last_touch", "linear", "time_decay"] = "markov",
    ):
        """Channel figures with conversions and value credited by `method` (data-driven Markov by default)."""
        clv = request.app.state.models.current.bundles.get("clv")
        try:
            rows = await run_in_threadpool(advisor.performance, clv, method)
        except ChannelDataMissing as exc:
            return _error(404, str(exc))
        return FastJSONResponse({"as_of": str(advisor.as_of), "method": method, "channels": rows})

    @app.post(
        "/v1/channels/budget",
        tags=["channels"],
        summary="Recommended channel budget shifts under constraints",
        responses={404: {"description": "No CRM export configured (CRM_SCORING_DATA_DIR)"}},
    )
    async def channel_budget(request: Request, body: Annotated[ChannelBudgetRequest, Body()], _: ReadScope):
        """Per channel: current and recommended spend, change, marginal ROI, value change with an 80% interval."""
        clv = request.app.state.models.current.bundles.get("clv")
        options = body.model_dump()
        current = options.pop("current_spend")
        options["locked"] = tuple(options["locked"])
        try:
            advice = await run_in_threadpool(lambda: advisor.budget(clv, current, **options))
        except ChannelDataMissing as exc:
            return _error(404, str(exc))
        except ValueError as exc:
            raise _invalid([{"type": "value_error", "loc": ("body",), "msg": str(exc)}]) from None
        return FastJSONResponse(advice)

    @app.get("/v1/models", tags=["models"], summary="The loaded champion models", response_model=ModelsStatus)
    async def list_models(request: Request, _: ReadScope):
        return FastJSONResponse(_status(request.app.state.models.current))

    @app.post(
        "/v1/models/reload",
        tags=["models"],
        summary="Load the current champions and swap them in atomically (admin)",
        response_model=ModelsStatus,
        responses={
            409: {"description": "Reload failed; the loaded models stay and the body says why"},
            403: {"description": "The key lacks the admin scope"},
        },
    )
    async def reload_models(request: Request, _: AdminScope):
        swapped, now, errors = await run_in_threadpool(request.app.state.models.reload)
        if swapped:
            await run_in_threadpool(_settle_heap)
        metrics.reloads.labels("ok" if swapped else "failed").inc()
        _publish_versions(metrics, now)
        if not swapped:
            return _error(409, "reload failed; the loaded models are kept", errors=errors, **_status(now))
        return FastJSONResponse({"reloaded": True, **_status(now)})


def _status(models: scorer.ModelSet) -> dict:
    items = []
    for kind, bundle in models.bundles.items():
        meta = bundle.metadata
        items.append(
            {
                "kind": kind,
                "name": REGISTERED_NAMES[kind],
                "version": str(meta.version),
                "alias": "champion",
                "trained_at": meta.trained_at,
                "data_window": list(meta.data_window),
                "validation_cutoff": meta.validation_cutoff,
                "horizon_days": meta.horizon_days,
                "holdout_metrics": meta.holdout_metrics,
            }
        )
    return {
        "ready": models.ready,
        "models": items,
        "missing": models.missing,
        "loaded_at": models.loaded_at.isoformat(timespec="seconds"),
    }


def serve(host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the API with uvicorn (one process; uvloop and httptools when installed)."""
    import uvicorn

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
