"""Where models live: the tracking URI, the experiment, registration, aliases and loading by alias.

Embedded default: a SQLite tracking/registry store and an artifact root under `models/`;
`MLFLOW_TRACKING_URI` overrides it. Nothing here runs at import time.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from training.config import EXPERIMENT

CHAMPION, CHALLENGER = "champion", "challenger"
CHAMPION_SET = "champion_set"  # version tag: the run id of the training that put the champions in place
CHAMPION_SET_AT = "champion_set_at"  # version tag: when that training began moving them (epoch milliseconds)


def models_dir() -> Path:
    """The embedded store's folder: `CRM_SCORING_MODELS_DIR`, else the checkout's `models/`, else ./models."""
    if os.environ.get("CRM_SCORING_MODELS_DIR"):
        return Path(os.environ["CRM_SCORING_MODELS_DIR"]).resolve()
    checkout = Path(__file__).resolve().parents[1] / "models"
    return checkout if checkout.is_dir() else Path.cwd() / "models"


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{models_dir() / 'mlflow.db'}"


def configure() -> str:
    """Point MLflow at the tracking/registry store (creating the embedded folder) and return the URI."""
    import mlflow

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment() -> str:
    """The `crm-scoring` experiment's id; created with its artifacts under `models/` for the embedded store."""
    import mlflow

    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:///"):
        location = embedded_artifacts()
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


def embedded_artifacts() -> str:
    """Where the embedded store keeps its artifacts: `models/artifacts`, as a file URI."""
    return (models_dir() / "artifacts").as_uri()


def is_embedded() -> bool:
    """Whether MLflow uses the embedded store of `models_dir()` (the default, or the same URI set explicitly)."""
    return tracking_uri() == f"sqlite:///{models_dir() / 'mlflow.db'}"


def embedded_store_moved() -> str | None:
    """Why the embedded store cannot be used where it is: it was moved or copied from another folder, so its
    records still name the other folder's files (a copy would read the original's). None when in place."""
    import sqlite3
    from contextlib import closing

    db = models_dir() / "mlflow.db"
    if not is_embedded() or not db.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as connection:
            query = "SELECT artifact_location FROM experiments WHERE name = ?"
            row = connection.execute(query, (EXPERIMENT,)).fetchone()
    except sqlite3.Error:  # a damaged store: MLflow names the problem when it opens it
        return None
    if row is None or row[0] == embedded_artifacts():
        return None
    return (
        f"the model store in {models_dir()} was moved or copied from {row[0]}: "
        "run `crm-score store relocate` to point it at its own folder"
    )


def alias_version(name: str, alias: str):
    """The registered model version behind `name@alias`, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_bundle(name: str, alias: str = CHAMPION, version: str | None = None):
    """Download and load the bundle of `name@alias` (or a version); returns (bundle, model version).

    The bundle's metadata carries the registry version and the training that made it champion. A model saved
    in an older format raises `OutdatedModelFormat`, naming the model and asking for a retrain; any other failure
    `ModelLoadError`, naming the model, the version and the file (`RegistryUnreachable` when the registry did not
    answer).
    """
    import mlflow

    from training.artifact import BUNDLE_DIR, ModelLoadError, OutdatedModelFormat, load_bundle_dir

    mv = _model_version(name, alias, version)
    try:
        local = mlflow.artifacts.download_artifacts(f"models:/{name}/{mv.version}")
        bundle = load_bundle_dir(Path(local) / "artifacts" / BUNDLE_DIR)
        if bundle.metadata is None:
            raise ModelLoadError(f"{BUNDLE_DIR}/metadata.json: not in the manifest")
    except OutdatedModelFormat as exc:
        raise OutdatedModelFormat(
            f"model {name} version {mv.version} was saved in an older format; retrain it with `crm-score train`"
        ) from exc
    except ModelLoadError as exc:
        raise ModelLoadError(f"{name} version {mv.version}: {exc}") from exc
    except Exception as exc:  # the download: a missing or unreachable artifact store
        detail = f"{type(exc).__name__}: {str(exc)[:300]}"
        raise ModelLoadError(f"{name} version {mv.version}: artifacts not downloaded: {detail}") from exc
    tags = mv.tags or {}
    bundle.metadata = replace(bundle.metadata, version=str(mv.version), champion_set=tags.get(CHAMPION_SET))
    return bundle, mv


def champion_set_is_consistent(bundles: dict) -> bool:
    """Whether the loaded champions were put in place together, by one training (see `training.tracking`).

    Each training tags every champion it leaves in place with its run id once its aliases have moved; a set
    whose champions carry different ids (or none) is mixed: a training died while moving them, or champions
    were aliased by hand.
    """
    from training.champion_set import mixed_marks

    return not mixed_marks({kind: bundle.metadata.champion_set for kind, bundle in bundles.items()})


class RegistryUnreachable(RuntimeError):
    """The registry did not answer a lookup; the message carries its error, which may hold its address."""


def _model_version(name: str, alias: str, version: str | None):
    """The registry's record of `name` version `version`, else of `name@alias`."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.artifact import ModelLoadError

    wanted = f"version {version}" if version else f"@{alias}"
    try:
        client = MlflowClient()
        return client.get_model_version(name, version) if version else client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ModelLoadError(f"{name}{' ' if version else ''}{wanted}: not registered") from exc
        raise RegistryUnreachable(f"{name}{wanted}: the model registry did not answer: {str(exc)[:300]}") from exc
    except Exception as exc:
        detail = f"{type(exc).__name__}: {str(exc)[:300]}"
        raise RegistryUnreachable(f"{name}{wanted}: the model registry did not answer: {detail}") from exc


def load_champions(kinds=None) -> tuple[dict, dict[str, str]]:
    """The @champion bundle of each model kind, and why any could not be loaded."""
    from training.artifact import ModelLoadError, OutdatedModelFormat
    from training.config import MODEL_KINDS, REGISTERED_NAMES

    bundles, missing = {}, {}
    moved = embedded_store_moved()
    if moved:  # never read another folder's files
        return bundles, {REGISTERED_NAMES[kind]: f"StoreMoved: {moved}" for kind in kinds or MODEL_KINDS}
    for kind in kinds or MODEL_KINDS:
        name = REGISTERED_NAMES[kind]
        try:
            bundles[kind], _ = load_bundle(name, CHAMPION)
        except (ModelLoadError, OutdatedModelFormat, RegistryUnreachable) as exc:
            missing[name] = str(exc)
        except Exception as exc:
            missing[name] = f"{name}: {type(exc).__name__}: {str(exc)[:300]}"
    return bundles, missing
