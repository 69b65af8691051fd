"""Faults around training: a champion whose files are cut, an unreachable tracking server, a training that dies
between models, runs a kill left RUNNING, and an embedded store moved to another folder."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from crm_scoring.cli import app
from simulator.simulate import SimConfig, simulate, write_simulation
from tests.factories import point_mlflow_at
from training.config import TrainConfig

AS_OF = pd.Timestamp("2024-12-31")
KINDS = ("conversion", "churn")
TINY = TrainConfig(snapshots=3, conversion_snapshots=3, clv_snapshots=3, min_positives=15)
TINY_TOML = "snapshots = 3\nconversion_snapshots = 3\nclv_snapshots = 3\nmin_positives = 15\n"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2,500-customer export and a store under `a/models` with conversion and churn champions (version 1)."""
    from crm_scoring.pipelines import Export, train
    from crmdata.contract import load_tables
    from crmdata.funnel import DEFAULT_FUNNEL

    root = tmp_path_factory.mktemp("faults")
    write_simulation(simulate(SimConfig(customers=2_500, seed=5)), root / "sim")
    tables = load_tables(root / "sim", as_of=AS_OF)
    models = root / "a" / "models"
    with pytest.MonkeyPatch.context() as patch:
        point_mlflow_at(patch, models)
        summary = train(Export(tables, AS_OF, DEFAULT_FUNNEL), TINY, data_dir="sim", kinds=KINDS)
    assert set(summary.outcome.results) == set(KINDS)
    return {"root": root, "sim": root / "sim", "tables": tables, "models": models, "summary": summary}


def _copy_store(tiny, to: Path, monkeypatch) -> Path:
    """A relocated copy of the tiny store in `to`, in use for the test."""
    from training.maintenance import relocate_store

    models = to / "models"
    shutil.copytree(tiny["models"], models)
    relocate_store(models)
    point_mlflow_at(monkeypatch, models)
    return models


def _champion_file(models: Path, kind: str, name: str) -> Path:
    """A file of the one bundle of `kind` stored under `models`."""
    for manifest in (models / "artifacts").rglob("bundle/manifest.json"):
        if json.loads(manifest.read_text())["kind"] == kind:
            return manifest.parent / name
    raise AssertionError(f"no {kind} bundle under {models}")


def test_a_cut_model_file_is_named_not_an_eof(tmp_path, tiny, monkeypatch):
    from training.artifact import ModelLoadError, load_bundle_dir

    models = _copy_store(tiny, tmp_path, monkeypatch)
    booster = _champion_file(models, "churn", "booster.txt")
    booster.write_bytes(booster.read_bytes()[:200])
    cut = r"bundle/booster\.txt: (not a complete LightGBM model file|cut short or altered)"
    with pytest.raises(ModelLoadError, match=cut):
        load_bundle_dir(booster.parent)
    manifest = booster.parent / "manifest.json"
    manifest.write_text(manifest.read_text()[:20])
    with pytest.raises(ModelLoadError, match=r"bundle/manifest\.json: unexpected end of JSON"):
        load_bundle_dir(booster.parent)


