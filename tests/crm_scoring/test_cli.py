"""The crm-score commands end to end on the trained session store: score, evaluate, budget, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from crm_scoring.cli import app
from training.scoring import SCORE_COLUMNS

JUDGES = Path(__file__).resolve().parents[3] / "shared" / "tools"
runner = CliRunner()


def test_score_writes_one_row_per_customer_with_the_contract_columns(use_store, sim_dir, tmp_path):
    out = tmp_path / "scores.parquet"
    result = runner.invoke(app, ["score", "--data", str(sim_dir), "--as-of", "2024-12-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out)
    assert list(scores.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    assert scores.customer_id.is_unique
    leads = scores[scores.conversion_probability.notna()]
    assert set(leads.conversion_tier) <= {"A", "B", "C", "D"} and leads.conversion_score.between(0, 100).all()
    assert set(scores.churn_risk.dropna()) <= {"low", "medium", "high"}
    reasons = json.loads(leads.iloc[0].top_reasons)["conversion"]
    assert reasons and all({"feature", "contribution", "text"} <= set(r) for r in reasons)


def test_score_refuses_a_horizon_the_champion_was_not_trained_for(use_store, sim_dir, tmp_path):
    result = runner.invoke(
        app,
        [
            "score",
            "--data",
            str(sim_dir),
            "--as-of",
            "2024-12-31",
            "--out",
            str(tmp_path / "s.csv"),
            "--churn-horizon-days",
            "30",
        ],
    )
    assert result.exit_code == 2
    assert "90-day horizon, not 30 days" in result.output


def test_evaluate_shows_the_oracle_beside_the_model(use_store, sim_dir):
    result = runner.invoke(app, ["evaluate", "--data", str(sim_dir), "--as-of", "2024-12-31", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)["models"]
    for kind, metric in (("conversion", "roc_auc"), ("churn", "roc_auc"), ("clv", "normalized_gini")):
        assert 0.5 < figures[kind]["model"][metric] <= figures[kind]["oracle"][metric] + 0.05, kind


def test_budget_json_advice_passes_the_independent_judge(use_store, sim_dir, tmp_path):
    result = runner.invoke(app, ["budget", "--data", str(sim_dir), "--as-of", "2024-12-31", "--json"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)
    assert advice["period_days"] == 7
    assert {"channel", "current_spend", "recommended_spend"} <= set(advice["channels"][0])
    advice_file = tmp_path / "advice.json"
    advice_file.write_text(result.output)
    judged = subprocess.run(
        [sys.executable, str(JUDGES / "judge_budget.py"), str(sim_dir), str(advice_file), "--need", "0.5"],
        capture_output=True,
        text=True,
    )
    assert "in bounds True, same total True" in judged.stdout, judged.stdout + judged.stderr
    assert judged.returncode == 0, judged.stdout


def test_budget_profit_advice_passes_the_independent_judge(use_store, sim_dir, tmp_path):
    args = ["budget", "--data", str(sim_dir), "--as-of", "2024-12-31", "--objective", "profit", "--margin", "0.3"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)
    assert advice["constraints"]["objective"] == "profit" and advice["constraints"]["margin"] == 0.3
    assert advice["total"]["expected_profit_recommended"] >= advice["total"]["expected_profit_current"]
    assert any(" in total " in s for s in advice["sentences"])
    advice_file = tmp_path / "advice.json"
    advice_file.write_text(result.output)
    judged = subprocess.run(
        [sys.executable, str(JUDGES / "judge_budget.py"), str(sim_dir), str(advice_file), "--objective", "profit",
         "--margin", "0.3", "--need", "0.9"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert judged.returncode == 0, judged.stdout + judged.stderr
    table = runner.invoke(app, [*args, "--min-move", "0.05"])
    assert table.exit_code == 0 and "objective: profit = 0.3 x value - spend" in table.output


def test_budget_plan_prints_the_what_if(use_store, sim_dir):
    args = ["budget", "--data", str(sim_dir), "--as-of", "2024-12-31", "--plan", "search=4000", "--plan", "event=3000"]
    result = runner.invoke(app, [*args, "--margin", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["channel"]: r for r in json.loads(result.output)["channels"]}
    assert rows["search"]["spend"] == 4000.0 and rows["event"]["spend"] == 3000.0
    assert rows["social"]["spend"] == rows["social"]["current_spend"] and "profit" in rows["search"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "What if, per week" in table.output
    unknown = runner.invoke(app, ["budget", "--data", str(sim_dir), "--as-of", "2024-12-31", "--plan", "radio=5"])
    assert unknown.exit_code == 2 and "radio" in unknown.output


def test_budget_min_max_and_current_spend_options_reach_the_advice(use_store, sim_dir):
    args = ["budget", "--data", str(sim_dir), "--as-of", "2024-12-31", "--json", "--current-spend", "search=4000",
            "--max-spend", "search=4100", "--min-spend", "social=3000"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)
    assert advice["constraints"]["current_spend"] == {"search": 4000.0}
    assert advice["constraints"]["max_spend"] == {"search": 4100.0}
    rows = {r["channel"]: r for r in advice["channels"]}
    assert rows["search"]["current_spend"] == 4000.0 and rows["search"]["recommended_spend"] <= 4100.0 + 1e-6
    assert rows["social"]["recommended_spend"] >= 3000.0 - 1e-6


def test_budget_amount_options_name_the_option_and_the_form(tmp_path):
    for option, text in [("--min-spend", "search"), ("--max-spend", "search=lots"), ("--current-spend", "=5"),
                         ("--plan", "search=-3")]:  # fmt: skip
        result = runner.invoke(app, ["budget", "--data", str(tmp_path), option, text])
        assert result.exit_code == 2, (option, result.output)
        assert option in result.output and "channel=amount" in result.output, result.output
    both = runner.invoke(app, ["budget", "--data", str(tmp_path), "--objective", "profit", "--total-budget", "9"])
    assert both.exit_code == 2 and "--total-budget applies to --objective value" in both.output


def test_training_run_logs_the_channel_report(use_store):
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name("crm-scoring")
    parents = [r for r in client.search_runs([experiment.experiment_id]) if not r.data.tags.get("mlflow.parentRunId")]
    files = {a.path for a in client.list_artifacts(parents[-1].info.run_id, "channels")}
    assert {"channels/budget_advice.json", "channels/budget_spend.png", "channels/performance.csv"} <= files


def test_train_reports_every_contract_problem_and_exits_2(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id,created_at\nc1,2024-01-01\nc1,not-a-date\n")
    (tmp_path / "orders.csv").write_text("customer_id,order_id,timestamp,amount\nc9,o1,2024-02-01,abc\n")
    result = runner.invoke(app, ["train", "--data", str(tmp_path)])
    assert result.exit_code == 2
    for expected in ("customers.created_at", "customers.customer_id", "orders.amount", "orders.customer_id"):
        assert expected in result.output, expected


def test_train_on_too_short_a_history_says_what_is_missing(sim_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    result = runner.invoke(app, ["train", "--data", str(sim_dir), "--as-of", "2023-03-01"])
    assert result.exit_code == 1
    assert "cannot fit before 2023-03-01" in result.output
    assert "no model could be trained" in result.output


def test_a_cutoff_that_is_not_a_date_gets_a_clear_error(sim_dir):
    for command in ("evaluate", "score"):
        args = [command, "--data", str(sim_dir), "--as-of", "garbage"]
        if command == "score":
            args += ["--out", "unused.csv"]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (command, result.output)
        assert "'garbage' is not an ISO 8601 date" in result.output


def test_train_with_a_cutoff_before_every_customer_names_the_cutoff(tmp_path, monkeypatch):
    from tests.crmdata.test_contract import valid_tables, write_dir

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    data = write_dir(tmp_path / "export", valid_tables())
    result = runner.invoke(app, ["train", "--data", str(data), "--as-of", "2020-01-01"])
    assert result.exit_code == 2, result.output
    assert "customers.csv: column 'created_at'" in result.output
    assert "no row before the cutoff 2020-01-01" in result.output
    assert "NaT" not in result.output


def test_demo_checks_the_serving_settings_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_SCORING_API_KEYS", "topsecret-demo-key:admin,x:root")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 2 and "CRM_SCORING_API_KEYS" in result.output
    assert "topsecret-demo-key" not in result.output and not (tmp_path / "demo").exists()
