"""The one way tests run servers: the API in process (`api_client`, FastAPI's TestClient) or as a real uvicorn
process on 127.0.0.1 (`uvicorn_server`), both once the app has loaded its models; any other server (an MLflow
tracking server, `mlflow models serve`) with `running`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.runtime import ModelSet
from serving.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def api_client(
    settings: Settings, models: ModelSet | None = None, loader=None, wait: bool = True
) -> Iterator[TestClient]:
    """A TestClient of `create_app(settings)` serving `models`, or what `loader` loads (default: the registry's
    champions), once the start-up loading is over (unless not `wait`: models load in the background)."""
    if models is not None:
        loader = lambda: models  # noqa: E731
    app = create_app(settings) if loader is None else create_app(settings, loader=loader)
    with TestClient(app) as client:
        assert not wait or app.state.runtime.wait(180), "models still loading after 180 s"
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_server(env: dict[str, str], log: Path, timeout: float = 180, wait_for: str = "/ready") -> Iterator[str]:
    """`serving.api.serve` in a subprocess with `env` added to the environment; yields its base URL once
    `wait_for` answers 200 (`/health`: listening, models possibly still loading), and stops it afterwards.
    The server's output goes to `log`."""
    port = free_port()
    code = f"from serving.api import serve; serve('127.0.0.1', {port}, log_level='warning')"
    base = f"http://127.0.0.1:{port}"
    with running([sys.executable, "-c", code], f"{base}{wait_for}", {**os.environ, **env}, log, timeout):
        yield base


@contextmanager
def running(cmd: list[str], ready_url: str, env: dict[str, str], log: Path, timeout: float = 180) -> Iterator[None]:
    """Run `cmd` (a server) from the checkout with `env`, its output in `log`, until `ready_url` answers 200;
    stop it and every process it started on exit (terminate the process group, then kill it after 20 s):
    `mlflow server` starts job runners of its own that outlive it otherwise."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        _wait_ready(proc, ready_url, log, timeout)
        yield
    finally:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        _signal_group(proc, signal.SIGKILL)  # any child still alive after its parent ended


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"server exited: {log.read_text()[-3000:]}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"server not ready: {log.read_text()[-3000:]}"
        time.sleep(0.25)
