"""End-to-end: a real uvicorn process on 127.0.0.1 serving the session's freshly trained registry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import uvicorn_server
from tests.serving.conftest import CUSTOMER, LEAD

pytestmark = pytest.mark.slow
READ, ADMIN = {"X-API-Key": "e2e-read"}, {"X-API-Key": "e2e-admin"}


@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory):
    """`serving.api.serve` in a subprocess on the session's registry; yields its base URL once /ready answers 200."""
    logs = tmp_path_factory.mktemp("e2e")
    env = {
        "MLFLOW_TRACKING_URI": trained_store["uri"],
        "CRM_SCORING_MODELS_DIR": str(trained_store["dir"]),
        "CRM_SCORING_API_KEYS": "e2e-read:read,e2e-admin:admin",
        "CRM_SCORING_PROSPECTS_DB": str(logs / "prospects.db"),
    }
    with uvicorn_server(env, logs / "server.log") as base:
        yield base


def test_routes(server):
    with httpx.Client(base_url=server, timeout=30) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/ready").json()["ready"] is True
        assert c.post("/v1/leads/score", json=LEAD).status_code == 401
        lead = c.post("/v1/leads/score", json=LEAD, headers=READ)
        assert lead.status_code == 200 and 0 <= lead.json()["conversion_probability"] <= 1
        batch = c.post("/v1/leads/score", json={"leads": [LEAD] * 100}, headers=READ)
        assert batch.status_code == 200 and len(batch.json()["scores"]) == 100
        cust = c.post("/v1/customers/score", json=CUSTOMER, headers=READ)
        assert cust.status_code == 200 and cust.json()["churn_risk"] in ("low", "medium", "high")
        models = c.get("/v1/models", headers=READ).json()
        assert {m["name"] for m in models["models"]} == {"crm_conversion", "crm_churn", "crm_clv"}
        assert c.post("/v1/models/reload", headers=READ).status_code == 403
        assert c.get("/v1/prospects", headers=READ).status_code == 404  # no `crm-score score` run yet
        assert c.post("/v1/leads/score", json={**LEAD, "employees": "many"}, headers=READ).status_code == 422
        unknown_stage = {**LEAD, "funnel_events": [{"timestamp": "2024-11-02T09:15:00", "stage": "Qualified"}]}
        assert "'Qualified'" in c.post("/v1/leads/score", json=unknown_stage, headers=READ).text
        assert "crm_requests_total" in c.get("/metrics").text


def test_reload_under_load(server):
    def worker(n: int) -> list[int]:
        codes = []
        with httpx.Client(base_url=server, timeout=30) as c:
            for i in range(50):
                path, body = ("/v1/customers/score", CUSTOMER) if (n + i) % 3 == 0 else ("/v1/leads/score", LEAD)
                codes.append(c.post(path, json=body, headers=READ).status_code)
        return codes

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(worker, n) for n in range(8)]
        reloads = []
        with httpx.Client(base_url=server, timeout=120) as admin:
            while not all(f.done() for f in futures) or len(reloads) < 2:
                reloads.append(admin.post("/v1/models/reload", headers=ADMIN).status_code)
        codes = [code for f in futures for code in f.result()]
    assert len(codes) == 400 and set(codes) == {200}
    assert reloads and set(reloads) == {200}
