"""The serving tests' shared pieces: request bodies, API keys, settings, and the champions loaded once with their
batch scores and prospects store."""

from __future__ import annotations

import pytest

from serving import runtime
from serving.settings import Settings
from serving.store import write_prospects
from tests.conftest import AS_OF
from tests.servers import api_client
from training.scoring import score_customers

READ, ADMIN = {"X-API-Key": "r-key"}, {"Authorization": "Bearer a-key"}

LEAD = {
    "customer_id": "L-1",
    "created_at": "2024-11-02T09:15:00Z",
    "source_channel": "search",
    "industry": "software",
    "region": "west",
    "employees": 40,
    "touchpoints": [
        {"timestamp": "2024-11-02T09:15:00Z", "channel": "search", "interaction": "ad_click", "cost": 1.2},
        {"timestamp": "2024-11-20T14:00:00Z", "channel": "email", "interaction": "email_open"},
    ],
    "funnel_events": [
        {"timestamp": "2024-11-02T09:15:00Z", "stage": "lead"},
        {"timestamp": "2024-11-25T10:00:00Z", "stage": "mql"},
    ],
    "as_of": "2024-12-31T00:00:00",
}
CUSTOMER = {
    "customer_id": "C-1",
    "created_at": "2023-03-01T00:00:00",
    "orders": [
        {"timestamp": "2024-02-10T12:00:00", "amount": 120.0, "channel": "online", "product_category": "software"},
        {"timestamp": "2024-09-18T12:00:00", "amount": 80.5, "channel": "phone"},
    ],
    "as_of": "2024-12-31T00:00:00",
}


def api_settings(db, **kw) -> Settings:
    """Settings with a read key (`READ`) and an admin key (`ADMIN`), serving the prospects store `db`."""
    return Settings(api_keys="r-key:read,a-key:admin", prospects_db=db, **kw)


@pytest.fixture(scope="package")
def champions(trained_store):
    """The champion set, loaded once for the serving tests."""
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained_store["uri"])
        mp.setenv("CRM_SCORING_MODELS_DIR", str(trained_store["dir"]))
        mlflow.set_tracking_uri(trained_store["uri"])
        models = runtime.load_model_set()
    assert models.ready, models.missing
    return models


@pytest.fixture(scope="package")
def batch_scores(champions, tables):
    return score_customers(tables, AS_OF, champions.bundles)


@pytest.fixture(scope="package")
def prospects_db(batch_scores, tmp_path_factory):
    return write_prospects(batch_scores, tmp_path_factory.mktemp("prospects") / "prospects.db")


@pytest.fixture
def client(use_store, champions, prospects_db):
    with api_client(api_settings(prospects_db), champions) as c:
        yield c
