"""A model bundle as native files in one directory: boosters as LightGBM text, everything else as JSON.

No pickle: a file written here loads whatever the project's modules are called by then, as MLflow's own
LightGBM flavour does it. `manifest.json` names the format version and the files; a directory without it (a
model saved as a joblib pickle before) or of another version is refused with a request to retrain. A file that
cannot be read raises `ModelLoadError` naming it relative to the bundle (`bundle/booster.txt: ...`), never by
its absolute path.
"""

from __future__ import annotations

import hashlib
import json
import re
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
PANDAS_LINE = b"pandas_categorical:"  # the last line of a booster file the Python package wrote
REQUIRED = ("booster", "spec", "encoder")  # a bundle without these scores nothing
RECORDS = {
    "spec": ("spec.json", FeatureSpec),
    "encoder": ("encoder.json", CategoryEncoder),
    "calibrator": ("calibrator.json", Calibrator),
    "season_transfer": ("season_transfer.json", SeasonTransfer),
    "metadata": ("metadata.json", ModelMetadata),
}


class OutdatedModelFormat(ValueError):
    """A saved model this version cannot read: it has to be trained again."""


class ModelLoadError(RuntimeError):
    """A saved model whose files cannot be read; the message names the file (and the model and version, once
    `training.registry` has added them)."""


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
        "sha256": digests,  # a file cut short or changed since is refused by name before it is parsed
    }
    _write_json(out / MANIFEST, manifest)
    return out


def load_bundle_dir(directory: str | Path) -> ModelBundle:
    """The bundle `save_bundle` wrote into `directory`.

    Raises:
        OutdatedModelFormat: no manifest (an older, pickled model) or another format version.
        ModelLoadError: a file is missing, cut short or not what the manifest says, named in the message.
    """
    root = Path(directory)
    manifest = read_manifest(root)
    files = _entry(root, manifest, "files")
    digests = manifest.get("sha256", {})
    parts: dict[str, Any] = {
        part: _read(root, files[part], _booster, digests.get(part)) for part in BOOSTERS if part in files
    }
    for part, (_, record) in RECORDS.items():
        if part in files:
            parts[part] = _read(
                root, files[part], lambda path, r=record: r.from_dict(json.loads(path.read_text())), digests.get(part)
            )
    absent = [{**BOOSTERS, **{p: n for p, (n, _) in RECORDS.items()}}[p] for p in REQUIRED if p not in parts]
    if absent:
        raise ModelLoadError(f"{root.name}/{MANIFEST}: lists no {', '.join(absent)}")
    return ModelBundle(kind=_entry(root, manifest, "kind"), **parts)


def _booster(path: Path) -> lgb.Booster:
    """A booster from its LightGBM text file, checked whole first: LightGBM aborts the process on a cut one.

    Whole: the trees add up to the sizes in the header, and the last line (the Python package's categories,
    written last) is there and complete.
    """
    text = path.read_bytes()
    sizes = re.search(rb"^tree_sizes=(.*)$", text, re.MULTILINE)
    start, end = text.find(b"\nTree="), text.find(b"\nend of trees")
    if not text.startswith(b"tree\n") or sizes is None or not 0 <= start < end:
        raise ValueError("not a complete LightGBM model file")
    if sum(int(size) for size in sizes.group(1).split()) != end - start:
        raise ValueError("cut short or altered: its trees do not add up to the sizes in its header")
    last = text.rstrip().rsplit(b"\n", 1)[-1]
    if not (last.startswith(PANDAS_LINE) and _is_json(last.removeprefix(PANDAS_LINE))):
        raise ValueError("cut short or altered: its last line is not a whole `pandas_categorical:` line")
    return lgb.Booster(model_str=text.decode())


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def _read(root: Path, name: str, read, digest: str | None = None) -> Any:
    """`read(root / name)`, then the file checked against the manifest's digest when it recorded one; any
    failure raised as a `ModelLoadError` that names the file within the bundle."""
    try:
        value = read(root / name)  # the reader's own checks name what is wrong more precisely than a digest
        if digest is not None and _digest((root / name).read_bytes()) != digest:
            raise ValueError("cut short or altered: its content differs from the one saved")
        return value
    except Exception as exc:
        raise ModelLoadError(f"{root.name}/{name}: {_what_failed(exc, root)}") from exc


def _entry(root: Path, manifest: dict[str, Any], key: str) -> Any:
    if not isinstance(manifest, dict) or key not in manifest:
        raise ModelLoadError(f"{root.name}/{MANIFEST}: has no {key!r} entry")
    return manifest[key]


def _what_failed(exc: Exception, root: Path) -> str:
    """A short account of why a file could not be read, without the directory's absolute path."""
    if isinstance(exc, json.JSONDecodeError):
        if not exc.doc.strip():
            return "empty file"
        if exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated"):
            return f"unexpected end of JSON (line {exc.lineno})"
        return f"not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
    if isinstance(exc, FileNotFoundError):
        return "missing"
    if isinstance(exc, KeyError):
        return f"has no {exc.args[0]!r} entry"
    if isinstance(exc, ValueError) and type(exc) is ValueError:
        return str(exc).replace(str(root), root.name)
    return f"{type(exc).__name__}: {exc}".replace(str(root), root.name)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a saved bundle, checked for the format this version reads."""
    path = directory / MANIFEST
    if not path.is_file():
        raise OutdatedModelFormat(f"{directory} has no {MANIFEST}: the model was saved in an older format; {RETRAIN}")
    manifest = _read(directory, MANIFEST, lambda p: json.loads(p.read_text()))
    found = manifest.get("format_version") if isinstance(manifest, dict) else None
    if found != FORMAT_VERSION:
        raise OutdatedModelFormat(
            f"{directory} holds model format {found!r}, this version reads format {FORMAT_VERSION}; {RETRAIN}"
        )
    return manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
