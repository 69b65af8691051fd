"""Request guards and response times: 413 for any oversized body, a cap on distinct cutoffs per batch, a
per-key rate limit, and response times that carry their zone."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.servers import api_client
from tests.serving.conftest import ADMIN, CUSTOMER, LEAD, READ, api_settings

# ------------------------------------------------------------------------------------------------ body size


def _chunks(body: bytes, size: int = 512):
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("route", ["/v1/leads/score", "/v1/customers/score"])
def test_chunked_body_over_the_limit_is_413(use_store, champions, prospects_db, route):
    import orjson

    big = orjson.dumps({"leads": [LEAD] * 20} if "leads" in route else {"customers": [CUSTOMER] * 20})
    headers = {**READ, "content-type": "application/json"}
    with api_client(api_settings(prospects_db, max_body_bytes=2048), champions) as c:
        r = c.post(route, content=_chunks(big), headers=headers)  # no Content-Length: chunked
        assert r.status_code == 413, r.text
        assert "2048 bytes" in r.json()["detail"]
        small = orjson.dumps(LEAD if "leads" in route else CUSTOMER)
        assert c.post(route, content=_chunks(small), headers=headers).status_code == 200


# ------------------------------------------------------------------------------------------------ cutoffs


def test_distinct_cutoffs_per_batch_are_capped(use_store, champions, prospects_db):
    leads = [{**LEAD, "as_of": f"2024-12-{day:02d}T00:00:00"} for day in range(1, 6)]
    with api_client(api_settings(prospects_db, max_cutoffs=4), champions) as c:
        r = c.post("/v1/leads/score", json={"leads": leads}, headers=READ)
        assert r.status_code == 422
        [error] = r.json()["detail"]
        assert error["loc"] == ["body", "leads"] and "at most 4 distinct as_of" in error["msg"]
        customers = [{**CUSTOMER, "as_of": f"2024-12-{day:02d}T00:00:00"} for day in range(1, 6)]
        assert c.post("/v1/customers/score", json={"customers": customers}, headers=READ).status_code == 422
        # the same instant in two zones is one cutoff; no as_of (now) is one more
        same = [{**LEAD, "as_of": "2024-12-31T05:00:00+05:00"}, LEAD, {**LEAD, "as_of": None}]
        assert c.post("/v1/leads/score", json={"leads": leads[:2] + same}, headers=READ).status_code == 200


def test_cutoff_cap_default_is_modest():
    from serving.settings import Settings

    assert 1 <= Settings.model_fields["max_cutoffs"].default <= 64


# ------------------------------------------------------------------------------------------------ rate limit


def test_rate_limit_per_key_answers_429_with_retry_after(use_store, champions, prospects_db):
    settings = api_settings(prospects_db, rate_limit_per_second=0.5, rate_limit_burst=3)
    with api_client(settings, champions) as c:
        codes = [c.post("/v1/leads/score", json=LEAD, headers=READ).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = c.post("/v1/leads/score", json=LEAD, headers=READ)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert "rate limit" in limited.json()["detail"]
        assert c.get("/v1/models", headers=ADMIN).status_code == 200  # another key has its own bucket
        assert c.get("/health").status_code == 200  # routes without a key are not limited
        paths = c.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            keyed = path.startswith("/v1/")
            assert ("429" in operation["responses"]) == keyed, (method, path)
            assert ("401" in operation["responses"]) == keyed, (method, path)
    assert "Retry-After" in paths["/v1/leads/score"]["post"]["responses"]["429"]["headers"]


def test_rate_limit_zero_switches_it_off(use_store, champions, prospects_db):
    with api_client(api_settings(prospects_db, rate_limit_per_second=0, rate_limit_burst=1), champions) as c:
        assert {c.get("/v1/models", headers=READ).status_code for _ in range(5)} == {200}


def test_rate_limit_default_is_on_and_generous():
    from serving.settings import Settings

    rate, burst = (Settings.model_fields[name].default for name in ("rate_limit_per_second", "rate_limit_burst"))
    assert rate >= 100 and burst >= rate


# ------------------------------------------------------------------------------------------------ times


def test_response_times_carry_their_zone(client):
    lead = client.post("/v1/leads/score", json={**LEAD, "as_of": "2024-12-31T05:00:00+05:00"}, headers=READ).json()
    assert lead["as_of"] == "2024-12-31T00:00:00+00:00"
    batch = client.post("/v1/leads/score", json={"leads": [LEAD, {**LEAD, "as_of": None}]}, headers=READ).json()
    customer = client.post("/v1/customers/score", json=CUSTOMER, headers=READ).json()
    stamps = [s["as_of"] for s in batch["scores"]] + [customer["as_of"]]
    for stamp in stamps:
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp
        assert stamp.endswith("+00:00"), stamp


def test_rendered_datetimes_are_utc_with_offset():
    import pandas as pd

    from serving.routes.responses import FastJSONResponse

    body = FastJSONResponse({"a": datetime(2024, 1, 2, 3, 4, 5), "b": pd.Timestamp("2024-01-02 03:04:05")}).body
    assert body == b'{"a":"2024-01-02T03:04:05+00:00","b":"2024-01-02T03:04:05+00:00"}'
