"""Faults around the API: a damaged prospect store, broken registered artifacts, a registry that does not answer.

Each makes only what depends on it unavailable (a JSON 503 or 409 that says why), `/ready` names the part that is
down (and stays 200 while any model is loaded), and no body carries an absolute path or an internal URL.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from serving import runtime
from tests.servers import api_client, free_port, uvicorn_server
from tests.serving.conftest import ADMIN, CUSTOMER, LEAD, READ, api_settings

INTERNAL = re.compile(r"(?<![\w.])/(tmp|home|work|usr|var|root)\b|sqlite:|https?://|127\.0\.0\.1")
CLASS_NAME = re.compile(r"\b[A-Z]\w*(Exception|Error)\b")  # not for a scoring route's caller


def assert_public(body: str) -> None:
    """No absolute path, no internal URL or address in a response body."""
    assert not INTERNAL.search(body), body


# ------------------------------------------------------------------------------------------- prospect store


def _zeroed(path: Path) -> None:
    path.write_bytes(b"\0" * path.stat().st_size)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _no_table(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("DROP TABLE prospects")
    con.commit()
    con.close()


@pytest.mark.parametrize("damage", [_zeroed, _truncated, _no_table], ids=["zeroed", "truncated", "no-table"])
def test_damaged_prospect_store_is_a_503_and_not_ready(use_store, champions, prospects_db, tmp_path, damage):
    db = tmp_path / "prospects.db"
    shutil.copy(prospects_db, db)
    damage(db)
    with api_client(api_settings(db), champions) as c:
        for params in ({}, {"order": "probability", "stalled": True}, {"format": "csv"}):
            r = c.get("/v1/prospects", params=params, headers=READ)
            assert r.status_code == 503 and r.headers["content-type"] == "application/json", r.text
            assert "crm-score score" in r.json()["detail"]
            assert_public(r.text)
        ready = c.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False and body["parts"]["models"] == "ok"
        assert body["parts"]["prospects"].startswith("unreadable")
        assert_public(ready.text)
        assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200  # scoring is unaffected


def test_missing_store_is_a_404_without_its_path_and_ready(use_store, champions, tmp_path):
    with api_client(api_settings(tmp_path / "none.db"), champions) as c:
        r = c.get("/v1/prospects", headers=READ)
        ready = c.get("/ready")
    assert r.status_code == 404 and "crm-score score" in r.json()["detail"]
    assert_public(r.text)
    assert ready.status_code == 200 and ready.json()["parts"] == {"models": "ok", "prospects": "not written yet"}


# ------------------------------------------------------------------------------------------- broken artifacts


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _no_categories(bundle_dir: Path) -> None:
    """Files that load, but not a model: the encoder knows none of the spec's categorical columns."""
    encoder = json.loads((bundle_dir / "encoder.json").read_text())
    encoder["categories_"] = {}
    (bundle_dir / "encoder.json").write_text(json.dumps(encoder))


BROKEN = {  # crm_churn version -> (what is wrong, what the reason says)
    "2": (lambda d: _cut(d / "manifest.json"), "crm_churn version 2: bundle/manifest.json: unexpected end of JSON"),
    "3": (lambda d: _cut(d / "booster.txt"), "crm_churn version 3: bundle/booster.txt"),
    "4": (_no_categories, "crm_churn version 4: bundle/encoder.json"),
    "5": (None, "crm_churn version 5: a conversion model"),
}


@pytest.fixture(scope="module")
def broken_registry(champions, tmp_path_factory):
    """A registry whose champions are the session's models (version 1 each), with crm_churn versions 2-5 broken."""
    import mlflow
    from mlflow import MlflowClient

    from training.artifact import save_bundle
    from training.config import REGISTERED_NAMES
    from training.pyfunc import MODEL_CODE
    from training.registry import CHAMPION, configure

    root = tmp_path_factory.mktemp("broken")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "CRM_SCORING_MODELS_DIR": str(root)}

    def register(name: str, bundle, damage=None) -> str:
        folder = save_bundle(bundle, root / f"{name}-{time.monotonic_ns()}" / "bundle")
        if damage is not None:
            damage(folder)
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE),
                artifacts={"bundle": str(folder)},
                registered_model_name=name,
            )
        return str(info.registered_model_version)

    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        configure()
        for kind, name in REGISTERED_NAMES.items():
            register(name, champions.bundles[kind])
            MlflowClient().set_registered_model_alias(name, CHAMPION, "1")
        for version, (damage, _) in BROKEN.items():
            wrong = champions.bundles["conversion"] if damage is None else champions.bundles["churn"]
            assert register("crm_churn", wrong, damage) == version
    return env


