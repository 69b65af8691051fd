"""The layout stays readable: small modules and functions, one home for the stage names, the layers kept."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmdata.funnel import DEFAULT_FUNNEL

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("crm_scoring", "crmdata", "training", "marketing", "simulator", "serving")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# The one home of the default stage names, and the simulator, which writes data in its own vocabulary.
STAGE_NAME_HOMES = ("crmdata/funnel.py", "simulator/")


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_the_project_packages_are_where_the_layout_says():
    assert all((ROOT / package / "__init__.py").is_file() for package in PACKAGES)
    assert len(_modules()) > len(PACKAGES)


def test_no_module_is_longer_than_a_screenful_of_concerns():
    lengths = {_name(p): len(p.read_text().splitlines()) for p in _modules()}
    long = {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"


def test_no_function_is_longer_than_a_screen():
    long = {}
    for path in _modules():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{_name(path)}:{node.lineno} {node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_default_stage_names_live_only_in_the_funnel_vocabulary():
    names = set(DEFAULT_FUNNEL.allowed)
    found = {}
    for path in _modules():
        if _name(path).startswith(STAGE_NAME_HOMES):
            continue
        hits = [
            f"{node.lineno}:{node.value}"
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
        ]
        if hits:
            found[_name(path)] = hits
    assert not found, f"literal stage names outside crmdata/funnel.py (read them from a Funnel): {found}"


def test_the_import_layers_are_kept():
    if importlib.util.find_spec("importlinter") is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    script = Path(sys.executable).parent / "lint-imports"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "importlinter.cli"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout, run.stdout[-4000:]
