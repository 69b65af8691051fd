"""Training: point-in-time safety, data sufficiency, model quality, and what MLflow logged and registered."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from crmdata.contract import TIME_COLUMN
from tests.conftest import AS_OF
from training.config import TrainConfig
from training.features import build_features, fit_feature_spec
from training.train import train_models

FAST = TrainConfig(snapshots=4, conversion_snapshots=4)


def _scramble_after(tables: dict, cutoff: pd.Timestamp) -> dict:
    """Copies of the tables in which every row at or after `cutoff` is changed (values, and new rows)."""
    out = {}
    for name, frame in tables.items():
        frame = frame.copy()
        late = frame[TIME_COLUMN[name]] >= cutoff
        for col in frame.columns:
            if col == TIME_COLUMN[name] or col == "customer_id":
                continue
            if pd.api.types.is_numeric_dtype(frame[col]):
                frame.loc[late, col] = frame.loc[late, col] * 7 + 13
        extra = frame[late].head(50).copy()
        if name == "orders":
            extra["order_id"] = extra["order_id"] + "-dup"
        if name == "customers":
            extra["customer_id"] = extra["customer_id"] + "-new"
        out[name] = pd.concat([frame, extra], ignore_index=True)
    return out


def test_training_never_reads_rows_at_or_after_the_cutoff(sim_dir):
    from crmdata.contract import load_tables

    cutoff = pd.Timestamp("2024-10-01")
    full = load_tables(sim_dir)  # holds rows up to the end of 2025
    config = TrainConfig(snapshots=2, conversion_snapshots=2, clv_horizon_days=180)
    kinds = ("conversion", "churn", "clv")
    before = {k: v[v[TIME_COLUMN[k]] < cutoff] for k, v in full.items()}
    a = train_models(full, cutoff, config, kinds)
    b = train_models(_scramble_after(full, cutoff), cutoff, config, kinds)
    c = train_models(before, cutoff, config, kinds)
    assert set(a.results) == set(kinds)
    assert a.spec == b.spec == c.spec  # the purchase season included
    for kind in kinds:
        dump = a.results[kind].bundle.model_strings()
        assert dump == b.results[kind].bundle.model_strings(), kind
        assert dump == c.results[kind].bundle.model_strings(), kind
    spec = fit_feature_spec(full, cutoff)
    pd.testing.assert_frame_equal(
        build_features(full, cutoff, spec), build_features(_scramble_after(full, cutoff), cutoff, spec)
    )


@pytest.fixture(scope="module")
def outcome(tables):
    return train_models(tables, AS_OF, FAST)


def test_every_model_beats_its_baseline_on_the_temporal_holdout(outcome):
    assert set(outcome.results) == {"conversion", "churn", "clv"}
    for kind, headline in (("conversion", "roc_auc"), ("churn", "roc_auc"), ("clv", "normalized_gini")):
        result = outcome.results[kind]
        assert result.metrics[headline] > result.baseline[headline], kind
    assert outcome.results["conversion"].metrics["roc_auc"] > 0.75
    assert outcome.results["churn"].metrics["ece"] < 0.08


def test_holdout_is_the_newest_snapshot_and_training_snapshots_precede_it(outcome):
    for kind, result in outcome.results.items():
        meta = result.bundle.metadata
        validation = pd.Timestamp(meta.validation_cutoff)
        assert validation + pd.Timedelta(days=meta.holdout_window_days) == AS_OF, kind
        assert all(pd.Timestamp(t) < validation for t in meta.training_cutoffs), kind
    # CLV's year-long windows are cut at the training cutoff: the holdout sees its first 90 days.
    assert outcome.results["clv"].bundle.metadata.holdout_window_days == 90
    exposure = outcome.results["clv"].holdout.exposure
    assert exposure.eq(90 / 365).all()


def test_reasons_are_plain_words_with_signed_contributions(outcome):
    result = outcome.results["conversion"]
    features = result.holdout.features.head(3)
    reasons = result.bundle.reasons(features, top=3)
    assert len(reasons) == 3
    for row in reasons:
        assert 1 <= len(row) <= 6
        assert all(isinstance(r["text"], str) and r["text"] and r["contribution"] != 0 for r in row)
        assert any(ch.isalpha() for r in row for ch in r["text"])


def test_churn_learns_no_season_from_its_snapshots_and_carries_its_calibration_to_the_cutoffs(outcome):
    from training.catalogue import season_blind

    bundle = outcome.results["churn"].bundle
    assert outcome.spec.purchase_season, "two years of simulated orders are enough to learn the season"
    assert bundle.season_transfer is not None
    gain = dict(zip(bundle.booster.feature_name(), bundle.booster.feature_importance("gain"), strict=True))
    assert all(gain[c] == 0 for c in season_blind("churn"))
    # The same customers scored as of the quietest and the busiest window of the learnt season: the quiet one
    # expects fewer orders, so more churn, and its season shows as the reason `season_next_90d`.
    x = bundle.matrix(outcome.results["churn"].holdout.features.head(200))
    means = np.asarray(bundle.season_transfer.window_season)
    quiet, busy = x.copy(), x.copy()
    for frame, day in ((quiet, int(means.argmin())), (busy, int(means.argmax()))):
        angle = 2 * np.pi * day / 365.25
        frame[:, bundle.spec.columns.index("cutoff_season_sin")] = np.sin(angle)
        frame[:, bundle.spec.columns.index("cutoff_season_cos")] = np.cos(angle)
    p_quiet, p_busy = bundle.predict_matrix(quiet), bundle.predict_matrix(busy)
    assert (p_quiet >= p_busy).all() and (p_quiet > p_busy).mean() > 0.9
    season = bundle.spec.columns.index("season_next_90d")
    assert (bundle.contributions(quiet)[:, season] > bundle.contributions(busy)[:, season]).mean() > 0.9


def test_unseen_categories_score_instead_of_failing(outcome):
    bundle = outcome.results["conversion"].bundle
    features = outcome.results["conversion"].holdout.features.head(2).copy()
    for col in bundle.spec.categorical:
        features[col] = "never-seen-before"
    p = bundle.predict(features)
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


def test_short_history_skips_a_model_and_says_what_is_needed(tables):
    config = TrainConfig(snapshots=2, conversion_snapshots=2, clv_horizon_days=700)
    outcome = train_models(tables, AS_OF, config, kinds=("clv",))
    assert "clv" not in outcome.results
    assert "700-day label windows cannot fit" in outcome.skipped["clv"]
    assert "days of history" in outcome.skipped["clv"]


def test_too_few_positives_even_for_the_fallback_skip_a_model(tables):
    config = TrainConfig(snapshots=2, min_positives=10**6, fallback_min_positives=10**6)
    outcome = train_models(tables, AS_OF, config, kinds=("churn",))
    assert "positive example" in outcome.skipped["churn"] and "fallback_min_positives" in outcome.skipped["churn"]


def test_customers_and_orders_alone_train_churn_and_clv(tables):
    partial = {"customers": tables["customers"], "orders": tables["orders"]}
    outcome = train_models(partial, AS_OF, FAST)
    assert set(outcome.results) == {"churn", "clv"}
    assert "funnel_events" in outcome.skipped["conversion"]


def test_customers_and_funnel_alone_train_conversion(tables):
    partial = {"customers": tables["customers"], "funnel_events": tables["funnel_events"]}
    outcome = train_models(partial, AS_OF, FAST)
    assert set(outcome.results) == {"conversion"}
    assert "orders" in outcome.skipped["churn"] and "orders" in outcome.skipped["clv"]


def test_training_logs_parent_and_child_runs_and_registers_champions(use_store):
    client = MlflowClient()
    experiment = client.get_experiment_by_name("crm-scoring")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert {r.data.params["kind"] for r in children} == {"conversion", "churn", "clv"}
    for run in children:
        assert "holdout_roc_auc" in run.data.metrics or "holdout_normalized_gini" in run.data.metrics
        assert any(k.startswith("baseline_") for k in run.data.metrics)
        for key in ("data_fingerprint", "training_cutoffs", "validation_cutoff", "train_rows", "horizon_days"):
            assert key in run.data.params, key
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert "plots/shap_importance.png" in plots
    for name in ("crm_conversion", "crm_churn", "crm_clv"):
        champion = client.get_model_version_by_alias(name, "champion")
        challenger = client.get_model_version_by_alias(name, "challenger")
        assert champion.version == challenger.version


def test_registered_model_scores_through_mlflow_pyfunc(use_store, tables):
    from training.registry import load_bundle

    model = mlflow.pyfunc.load_model("models:/crm_churn@champion")
    bundle, _ = load_bundle("crm_churn")
    features = build_features(tables, AS_OF, bundle.spec).head(20)
    out = model.predict(features)
    np.testing.assert_allclose(out["churn_probability"].to_numpy(), bundle.predict(features), rtol=1e-9)
    assert model.metadata.signature is not None


def test_a_worse_challenger_does_not_replace_the_champion(tables, sim_dir, tmp_path, monkeypatch):
    from training.config import LightGBMParams
    from training.train import run_training

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CRM_SCORING_MODELS_DIR", str(tmp_path))
    first = run_training(tables, AS_OF, FAST, promote="auto", kinds=("churn",), data_dir=str(sim_dir))
    assert first.decisions["churn"]["promoted"] and first.decisions["churn"]["reason"] == "no champion yet"
    weak = TrainConfig(snapshots=1, conversion_snapshots=1, lightgbm=LightGBMParams(max_rounds=1, num_leaves=2))
    summary = run_training(tables, AS_OF, weak, promote="auto", kinds=("churn",), data_dir=str(sim_dir))
    decision = summary.decisions["churn"]
    assert decision["promoted"] is False and decision["reason"] == "worse than the champion"
    assert decision["champion_figure"] > decision["new_figure"]
    # The champion learnt from this holdout's labels: its own holdout figure stands in for it.
    assert decision["champion_figure_source"] == "its own holdout (it has seen this one)"
    assert decision["champion_figure"] == pytest.approx(first.outcome.results["churn"].metrics["roc_auc"], abs=1e-6)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("crm_churn", "challenger").version) == decision["version"]
    assert (
        str(client.get_model_version_by_alias("crm_churn", "champion").version) == first.decisions["churn"]["version"]
    )
    forced = run_training(tables, AS_OF, weak, promote="always", kinds=("churn",), data_dir=str(sim_dir))
    assert forced.decisions["churn"]["promoted"]
    assert (
        str(client.get_model_version_by_alias("crm_churn", "champion").version) == forced.decisions["churn"]["version"]
    )
    run = client.get_run(decision["run_id"])
    assert run.data.params["promotion.reason"] == "worse than the champion"
    json.dumps(decision)  # the decision is plain data
    # Four months on, the holdout's labels all come after the champion's cutoff: it is scored there.
    from crmdata.contract import load_tables

    later = AS_OF + pd.Timedelta(days=120)
    newer = run_training(load_tables(sim_dir, as_of=later), later, FAST, kinds=("churn",), data_dir=str(sim_dir))
    assert newer.decisions["churn"]["champion_figure_source"] == "this holdout"
