"""The simulator: determinism, the truth's format, and the truth agreeing with the data it came with."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_scoring.cli import app
from crmdata.reading import read_table
from crmdata.validation import validate_dir
from simulator.simulate import SimConfig, simulate, write_simulation


@pytest.fixture(scope="module")
def large_sim():
    """A simulation large enough for sampling error to be small (about 6 s)."""
    return simulate(SimConfig(customers=30_000, seed=11))


def _realised(sim):
    """Realised conversion, churn and CLV outcomes after as_of, per truth row."""
    meta, truth = sim.meta, sim.truth_customers
    t = pd.Timestamp(meta["as_of"])
    fe, od = sim.tables["funnel_events"], sim.tables["orders"]
    in_window = lambda ts, days: (ts >= t) & (ts < t + pd.Timedelta(days=days))  # noqa: E731
    won = set(fe.loc[(fe.stage == "won") & in_window(fe.timestamp, meta["conversion_horizon_days"]), "customer_id"])
    bought = set(od.loc[in_window(od.timestamp, meta["churn_horizon_days"]), "customer_id"])
    future = od[in_window(od.timestamp, meta["clv_horizon_days"])].groupby("customer_id").amount.sum()
    return (
        truth.customer_id.isin(won).to_numpy(),
        ~truth.customer_id.isin(bought).to_numpy(),
        truth.customer_id.map(future).fillna(0.0).to_numpy(),
    )


def test_same_seed_writes_the_same_bytes(tmp_path):
    cfg = SimConfig(customers=800, seed=5)
    for name in ("a", "b"):
        write_simulation(simulate(cfg), tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 8
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_another_seed_gives_other_data():
    a = simulate(SimConfig(customers=500, seed=1)).tables["orders"]
    b = simulate(SimConfig(customers=500, seed=2)).tables["orders"]
    assert not a.equals(b)


def test_simulated_data_passes_the_contract_in_both_formats(tmp_path):
    sim = simulate(SimConfig(customers=600, seed=3))
    for fmt in ("parquet", "csv"):
        write_simulation(sim, tmp_path / fmt, fmt)
        report = validate_dir(tmp_path / fmt)
        assert report.ok, [str(p) for p in report.problems]
        orders = read_table(tmp_path / fmt, "orders")
        assert len(orders) == len(sim.tables["orders"])
        assert (tmp_path / fmt / "truth" / f"customers.{fmt}").exists()


def test_truth_files_follow_the_documented_format(tmp_path):
    sim = simulate(SimConfig(customers=1_000, seed=4))
    write_simulation(sim, tmp_path)
    meta = json.loads((tmp_path / "truth" / "meta.json").read_text())
    assert meta["as_of"].startswith("2024-12-31")
    assert (meta["conversion_horizon_days"], meta["churn_horizon_days"], meta["clv_horizon_days"]) == (90, 90, 365)
    assert meta["seed"] == 4 and meta["customers"] == 1_000
    channels = json.loads((tmp_path / "truth" / "channels.json").read_text())
    assert channels["period_days"] == 7
    assert set(channels["channels"]) == {"search", "social", "email", "event"}
    for spec in channels["channels"].values():
        assert set(spec["leads_per_period"]) == {"base", "max", "half_saturation", "shape"}
        assert spec["value_per_lead"] > 0 and spec["current_spend_per_period"] > 0
    truth = pd.read_parquet(tmp_path / "truth" / "customers.parquet")
    assert list(truth.columns) == ["customer_id", "p_conversion", "p_churn", "expected_clv"]
    created = sim.tables["customers"].set_index("customer_id").created_at
    assert (created[truth.customer_id] < pd.Timestamp(meta["as_of"])).all()
    assert truth.expected_clv.notna().all() and (truth.expected_clv >= 0).all()
    for col in ("p_conversion", "p_churn"):
        assert truth[col].notna().any() and truth[col].dropna().between(0, 1).all(), col


def test_truth_eligibility_follows_the_targets(large_sim):
    truth, t = large_sim.truth_customers, pd.Timestamp(large_sim.meta["as_of"])
    fe, od = large_sim.tables["funnel_events"], large_sim.tables["orders"]
    last_stage = fe[fe.timestamp < t].groupby("customer_id").stage.last()
    open_ids = set(last_stage[~last_stage.isin(["won", "lost"])].index)
    assert set(truth.loc[truth.p_conversion.notna(), "customer_id"]) == open_ids
    buyers = set(od.loc[od.timestamp < t, "customer_id"])
    assert set(truth.loc[truth.p_churn.notna(), "customer_id"]) == buyers


@pytest.mark.parametrize("target", ["conversion", "churn"])
def test_mean_truth_probability_matches_the_realised_rate(large_sim, target):
    converted, churned, _ = _realised(large_sim)
    col, outcome = ("p_conversion", converted) if target == "conversion" else ("p_churn", churned)
    p = large_sim.truth_customers[col].to_numpy()
    mask = ~np.isnan(p)
    assert mask.sum() > 2_000
    standard_error = np.sqrt((p[mask] * (1 - p[mask])).sum()) / mask.sum()
    assert abs(p[mask].mean() - outcome[mask].mean()) < 4 * standard_error


def test_expected_clv_matches_realised_revenue(large_sim):
    _, _, revenue = _realised(large_sim)
    expected = large_sim.truth_customers.expected_clv.to_numpy()
    standard_error = revenue.std() * np.sqrt(len(revenue))
    assert abs(expected.sum() - revenue.sum()) < 4 * standard_error
    assert abs(expected.sum() / revenue.sum() - 1) < 0.1


def test_oracle_separates_outcomes_but_not_perfectly(large_sim):
    from sklearn.metrics import roc_auc_score

    converted, churned, _ = _realised(large_sim)
    truth = large_sim.truth_customers
    for col, outcome in (("p_conversion", converted), ("p_churn", churned)):
        mask = truth[col].notna().to_numpy()
        auc = roc_auc_score(outcome[mask], truth.loc[mask, col])
        assert 0.75 <= auc <= 0.93, (col, auc)


def test_top_fifth_of_customers_brings_over_half_the_revenue(large_sim):
    revenue = large_sim.tables["orders"].groupby("customer_id").amount.sum().sort_values(ascending=False)
    assert revenue.head(len(revenue) // 5).sum() / revenue.sum() > 0.5


def test_weekly_leads_follow_the_true_response_curves(large_sim):
    spend = large_sim.tables["channel_spend"]
    customers = large_sim.tables["customers"]
    start = pd.Timestamp(large_sim.meta["start"])
    week = ((customers.created_at - start).dt.days // 7).rename("week")
    leads = customers.groupby([week, customers.source_channel]).size()
    for name, curve in large_sim.truth_channels["channels"].items():
        s = spend[spend.channel == name].spend.to_numpy()[:-1]  # the last week is partial
        p = curve["leads_per_period"]
        expected = p["base"] + p["max"] * s ** p["shape"] / (s ** p["shape"] + p["half_saturation"] ** p["shape"])
        realised = leads.xs(name, level="source_channel").reindex(range(len(s)), fill_value=0).to_numpy()
        assert abs(realised.sum() / expected.sum() - 1) < 0.05, name
        assert np.corrcoef(expected, realised)[0, 1] > 0.3, name


def test_cheap_channel_brings_less_value_per_lead_than_events(large_sim):
    channels = large_sim.truth_channels["channels"]
    assert channels["event"]["value_per_lead"] > 3 * channels["social"]["value_per_lead"]


def test_saturated_scenario_raises_every_budget_and_pushes_social_past_saturation():
    sim = simulate(SimConfig(customers=1_000, seed=2, scenario="saturated"))
    social = sim.truth_channels["channels"]["social"]
    assert social["current_spend_per_period"] > 3 * social["leads_per_period"]["half_saturation"]


def test_optional_fields_are_sometimes_missing(large_sim):
    customers = large_sim.tables["customers"]
    for col in ("industry", "region", "employees", "annual_revenue"):
        share = customers[col].isna().mean()
        assert 0.01 < share < 0.2, col


def test_simulate_command_writes_tables_and_truth(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--customers", "300", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "customers 300" in result.output
    for name in ("customers", "touchpoints", "funnel_events", "orders", "channel_spend"):
        assert (tmp_path / f"{name}.csv").exists()
    assert (tmp_path / "truth" / "customers.csv").exists()


def test_simulate_command_rejects_an_unknown_scenario(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--scenario", "nope"])
    assert result.exit_code == 2
    assert "unknown scenario" in result.output
