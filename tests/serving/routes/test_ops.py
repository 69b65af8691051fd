"""The ops routes: health, readiness per model (200 while any model is loaded, stricter on request, the reason
when models are missing) and metrics."""

from __future__ import annotations

import re

import pytest

from serving import runtime
from tests.servers import api_client
from tests.serving.conftest import CUSTOMER, LEAD, READ, api_settings

CLASS_NAME = re.compile(r"\b[A-Z]\w*(Exception|Error)\b")


def test_health_ready_metrics(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["complete"] is True
    assert ready.json()["parts"] == {"models": "ok", "prospects": "ok"}
    assert ready.json()["models"] == {"crm_conversion": "ok", "crm_churn": "ok", "crm_clv": "ok"}
    assert client.get("/ready", params={"require": "all"}).status_code == 200
    client.post("/v1/leads/score", json=LEAD, headers=READ)
    text = client.get("/metrics").text
    assert 'crm_requests_total{method="POST",route="/v1/leads/score",status="200"}' in text
    assert "crm_request_seconds_bucket" in text
    assert 'crm_model_version{model="crm_conversion"}' in text
    assert 'crm_score_probability_count{model="crm_conversion"}' in text


def test_not_ready_with_reason_when_no_model_is_loaded(use_store, prospects_db):
    broken = runtime.ModelSet({}, {"crm_conversion": "MlflowException: no alias champion"})
    with api_client(api_settings(prospects_db), broken) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert "no alias champion" in ready.json()["missing"]["crm_conversion"]
        assert ready.json()["models"]["crm_conversion"] == "unavailable: no alias champion"
        assert ready.json()["parts"]["models"] == "unavailable: crm_conversion, crm_churn, crm_clv not loaded"
        assert c.get("/health").status_code == 200
        scored = c.post("/v1/leads/score", json=LEAD, headers=READ)
        assert scored.status_code == 503 and "crm_conversion" in scored.json()["detail"]
        assert "no alias champion" in scored.json()["detail"] and not CLASS_NAME.search(scored.text), scored.text


@pytest.fixture
def without_conversion(use_store, champions, prospects_db):
    """An API serving churn and CLV, the conversion model missing (skipped on a small CRM, say)."""
    bundles = {k: b for k, b in champions.bundles.items() if k != "conversion"}
    why = "crm_conversion@champion: MlflowException: Registered model alias champion not found."
    with api_client(api_settings(prospects_db), runtime.ModelSet(bundles, {"crm_conversion": why})) as c:
        yield c


def test_ready_while_one_model_is_missing_and_its_routes_say_why(without_conversion):
    c = without_conversion
    ready = c.get("/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] is True and body["complete"] is False
    assert body["models"] == {
        "crm_conversion": "unavailable: crm_conversion@champion: Registered model alias champion not found.",
        "crm_churn": "ok",
        "crm_clv": "ok",
    }
    assert body["parts"] == {"models": "partial: crm_conversion not loaded", "prospects": "ok"}
    assert "not found" in body["missing"]["crm_conversion"] and set(body["versions"]) == {"churn", "clv"}
    assert c.post("/v1/customers/score", json=CUSTOMER, headers=READ).status_code == 200
    lead = c.post("/v1/leads/score", json=LEAD, headers=READ)
    assert lead.status_code == 503
    assert (
        lead.json()["detail"] == "model not loaded: crm_conversion@champion: Registered model alias champion not found."
    )


@pytest.mark.parametrize(
    ("require", "status"),
    [("any", 200), ("all", 503), ("crm_churn", 200), ("clv", 200), ("crm_conversion", 503), ("conversion", 503)],
)
def test_a_stricter_probe_requires_the_models_it_names(without_conversion, require, status):
    ready = without_conversion.get("/ready", params={"require": require})
    assert (
        ready.status_code == status and ready.json()["ready"] is (status == 200) and ready.json()["require"] == require
    )


def test_an_unknown_requirement_is_a_422_naming_the_choices(without_conversion):
    bad = without_conversion.get("/ready", params={"require": "crm_upsell"})
    assert bad.status_code == 422 and "any, all, crm_conversion, crm_churn, crm_clv" in bad.text