@pytest.fixture
def registry_at(broken_registry, monkeypatch):
    """Point MLflow at the broken registry; returns a function that moves crm_churn@champion to a version."""
    import mlflow
    from mlflow import MlflowClient

    for key, value in broken_registry.items():
        monkeypatch.setenv(key, value)
    mlflow.set_tracking_uri(broken_registry["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(broken_registry["MLFLOW_TRACKING_URI"])

    def champion(version: str) -> None:
        MlflowClient().set_registered_model_alias("crm_churn", "champion", version)

    champion("1")
    yield champion
    champion("1")


@pytest.mark.parametrize("version", sorted(BROKEN))
def test_start_serves_the_models_that_load(registry_at, prospects_db, version):
    """A broken crm_churn: `/ready` stays 200 for the models that load and names the broken one (version and
    file); a probe requiring it, or all, is 503; only its route answers 503, with a plain reason."""
    registry_at(version)
    with api_client(api_settings(prospects_db)) as c:  # the real registry loader
        ready = c.get("/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["complete"] is False
        reason = ready.json()["missing"]["crm_churn"]
        assert BROKEN[version][1] in reason
        assert ready.json()["models"]["crm_churn"].startswith(f"unavailable: {BROKEN[version][1]}")
        assert ready.json()["parts"]["models"] == "partial: crm_churn not loaded"
        assert set(ready.json()["versions"]) == {"conversion", "clv"}
        assert_public(ready.text)
        for strict in ("all", "crm_churn"):
            assert c.get("/ready", params={"require": strict}).status_code == 503
        assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200
        churn = c.post("/v1/customers/score", json=CUSTOMER, headers=READ)
        assert churn.status_code == 503 and BROKEN[version][1] in churn.json()["detail"]
        assert not CLASS_NAME.search(churn.json()["detail"]), churn.text
        assert_public(churn.text)


@pytest.mark.parametrize("version", sorted(BROKEN))
def test_reload_of_a_broken_artifact_keeps_the_loaded_set(registry_at, prospects_db, version):
    with api_client(api_settings(prospects_db)) as c:
        assert c.get("/ready").status_code == 200
        before = c.get("/v1/models", headers=READ).json()["models"]
        registry_at(version)
        failed = c.post("/v1/models/reload", headers=ADMIN)
        assert failed.status_code == 409 and failed.headers["content-type"] == "application/json"
        assert BROKEN[version][1] in failed.json()["errors"]["crm_churn"]
        assert_public(failed.text)
        assert c.get("/v1/models", headers=READ).json()["models"] == before
        assert c.get("/ready").status_code == 200


def test_a_failing_loader_is_a_reason_not_an_error(use_store, prospects_db, champions):
    """Whatever the loader raises, start serves (not ready) and reload answers 409 with the reason."""
    calls = []

    def loader():
        calls.append(1)
        if len(calls) == 2:
            raise KeyError(0)
        return champions

    with api_client(api_settings(prospects_db, model_load_attempts=1), loader=loader) as c:
        assert c.get("/ready").status_code == 200
        failed = c.post("/v1/models/reload", headers=ADMIN)
        assert failed.status_code == 409 and "KeyError" in failed.text
        assert c.get("/ready").status_code == 200


# ------------------------------------------------------------------------------------------- registry down


def test_models_load_in_the_background(use_store, prospects_db, champions):
    """The app answers while the models load: /health 200, /ready and scoring 503 saying so, then ready."""
    release = threading.Event()

    def slow_loader():
        release.wait(30)
        return champions

    with api_client(api_settings(prospects_db), loader=slow_loader, wait=False) as c:
        assert c.get("/health").status_code == 200
        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["parts"]["models"] == "loading"
        scored = c.post("/v1/leads/score", json=LEAD, headers=READ)
        assert scored.status_code == 503 and "loading" in scored.json()["detail"]
        release.set()
        c.app.state.runtime.wait(30)
        assert c.get("/ready").status_code == 200


def test_registry_coming_back_is_retried(use_store, prospects_db, champions):
    """A registry that fails the first attempts: the runtime retries (bounded) and serves once it answers."""
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            return runtime.ModelSet({}, {"crm_conversion": "the model registry did not answer"}, transient=True)
        return champions

    settings = api_settings(prospects_db, model_load_attempts=3, model_load_backoff_s=0.01)
    with api_client(settings, loader=flaky) as c:
        assert c.get("/ready").status_code == 200 and len(attempts) == 3
    attempts.clear()
    settings = api_settings(prospects_db, model_load_attempts=2, model_load_backoff_s=0.01)
    with api_client(settings, loader=flaky) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503 and len(attempts) == 2
        assert ready.json()["parts"]["models"].startswith("unavailable")


@pytest.mark.slow
def test_server_listens_at_once_with_the_tracking_server_down(tmp_path):
    """`serve` with MLFLOW_TRACKING_URI on a closed port: /health answers within seconds, /ready says why not."""
    closed = free_port()
    env = {
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed}",
        "CRM_SCORING_API_KEYS": "k-read:read",
        "CRM_SCORING_PROSPECTS_DB": str(tmp_path / "prospects.db"),
        "CRM_SCORING_MODEL_LOAD_ATTEMPTS": "2",
        "CRM_SCORING_MODEL_LOAD_BACKOFF_S": "0.5",
    }
    started = time.monotonic()
    with uvicorn_server(env, tmp_path / "server.log", wait_for="/health", timeout=30) as base:
        assert time.monotonic() - started < 15  # MLflow alone retried for minutes
        with httpx.Client(base_url=base, timeout=10) as c:
            deadline = time.monotonic() + 60
            while (ready := c.get("/ready")).json()["parts"]["models"] in ("loading",) or "retry" in ready.text:
                assert ready.status_code == 503
                assert time.monotonic() < deadline, ready.text
                time.sleep(0.5)
            assert ready.status_code == 503 and ready.json()["parts"]["models"].startswith("unavailable")
            assert "the model registry did not answer" in ready.json()["missing"]["crm_conversion"]
            assert_public(ready.text)
            scored = c.post("/v1/leads/score", json=LEAD, headers={"X-API-Key": "k-read"})
            assert scored.status_code == 503
            assert_public(scored.text)
    assert f":{closed}" in (tmp_path / "server.log").read_text()  # the detail is in the server's log


# ------------------------------------------------------------------------------------------- mixed champion set


def _mixed(champions: runtime.ModelSet) -> runtime.ModelSet:
    """The champions with churn's from another training (a training killed while moving the aliases)."""
    from dataclasses import replace

    churn = replace(champions.bundles["churn"])
    churn.metadata = replace(churn.metadata, champion_set="another-training-run")
    return runtime.ModelSet({**champions.bundles, "churn": churn})


def test_a_mixed_champion_set_is_refused_and_named_when_so_set(use_store, prospects_db, champions):
    with api_client(api_settings(prospects_db, refuse_mixed_champions=True), _mixed(champions)) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["parts"]["models"].startswith("unavailable")
        why = ready.json()["missing"]["crm_churn"]
        assert why.startswith("mixed champion set: crm_churn version 1 from training another-trai")
        assert "crm-score champions repair" in why
        scored = c.post("/v1/leads/score", json=LEAD, headers=READ)
        assert scored.status_code == 503 and "mixed champion set" in scored.json()["detail"]
        assert_public(scored.text)


def test_a_reload_refusing_a_mixed_set_keeps_the_served_one(use_store, prospects_db, champions):
    sets = iter([champions, _mixed(champions)])
    settings = api_settings(prospects_db, refuse_mixed_champions=True)
    with api_client(settings, loader=lambda: next(sets)) as c:
        assert c.get("/ready").status_code == 200
        reload = c.post("/v1/models/reload", headers=ADMIN)
        assert reload.status_code == 409 and "mixed champion set" in reload.json()["errors"]["crm_churn"]
        assert reload.json()["champion_set"]["consistent"] is True
        assert c.get("/ready").status_code == 200
        assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200


def test_a_mixed_set_is_served_flagged_by_default(use_store, prospects_db, champions, caplog):
    with caplog.at_level("WARNING"), api_client(api_settings(prospects_db), _mixed(champions)) as c:
        ready = c.get("/ready")
        assert ready.status_code == 200 and ready.json()["parts"]["models"].startswith("ok (mixed champion set: ")
        listed = c.get("/v1/models", headers=READ).json()["champion_set"]
        assert listed["consistent"] is False and listed["trainings"]["crm_churn"] == "another-training-run"
        assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200
    assert "serving a mixed champion set: crm_churn version 1 from training another-trai" in caplog.text
