"""Native model files: a saved bundle loads back to the same predictions, holds no pickle, old models are refused."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import AS_OF
from training.artifact import MANIFEST, OutdatedModelFormat, load_bundle_dir, save_bundle
from training.bundle import Calibrator, CategoryEncoder
from training.config import TrainConfig
from training.metadata import ModelMetadata

RETRAIN = "retrain it with `crm-score train`"


@pytest.fixture(scope="module")
def outcome(tables):
    from training.train import train_models

    return train_models(tables, AS_OF, TrainConfig(snapshots=2, conversion_snapshots=2))


@pytest.mark.parametrize("kind", ["conversion", "churn", "clv"])
def test_a_saved_bundle_loads_back_to_identical_predictions(outcome, kind, tmp_path):
    result = outcome.results[kind]
    bundle = result.bundle
    loaded = load_bundle_dir(save_bundle(bundle, tmp_path / "bundle"))
    features = result.holdout.features.head(300)
    x = bundle.matrix(features)
    np.testing.assert_array_equal(loaded.matrix(features), x)
    np.testing.assert_array_equal(loaded.predict(features), bundle.predict(features))
    np.testing.assert_array_equal(loaded.contributions(x), bundle.contributions(x))
    assert loaded.reasons(features.head(5)) == bundle.reasons(features.head(5))
    assert loaded.spec == bundle.spec
    assert loaded.metadata == bundle.metadata
    assert loaded.encoder.categories_ == bundle.encoder.categories_
    assert loaded.season_transfer == bundle.season_transfer
    assert (loaded.value_booster is None) == (bundle.value_booster is None)


def test_the_saved_directory_holds_text_and_json_only(outcome, tmp_path):
    directory = save_bundle(outcome.results["churn"].bundle, tmp_path / "bundle")
    names = sorted(p.name for p in directory.iterdir())
    assert names == [
        "booster.txt",
        "calibrator.json",
        "encoder.json",
        "manifest.json",
        "metadata.json",
        "season_transfer.json",
        "spec.json",
    ]
    for path in directory.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"
        if path.suffix == ".json":
            json.loads(path.read_text())
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["format_version"] == 1 and manifest["kind"] == "churn"


def test_a_model_saved_as_a_pickle_is_refused_with_a_request_to_retrain(tmp_path):
    (tmp_path / "bundle.joblib").write_bytes(b"\x80\x04old pickle")
    with pytest.raises(OutdatedModelFormat, match="older format; retrain it with `crm-score train`"):
        load_bundle_dir(tmp_path)


def test_an_unknown_format_version_is_refused(outcome, tmp_path):
    directory = save_bundle(outcome.results["clv"].bundle, tmp_path / "bundle")
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**manifest, "format_version": 0}))
    with pytest.raises(ValueError, match="model format 0") as error:
        load_bundle_dir(directory)
    assert RETRAIN in str(error.value)


def test_model_metadata_round_trips_through_json():
    meta = ModelMetadata(
        kind="conversion",
        registered_name="crm_conversion",
        as_of="2024-12-31 00:00:00",
        horizon_days=90,
        validation_cutoff="2024-10-02 00:00:00",
        holdout_window_days=90,
        training_cutoffs=("2024-09-02 00:00:00", "2024-08-03 00:00:00"),
        train_rows=1200,
        holdout_rows=400,
        best_iteration=57,
        refit_on_holdout=False,
        holdout_metrics={"roc_auc": 0.81, "ece": 0.02},
        baseline_metrics={"roc_auc": 0.7, "ece": float("nan")},
        data_window=("2023-01-01 00:00:00", "2024-12-31 00:00:00"),
        data_fingerprint="0123456789abcdef",
        trained_at="2026-01-01T00:00:00+00:00",
        tier_thresholds=(0.5, 0.25, 0.1),
    )
    back = ModelMetadata.from_dict(json.loads(json.dumps(meta.to_dict())))
    assert back.baseline_metrics["ece"] != back.baseline_metrics["ece"]  # NaN survives
    same_nan = {"roc_auc": 0.7, "ece": 0.0}
    assert replace(back, baseline_metrics=same_nan) == replace(meta, baseline_metrics=same_nan)
    assert back.training_cutoffs == meta.training_cutoffs and isinstance(back.tier_thresholds, tuple)
    assert replace(back, version="3").version == "3"


def test_estimators_store_arguments_and_learn_underscored_attributes():
    import pandas as pd

    encoder = CategoryEncoder(("source",), max_categories=2)
    assert vars(encoder) == {"columns": ("source",), "max_categories": 2}
    fitted = encoder.fit(pd.DataFrame({"source": ["web", "web", "ads", "fair", None]}))
    assert fitted is encoder and encoder.categories_ == {"source": ("web", "ads")}
    assert CategoryEncoder.from_dict(json.loads(json.dumps(encoder.to_dict()))).categories_ == encoder.categories_
    calibrator = Calibrator()
    assert vars(calibrator) == {"C": 1e4}
    margin = np.linspace(-3, 3, 40)
    assert calibrator.fit(margin, (margin + np.sin(7 * margin) > 0).astype(float)) is calibrator
    again = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    np.testing.assert_array_equal(again.transform(margin), calibrator.transform(margin))


def test_a_champion_in_the_old_format_gives_way_to_the_new_model(monkeypatch):
    from training import tracking

    def old_format(name, version, result, tables):
        raise OutdatedModelFormat(f"model {name} version {version} was saved in an older format; {RETRAIN}")

    monkeypatch.setattr(tracking, "alias_version", lambda name, alias: SimpleNamespace(version="1"))
    monkeypatch.setattr(tracking, "champion_figure", old_format)
    result = SimpleNamespace(kind="churn", metrics={"roc_auc": 0.7})
    decision = tracking.decide_version("crm_churn", "2", result, {}, "auto")
    assert decision.promoted and decision.reason == "the champion was saved in an older format"


def test_load_champions_names_a_registered_model_of_the_old_format(tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    from training.pyfunc import MODEL_CODE
    from training.registry import CHAMPION, configure, load_champions

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CRM_SCORING_MODELS_DIR", str(tmp_path))
    configure()
    old = tmp_path / "bundle.joblib"  # the artifact a model logged before this format carried
    old.write_bytes(b"\x80\x04old pickle")
    with mlflow.start_run():
        artifacts = {"bundle": str(old)}
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(MODEL_CODE), artifacts=artifacts, registered_model_name="crm_churn"
        )
    MlflowClient().set_registered_model_alias("crm_churn", CHAMPION, str(info.registered_model_version))
    bundles, missing = load_champions(("churn",))
    assert bundles == {}
    assert "model crm_churn version 1 was saved in an older format" in missing["crm_churn"]
    assert RETRAIN in missing["crm_churn"]
