"""A registered model works with MLflow's own tools: a real tracking server, `models serve`, `mlflow run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import AS_OF
from tests.servers import free_port, running
from training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
MLFLOW = str(Path(sys.executable).parent / "mlflow")
VENV_PATH = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"  # the tools spawn uvicorn and crm-score
pytestmark = pytest.mark.slow


def test_training_against_a_real_mlflow_server(tables, sim_dir, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from training.train import run_training

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    command = [
        MLFLOW,
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with running(command, f"{uri}/health", dict(os.environ), tmp_path / "server.log"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        summary = run_training(tables, AS_OF, TrainConfig(snapshots=3), kinds=("churn",), data_dir=str(sim_dir))
        assert summary.decisions["churn"]["promoted"]
        champion = MlflowClient(uri).get_model_version_by_alias("crm_churn", "champion")
        assert str(champion.version) == summary.decisions["churn"]["version"]
        assert (tmp_path / "artifacts").exists() and any((tmp_path / "artifacts").rglob("bundle/manifest.json"))


def test_champion_scores_under_mlflow_models_serve(use_store, tables, tmp_path):
    from training.features import build_features
    from training.registry import load_bundle

    bundle, _ = load_bundle("crm_churn")
    features = build_features(tables, AS_OF, bundle.spec).head(25)
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": use_store["uri"], "PATH": VENV_PATH}
    command = [
        MLFLOW,
        "models",
        "serve",
        "-m",
        "models:/crm_churn@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with running(command, f"http://127.0.0.1:{port}/ping", env, tmp_path / "serve.log"):
        payload = {
            "dataframe_split": features.reset_index(drop=True)
            .astype(object)
            .where(features.reset_index(drop=True).notna(), None)
            .to_dict(orient="split")
        }
        payload["dataframe_split"].pop("index", None)
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=60)
        assert response.status_code == 200, response.text[:2000]
        got = [row["churn_probability"] for row in response.json()["predictions"]]
        np.testing.assert_allclose(got, bundle.predict(features), rtol=1e-9)


def test_mlflow_run_train_entry_point(sim_dir, tmp_path):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'run.db'}",
        "CRM_SCORING_MODELS_DIR": str(tmp_path),
        "PATH": VENV_PATH,
    }
    done = subprocess.run(
        [
            MLFLOW,
            "run",
            str(ROOT),
            "-e",
            "train",
            "-P",
            f"data={sim_dir}",
            "-P",
            "as_of=2024-12-31",
            "-P",
            "clv_horizon_days=180",
            "--env-manager",
            "local",
            "--experiment-name",
            "crm-scoring",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from mlflow import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    for name in ("crm_conversion", "crm_churn", "crm_clv"):
        assert client.get_model_version_by_alias(name, "champion") is not None
    assert client.get_model_version_by_alias("crm_clv", "champion").version is not None
