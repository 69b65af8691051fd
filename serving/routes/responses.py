"""How the routes read and write JSON (orjson both ways) and say what is wrong with a request.

Every router is built with `new_router`, so that its routes parse bodies with orjson; errors are
`{"detail": ...}` bodies, and a request the settings or the models reject is a `RequestValidationError`,
answered 422 like a schema error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from serving.schemas import Problem

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):  # pandas' Timestamp (orjson writes plain datetimes itself); naive is UTC
        return (obj if obj.tzinfo is not None else obj.replace(tzinfo=UTC)).isoformat()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


class FastJSONResponse(JSONResponse):
    """JSON through orjson (numpy values, NaN as null, datetimes as ISO 8601 with their zone).

    Times inside the service are naive UTC; a response writes them with `+00:00`, as the OpenAPI `date-time`
    format requires a zone (a request's `+05:00` comes back as the same instant in UTC).
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default, option=_OPTIONS)


class _OrjsonRequest(Request):
    """A request whose JSON body orjson parses (several times faster than `json` on a batch of leads).

    orjson's JSONDecodeError is a `json.JSONDecodeError`, so a malformed body still answers 422.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class OrjsonRoute(APIRoute):
    """A route that hands its handler an `_OrjsonRequest`."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def parse_with_orjson(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return parse_with_orjson


# What every route behind an API key may answer besides its own responses (`serving.auth`).
KEYED = {
    401: {"description": "No API key, or one that is not configured", "model": Problem},
    429: {
        "description": "This key is over its request rate: wait for `Retry-After` seconds",
        "model": Problem,
        "headers": {"Retry-After": {"description": "Seconds until a request may pass", "schema": {"type": "integer"}}},
    },
}


def new_router(keyed: bool = True, **kwargs: Any) -> APIRouter:
    """An `APIRouter` whose routes parse JSON with orjson; `keyed` routes document the key's 401 and 429."""
    responses = {**(KEYED if keyed else {}), **kwargs.pop("responses", {})}
    return APIRouter(route_class=OrjsonRoute, responses=responses, **kwargs)


def problem(status: int, detail: Any, **extra: Any) -> FastJSONResponse:
    """An error response: `{"detail": ..., **extra}` with `status`."""
    return FastJSONResponse({"detail": detail, **extra}, status_code=status)


def invalid(loc: tuple, msg: str, kind: str = "value_error") -> RequestValidationError:
    """A 422 for one field at `loc` (as pydantic names it: `("query", "limit")`), with a message."""
    return RequestValidationError([{"type": kind, "loc": loc, "msg": msg}])
