"""The ops routes: health, readiness (with the reason when models are missing) and metrics."""

from __future__ import annotations

from serving import runtime
from tests.servers import api_client
from tests.serving.conftest import LEAD, READ, api_settings


def test_health_ready_metrics(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["parts"] == {"models": "ok", "prospects": "ok"}
    client.post("/v1/leads/score", json=LEAD, headers=READ)
    text = client.get("/metrics").text
    assert 'crm_requests_total{method="POST",route="/v1/leads/score",status="200"}' in text
    assert "crm_request_seconds_bucket" in text
    assert 'crm_model_version{model="crm_conversion"}' in text
    assert 'crm_score_probability_count{model="crm_conversion"}' in text


def test_not_ready_with_reason(use_store, prospects_db):
    broken = runtime.ModelSet({}, {"crm_conversion": "MlflowException: no alias champion"})
    with api_client(api_settings(prospects_db), broken) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert "no alias champion" in ready.json()["missing"]["crm_conversion"]
        assert ready.json()["parts"]["models"] == "unavailable: crm_conversion not loaded"
        assert c.get("/health").status_code == 200
        scored = c.post("/v1/leads/score", json=LEAD, headers=READ)
        assert scored.status_code == 503 and "crm_conversion" in scored.json()["detail"]
