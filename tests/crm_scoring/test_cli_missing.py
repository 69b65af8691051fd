"""`crm-score score` and `evaluate` with a champion missing: one line names it and why, the others still score,
and an empty prospect list says why it is empty."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_scoring import pipelines
from crm_scoring.cli import app

runner = CliRunner()
WHY = "crm_conversion@champion: no alias champion (skipped: too few won leads)"


@pytest.fixture
def no_conversion(use_store, monkeypatch):
    """The registry's champions, the conversion model missing (a small CRM where it was skipped)."""
    real = pipelines.champions

    def champions(kinds=None):
        bundles, missing = real(kinds)
        bundles.pop("conversion", None)
        return bundles, {**missing, "crm_conversion": WHY}

    monkeypatch.setattr(pipelines, "champions", champions)


def test_score_names_the_missing_model_in_one_line_and_why_the_list_is_empty(no_conversion, sim_dir, tmp_path):
    out, db = tmp_path / "scores.csv", tmp_path / "prospects.db"
    args = ["score", "--data", str(sim_dir), "--as-of", "2024-12-31", "--out", str(out), "--prospects-db", str(db)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("champions missing")]
    assert said == [f"champions missing (1): {WHY}"]
    assert "the prospect list is empty: no prospect: the conversion model was not loaded" in result.stderr
    scores = pd.read_csv(out)
    assert scores["churn_probability"].notna().any() and scores["conversion_probability"].isna().all()
    assert set(scores["evidence"]) <= {"none", "thin", "normal"}


def test_evaluate_names_the_missing_model(no_conversion, sim_dir):
    result = runner.invoke(app, ["evaluate", "--data", str(sim_dir), "--as-of", "2024-12-31"])
    assert result.exit_code == 0, result.output
    assert f"champions missing (1): {WHY}" in result.stderr
