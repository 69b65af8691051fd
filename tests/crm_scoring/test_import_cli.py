"""`crm-score import` end to end: a HubSpot and a Salesforce export of 2,500 simulated customers, imported with the
shipped mappings, validate, train and score through the CLI; a wrong mapping is refused naming its key."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_scoring.cli import app
from simulator.simulate import SimConfig, simulate
from tests.crmdata.vendor_exports import hubspot_export, salesforce_export

AS_OF = "2024-12-31"
TINY_TOML = "snapshots = 3\nconversion_snapshots = 3\nclv_snapshots = 3\nmin_positives = 15\n"
runner = CliRunner()


def _store_env(folder) -> dict[str, str]:
    """Environment variables that point MLflow and the embedded store at `folder` only."""
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "CRM_SCORING_MODELS_DIR": str(folder)}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The same 2,500 simulated customers as a HubSpot export and as a Salesforce export, and a small config."""
    root = tmp_path_factory.mktemp("import_cli")
    tables = simulate(SimConfig(customers=2_500, seed=11)).tables
    (root / "tiny.toml").write_text(TINY_TOML)
    return {
        "hubspot": hubspot_export(tables, root / "hubspot"),
        "salesforce": salesforce_export(tables, root / "salesforce"),
        "config": root / "tiny.toml",
    }


@pytest.mark.slow
@pytest.mark.parametrize("vendor", ["hubspot", "salesforce"])
def test_an_export_imported_with_a_shipped_mapping_validates_trains_and_scores(vendor, exports, tmp_path):
    env, data = _store_env(tmp_path), tmp_path / "data"
    imported = runner.invoke(app, ["import", "--from", str(exports[vendor]), "--mapping", vendor, "--out", str(data)])
    assert imported.exit_code == 0, imported.output
    assert "customers 2,500" in imported.output
    validated = runner.invoke(app, ["validate", "--data", str(data)], env=env)
    assert validated.exit_code == 0, validated.output
    assert "contract: ok" in validated.output
    args = ["train", "--data", str(data), "--as-of", AS_OF, "--config", str(exports["config"])]
    trained = runner.invoke(app, args, env=env)
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "scores.csv"
    args = ["score", "--data", str(data), "--as-of", AS_OF, "--out", str(out), "--prospects-db", str(tmp_path / "p.db")]
    scored = runner.invoke(app, args, env=env)
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(out)
    leads, buyers = scores["conversion_probability"].dropna(), scores["churn_probability"].dropna()
    assert len(leads) > 0 and leads.between(0, 1).all()
    assert len(buyers) > 0 and buyers.between(0, 1).all()


def test_import_refuses_a_mapping_with_an_unknown_key_and_names_it(exports, tmp_path):
    mapping = tmp_path / "mine.toml"
    text = '[customers]\nfile = "contacts.csv"\ncolumns = { "Record ID" = "customer_id" }\n'
    mapping.write_text(
        text + '\n[funnel_events]\nfile = "contacts.csv"\n[funnel_events.wide]\nid = "Record ID"\n'
        'colums = { "Became a Lead Date" = "lead" }\n'
    )
    result = runner.invoke(
        app, ["import", "--from", str(exports["hubspot"]), "--mapping", str(mapping), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "mapping.funnel_events.wide.colums: unknown key" in result.output
    assert "mapping.funnel_events.wide.columns: required key is missing" in result.output
    assert not (tmp_path / "o").exists()


def test_import_names_the_file_column_and_row_of_a_value_the_mapping_does_not_map(exports, tmp_path):
    source = tmp_path / "export"
    source.mkdir()
    contacts = pd.read_csv(exports["hubspot"] / "contacts.csv", dtype=str, keep_default_na=False)
    contacts.loc[6, "Original Source"] = "Carrier Pigeon"
    contacts.to_csv(source / "contacts.csv", index=False)
    (source / "deals.csv").write_text((exports["hubspot"] / "deals.csv").read_text())
    result = runner.invoke(app, ["import", "--from", str(source), "--mapping", "hubspot", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "mapping.customers.values.source_channel: contacts.csv column 'Original Source', row 8:" in result.output
    assert "'Carrier Pigeon'" in result.output


def test_import_refuses_an_output_directory_that_already_holds_tables(exports, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "customers.parquet").write_bytes(b"old")  # would win over the imported customers.csv when read
    args = ["import", "--from", str(exports["hubspot"]), "--mapping", "hubspot", "--out", str(out), "--format", "csv"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "already holds customers.parquet" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["customers.parquet"]
