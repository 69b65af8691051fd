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


def test_budget_route_with_the_profit_objective_passes_the_judge(client, sim_dir, tmp_path):
    body = {"objective": "profit", "margin": 0.3, "max_shift": 0.2, "min_move": 0.05}
    response = client.post("/v1/channels/budget", headers=READ, json=body)
    assert response.status_code == 200, response.text
    advice = response.json()
    assert advice["constraints"]["objective"] == "profit" and advice["constraints"]["min_move"] == 0.05
    total = advice["total"]
    assert total["expected_profit_recommended"] >= total["expected_profit_current"]
    assert total["expected_profit_change_low"] <= total["expected_profit_change_high"]
    path = tmp_path / "advice.json"
    path.write_text(json.dumps(advice))
    judged = subprocess.run(
        [sys.executable, str(JUDGE), str(sim_dir), str(path), "--objective", "profit", "--margin", "0.3"],
        capture_output=True,
        text=True,
    )
    assert judged.returncode == 0, judged.stdout + judged.stderr
    refused = client.post("/v1/channels/budget", headers=READ, json={"objective": "profit", "total_budget": 9000})
    assert refused.status_code == 422 and "total_budget applies to the value objective" in refused.text
    for bad in ({"objective": "revenue"}, {"margin": 0}, {"min_move": 2}):
        assert client.post("/v1/channels/budget", headers=READ, json=bad).status_code == 422, bad


def test_what_if_route_answers_a_plan_with_intervals(client):
    response = client.post("/v1/channels/what-if", headers=READ, json={"plan": {"search": 4000}, "margin": 0.3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of"] == "2025-12-31T00:00:00+00:00" and body["margin"] == 0.3
    rows = {r["channel"]: r for r in body["channels"]}
    assert rows["search"]["spend"] == 4000.0 and rows["email"]["spend"] == rows["email"]["current_spend"]
    low, high = body["total"]["profit_interval"]
    assert low <= body["total"]["profit"] <= high


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"plan": {"telepathy": 10}}, "telepathy"),
        ({"plan": {"search": -1}}, "greater than or equal to 0"),
        ({"plan": {}}, "plan"),
        ({"plan": {"search": 10}, "margin": 0}, "margin"),
        ({"plan": {"search": 10}, "surprise": 1}, "surprise"),
    ],
)
def test_what_if_route_refuses_bad_plans_with_422(client, body, expected):
    response = client.post("/v1/channels/what-if", headers=READ, json=body)
    assert response.status_code == 422, response.text
    assert expected in response.text


def test_channel_routes_need_a_key_and_a_configured_export(trained_store):
    models = runtime.ModelSet({}, {"crm_clv": "not loaded"})
    settings = Settings(api_keys="r-key:read", prospects_db=trained_store["dir"] / "p.db")
    with api_client(settings, models) as c:
        assert c.get("/v1/channels/performance").status_code == 401
        missing = c.get("/v1/channels/performance", headers=READ)
        assert missing.status_code == 404 and "CRM_SCORING_DATA_DIR" in missing.json()["detail"]
