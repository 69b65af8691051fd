"""`crm-score runs|store|champions`: upkeep of the model store after a fault (a killed training, a moved folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crm_scoring.console import fail, guarded

runs_app = typer.Typer(no_args_is_help=True, help="Upkeep of the tracking store's runs.")
store_app = typer.Typer(no_args_is_help=True, help="Upkeep of the embedded model store (models/).")
champions_app = typer.Typer(no_args_is_help=True, help="The champion models as one set.")


@runs_app.command("cleanup")
def runs_cleanup(
    older_than_hours: Annotated[
        float, typer.Option("--older-than-hours", min=0, help="Only runs started longer ago than this.")
    ] = 24.0,
) -> None:
    """Mark FAILED the runs still RUNNING after a training was killed (kill -9 leaves them RUNNING forever)."""
    from crm_scoring import pipelines

    failed = guarded(lambda: pipelines.cleanup_runs(older_than_hours))
    typer.echo(f"marked {len(failed)} run(s) FAILED" + "".join(f"\n  {run_id}" for run_id in failed))


@store_app.command("relocate")
def store_relocate(
    models: Annotated[
        Path | None, typer.Option("--models", help="The moved models/ folder (default: the one in use).")
    ] = None,
) -> None:
    """Point a moved or copied embedded store at its own folder.

    `mlflow.db` records its artifacts by absolute path; after moving `models/`, run this once in the new place
    (until then no model loads from it, and a copy never reads the original's files).
    """
    from crm_scoring import pipelines

    if models is not None and not models.is_dir():
        fail(f"{models}: not a directory", 2)
    try:
        moved = pipelines.relocate_store(models)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), 2)
    if not moved.rows:
        typer.echo(f"already in place: {moved.new_root}")
        return
    typer.echo(f"relocated {moved.rows} record(s) from {moved.old_root} to {moved.new_root}")


@champions_app.command("show")
def champions_show() -> None:
    """Each champion's version and the training that put it in place; exit 1 when they are not one set."""
    from crm_scoring import pipelines
    from training.champion_set import describe_mixed, mixed_marks

    marks, versions = guarded(pipelines.champion_marks)
    for name in sorted(marks):
        typer.echo(f"{name} version {versions[name]} from training {marks[name] or '(unmarked)'}")
    if marks and mixed_marks(marks):
        fail(f"{describe_mixed(marks, versions)}: run `crm-score champions repair`")


@champions_app.command("repair")
def champions_repair(
    as_is: Annotated[
        bool, typer.Option("--as-is", help="Keep today's champions (set by hand on purpose) and mark them one set.")
    ] = False,
) -> None:
    """Finish the champion move a killed training left half done, so the champions are one training's set.

    The training whose move began last was moving them: the versions it promoted become champions and the
    champions it kept get its mark. A running API serves the repaired set after `POST /v1/models/reload`.
    """
    from crm_scoring import pipelines

    done = guarded(lambda: pipelines.repair_champions(as_is))
    if not done.changed:
        typer.echo("the champions are one set already: nothing to repair")
        return
    for name, version in sorted(done.moved.items()):
        typer.echo(f"{name}: champion moved to version {version}")
    for name, version in sorted(done.marked.items()):
        typer.echo(f"{name}: version {version} kept as champion")
    typer.echo(f"the champions are now one set, marked {done.training}")
