"""A model bundle as native files in one directory: boosters as LightGBM text, everything else as JSON.

No pickle: a file written here loads whatever the project's modules are called by then, as MLflow's own
LightGBM flavour does it. `manifest.json` names the format version and the files; a directory without it (a
model saved as a joblib pickle before) or of another version is refused with a request to retrain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb

from training.bundle import Calibrator, CategoryEncoder, ModelBundle, SeasonTransfer
from training.features import FeatureSpec
from training.metadata import ModelMetadata

FORMAT_VERSION = 1
BUNDLE_DIR = "bundle"  # the artifact folder of these files inside a logged MLflow model
MANIFEST = "manifest.json"
RETRAIN = "retrain it with `crm-score train`"
BOOSTERS = {"booster": "booster.txt", "value_booster": "value_booster.txt"}
RECORDS = {
    "spec": ("spec.json", FeatureSpec),
    "encoder": ("encoder.json", CategoryEncoder),
    "calibrator": ("calibrator.json", Calibrator),
    "season_transfer": ("season_transfer.json", SeasonTransfer),
    "metadata": ("metadata.json", ModelMetadata),
}


class OutdatedModelFormat(ValueError):
    """A saved model this version cannot read: it has to be trained again."""


def save_bundle(bundle: ModelBundle, directory: str | Path) -> Path:
    """Write `bundle` into `directory` (created if needed): booster text files, JSON records, the manifest."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for part, name in BOOSTERS.items():
        booster = getattr(bundle, part)
        if booster is not None:
            booster.save_model(str(out / name))
            files[part] = name
    for part, (name, _) in RECORDS.items():
        record = getattr(bundle, part)
        if record is not None:
            _write_json(out / name, record.to_dict())
            files[part] = name
    manifest = {"format_version": FORMAT_VERSION, "kind": bundle.kind, "lightgbm": lgb.__version__, "files": files}
    _write_json(out / MANIFEST, manifest)
    return out


def load_bundle_dir(directory: str | Path) -> ModelBundle:
    """The bundle `save_bundle` wrote into `directory`.

    Raises:
        OutdatedModelFormat: no manifest (an older, pickled model) or another format version.
    """
    root = Path(directory)
    manifest = read_manifest(root)
    files = manifest["files"]
    parts: dict[str, Any] = {
        part: lgb.Booster(model_file=str(root / files[part])) for part in BOOSTERS if part in files
    }
    for part, (_, record) in RECORDS.items():
        if part in files:
            parts[part] = record.from_dict(json.loads((root / files[part]).read_text()))
    return ModelBundle(kind=manifest["kind"], **parts)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a saved bundle, checked for the format this version reads."""
    path = directory / MANIFEST
    if not path.is_file():
        raise OutdatedModelFormat(f"{directory} has no {MANIFEST}: the model was saved in an older format; {RETRAIN}")
    manifest = json.loads(path.read_text())
    found = manifest.get("format_version")
    if found != FORMAT_VERSION:
        raise OutdatedModelFormat(
            f"{directory} holds model format {found!r}, this version reads format {FORMAT_VERSION}; {RETRAIN}"
        )
    return manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1))
