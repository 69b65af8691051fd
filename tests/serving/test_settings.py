"""Settings errors: one line naming the setting and what it expects, never a key, and `serve` exits with it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from serving.settings import InvalidSettings, get_settings
from tests.servers import ROOT, free_port

SECRET = "topsecret-admin-key-XYZ"
BAD_KEYS = f"{SECRET}:admin,other-secret-key:superuser"


def test_bad_scope_is_one_line_without_the_keys(monkeypatch):
    monkeypatch.setenv("CRM_SCORING_API_KEYS", BAD_KEYS)
    with pytest.raises(InvalidSettings) as caught:
        get_settings()
    text = str(caught.value)
    assert "\n" not in text and "CRM_SCORING_API_KEYS" in text and "pair 2" in text and "read" in text
    assert SECRET not in text and "other-secret-key" not in text and "superuser" not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained pydantic error


def test_other_bad_settings_name_the_variable_and_the_expectation(monkeypatch):
    monkeypatch.setenv("CRM_SCORING_MAX_BATCH", "lots")
    monkeypatch.setenv("CRM_SCORING_TOP_REASONS", "99")
    with pytest.raises(InvalidSettings) as caught:
        get_settings()
    text = str(caught.value)
    assert "\n" not in text
    assert "CRM_SCORING_MAX_BATCH: " in text and "integer" in text and "lots" not in text
    assert "CRM_SCORING_TOP_REASONS: " in text and "10" in text


@pytest.mark.parametrize(
    "command",
    [
        ["-c", "from crm_scoring.cli import app; app()", "serve", "--port", "{port}"],
        ["-c", "from serving.api import serve; serve('127.0.0.1', {port})"],
    ],
    ids=["crm-score-serve", "serving-api-serve"],
)
def test_serve_exits_with_one_line_and_no_key(command):
    port = str(free_port())
    env = {**os.environ, "CRM_SCORING_API_KEYS": BAD_KEYS, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, *(part.replace("{port}", port) for part in command)]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert SECRET not in output and "other-secret-key" not in output
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 2 and "CRM_SCORING_API_KEYS" in lines[-1], done.stderr