def test_a_truncated_champion_is_named_and_replaced_and_every_model_trains(tmp_path, tiny, monkeypatch):
    models = _copy_store(tiny, tmp_path, monkeypatch)
    booster = _champion_file(models, "conversion", "booster.txt")
    booster.write_bytes(booster.read_bytes()[: len(booster.read_bytes()) // 3])
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    args = ["train", "--data", str(tiny["sim"]), "--as-of", "2024-12-31", "--config", str(tmp_path / "tiny.toml")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Aborted" not in result.output
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("crm_conversion", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("crm_churn", "challenger").version) == "2"  # churn trained too
    run = client.get_run(client.get_model_version("crm_conversion", "2").run_id)
    reason = run.data.params["promotion.reason"]
    assert reason.startswith("the champion (version 1) could not be loaded: ") and reason.endswith("; replaced")
    assert "bundle/booster.txt" in reason  # the file, named within the model (no absolute path)


def test_the_preflight_names_a_broken_champion_with_version_and_file(tmp_path, tiny, monkeypatch, caplog):
    from training.preflight import check_before_training

    models = _copy_store(tiny, tmp_path, monkeypatch)
    manifest = _champion_file(models, "churn", "manifest.json")
    manifest.write_text("")
    with caplog.at_level("WARNING"):
        broken = check_before_training(KINDS)
    assert [(b.name, b.version) for b in broken] == [("crm_churn", "1")]
    assert "bundle/manifest.json" in broken[0].error
    assert "the champion of crm_churn (version 1) could not be loaded: bundle/manifest.json" in caplog.text


def test_an_unreachable_tracking_server_fails_in_seconds_in_one_line_and_fits_nothing(tiny, tmp_path, monkeypatch):
    from tests.servers import free_port
    from training import train as training_train

    fitted = []
    monkeypatch.setattr(training_train, "fit_bundle", lambda *a, **k: fitted.append(a) or 1 / 0)
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CRM_SCORING_MODELS_DIR", str(tmp_path))
    began = time.monotonic()
    result = runner.invoke(app, ["train", "--data", str(tiny["sim"]), "--as-of", "2024-12-31"])
    assert time.monotonic() - began < 30
    assert result.exit_code == 1 and not fitted
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: the tracking server at {uri} is unreachable (")


def test_a_training_that_dies_between_models_moves_no_champion_and_fails_its_runs(tmp_path, tiny, monkeypatch):
    from training import tracking

    _copy_store(tiny, tmp_path, monkeypatch)
    logged = []
    real = tracking.log_model_run

    def dies_at_the_second(result, *args):
        if logged:
            raise RuntimeError("killed between models")
        logged.append(result.kind)
        return real(result, *args)

    monkeypatch.setattr(tracking, "log_model_run", dies_at_the_second)
    outcome = tiny["summary"].outcome
    with pytest.raises(RuntimeError, match="killed between models"):
        tracking.log_and_register(outcome, tiny["tables"], TINY, "always", "sim")
    client = MlflowClient()
    for name in ("crm_conversion", "crm_churn"):
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1", name
    experiment = client.get_experiment_by_name("crm-scoring")
    newest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=3)
    statuses = {run.info.run_name: run.info.status for run in newest}
    assert statuses == {"train as of 2024-12-31": "FAILED", "conversion": "FINISHED", "churn": "FAILED"}


def test_champions_of_one_training_are_one_set_and_a_cut_move_is_mixed(tmp_path, tiny, monkeypatch):
    from training import tracking
    from training.registry import champion_set_is_consistent, load_champions

    _copy_store(tiny, tmp_path, monkeypatch)
    bundles, missing = load_champions(KINDS)
    assert not missing and champion_set_is_consistent(bundles)
    parent = tiny["summary"].decisions["churn"]["parent_run_id"]
    assert {b.metadata.champion_set for b in bundles.values()} == {parent}
    decisions = tracking.log_and_register(tiny["summary"].outcome, tiny["tables"], TINY, "always", "sim")
    assert champion_set_is_consistent(load_champions(KINDS)[0])
    versions = {tracking.REGISTERED_NAMES[k]: d["version"] for k, d in decisions.items()}
    assert versions == {"crm_conversion": "2", "crm_churn": "2"}

    class DiesAtTheSecondAlias(MlflowClient):
        def set_registered_model_alias(self, name, alias, version):
            if name == "crm_churn":
                raise KeyboardInterrupt
            super().set_registered_model_alias(name, alias, version)

    monkeypatch.setattr(tracking, "MlflowClient", DiesAtTheSecondAlias)
    with pytest.raises(KeyboardInterrupt):
        tracking.move_champions({"crm_conversion": "1", "crm_churn": "1"}, "a-later-training")
    assert not champion_set_is_consistent(load_champions(KINDS)[0])


def test_runs_cleanup_fails_only_runs_left_running_for_longer_than_asked(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    point_mlflow_at(monkeypatch, models)
    client = MlflowClient()
    experiment = client.create_experiment("crm-scoring")
    hours_ago = int((time.time() - 5 * 3600) * 1000)
    killed = client.create_run(experiment, start_time=hours_ago).info.run_id
    current = client.create_run(experiment).info.run_id
    result = runner.invoke(app, ["runs", "cleanup", "--older-than-hours", "2"])
    assert result.exit_code == 0, result.output
    assert "marked 1 run(s) FAILED" in result.output and killed in result.output
    assert client.get_run(killed).info.status == "FAILED"
    assert client.get_run(current).info.status == "RUNNING"


def test_a_moved_store_reads_its_own_files_after_relocate(tmp_path, tiny, monkeypatch):
    from training.registry import load_champions

    models = tmp_path / "b" / "models"
    shutil.copytree(tiny["models"], models)
    point_mlflow_at(monkeypatch, models)
    bundles, missing = load_champions(KINDS)
    assert bundles == {}
    assert "was moved or copied from" in missing["crm_churn"] and "crm-score store relocate" in missing["crm_churn"]
    result = runner.invoke(app, ["store", "relocate"])
    assert result.exit_code == 0, result.output
    assert "relocated" in result.output and (models / "artifacts").as_uri() in result.output
    original = tiny["models"].parent / "elsewhere"
    tiny["models"].rename(original)  # the original folder is gone: only the moved files can be read
    try:
        bundles, missing = load_champions(KINDS)
    finally:
        original.rename(tiny["models"])
    assert not missing and set(bundles) == set(KINDS)
    experiment = MlflowClient().get_experiment_by_name("crm-scoring")
    assert experiment.artifact_location == (models / "artifacts").as_uri()
    again = runner.invoke(app, ["store", "relocate"])
    assert "already in place" in again.output


def _mix(tiny, client: MlflowClient, monkeypatch) -> str:
    """Champions from two trainings: a later training (a real run) dies after moving crm_conversion's alias."""
    from training import tracking

    later = client.create_run(client.get_experiment_by_name("crm-scoring").experiment_id).info.run_id

    class DiesAtTheSecondAlias(MlflowClient):
        def set_registered_model_alias(self, name, alias, version):
            if name == "crm_churn":
                raise KeyboardInterrupt
            super().set_registered_model_alias(name, alias, version)

    versions = tracking.log_and_register(tiny["summary"].outcome, tiny["tables"], TINY, "never", "sim")
    assert {d["version"] for d in versions.values()} == {"2"}
    with monkeypatch.context() as patch:
        patch.setattr(tracking, "MlflowClient", DiesAtTheSecondAlias)
        with pytest.raises(KeyboardInterrupt):
            tracking.move_champions({"crm_conversion": "2", "crm_churn": "2"}, later)
    return later


def test_champions_repair_finishes_the_move_a_killed_training_left_half_done(tmp_path, tiny, monkeypatch):
    from training.registry import champion_set_is_consistent, load_champions

    _copy_store(tiny, tmp_path, monkeypatch)
    client = MlflowClient()
    later = _mix(tiny, client, monkeypatch)
    shown = runner.invoke(app, ["champions", "show"])
    assert shown.exit_code == 1 and "mixed champion set: crm_churn version 1 from training" in shown.output
    repaired = runner.invoke(app, ["champions", "repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "crm_churn: champion moved to version 2" in repaired.output and later in repaired.output
    bundles, missing = load_champions(KINDS)
    assert not missing and champion_set_is_consistent(bundles)
    assert {b.metadata.version for b in bundles.values()} == {"2"}
    assert {b.metadata.champion_set for b in bundles.values()} == {later}
    again = runner.invoke(app, ["champions", "repair"])
    assert again.exit_code == 0 and "nothing to repair" in again.output


def test_champions_repair_as_is_keeps_the_versions_and_marks_them_one_set(tmp_path, tiny, monkeypatch):
    from training.registry import champion_set_is_consistent, load_champions

    _copy_store(tiny, tmp_path, monkeypatch)
    client = MlflowClient()
    _mix(tiny, client, monkeypatch)
    repaired = runner.invoke(app, ["champions", "repair", "--as-is"])
    assert repaired.exit_code == 0, repaired.output
    assert "crm_churn: version 1 kept as champion" in repaired.output and "moved" not in repaired.output
    bundles, _ = load_champions(KINDS)
    assert champion_set_is_consistent(bundles)
    assert {k: b.metadata.version for k, b in bundles.items()} == {"conversion": "2", "churn": "1"}
    assert client.get_run(bundles["churn"].metadata.champion_set).info.run_name == "repair champion set"


def test_champions_repair_joins_unmarked_champions_under_a_recorded_run(tmp_path, tiny, monkeypatch):
    from training.registry import CHAMPION_SET, champion_set_is_consistent, load_champions

    _copy_store(tiny, tmp_path, monkeypatch)
    client = MlflowClient()
    for name in ("crm_conversion", "crm_churn"):  # as a release before the marks, or aliases set by hand, leave them
        client.delete_model_version_tag(name, "1", CHAMPION_SET)
    assert not champion_set_is_consistent(load_champions(KINDS)[0])
    repaired = runner.invoke(app, ["champions", "repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "crm_churn: version 1 kept as champion" in repaired.output
    bundles, _ = load_champions(KINDS)
    assert champion_set_is_consistent(bundles)
    (mark,) = {b.metadata.champion_set for b in bundles.values()}
    run = client.get_run(mark)
    assert run.info.run_name == "repair champion set" and run.data.params == {
        "champion.crm_conversion": "1",
        "champion.crm_churn": "1",
    }
