"""A real `crm-score train` process killed with SIGKILL at each step of a training: the store it leaves keeps
loadable champions (one set unless the kill fell among the alias moves, where the set is flagged mixed and
`champions repair` finishes the move), its runs are marked FAILED by `runs cleanup`, and the next training
succeeds and leaves one set again.

The kill comes from the test, not the product: a child Python wraps one function (where it is looked up) so that
its k-th matching call kills the process, then runs the CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from typer.testing import CliRunner

from crm_scoring.cli import app
from simulator.simulate import SimConfig, simulate, write_simulation
from tests.factories import point_mlflow_at
from tests.servers import ROOT

pytestmark = pytest.mark.slow

KINDS = ("conversion", "churn")  # what the CLI trains on this data (CLV's year-long windows do not fit)
TINY_TOML = "snapshots = 3\nconversion_snapshots = 3\nclv_snapshots = 3\nmin_positives = 10\n"
PARENT = "train as of 2024-12-31"
runner = CliRunner()

# Runs in the child: wrap `target` ("module:attr" or "module:Class.method") so that its `call`-th call whose
# arguments' repr holds every string of `match` kills the process, `before` or `after` the real call.
KILLER = """
import importlib, os, signal, sys

import crm_scoring

target, match, call, when, args = {spec!r}
module_name, _, attr = target.partition(":")
owner = importlib.import_module(module_name)
*path, name = attr.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, name)
hits = []


def die():
    # to the process's own stderr: the training may have redirected `sys.stderr` (MLflow's notices go to the log)
    print(f"killed at {{target}} call {{call}} {{when}} ({{crm_scoring.__file__}})", file=sys.__stderr__, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def wrapper(*a, **k):
    if all(s in repr((a, k)) for s in match):
        hits.append(1)
        now = len(hits) == call
    else:
        now = False
    if now and when == "before":
        die()
    out = real(*a, **k)
    if now and when == "after":
        die()
    return out


setattr(owner, name, wrapper)
from crm_scoring.cli import app

app(args, prog_name="crm-score")
"""


@dataclass(frozen=True)
class KillPoint:
    """Where the training dies, with which promotion policy, and what it must leave behind."""

    target: str
    when: str = "after"
    call: int = 1
    match: tuple[str, ...] = ()
    promote: str = "auto"
    running: frozenset[str] = frozenset()  # the runs it leaves RUNNING, by name
    moved: tuple[str, ...] = ()  # the models whose @champion it moved to its new version
    mixed: bool = False  # whether the champions it leaves carry two trainings' marks
    half_written: bool = False  # whether it leaves a model folder in the store without its booster


ARTIFACTS = "<artifacts>"  # stands for the store's artifact folder in `match`
KILL_POINTS = {
    "in the preflight, after the first champion loaded": KillPoint("training.registry:load_bundle"),
    "mid-boosting of the first model": KillPoint("lightgbm:Booster.update", when="before", call=10),
    "while the first model's files are copied into the store": KillPoint(
        "shutil:copy2",
        when="before",
        match=(ARTIFACTS, "booster.txt"),
        running=frozenset({PARENT, "conversion"}),
        half_written=True,
    ),
    "between models, the first one registered": KillPoint(
        "training.tracking:log_model_run", running=frozenset({PARENT, "conversion"})
    ),
    "after the new versions are marked, before any alias moves": KillPoint(
        "mlflow:MlflowClient.set_model_version_tag",
        call=2,
        match=("'champion_set'",),
        promote="always",
        running=frozenset({PARENT}),
    ),
    "after the first champion alias moved": KillPoint(
        "mlflow:MlflowClient.set_registered_model_alias",
        match=("'champion'",),
        promote="always",
        running=frozenset({PARENT}),
        moved=("crm_conversion",),
        mixed=True,
    ),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A 1,500-customer export and a store with one consistent set of conversion and churn champions.

    Without channel spend, a training logs no channel report: each one here takes seconds."""
    root = tmp_path_factory.mktemp("killed")
    write_simulation(simulate(SimConfig(customers=1_500, seed=5)), root / "sim")
    (root / "sim" / "channel_spend.parquet").unlink()
    (root / "tiny.toml").write_text(TINY_TOML)
    models = root / "first" / "models"
    with pytest.MonkeyPatch.context() as patch:
        point_mlflow_at(patch, models)
        result = runner.invoke(app, _train_args(root))
        assert result.exit_code == 0, result.output
        champions = _champions()
    assert _versions(champions) == {"crm_conversion": "1", "crm_churn": "1"}
    marks = {bundle.metadata.champion_set for bundle in champions.values()}
    assert len(marks) == 1 and None not in marks
    return {"root": root, "models": models, "champion_set": marks.pop()}


def _train_args(root: Path, promote: str = "auto") -> list[str]:
    config = str(root / "tiny.toml")
    return ["train", "--data", str(root / "sim"), "--as-of", "2024-12-31", "--config", config, "--promote", promote]


def _champions() -> dict:
    """The conversion and churn champions, every one of which must load."""
    from training.registry import load_champions

    bundles, missing = load_champions(KINDS)
    assert not missing, missing
    return bundles


def _versions(bundles: dict) -> dict[str, str]:
    return {bundle.metadata.registered_name: bundle.metadata.version for bundle in bundles.values()}


def _every_registered_version_loads() -> None:
    """Load each version of each model in the registry (a version registered is a version whose files load)."""
    from training.registry import load_bundle

    client = MlflowClient()
    for name in ("crm_conversion", "crm_churn"):
        for version in client.search_model_versions(f"name = '{name}'"):
            load_bundle(name, version=str(version.version))


def _runs() -> list:
    client = MlflowClient()
    experiment = client.get_experiment_by_name("crm-scoring")
    return client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=1000)


