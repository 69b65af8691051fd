"""The model routes: the champions listed, and a reload that swaps them or, failing, keeps the old ones."""

from __future__ import annotations

from tests.servers import api_client
from tests.serving.conftest import ADMIN, LEAD, READ, api_settings


def test_models_lists_champions(client, champions):
    body = client.get("/v1/models", headers=READ).json()
    assert body["ready"] is True
    assert {m["name"] for m in body["models"]} == {"crm_conversion", "crm_churn", "crm_clv"}
    conv = next(m for m in body["models"] if m["kind"] == "conversion")
    assert conv["alias"] == "champion" and conv["holdout_metrics"]
    assert conv["version"] == champions.versions()["conversion"]


def test_reload_swaps_and_failed_reload_keeps_old(use_store, prospects_db, monkeypatch, tmp_path):
    with api_client(api_settings(prospects_db)) as c:  # the real registry loader
        assert c.get("/ready").status_code == 200
        before = c.get("/v1/models", headers=READ).json()["models"]
        ok = c.post("/v1/models/reload", headers=ADMIN)
        assert ok.status_code == 200 and ok.json()["reloaded"] is True
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
        failed = c.post("/v1/models/reload", headers=ADMIN)
        assert failed.status_code == 409
        assert failed.json()["errors"]["crm_conversion"]
        assert c.get("/v1/models", headers=READ).json()["models"] == before
        assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200
        assert c.get("/ready").status_code == 200
