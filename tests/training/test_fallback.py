"""The fallback tier: thin data trains a small calibrated model in place of LightGBM's full one, stated as such;
below the floor a model is skipped with the numbers and the setting; enough positives train the full model."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from simulator.simulate import SimConfig, simulate, write_simulation
from tests.conftest import AS_OF
from training.bundle import Calibrator
from training.config import REGISTERED_NAMES, TrainConfig
from training.cutoffs import plan_cutoffs
from training.dataset import InsufficientData, check_sufficiency
from training.evaluate import HEADLINE
from training.fitting import FALLBACK_TREE, fallback_calibrator
from training.summary import TrainSummary
from training.train import TrainOutcome, run_training, train_models

# A thin CRM: conversion has well under 50 won leads in its validation snapshot (the default `min_positives`).
THIN = TrainConfig(snapshots=3, conversion_snapshots=4)


@pytest.fixture(scope="module")
def thin_tables(tmp_path_factory):
    """A simulated export of 1,500 customers, loaded up to the training cutoff."""
    from crmdata.contract import load_tables

    out = tmp_path_factory.mktemp("thin")
    write_simulation(simulate(SimConfig(customers=1_500, seed=21)), out)
    return load_tables(out, as_of=AS_OF)


@pytest.fixture(scope="module")
def registered(thin_tables, tmp_path_factory):
    """Conversion trained on the thin export and registered in a temporary SQLite store."""
    store = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("CRM_SCORING_MODELS_DIR", str(store))
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        summary = run_training(thin_tables, AS_OF, THIN, promote="auto", kinds=("conversion",))
        yield summary, uri


def test_thin_data_registers_a_fallback_model_with_its_kind_and_reason(registered):
    from training.registry import load_bundle

    summary, uri = registered
    outcome = summary.outcome
    reason = outcome.fallbacks["conversion"]
    assert "fallback model" in reason and "positive example" in reason and "min_positives" in reason
    bundle = outcome.results["conversion"].bundle
    assert bundle.metadata.model_kind == "fallback"
    trees = bundle.booster.dump_model()["tree_info"]
    assert max(t["num_leaves"] for t in trees) <= FALLBACK_TREE["num_leaves"]
    # Registered under the usual name, its kind in the artifact, the version's tag, and the run's param and tags.
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = REGISTERED_NAMES["conversion"]
    version = summary.decisions["conversion"]["version"]
    assert client.get_model_version(name, version).tags["model_kind"] == "fallback"
    run = client.get_run(summary.decisions["conversion"]["run_id"])
    assert run.data.params["model_kind"] == "fallback"
    assert run.data.params["lgb.num_leaves"] == str(FALLBACK_TREE["num_leaves"])
    assert run.data.tags["fallback_reason"] == reason
    parent = client.get_run(summary.decisions["conversion"]["parent_run_id"])
    assert parent.data.tags["fallback.conversion"] == reason
    loaded, _ = load_bundle(name, version=version)
    assert loaded.metadata.model_kind == "fallback"
    features = outcome.results["conversion"].holdout.features.head(20)
    assert np.allclose(loaded.predict(features), bundle.predict(features))
    assert all(row for row in loaded.reasons(features.head(3)))  # reasons from the small trees' contributions


def test_the_fallback_is_calibrated_and_ranks_on_its_holdout(registered):
    result = registered[0].outcome.results["conversion"]
    y = result.holdout.labels.to_numpy(dtype=float)
    assert result.metrics["roc_auc"] > result.baseline["roc_auc"]
    assert abs(result.holdout_prediction.mean() - y.mean()) < 0.03


def _draw(rng, rows: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """A holdout of raw margins around a 10% rate whose true log-odds are the margin minus `shift`."""
    margin = rng.normal(-2.3, 1.0, rows)
    return margin, (rng.random(rows) < 1 / (1 + np.exp(shift - margin))).astype(float)


@pytest.mark.parametrize("shift", [0.0, 0.3, -0.3])
def test_on_a_small_holdout_the_fallback_calibrator_errs_less_than_plain_platt(shift):
    """150 holdout rows (about 15 positives): shrunk toward the booster, the calibration is nearer the truth."""
    rng = np.random.default_rng(5)
    grid = rng.normal(-2.3, 1.0, 5_000)
    truth = 1 / (1 + np.exp(shift - grid))
    platt, shrunk, bias = [], [], []
    for _ in range(60):
        margin, y = _draw(rng, 150, shift)
        platt.append(np.abs(Calibrator().fit(margin, y).transform(grid) - truth).mean())
        p = fallback_calibrator(margin, y).transform(grid)
        shrunk.append(np.abs(p - truth).mean())
        bias.append(p.mean() - truth.mean())
    assert np.mean(shrunk) < 0.8 * np.mean(platt) and max(shrunk) < max(platt)
    assert abs(np.mean(bias)) < 0.025  # a booster off by 0.3 in log-odds is mostly corrected


def test_on_a_large_holdout_the_fallback_calibrator_follows_it_as_platt_does():
    """The prior's weight fades: 50,000 rows of a booster miscalibrated in slope and intercept are followed."""
    rng = np.random.default_rng(6)
    margin = rng.normal(-2.3, 1.0, 50_000)
    y = (rng.random(len(margin)) < 1 / (1 + np.exp(0.5 - 1.3 * margin))).astype(float)
    platt, shrunk = Calibrator().fit(margin, y), fallback_calibrator(margin, y)
    assert abs(shrunk.slope_ - platt.slope_) < 0.05 and abs(shrunk.intercept_ - platt.intercept_) < 0.1
    assert abs(shrunk.slope_ - 1.3) < 0.1 and abs(shrunk.intercept_ + 0.5) < 0.2


