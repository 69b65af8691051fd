"""API keys with scopes: `X-API-Key: KEY` or `Authorization: Bearer KEY`; admin implies read.

Keys are compared in constant time (`hmac.compare_digest`) against every configured key, and never logged.
Each key has its own request rate (`serving.ratelimit`): over it, a request answers 429 with `Retry-After`.
"""

from __future__ import annotations

import hmac
import logging
import math
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from serving.ratelimit import TokenBuckets

log = logging.getLogger(__name__)
RANK = {"read": 1, "admin": 2}


class KeyRing:
    """The configured keys (as bytes) and their scopes, and each key's request rate (`rate` a second after a
    burst of `burst`; 0: no limit); `disabled` lets every request through, at one shared rate."""

    def __init__(self, keys: dict[str, str], disabled: bool = False, rate: float = 0.0, burst: int = 1):
        self._keys = [(k.encode(), scope) for k, scope in keys.items()]
        self.disabled = disabled
        self.rates = TokenBuckets(rate, burst)
        if disabled:
            log.warning("API authentication is DISABLED (CRM_SCORING_AUTH_DISABLED): use only for a local demo")
        elif not keys:
            log.warning("no API keys configured (CRM_SCORING_API_KEYS): every /v1 request will get 401")

    def scope_of(self, key: str) -> str | None:
        """The scope of `key`, or None; compares with every key so that timing tells nothing."""
        given = key.encode()
        found = None
        for known, scope in self._keys:
            if hmac.compare_digest(given, known) and found is None:
                found = scope
        return found


def presented_key(request: Request) -> str | None:
    """The key from `X-API-Key`, else from `Authorization: Bearer`."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def require(scope: str):
    """A dependency that lets a request through when its key has `scope` (or a higher one)."""

    # async: a few microseconds of work that FastAPI would otherwise send through the threadpool on every request.
    async def check(request: Request) -> str:
        ring: KeyRing = request.app.state.keys
        if ring.disabled:
            _within_rate(ring.rates, "")
            return "admin"
        key = presented_key(request)
        if key is None:
            raise HTTPException(
                401,
                detail="missing API key: send it as 'X-API-Key: KEY' or 'Authorization: Bearer KEY'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        granted = ring.scope_of(key)
        if granted is None:
            raise HTTPException(401, detail="invalid API key", headers={"WWW-Authenticate": "Bearer"})
        _within_rate(ring.rates, key)
        if RANK[granted] < RANK[scope]:
            raise HTTPException(403, detail=f"this API key has scope '{granted}'; this route needs '{scope}'")
        return granted

    return check


def _within_rate(rates: TokenBuckets, key: str) -> None:
    """429 with `Retry-After` (whole seconds) when `key` has spent its requests for now."""
    wait = rates.take(key)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        detail = f"rate limit of {rates.rate:g} requests a second for this API key exceeded; retry in {seconds} s"
        raise HTTPException(429, detail=detail, headers={"Retry-After": str(seconds)})


ReadScope = Annotated[str, Depends(require("read"))]
AdminScope = Annotated[str, Depends(require("admin"))]
