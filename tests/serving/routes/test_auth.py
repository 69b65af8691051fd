"""API keys: read and admin roles, wrong or missing keys, and auth disabled explicitly."""

from __future__ import annotations

import pytest

from serving.settings import Settings
from tests.servers import api_client
from tests.serving.conftest import ADMIN, LEAD, READ


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("post", "/v1/leads/score", {}, 401),
        ("post", "/v1/leads/score", {"X-API-Key": "nope"}, 401),
        ("post", "/v1/leads/score", {"Authorization": "Bearer nope"}, 401),
        ("get", "/v1/models", {}, 401),
        ("post", "/v1/models/reload", READ, 403),
        ("get", "/v1/models", ADMIN, 200),
    ],
    ids=["no-key", "wrong-key", "wrong-bearer", "models-no-key", "read-key-on-admin", "admin-implies-read"],
)
def test_auth(client, method, path, headers, status):
    r = getattr(client, method)(path, headers=headers, **({"json": LEAD} if method == "post" else {}))
    assert r.status_code == status
    if status != 200:
        assert r.json()["detail"]


def test_auth_disabled_explicitly(use_store, champions, prospects_db, caplog):
    settings = Settings(auth_disabled=True, prospects_db=prospects_db)
    with api_client(settings, champions) as c:
        assert c.post("/v1/leads/score", json=LEAD).status_code == 200
    assert "DISABLED" in caplog.text