def test_the_training_table_says_fallback_and_each_reason_is_given_once_in_full(registered):
    from rich.console import Console

    summary = registered[0]
    long = "churn: skipped, " + "a reason long enough to be cut by a narrow table column " * 3 + "END"
    outcome = TrainOutcome(
        as_of=summary.outcome.as_of,
        spec=summary.outcome.spec,
        results=summary.outcome.results,
        fallbacks=summary.outcome.fallbacks,
        skipped={"churn": long},
    )
    both = TrainSummary(outcome=outcome, decisions=summary.decisions)
    console = Console(width=140, record=True)
    console.print(both.table())
    table = " ".join(console.export_text().split())
    assert "crm_conversion │ fallback │" in table and "crm_churn │ - │" in table
    assert "END" not in table and "positive example" not in table  # no reason cut short in a column
    assert both.notes() == [summary.outcome.fallbacks["conversion"], long]


def test_below_the_floor_a_model_is_skipped_with_the_numbers_and_the_setting(thin_tables):
    config = TrainConfig(snapshots=3, conversion_snapshots=4, min_positives=10**6, fallback_min_positives=10**5)
    outcome = train_models(thin_tables, AS_OF, config, kinds=("conversion",))
    assert not outcome.results and not outcome.fallbacks
    reason = outcome.skipped["conversion"]
    assert "only" in reason and "positive example(s)" in reason
    assert "at least 100000" in reason and "fallback_min_positives" in reason and "min_positives" in reason


def test_enough_positives_for_the_rule_train_the_full_lightgbm_model(thin_tables):
    config = TrainConfig(snapshots=3, conversion_snapshots=4, min_positives=10, fallback_min_positives=5)
    outcome = train_models(thin_tables, AS_OF, config, kinds=("conversion",))
    assert not outcome.fallbacks
    bundle = outcome.results["conversion"].bundle
    assert bundle.metadata.model_kind == "lightgbm"
    trees = bundle.booster.dump_model()["tree_info"]
    assert max(t["num_leaves"] for t in trees) > FALLBACK_TREE["num_leaves"]


def test_too_few_clv_snapshots_are_named_as_the_cause_not_the_history():
    config = TrainConfig(clv_snapshots=3)
    plan = plan_cutoffs("clv", as_of=AS_OF, data_start=pd.Timestamp("2023-01-01"), config=config)
    with pytest.raises(InsufficientData) as caught:
        check_sufficiency("clv", plan, config, {"orders": pd.DataFrame({"x": [1]})})
    message = str(caught.value)
    assert "13 of them are needed" in message and "clv_snapshots allows 3" in message
    assert "days of history" not in message


def test_churn_and_clv_fall_back_too_and_predict_finite_values(thin_tables):
    config = TrainConfig(snapshots=3, clv_snapshots=13, min_positives=10**5)
    outcome = train_models(thin_tables, AS_OF, config, kinds=("churn", "clv"))
    assert set(outcome.fallbacks) == {"churn", "clv"} and not outcome.skipped
    assert "customer(s) with later orders" in outcome.fallbacks["clv"]
    for kind, result in outcome.results.items():
        bundle = result.bundle
        assert bundle.metadata.model_kind == "fallback", kind
        boosters = [b for b in (bundle.booster, bundle.value_booster) if b is not None]
        assert all(t["num_leaves"] <= 3 for b in boosters for t in b.dump_model()["tree_info"]), kind
        assert np.isfinite(result.holdout_prediction).all() and (result.holdout_prediction >= 0).all(), kind
        assert result.metrics[HEADLINE[kind]] > result.baseline[HEADLINE[kind]], kind
