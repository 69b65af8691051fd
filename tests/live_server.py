"""One helper for end-to-end API tests: run `serving.api.serve` in a real uvicorn process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_api(env: Mapping[str, str], log_file: Path, ready_within: float = 180) -> Iterator[str]:
    """Serve the API with `env` added to this process's environment; yield its base URL once /ready answers 200.

    The server's output goes to `log_file`, whose tail is shown when the server exits or never gets ready.
    """
    port = free_port()
    code = f"from serving.api import serve; serve('127.0.0.1', {port}, log_level='warning')"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within
        while True:
            assert proc.poll() is None, f"server exited: {log_file.read_text()[-3000:]}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"server not ready: {log_file.read_text()[-3000:]}"
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
