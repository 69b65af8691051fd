"""A real MLflow tracking server going down and coming back under a real uvicorn API process.

Down under a running API: the loaded set keeps scoring, `/ready` stays 200, a reload answers within seconds with
a 409 saying the registry did not answer (no address in the body) and keeps the versions; back on the same port,
a reload swaps again. Frozen (connections accepted, never answered): a reload gives up after the configured
timeout, not MLflow's minutes. Down at start: the API listens at once, `/ready` 503 while it retries, and becomes ready
once the tracking server is up, within the configured attempts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import AS_OF
from tests.servers import ROOT, free_port, uvicorn_server
from tests.serving.conftest import ADMIN, CUSTOMER, LEAD, READ
from tests.serving.test_faults import assert_public
from training.config import MODEL_KINDS, TrainConfig

pytestmark = pytest.mark.slow
MLFLOW = str(Path(sys.executable).parent / "mlflow")
TINY = TrainConfig(snapshots=3, conversion_snapshots=3, clv_snapshots=7, clv_horizon_days=180, min_positives=15)
NOT_ANSWERED = "the model registry did not answer"


class TrackingServer:
    """`mlflow server` (SQLite store, proxied artifacts) on one fixed port, stopped and started again by the tests.

    It runs in a session of its own, so that stopping it ends its uvicorn child too; MLflow's job runner is off
    (its huey consumers outlive the server otherwise)."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 120) -> None:
        """Start the server and wait until `/health` answers 200."""
        assert self.proc is None, "already running"
        self.starts += 1
        log = self.root / f"server-{self.starts}.log"
        command = [MLFLOW, "server", "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}"]
        command += ["--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            assert self.proc.poll() is None, f"tracking server exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"tracking server not up: {log.read_text()[-3000:]}"
            time.sleep(0.25)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and its children (`sig`, then SIGKILL after 20 s); the port is closed afterwards."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()
        time.sleep(0.5)  # its uvicorn child may still be closing the socket
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{self.uri}/health", timeout=2)

    def freeze(self, frozen: bool = True) -> None:
        """Stop (SIGSTOP) or continue (SIGCONT) the server: frozen, it accepts connections and never answers."""
        assert self.proc is not None, "not running"
        os.killpg(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.uri}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False


@pytest.fixture(scope="module")
def tracking(tables, sim_dir, tmp_path_factory):
    """A running tracking server holding a tiny champion of each kind (version 1), trained into it over HTTP."""
    from mlflow.tracking._model_registry import utils as registry_uri
    from mlflow.tracking._tracking_service import utils as tracking_uri

    from training.train import run_training

    server = TrackingServer(tmp_path_factory.mktemp("tracking"))
    server.start()
    try:
        with pytest.MonkeyPatch.context() as mp:  # MLflow's URIs and the variables it sets go back as they were
            mp.setattr(tracking_uri, "_tracking_uri", tracking_uri._tracking_uri)
            mp.setattr(registry_uri, "_registry_uri", registry_uri._registry_uri)
            mp.setenv("MLFLOW_REGISTRY_URI", server.uri)
            mp.setenv("MLFLOW_TRACKING_URI", server.uri)
            summary = run_training(tables, AS_OF, TINY, kinds=MODEL_KINDS, data_dir=str(sim_dir))
        assert all(summary.decisions[kind]["promoted"] for kind in MODEL_KINDS), summary.decisions
        yield server
    finally:
        server.stop()


def api_env(tracking: TrackingServer, tmp_path: Path, attempts: int, backoff_s: float) -> dict[str, str]:
    """The API's environment: the tracking server, a read and an admin key, MLflow's default retries and timeout
    as the settings set them (1 retry, 10 s)."""
    env = {
        "MLFLOW_TRACKING_URI": tracking.uri,
        "CRM_SCORING_MODELS_DIR": str(tmp_path / "models"),
        "CRM_SCORING_API_KEYS": "r-key:read,a-key:admin",
        "CRM_SCORING_PROSPECTS_DB": str(tmp_path / "prospects.db"),
        "CRM_SCORING_MODEL_LOAD_ATTEMPTS": str(attempts),
        "CRM_SCORING_MODEL_LOAD_BACKOFF_S": str(backoff_s),
    }
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ and "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
    return env


def versions(c: httpx.Client) -> dict[str, str]:
    """The served champion version of each kind, as `/v1/models` lists them."""
    return {m["kind"]: m["version"] for m in c.get("/v1/models", headers=READ).json()["models"]}


def test_loaded_models_keep_serving_while_the_tracking_server_is_down(tracking, tmp_path):
    """Killed under a ready API: scoring, /health and /ready answer as before, a reload is a quick 409 naming
    the registry (not its address) and keeps the versions; once the server is back, a reload swaps again."""
    if tracking.proc is None:
        tracking.start()
    with (
        uvicorn_server(api_env(tracking, tmp_path, attempts=2, backoff_s=1), tmp_path / "api.log") as base,
        httpx.Client(base_url=base, timeout=60) as c,
    ):
        before = c.get("/v1/models", headers=READ).json()["models"]
        assert {m["kind"]: m["version"] for m in before} == dict.fromkeys(MODEL_KINDS, "1")
        tracking.stop(signal.SIGKILL)
        try:
            assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200
            assert c.post("/v1/customers/score", json=CUSTOMER, headers=READ).status_code == 200
            assert c.get("/health").status_code == 200
            ready = c.get("/ready")
            assert ready.status_code == 200 and ready.json()["parts"]["models"] == "ok"

            started = time.monotonic()
            failed = c.post("/v1/models/reload", headers=ADMIN)
            took = time.monotonic() - started
            assert took < 15, f"reload took {took:.1f} s with the tracking server down"
            assert failed.status_code == 409 and failed.headers["content-type"] == "application/json", failed.text
            body = failed.json()
            assert body["ready"] is True and [m["version"] for m in body["models"]] == ["1", "1", "1"]
            assert body["errors"] and all(NOT_ANSWERED in reason for reason in body["errors"].values()), body
            assert_public(failed.text)
            assert c.get("/v1/models", headers=READ).json()["models"] == before
            assert c.get("/ready").status_code == 200
            assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200
        finally:
            tracking.start()

        reloaded = c.post("/v1/models/reload", headers=ADMIN)
        assert reloaded.status_code == 200 and reloaded.json()["reloaded"] is True, reloaded.text
        assert versions(c) == dict.fromkeys(MODEL_KINDS, "1")
        assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200
    assert f":{tracking.port}" in (tmp_path / "api.log").read_text()  # the address is in the log, not the body


def test_a_frozen_tracking_server_holds_a_reload_only_for_the_configured_timeout(tracking, tmp_path):
    """A server that accepts connections and never answers: a reload gives up after MLflow's configured retry and
    timeout (1 retry, 2 s here) with the same 409 while scoring goes on; once the server answers, it swaps."""
    if tracking.proc is None:
        tracking.start()
    env = {**api_env(tracking, tmp_path, attempts=2, backoff_s=1), "CRM_SCORING_REGISTRY_HTTP_TIMEOUT_S": "2"}
    with (
        uvicorn_server(env, tmp_path / "api.log") as base,
        httpx.Client(base_url=base, timeout=60) as c,
        httpx.Client(base_url=base, timeout=60) as admin,
        ThreadPoolExecutor(1) as pool,
    ):
        tracking.freeze()
        try:
            started = time.monotonic()
            pending = pool.submit(admin.post, "/v1/models/reload", headers=ADMIN)
            scored = 0
            while not pending.done():  # the reload waits in the threadpool, not on the event loop
                assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200
                scored += 1
                time.sleep(0.1)
            failed, took = pending.result(), time.monotonic() - started
            assert took < 15, f"reload took {took:.1f} s with a 2 s timeout and 1 retry"
            assert failed.status_code == 409, failed.text
            assert all(NOT_ANSWERED in reason for reason in failed.json()["errors"].values()), failed.text
            assert_public(failed.text)
            assert scored > 0 and c.get("/ready").status_code == 200
        finally:
            tracking.freeze(False)
        reloaded = c.post("/v1/models/reload", headers=ADMIN)
        assert reloaded.status_code == 200 and versions(c) == dict.fromkeys(MODEL_KINDS, "1"), reloaded.text


def test_api_started_with_the_tracking_server_down_becomes_ready_when_it_is_back(tracking, tmp_path):
    """Started with the server down: /health 200 at once, /ready 503 while it loads and retries, then 200 and
    scoring once the server is back on the same port, within the configured attempts (no restart of the API)."""
    tracking.stop()
    env = api_env(tracking, tmp_path, attempts=8, backoff_s=0.5)  # waits 0.5, 1, 2, ... 32 s: about a minute
    started = time.monotonic()
    with (
        uvicorn_server(env, tmp_path / "api.log", wait_for="/health", timeout=30) as base,
        httpx.Client(base_url=base, timeout=30) as c,
    ):
        assert time.monotonic() - started < 20
        deadline = time.monotonic() + 30
        while True:  # one attempt has failed: the runtime retries
            ready = c.get("/ready")
            assert ready.status_code == 503, ready.text
            state = ready.json()["parts"]["models"]
            assert state == "loading" or state.startswith("retrying (attempt "), state
            assert_public(ready.text)
            if state.startswith("retrying"):
                break
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        scored = c.post("/v1/leads/score", json=LEAD, headers=READ)
        assert scored.status_code == 503 and scored.headers["content-type"] == "application/json", scored.text
        assert_public(scored.text)

        tracking.start()
        back = time.monotonic()
        while (ready := c.get("/ready", params={"require": "all"})).status_code != 200:  # a partial set may come first
            assert ready.status_code == 503
            assert not ready.json()["parts"]["models"].startswith("unavailable"), ready.text  # out of attempts
            assert time.monotonic() - back < 90, ready.text
            time.sleep(0.5)
        assert ready.json()["parts"]["models"] == "ok" and ready.json()["versions"] == dict.fromkeys(MODEL_KINDS, "1")
        lead = c.post("/v1/leads/score", json=LEAD, headers=READ)
        assert lead.status_code == 200 and 0 <= lead.json()["conversion_probability"] <= 1
