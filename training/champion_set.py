"""The champions as one set: which training put each in place, and finishing a move a killed training left half done.

`training.tracking.move_champions` tags the versions a training promotes with its run id (`champion_set`), moves
their `champion` aliases, then tags the champions it kept. MLflow moves one alias at a time, so a training killed
in between leaves champions from two trainings: a mixed set, which serving refuses by default. `repair` finishes
that move the way the training meant it to: the training whose move began last (the `champion_set_at` tag) is the
one that was moving them, the versions it tagged become champions, and the champions it did not replace get its
mark.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.config import REGISTERED_NAMES
from training.registry import CHAMPION, CHAMPION_SET, CHAMPION_SET_AT, alias_version


@dataclass(frozen=True, kw_only=True)
class Repair:
    """What `repair` did: the training whose move it finished, the aliases moved and the champions marked."""

    training: str | None
    moved: dict[str, str]  # name: the version now champion
    marked: dict[str, str]  # name: the version now carrying the training's mark

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.marked)


def mixed_marks(marks: dict[str, str | None]) -> bool:
    """Whether champions with these marks (name: training run id or None) are not one training's set."""
    return len(set(marks.values())) > 1 or None in marks.values()


def describe_mixed(marks: dict[str, str | None], versions: dict[str, str]) -> str:
    """One line naming each champion's version and the training that put it in place (run ids, short)."""
    parts = [
        f"{name} version {versions[name]} from training {mark[:12] if mark else '(unmarked)'}"
        for name, mark in sorted(marks.items())
    ]
    return "mixed champion set: " + ", ".join(parts)


def champion_marks() -> tuple[dict[str, str | None], dict[str, str]]:
    """The registry's champions now: name -> the training that put it in place, and name -> version."""
    marks, versions = {}, {}
    for name in REGISTERED_NAMES.values():
        current = alias_version(name, CHAMPION)
        if current is not None:
            marks[name] = (current.tags or {}).get(CHAMPION_SET)
            versions[name] = str(current.version)
    return marks, versions


def repair(as_is: bool = False) -> Repair:
    """Finish the champion move that began last among the champions' marks (see the module docstring).

    With `as_is` (aliases set by hand on purpose, say a rollback in the MLflow UI), or when no champion carries a
    mark, no alias moves: the champions are marked as one set by a new run of the experiment, named
    `repair champion set`, so the registry records who joined them.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    marks, versions = champion_marks()
    if not mixed_marks(marks):
        return Repair(training=next(iter(marks.values()), None), moved={}, marked={})
    training = (None if as_is else _newest_move(client, versions)) or _repair_run(client, versions)
    moved, marked = {}, {}
    for name, mark in marks.items():
        if mark == training:
            continue
        meant = client.search_model_versions(f"name='{name}' and tags.{CHAMPION_SET}='{training}'")
        if meant:
            version = str(max(int(v.version) for v in meant))
            client.set_registered_model_alias(name, CHAMPION, version)
            moved[name] = version
        else:
            client.set_model_version_tag(name, versions[name], CHAMPION_SET, training)
            marked[name] = versions[name]
    return Repair(training=training, moved=moved, marked=marked)


def _newest_move(client, versions: dict[str, str]) -> str | None:
    """The training whose champion move began last, among the marks of the champions `versions` (name: version).

    Marks without a move time (a release before it) count by their run's start; None when no champion is marked.
    """
    began: dict[str, int] = {}
    for name, version in versions.items():
        tags = client.get_model_version(name, version).tags or {}
        mark = tags.get(CHAMPION_SET)
        if mark:
            at = int(tags[CHAMPION_SET_AT]) if tags.get(CHAMPION_SET_AT, "").isdigit() else _run_start(client, mark)
            began[mark] = max(began.get(mark, -1), at)
    return max(began, key=began.get) if began else None


def _run_start(client, run_id: str) -> int:
    """When a run started (epoch ms); -1 for a run deleted from the store."""
    try:
        return client.get_run(run_id).info.start_time or 0
    except Exception:  # a run deleted by hand: its mark still names a training, but not a newer one
        return -1


def _repair_run(client, versions: dict[str, str]) -> str:
    """A finished run recording that the unmarked champions `versions` were joined into one set."""
    from training.registry import ensure_experiment

    run = client.create_run(ensure_experiment(), run_name="repair champion set")
    for name, version in versions.items():
        client.log_param(run.info.run_id, f"champion.{name}", version)
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id
