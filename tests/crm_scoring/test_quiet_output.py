"""A training prints what it decided, not MLflow's chatter: no INFO lines, no registration notices, unless -v."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from simulator.simulate import SimConfig, simulate, write_simulation
from tests.servers import ROOT

pytestmark = pytest.mark.slow
TINY_TOML = "snapshots = 3\nconversion_snapshots = 3\nclv_snapshots = 3\nmin_positives = 10\n"
CHATTER = ("INFO mlflow", "Successfully registered model", "Created version")


def _train(tmp_path, *flags: str) -> subprocess.CompletedProcess:
    store = tmp_path / f"models{len(flags)}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    env["CRM_SCORING_MODELS_DIR"] = str(store)
    env.pop("MLFLOW_LOGGING_LEVEL", None)
    args = ["train", "--data", str(tmp_path / "sim"), "--as-of", "2024-12-31", "--config", str(tmp_path / "t.toml")]
    code = f"from crm_scoring.cli import app; app({[*flags, *args]!r})"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_train_prints_no_mlflow_chatter_unless_verbose(tmp_path):
    write_simulation(simulate(SimConfig(customers=1_500, seed=4)), tmp_path / "sim")
    (tmp_path / "sim" / "channel_spend.parquet").unlink(missing_ok=True)
    (tmp_path / "t.toml").write_text(TINY_TOML)
    quiet = _train(tmp_path)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "crm_churn" in quiet.stdout  # the training table
    assert not [line for line in quiet.stderr.splitlines() if any(c in line for c in CHATTER)], quiet.stderr
    verbose = _train(tmp_path, "-v")
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "INFO mlflow" in verbose.stderr and "Created version '1' of model 'crm_churn'" in verbose.stderr
