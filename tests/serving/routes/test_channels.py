"""The channel routes: performance per channel and budget advice that the independent judge accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from serving import runtime
from serving.settings import Settings
from tests.servers import api_client

READ = {"X-API-Key": "r-key"}
JUDGE = Path(__file__).resolve().parents[4] / "shared" / "tools" / "judge_budget.py"


@pytest.fixture(scope="module")
def client(trained_store, sim_dir):
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained_store["uri"])
        mlflow.set_tracking_uri(trained_store["uri"])
        models = runtime.load_model_set()
    settings = Settings(api_keys="r-key:read", data_dir=sim_dir, prospects_db=trained_store["dir"] / "p.db")
    with api_client(settings, models) as c:
        yield c


def test_channel_performance_lists_every_paid_channel(client):
    response = client.get("/v1/channels/performance", headers=READ, params={"method": "linear"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "linear" and body["as_of"] == "2025-12-31T00:00:00+00:00"
    channels = {row["channel"]: row for row in body["channels"]}
    assert {"search", "social", "email", "event"} <= set(channels)
    assert channels["social"]["spend_total"] > 0


def test_budget_route_respects_constraints_and_passes_the_judge(client, sim_dir, tmp_path):
    response = client.post("/v1/channels/budget", headers=READ, json={"max_shift": 0.2, "locked": ["email"]})
    assert response.status_code == 200, response.text
    advice = response.json()
    assert advice["as_of"] == "2025-12-31T00:00:00+00:00"
    rows = {row["channel"]: row for row in advice["channels"]}
    assert rows["email"]["recommended_spend"] == pytest.approx(rows["email"]["current_spend"])
    total_now = sum(r["current_spend"] for r in rows.values())
    assert sum(r["recommended_spend"] for r in rows.values()) == pytest.approx(total_now, rel=1e-6)
    path = tmp_path / "advice.json"
    path.write_text(json.dumps(advice))
    judged = subprocess.run(
        [sys.executable, str(JUDGE), str(sim_dir), str(path), "--need", "0.5"], capture_output=True, text=True
    )
    assert "in bounds True, same total True" in judged.stdout, judged.stdout + judged.stderr


def test_budget_route_rejects_unknown_fields_and_bad_values(client):
    assert client.post("/v1/channels/budget", headers=READ, json={"max_shift": 3}).status_code == 422
    assert client.post("/v1/channels/budget", headers=READ, json={"surprise": 1}).status_code == 422
    bad = client.post("/v1/channels/budget", headers=READ, json={"current_spend": {"telepathy": 10}})
    assert bad.status_code == 422 and "telepathy" in bad.text


def test_channel_routes_need_a_key_and_a_configured_export(trained_store):
    models = runtime.ModelSet({}, {"crm_clv": "not loaded"})
    settings = Settings(api_keys="r-key:read", prospects_db=trained_store["dir"] / "p.db")
    with api_client(settings, models) as c:
        assert c.get("/v1/channels/performance").status_code == 401
        missing = c.get("/v1/channels/performance", headers=READ)
        assert missing.status_code == 404 and "CRM_SCORING_DATA_DIR" in missing.json()["detail"]
