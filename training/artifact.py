"""A model bundle as native files in one directory: boosters as LightGBM text, everything else as JSON.

No pickle: a file written here loads whatever the project's modules are called by then, as MLflow's own
LightGBM flavour does it. `manifest.json` names the format version and the files; a directory without it (a
model saved as a joblib pickle before) or of another version is refused with a request to retrain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
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
BOOSTER_ENDS = ("\nend of trees\n", "\nend of parameters\n")  # the sections LightGBM closes a model text with
RECORDS = {
    "spec": ("spec.json", FeatureSpec),
    "encoder": ("encoder.json", CategoryEncoder),
    "calibrator": ("calibrator.json", Calibrator),
    "season_transfer": ("season_transfer.json", SeasonTransfer),
    "metadata": ("metadata.json", ModelMetadata),
}


class OutdatedModelFormat(ValueError):
    """A saved model this version cannot read: it has to be trained again."""


class UnreadableModel(ValueError):
    """A saved model whose files cannot be read (cut short, emptied, missing): the message names the file.

    A plain `ValueError`, so no low-level error of a reader (an `EOFError`, which a command line takes for the
    end of its input) escapes a load under its own type.
    """


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
    digests = {part: _digest((out / name).read_bytes()) for part, name in files.items()}
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": bundle.kind,
        "lightgbm": lgb.__version__,
        "files": files,
        "sha256": digests,
    }
    _write_json(out / MANIFEST, manifest)
    return out


def load_bundle_dir(directory: str | Path) -> ModelBundle:
    """The bundle `save_bundle` wrote into `directory`.

    Raises:
        OutdatedModelFormat: no manifest (an older, pickled model) or another format version.
        UnreadableModel: a file cannot be read or parsed; the message names it.
    """
    root = Path(directory)
    manifest = read_manifest(root)
    files, digests = manifest["files"], manifest.get("sha256", {})
    texts = {
        part: _read(root / name, lambda path, part=part: _checked(path, digests.get(part)))
        for part, name in files.items()
    }
    parts: dict[str, Any] = {
        part: _read(root / files[part], lambda _, part=part: lgb.Booster(model_str=texts[part]))
        for part in BOOSTERS
        if part in files
    }
    for part, (_, record) in RECORDS.items():
        if part in files:
            parts[part] = _read(
                root / files[part], lambda _, part=part, record=record: record.from_dict(json.loads(texts[part]))
            )
    return ModelBundle(kind=manifest["kind"], **parts)


def _checked(path: Path, digest: str | None) -> str:
    """The text of a bundle file, refused when it differs from the digest the manifest recorded, or when a
    booster's text is cut short (a cut booster can abort the process inside LightGBM instead of raising)."""
    data = path.read_bytes()
    if digest is not None and _digest(data) != digest:
        raise ValueError(f"its content differs from the one saved ({len(data):,} bytes): cut short or changed")
    text = data.decode()
    if path.name in BOOSTERS.values() and not all(mark in text for mark in BOOSTER_ENDS):
        raise ValueError(f"the booster text is cut short ({len(data):,} bytes)")
    return text


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a saved bundle, checked for the format this version reads."""
    path = directory / MANIFEST
    if not path.is_file():
        raise OutdatedModelFormat(f"{directory} has no {MANIFEST}: the model was saved in an older format; {RETRAIN}")
    manifest = _read(path, _json)
    found = manifest.get("format_version") if isinstance(manifest, dict) else None
    if found != FORMAT_VERSION:
        raise OutdatedModelFormat(
            f"{directory} holds model format {found!r}, this version reads format {FORMAT_VERSION}; {RETRAIN}"
        )
    if not isinstance(manifest.get("files"), dict) or "kind" not in manifest:
        raise UnreadableModel(f"{path}: not a model manifest (no files or kind)")
    return manifest


def _read(path: Path, read: Callable[[Path], Any]) -> Any:
    """`read(path)`; any failure is raised as `UnreadableModel` naming the file and the error."""
    try:
        return read(path)
    except Exception as exc:
        raise UnreadableModel(f"{path}: {type(exc).__name__}: {str(exc).strip()[:200] or 'unreadable'}") from exc


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1))
