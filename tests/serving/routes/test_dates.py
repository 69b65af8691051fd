"""API timestamps are ISO 8601 text: anything else is a 422 naming the field and showing an accepted form, and
numbers are never read as Unix times. Request validation needs no model, so these run on an app without one."""

from __future__ import annotations

import pytest

from crmdata.timeutil import ISO_EXAMPLE
from serving.runtime import ModelSet
from tests.servers import api_client
from tests.serving.conftest import CUSTOMER, LEAD, READ, api_settings

NO_MODELS = ModelSet(bundles={}, missing={"crm_conversion": "none in this test", "crm_churn": "none", "crm_clv": "-"})


@pytest.fixture(scope="module")
def bare_client(tmp_path_factory):
    """The real app with no model loaded: validation answers 422, a valid request 503."""
    db = tmp_path_factory.mktemp("dates") / "prospects.db"
    with api_client(api_settings(db), NO_MODELS) as client:
        yield client


def _with(record: dict, path: tuple, value) -> dict:
    """A deep copy of `record` with the value at `path` (keys and list positions) replaced."""
    import copy

    out = copy.deepcopy(record)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("route", "record", "path", "bad"),
    [
        ("/v1/leads/score", LEAD, ("touchpoints", 0, "timestamp"), "31/12/2024"),
        ("/v1/leads/score", LEAD, ("funnel_events", 1, "timestamp"), "01/02/2024"),
        ("/v1/leads/score", LEAD, ("as_of",), "Dec 31 2024"),
        ("/v1/customers/score", CUSTOMER, ("orders", 0, "timestamp"), "2024/02/10"),
        ("/v1/customers/score", CUSTOMER, ("created_at",), "2023-03-01T25:00:00"),
    ],
    ids=["day-first", "ambiguous", "words", "slashes", "no-such-hour"],
)
def test_a_timestamp_not_in_iso_8601_is_a_422_naming_the_field_and_a_form(bare_client, route, record, path, bad):
    r = bare_client.post(route, json=_with(record, path, bad), headers=READ)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "one", *path]
    assert error["msg"] == f"Input should be an ISO 8601 timestamp, e.g. {ISO_EXAMPLE}"
    assert r.json()["message"] == "invalid request: " + ".".join(str(p) for p in ("body", "one", *path))


@pytest.mark.parametrize(
    "bad", [1735603200, 1735603200.5, "1735603200", "20241231"], ids=["int", "float", "text", "basic-form"]
)
def test_a_number_is_not_read_as_a_unix_time(bare_client, bad):
    """Pydantic alone takes these as seconds since 1970 (`"20241231"` would be 1970-08-23): a 422 instead."""
    r = bare_client.post("/v1/leads/score", json={"leads": [LEAD, {**LEAD, "as_of": bad}]}, headers=READ)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "batch", "leads", 1, "as_of"]
    assert ISO_EXAMPLE in error["msg"] and "numbers are not read as Unix times" in error["msg"]


@pytest.mark.parametrize(
    "stamp",
    ["2024-12-31", "2024-12-31T00:00:00Z", "2024-12-31T05:00:00+05:00", "2024-12-31 00:00", "2024-12-30T19:00-05:00"],
    ids=["date", "utc", "east", "space", "west"],
)
def test_iso_8601_timestamps_pass_validation(bare_client, stamp):
    """Past validation, the only refusal left is that no model is loaded."""
    r = bare_client.post("/v1/leads/score", json={**LEAD, "as_of": stamp}, headers=READ)
    assert r.status_code == 503 and "model not loaded" in r.text


def test_the_openapi_schema_still_says_date_time(bare_client):
    schemas = bare_client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Touchpoint"]["properties"]["timestamp"]["format"] == "date-time"