def _train_killed_at(point: KillPoint, root: Path, models: Path) -> subprocess.CompletedProcess:
    """Run `crm-score train` (this worktree's code) in a child process that SIGKILLs itself at `point`."""
    match = tuple(str(models / "artifacts") if s == ARTIFACTS else s for s in point.match)
    spec = (point.target, match, point.call, point.when, _train_args(root, point.promote))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{models / 'mlflow.db'}"}
    env["CRM_SCORING_MODELS_DIR"] = str(models)
    env.pop("MLFLOW_RUN_ID", None)
    code = KILLER.format(spec=spec)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("where", list(KILL_POINTS))
def test_a_training_killed_leaves_loadable_champions_failed_runs_and_a_store_the_next_training_fixes(
    where, store, tmp_path, monkeypatch
):
    from training.maintenance import relocate_store
    from training.registry import champion_set_is_consistent

    point = KILL_POINTS[where]
    models = tmp_path / "models"
    shutil.copytree(store["models"], models)
    relocate_store(models)
    point_mlflow_at(monkeypatch, models)
    before = {run.info.run_id for run in _runs()}

    killed = _train_killed_at(point, store["root"], models)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert f"killed at {point.target}" in killed.stderr and str(ROOT) in killed.stderr  # this worktree's code

    cut = [d for d in (models / "artifacts").rglob("bundle") if d.is_dir() and not (d / "booster.txt").exists()]
    assert bool(cut) is point.half_written, cut
    _every_registered_version_loads()

    # The champions: each loads; untouched and one set before the alias moves, flagged mixed among them.
    champions = _champions()
    expected = {"crm_conversion": "1", "crm_churn": "1"} | dict.fromkeys(point.moved, "2")
    assert _versions(champions) == expected
    assert champion_set_is_consistent(champions) is not point.mixed
    if not point.mixed:
        assert {bundle.metadata.champion_set for bundle in champions.values()} == {store["champion_set"]}

    # The killed runs stay RUNNING until `runs cleanup` marks them FAILED.
    new_runs = [run for run in _runs() if run.info.run_id not in before]
    assert {run.info.run_name for run in new_runs if run.info.status == "RUNNING"} == point.running
    cleanup = runner.invoke(app, ["runs", "cleanup", "--older-than-hours", "0"])
    assert cleanup.exit_code == 0, cleanup.output
    assert f"marked {len(point.running)} run(s) FAILED" in cleanup.output
    statuses = {run.info.run_id: run.info.status for run in _runs()}
    assert "RUNNING" not in statuses.values()
    assert all(statuses[run.info.run_id] == "FAILED" for run in new_runs if run.info.status == "RUNNING")

    # A move cut short is finished by `champions repair`: every model on the killed training's version.
    if point.mixed:
        repaired = runner.invoke(app, ["champions", "repair"])
        assert repaired.exit_code == 0, repaired.output
        champions = _champions()
        assert champion_set_is_consistent(champions)
        assert _versions(champions) == {"crm_conversion": "2", "crm_churn": "2"}

    # The next training succeeds and leaves one set, every champion marked by it.
    again = runner.invoke(app, _train_args(store["root"], promote="always"))
    assert again.exit_code == 0, again.output
    champions = _champions()
    assert champion_set_is_consistent(champions)
    parents = [run for run in _runs() if run.info.run_id not in statuses and "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {bundle.metadata.champion_set for bundle in champions.values()} == {parents[0].info.run_id}
