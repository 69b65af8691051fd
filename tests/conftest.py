"""Shared fixtures: a small simulated export, and a registry trained on it in a temporary MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from simulator.simulate import SimConfig, simulate, write_simulation

AS_OF = pd.Timestamp("2024-12-31")


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory) -> Path:
    """A simulated export of 5,000 customers (truth as of 2024-12-31) written as Parquet."""
    out = tmp_path_factory.mktemp("sim")
    write_simulation(simulate(SimConfig(customers=5_000, seed=7)), out)
    return out


@pytest.fixture(scope="session")
def tables(sim_dir):
    """The simulated tables before the training cutoff, loaded through the contract."""
    from crmdata.contract import load_tables

    return load_tables(sim_dir, as_of=AS_OF)


@pytest.fixture(scope="session")
def trained_store(sim_dir, tables, tmp_path_factory):
    """A SQLite MLflow store with the three models trained as of 2024-12-31 and promoted to champion."""
    from crm_scoring.pipelines import Export, train
    from crmdata.funnel import DEFAULT_FUNNEL
    from training.config import TrainConfig

    store = tmp_path_factory.mktemp("mlstore")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "CRM_SCORING_MODELS_DIR")}
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["CRM_SCORING_MODELS_DIR"] = str(store)
    try:
        export = Export(tables, AS_OF, DEFAULT_FUNNEL)
        summary = train(export, TrainConfig(), promote="auto", data_dir=str(sim_dir))
    finally:
        _restore(saved)
    return {"uri": uri, "dir": store, "summary": summary}


@pytest.fixture
def use_store(trained_store, monkeypatch):
    """Point MLflow (and the embedded-store default) at the trained session store for one test."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store["uri"])
    monkeypatch.setenv("CRM_SCORING_MODELS_DIR", str(trained_store["dir"]))
    mlflow.set_tracking_uri(trained_store["uri"])
    mlflow.set_registry_uri(trained_store["uri"])
    return trained_store


def _restore(saved: dict) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
