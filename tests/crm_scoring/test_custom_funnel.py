"""A CRM with its own stage names, end to end: config -> validate -> train -> score/evaluate/budget -> API.

The simulated export's stages are renamed to a custom funnel; only `validate` and `train` are told about it (by
`--config`), every later command and the API take it from the registered champions.
"""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_scoring.cli import app
from crmdata.funnel import DEFAULT_FUNNEL
from simulator.simulate import SimConfig, simulate, write_simulation
from tests.servers import uvicorn_server

pytestmark = pytest.mark.slow

STAGES = ("Prospect", "Marketing Qualified", "Sales Qualified", "Proposal", "Contract", "Closed Won")
LOST = "Closed Lost"
RENAMED = dict(zip(DEFAULT_FUNNEL.allowed, (*STAGES, LOST), strict=True))
AS_OF = "2024-12-31"
READ = {"X-API-Key": "funnel-read"}
CONFIG = f"""
stages = {json.dumps(list(STAGES))}
lost_stage = "{LOST}"
snapshots = 3
conversion_snapshots = 3
clv_snapshots = 4
snapshot_step_days = 120  # CLV needs one whole year-long window among its few cutoffs
min_positives = 20

[lightgbm]
max_rounds = 300
early_stopping_rounds = 30
num_threads = 1
"""
runner = CliRunner()


def _lead(*stages: str) -> dict:
    """A lead scoring request whose funnel history walks through `stages`, a week apart."""
    events = [
        {"timestamp": (pd.Timestamp("2024-11-02T09:15:00") + pd.Timedelta(days=7 * i)).isoformat(), "stage": stage}
        for i, stage in enumerate(stages)
    ]
    return {
        "customer_id": "L-custom",
        "created_at": "2024-11-02T09:15:00",
        "source_channel": "search",
        "industry": "software",
        "region": "west",
        "employees": 40,
        "touchpoints": [{"timestamp": "2024-11-02T09:15:00", "channel": "search", "interaction": "ad_click"}],
        "funnel_events": events,
        "as_of": f"{AS_OF}T00:00:00",
    }


def _store_env(folder) -> dict[str, str]:
    """Environment variables that point MLflow and the embedded store at `folder` only."""
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "CRM_SCORING_MODELS_DIR": str(folder)}


def _run(args: list[str], env: dict[str, str]):
    return runner.invoke(app, args, env=env)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A simulated export of 2,500 customers whose stages carry custom names, and its training config file."""
    root = tmp_path_factory.mktemp("custom_funnel")
    sim = simulate(SimConfig(customers=2_500, seed=11))
    events = sim.tables["funnel_events"]
    assert set(events["stage"]) == set(RENAMED)  # every default stage appears, so every one is renamed
    sim.tables["funnel_events"] = events.assign(stage=events["stage"].map(RENAMED))
    data = write_simulation(sim, root / "data")
    config = root / "funnel.toml"
    config.write_text(CONFIG)
    return {"data": data, "config": config, "root": root}


@pytest.fixture(scope="module")
def store(export, tmp_path_factory):
    """A fresh tracking store with the three models trained by `crm-score train --config` on the custom export."""
    folder = tmp_path_factory.mktemp("custom_store")
    env = _store_env(folder)
    args = ["train", "--data", str(export["data"]), "--as-of", AS_OF, "--config", str(export["config"])]
    result = _run(args, env)
    assert result.exit_code == 0, result.output
    return {"env": env, "dir": folder, "train_output": result.output}


def test_validate_accepts_the_custom_stages_given_by_the_config(export, tmp_path):
    result = _run(["validate", "--data", str(export["data"]), "--config", str(export["config"])], _store_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert "Closed Won" in result.output


def test_validate_without_a_config_or_a_model_rejects_the_custom_stages(export, tmp_path):
    result = _run(["validate", "--data", str(export["data"])], _store_env(tmp_path))
    assert result.exit_code == 1
    assert "funnel_events" in result.output and "Prospect" in result.output


def test_train_registers_every_model_with_the_custom_funnel(store):
    from crm_scoring.pipelines import champions, funnel_of

    with pytest.MonkeyPatch.context() as mp:
        for key, value in store["env"].items():
            mp.setenv(key, value)
        bundles, missing = champions()
    assert set(bundles) == {"conversion", "churn", "clv"}, missing
    funnel = funnel_of(bundles)
    assert funnel.stages == STAGES and funnel.lost == LOST


def test_score_takes_the_funnel_from_the_champions(export, store, tmp_path):
    out = tmp_path / "scores.csv"
    args = ["score", "--data", str(export["data"]), "--as-of", AS_OF, "--out", str(out)]
    result = _run([*args, "--prospects-db", str(tmp_path / "prospects.db")], store["env"])
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    lead_stages = set(scores.loc[scores.conversion_probability.notna(), "current_stage"])
    assert lead_stages and lead_stages <= set(STAGES[:-1])
    assert not set(scores["current_stage"].dropna()) & set(DEFAULT_FUNNEL.allowed)


def test_evaluate_takes_the_funnel_from_the_champions(export, store):
    result = _run(["evaluate", "--data", str(export["data"]), "--as-of", AS_OF, "--json"], store["env"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)["models"]
    assert set(figures) == {"conversion", "churn", "clv"}
    assert figures["conversion"]["model"]["positive_rate"] > 0  # leads reaching "Closed Won" count as converted
    assert 0.5 < figures["conversion"]["model"]["roc_auc"] <= 1


def test_budget_takes_the_funnel_from_the_champions(export, store):
    result = _run(["budget", "--data", str(export["data"]), "--as-of", AS_OF, "--json"], store["env"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)
    assert advice["channels"] and {"channel", "current_spend", "recommended_spend"} <= set(advice["channels"][0])


def test_api_scores_custom_stages_and_names_them_when_rejecting_others(store, tmp_path):
    env = {**store["env"], "CRM_SCORING_API_KEYS": "funnel-read:read"}
    env["CRM_SCORING_PROSPECTS_DB"] = str(tmp_path / "prospects.db")
    with uvicorn_server(env, tmp_path / "server.log") as base, httpx.Client(base_url=base, timeout=30) as client:
        custom = client.post("/v1/leads/score", json=_lead("Prospect", "Marketing Qualified"), headers=READ)
        assert custom.status_code == 200, custom.text
        assert 0 <= custom.json()["conversion_probability"] <= 1
        default = client.post("/v1/leads/score", json=_lead("lead", "mql"), headers=READ)
        # Needs the API to check stages against the champions' funnel (422 naming the allowed stages).
        assert default.status_code == 422, default.text
        assert all(stage in default.text for stage in (*STAGES, LOST)), default.text
