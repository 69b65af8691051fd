"""Upkeep of the tracking store: end the runs a killed training left RUNNING, and relocate a moved embedded store.

A training killed outright (`kill -9`, a lost machine) cannot end its runs, so they stay RUNNING;
`fail_stale_runs` marks the old ones FAILED. The embedded SQLite store records its artifacts by absolute file
URI, as MLflow does; `relocate_store` rewrites those records when the `models/` folder has moved.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

# The columns of MLflow's SQLite schema that hold artifact locations (those present are rewritten).
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


@dataclass(frozen=True, kw_only=True)
class Relocation:
    """What `relocate_store` did: the artifact root the records named, the one they name now, rows changed."""

    old_root: str
    new_root: str
    rows: int


def fail_stale_runs(older_than_hours: float, now_ms: int | None = None) -> list[str]:
    """Mark FAILED every RUNNING run of the tracking store that started over `older_than_hours` ago.

    Returns the ids of the runs marked. A training in progress is younger than the limit and is left alone.
    """
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient()
    limit = (now_ms if now_ms is not None else int(time.time() * 1000)) - int(older_than_hours * 3_600_000)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    stale = client.search_runs(
        experiments, filter_string=f"attributes.status = 'RUNNING' AND attributes.start_time < {limit}"
    )
    for run in stale:
        client.set_terminated(run.info.run_id, status="FAILED")
    return [run.info.run_id for run in stale]


def relocate_store(models: Path, old_root: str | None = None) -> Relocation:
    """Point the embedded store in `models` (its `mlflow.db`) at `models/artifacts`, where its files are now.

    Every artifact location under `old_root` (default: the location the `crm-scoring` experiment records) is
    rewritten under the new root, as a file URI or as a bare path, whichever the record holds.
    """
    from training.config import EXPERIMENT

    db = Path(models) / "mlflow.db"
    if not db.is_file():
        raise FileNotFoundError(f"{db}: no embedded model store there")
    new_root = (Path(models).resolve() / "artifacts").as_uri()
    with closing(sqlite3.connect(db)) as connection, connection:
        if old_root is None:
            row = connection.execute("SELECT artifact_location FROM experiments WHERE name = ?", (EXPERIMENT,))
            found = row.fetchone()
            if found is None:
                raise ValueError(f"{db}: no {EXPERIMENT} experiment to relocate")
            old_root = found[0]
        old_root = old_root.rstrip("/")
        if old_root == new_root:
            return Relocation(old_root=old_root, new_root=new_root, rows=0)
        rows = sum(_rewrite(connection, table, column, old_root, new_root) for table, column in _columns(connection))
    return Relocation(old_root=old_root, new_root=new_root, rows=rows)


def _columns(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """The location columns this store's schema has."""
    present = []
    for table, column in LOCATION_COLUMNS:
        names = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column in names:
            present.append((table, column))
    return present


def _rewrite(connection: sqlite3.Connection, table: str, column: str, old_root: str, new_root: str) -> int:
    """Swap the `old_root` prefix of `table.column` for `new_root`, in file-URI and bare-path form; rows changed."""
    changed = 0
    for old, new in ((old_root, new_root), (_path(old_root), _path(new_root))):
        cursor = connection.execute(
            f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # names from LOCATION_COLUMNS
            f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
            (new, len(old) + 1, old, len(old) + 1, old + "/"),
        )
        changed += cursor.rowcount
    return changed


def _path(uri: str) -> str:
    """The local path of a file URI (a bare path stays as it is)."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(uri).path) if uri.startswith("file:") else uri
