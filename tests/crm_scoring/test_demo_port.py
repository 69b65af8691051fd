"""`crm-score demo` and `make demo` refuse a taken port in one line before simulating or training anything."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from crm_scoring.cli import app
from tests.servers import ROOT, free_port

runner = CliRunner()


@contextmanager
def _listening() -> Iterator[int]:
    """A port something listens on (as a server left running would), for the duration of the block."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_demo_refuses_a_taken_port_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_SCORING_API_KEYS", "demo-read:read")
    with _listening() as port:
        result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--port", str(port)])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert f"port {port} on 127.0.0.1 is taken" in line and "--port N" in line and "PORT=N" in line
    assert not (tmp_path / "demo").exists()


def test_demo_port_is_checked_only_when_it_serves(tmp_path, monkeypatch):
    """`--no-serve` needs no port: the check does not stand in the way (stopped right after, at the simulation)."""
    from crm_scoring import cli

    monkeypatch.setattr(cli, "simulate", lambda **kw: (_ for _ in ()).throw(SystemExit(7)))
    with _listening() as port:
        result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--port", str(port), "--no-serve"])
    assert result.exit_code == 7, result.output


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_passes_port_and_fails_fast_when_it_is_taken(tmp_path):
    """`make demo PORT=N` runs the demo on N; a taken N fails at once, naming it (the worktree's code runs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "crm-score"  # newer than pyproject.toml, so `make` does not set up a venv
    wrapper.write_text(
        f"#!/bin/sh\ncd {ROOT} && exec {sys.executable} -c 'from crm_scoring.cli import app; app()' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    demo_dir = tmp_path / "demo"
    make = ["make", "--no-print-directory", "-C", str(ROOT), "demo", f"BIN={bin_dir}", f"DEMO_DIR={demo_dir}"]
    env = {**os.environ, "CRM_SCORING_API_KEYS": "demo-read:read"}
    with _listening() as port:
        done = subprocess.run([*make, f"PORT={port}"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"error: port {port} on 127.0.0.1 is taken" in done.stderr and "PORT=N" in done.stderr
    assert not demo_dir.exists()
    other = free_port()
    dry = subprocess.run([*make, "-n", f"PORT={other}"], capture_output=True, text=True, timeout=60)
    assert f"--port {other}" in dry.stdout
    default = subprocess.run([*make, "-n"], capture_output=True, text=True, timeout=60)
    assert "--port 8000" in default.stdout
