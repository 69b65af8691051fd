"""A saved bundle that cannot be read is refused with the file named relative to the bundle, never by its absolute
path, and a booster file cut short never reaches LightGBM (which aborts the process on one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.artifact import ModelLoadError, load_bundle_dir, save_bundle


@pytest.fixture(scope="module")
def saved(trained_store, tmp_path_factory):
    """The session's churn champion, loaded once, to save and damage copies of."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained_store["uri"])
        mp.setenv("CRM_SCORING_MODELS_DIR", str(trained_store["dir"]))
        from training.registry import configure, load_bundle

        configure()
        bundle, _ = load_bundle("crm_churn")
    return bundle


def _cut(path: Path, keep: float = 1 / 3) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def _drop_a_tree_line(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("Tree=1\n"))
    del lines[at + 3]
    path.write_text("".join(lines))


def _edit_json(name: str, change) -> callable:
    def edit(folder: Path) -> None:
        data = json.loads((folder / name).read_text())
        change(data)
        (folder / name).write_text(json.dumps(data))

    return edit


CASES = {
    "manifest-cut": (lambda d: _cut(d / "manifest.json"), "bundle/manifest.json: unexpected end of JSON"),
    "manifest-empty": (lambda d: (d / "manifest.json").write_text(""), "bundle/manifest.json: empty file"),
    "manifest-no-files": (
        _edit_json("manifest.json", lambda m: m.pop("files")),
        "bundle/manifest.json: has no 'files'",
    ),
    "manifest-no-booster": (
        _edit_json("manifest.json", lambda m: m["files"].pop("booster")),
        "bundle/manifest.json: lists no booster.txt",
    ),
    "booster-cut": (lambda d: _cut(d / "booster.txt"), "bundle/booster.txt: not a complete LightGBM model file"),
    "booster-nearly-whole": (lambda d: _cut(d / "booster.txt", 0.99), "bundle/booster.txt: cut short or altered"),
    "booster-line-gone": (lambda d: _drop_a_tree_line(d / "booster.txt"), "bundle/booster.txt: cut short or altered"),
    "spec-gone": (lambda d: (d / "spec.json").unlink(), "bundle/spec.json: missing"),
    "spec-no-funnel": (_edit_json("spec.json", lambda s: s.pop("funnel")), "bundle/spec.json: has no 'funnel' entry"),
    "encoder-not-json": (lambda d: (d / "encoder.json").write_text("{oops"), "bundle/encoder.json: not valid JSON"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_file_is_named_without_its_path(saved, tmp_path, case):
    folder = save_bundle(saved, tmp_path / "bundle")
    damage, message = CASES[case]
    damage(folder)
    with pytest.raises(ModelLoadError, match=message) as caught:
        load_bundle_dir(folder)
    assert str(tmp_path) not in str(caught.value)


def test_an_intact_bundle_still_loads(saved, tmp_path):
    loaded = load_bundle_dir(save_bundle(saved, tmp_path / "bundle"))
    assert loaded.booster.num_trees() == saved.booster.num_trees()
