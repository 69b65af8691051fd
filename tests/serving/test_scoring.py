"""Scoring leads and customers in process (FastAPI TestClient) against the session's trained registry: answers,
funnel stages, validation and limits, parity with batch scoring, and schema-driven fuzzing."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from serving import runtime, scorer
from tests.conftest import AS_OF
from tests.servers import api_client
from tests.serving.conftest import ADMIN, CUSTOMER, LEAD, READ, api_settings
from training.features import build_features
from training.metadata import ModelMetadata
from training.registry import load_champions

# --------------------------------------------------------------------------------------------- scoring


def test_score_one_lead(client, champions):
    r = client.post("/v1/leads/score", json=LEAD, headers=READ)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer_id"] == "L-1"
    assert 0 <= body["conversion_probability"] <= 1
    assert body["conversion_score"] == round(body["conversion_probability"] * 100)
    assert body["conversion_tier"] in "ABCD"
    assert body["expected_value"] is not None
    assert body["model_version"] == champions.versions()["conversion"]
    assert body["reasons"] and {"feature", "value", "contribution", "text"} <= set(body["reasons"][0])


def test_score_lead_batch_keeps_order(client):
    leads = [{**LEAD, "customer_id": f"L-{i}", "employees": i * 10} for i in range(30)]
    r = client.post("/v1/leads/score", json={"leads": leads}, headers=READ)
    assert r.status_code == 200, r.text
    assert [s["customer_id"] for s in r.json()["scores"]] == [f"L-{i}" for i in range(30)]


def test_minimal_lead_defaults_as_of_now(client):
    r = client.post("/v1/leads/score", json={"source_channel": "search"}, headers=READ)
    assert r.status_code == 200, r.text
    assert r.json()["customer_id"] is None


def test_unknown_values_score_as_unseen(client):
    lead = {
        **LEAD,
        "source_channel": "carrier-pigeon",
        "industry": "alchemy",
        "region": "atlantis",
        "touchpoints": [{"timestamp": "2024-12-01T00:00:00", "channel": "telepathy", "interaction": "dream"}],
        "orders": [{"timestamp": "2024-12-02T00:00:00", "amount": 5, "channel": "barter", "product_category": "x"}],
    }
    r = client.post("/v1/leads/score", json=lead, headers=READ)
    assert r.status_code == 200, r.text
    assert 0 <= r.json()["conversion_probability"] <= 1
    c = client.post("/v1/customers/score", json=lead, headers=READ)
    assert c.status_code == 200, c.text


# --------------------------------------------------------------------------------------------- funnel stages


def _with_stages(record: dict, *stages: str) -> dict:
    events = [{"timestamp": f"2024-11-{day + 1:02d}T00:00:00", "stage": s} for day, s in enumerate(stages)]
    return {**record, "funnel_events": events}


def _stage_message(stage: str, funnel: Funnel = DEFAULT_FUNNEL) -> str:
    return f"stage {stage!r} is not a stage of the trained funnel: {funnel.describe()}"


def test_unknown_stage_is_rejected_with_the_trained_funnel(client):
    """A stage the models were not trained with would be ignored silently: 422 naming it, where, and the stages."""
    r = client.post("/v1/leads/score", json=_with_stages(LEAD, "lead", "Qualified"), headers=READ)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [
        {"loc": ["body", "funnel_events", 1, "stage"], "msg": _stage_message("Qualified"), "type": "value_error"}
    ]
    assert "'Qualified'" in r.text and "lead, mql, sql, opportunity, negotiation, won (or lost)" in r.text
    assert "body.funnel_events.1.stage" in r.json()["message"]


def test_unknown_stage_in_a_batch_and_for_customers(client):
    leads = [LEAD, _with_stages(LEAD, "pondering"), _with_stages(LEAD, "mql", "Won")]
    r = client.post("/v1/leads/score", json={"leads": leads}, headers=READ)
    assert r.status_code == 422
    assert [(e["loc"], e["msg"]) for e in r.json()["detail"]] == [
        (["body", "leads", 1, "funnel_events", 0, "stage"], _stage_message("pondering")),
        (["body", "leads", 2, "funnel_events", 1, "stage"], _stage_message("Won")),
    ]
    c = client.post("/v1/customers/score", json=_with_stages(CUSTOMER, "sql", "churned"), headers=READ)
    assert c.status_code == 422 and c.json()["detail"][0]["msg"] == _stage_message("churned")
    every = _with_stages(LEAD, *DEFAULT_FUNNEL.allowed)  # every stage of the funnel, lost included, is fine
    assert client.post("/v1/leads/score", json=every, headers=READ).status_code == 200


class _Stub:
    """A bundle stand-in with a feature spec of its own funnel (no model: enough for the stage check)."""

    def __init__(self, funnel: Funnel):
        self.spec = SimpleNamespace(funnel=funnel)
        self.metadata = ModelMetadata(
            kind="conversion",
            registered_name="crm_conversion",
            as_of="2024-12-31",
            horizon_days=90,
            validation_cutoff="2024-10-02",
            holdout_window_days=90,
            training_cutoffs=(),
            train_rows=0,
            holdout_rows=0,
            best_iteration=0,
            refit_on_holdout=False,
            holdout_metrics={},
            baseline_metrics={},
            data_window=("2023-01-01", "2024-12-31"),
            data_fingerprint="",
            trained_at="2025-01-01T00:00:00+00:00",
            version="0",
        )

    def warm(self) -> None:
        pass


def test_stages_are_checked_against_the_models_loaded_now(use_store, champions, prospects_db):
    """After a reload with champions of another funnel, the stages of that funnel are the allowed ones."""
    other = Funnel.of(["prospect", "deal", "signed"], lost="dropped")
    sets = iter([champions, runtime.ModelSet({k: _Stub(other) for k in ("conversion", "churn", "clv")})])
    with api_client(api_settings(prospects_db), loader=lambda: next(sets)) as c:
        assert c.post("/v1/leads/score", json=_with_stages(LEAD, "lead"), headers=READ).status_code == 200
        assert c.post("/v1/models/reload", headers=ADMIN).status_code == 200
        r = c.post("/v1/leads/score", json=_with_stages(LEAD, "lead", "deal"), headers=READ)
    assert r.status_code == 422
    assert [e["msg"] for e in r.json()["detail"]] == [_stage_message("lead", other)]
    assert "prospect, deal, signed (or dropped)" in r.text


def test_score_customer(client, champions):
    r = client.post("/v1/customers/score", json=CUSTOMER, headers=READ)
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0 <= body["churn_probability"] <= 1
    assert body["churn_risk"] in ("low", "medium", "high")
    assert body["expected_clv"] >= 0 and 1 <= body["value_decile"] <= 10
    assert set(body["reasons"]) == {"churn", "clv"}
    assert body["model_versions"] == {k: champions.versions()[k] for k in ("churn", "clv")}
    batch = client.post("/v1/customers/score", json={"customers": [CUSTOMER, LEAD]}, headers=READ).json()
    assert batch["scores"][1]["churn_probability"] is None  # no order before as_of: churn does not apply


# --------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**LEAD, "employees": -5}, "employees"),
        ({**LEAD, "touchpoints": [{"channel": "email"}]}, "timestamp"),
        ({**LEAD, "touchpionts": []}, "touchpionts"),
        ({**LEAD, "as_of": "not a date"}, "as_of"),
        ({**LEAD, "created_at": "2025-06-01T00:00:00"}, "created_at"),
        ({**LEAD, "orders": [{"timestamp": "2024-01-01T00:00:00", "amount": "lots"}]}, "amount"),
        ({**LEAD, "touchpoints": [{"timestamp": "0001-01-01T00:00:00", "channel": "x"}]}, "timestamp"),
        ({**LEAD, "as_of": "0001-01-01T00:00:00+01:00"}, "as_of"),
        ({**LEAD, "region": "x" * 500}, "region"),
        ({"leads": []}, "leads"),
    ],
    ids=[
        "negative",
        "missing-timestamp",
        "unknown-field",
        "bad-date",
        "created-after-as-of",
        "amount-text",
        "ancient",
        "out-of-range-offset",
        "long-string",
        "empty-batch",
    ],
)
def test_validation_names_the_field(client, body, field):
    r = client.post("/v1/leads/score", json=body, headers=READ)
    assert r.status_code == 422, r.text
    assert field in r.text


def test_batch_over_limit(client):
    r = client.post("/v1/leads/score", json={"leads": [{"region": "w"}] * 1001}, headers=READ)
    assert r.status_code == 422 and "leads" in r.text
    assert r.json()["detail"] == [{"loc": ["body", "leads"], "msg": "at most 1000 per request", "type": "too_long"}]
    assert client.post("/v1/leads/score", json={"leads": [{"region": "w"}] * 1000}, headers=READ).status_code == 200


def test_batch_limit_is_the_setting(use_store, champions, prospects_db):
    """`max_batch` is the one batch limit, whether tighter or looser than the default, and the schema states it."""
    with api_client(api_settings(prospects_db, max_batch=3), champions) as c:
        r = c.post("/v1/customers/score", json={"customers": [CUSTOMER] * 4}, headers=READ)
        schema = c.get("/openapi.json").json()["components"]["schemas"]
    assert r.status_code == 422 and r.json()["detail"][0]["msg"] == "at most 3 per request"
    assert schema["CustomerBatch"]["properties"]["customers"]["maxItems"] == 3
    assert schema["Lead"]["properties"]["touchpoints"]["maxItems"] == 2000
    with api_client(api_settings(prospects_db, max_batch=1100), champions) as c:
        body = {"leads": [{"region": "w"}] * 1001}
        many = c.post("/v1/leads/score", params={"top_reasons": 0}, json=body, headers=READ)
    assert many.status_code == 200 and len(many.json()["scores"]) == 1001


def test_history_over_setting(use_store, champions, prospects_db):
    with api_client(api_settings(prospects_db, max_history_events=1), champions) as c:
        r = c.post("/v1/leads/score", json=LEAD, headers=READ)
        batch = c.post("/v1/leads/score", json={"leads": [CUSTOMER, LEAD]}, headers=READ)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "touchpoints"]
    assert batch.status_code == 422
    assert [e["loc"] for e in batch.json()["detail"]] == [
        ["body", "leads", 0, "orders"],
        ["body", "leads", 1, "touchpoints"],
        ["body", "leads", 1, "funnel_events"],
    ]


def test_body_too_large(use_store, champions, prospects_db):
    with api_client(api_settings(prospects_db, max_body_bytes=2048), champions) as c:
        big = {"leads": [LEAD] * 20}
        assert c.post("/v1/leads/score", json=big, headers=READ).status_code == 413
        assert c.post("/v1/leads/score", json=LEAD, headers=READ).status_code == 200


def test_malformed_json(client):
    r = client.post("/v1/leads/score", content=b"{not json", headers={**READ, "content-type": "application/json"})
    assert r.status_code == 422


# --------------------------------------------------------------------------------------------- parity


HISTORY = {
    "touchpoints": ["timestamp", "channel", "interaction", "campaign_id", "cost", "satisfaction"],
    "funnel_events": ["timestamp", "stage"],
    "orders": ["timestamp", "order_id", "amount", "channel", "product_category"],
}


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v))


def _requests(tables: dict, ids: list[str]) -> list[dict]:
    """Request bodies of customers `ids` from the export's rows (every field the tables hold, in table order)."""
    wanted = set(ids)
    history: dict[str, dict[str, list]] = {}
    for name, columns in HISTORY.items():
        per: dict[str, list] = {cid: [] for cid in ids}
        frame = tables.get(name)
        if frame is not None:
            rows = frame[frame["customer_id"].isin(wanted)]
            for rec in rows[["customer_id", *[c for c in columns if c in rows.columns]]].to_dict("records"):
                cid = rec.pop("customer_id")
                per[cid].append(
                    {k: v.isoformat() if isinstance(v, pd.Timestamp) else v for k, v in rec.items() if not _missing(v)}
                )
        history[name] = per
    customers = tables["customers"].set_index("customer_id")
    bodies = []
    for cid in ids:
        cust = customers.loc[cid]
        body = {"customer_id": cid, "created_at": cust["created_at"].isoformat(), "as_of": AS_OF.isoformat()}
        for col in ("source_channel", "industry", "region", "employees", "annual_revenue"):
            if not _missing(cust[col]):
                body[col] = cust[col] if isinstance(cust[col], str) else float(cust[col])
        bodies.append({**body, **{name: history[name][cid] for name in HISTORY}})
    return bodies


@pytest.fixture(scope="module")
def batch_features(champions, tables):
    """The batch path's feature rows (`build_features` over the whole export), by model kind."""
    return {kind: build_features(tables, AS_OF, b.spec) for kind, b in champions.bundles.items()}


def test_parity_with_batch_scoring(client, champions, tables, batch_scores, batch_features, monkeypatch):
    """1,000 customers sent to the API as requests get the batch path's feature rows and scores (to 1e-9).

    The feature rows are the ones the API itself built while answering (captured from `scorer.feature_rows`),
    compared with `build_features` over the whole export; the scores, tiers, deciles and reasons are the API's
    answers, compared with `crm-score score`'s (`training.scoring.score_customers`).
    """
    customers = tables["customers"]
    known = customers.loc[customers["created_at"] < AS_OF, "customer_id"].astype(str)
    ids = sorted(np.random.default_rng(0).choice(known.to_numpy(dtype=object), size=1000, replace=False))
    bodies = _requests(tables, ids)
    assert sum(bool(b["orders"]) for b in bodies) > 100 and sum(bool(b["touchpoints"]) for b in bodies) > 500
    captured: list[dict] = []
    real = scorer.feature_rows

    def spy(*args, **kwargs):
        captured.append(real(*args, **kwargs))
        return captured[-1]

    monkeypatch.setattr(scorer, "feature_rows", spy)
    leads = client.post("/v1/leads/score", json={"leads": bodies}, headers=READ)
    assert leads.status_code == 200, leads.text[:500]
    custs = client.post("/v1/customers/score", json={"customers": bodies}, headers=READ)
    assert custs.status_code == 200, custs.text[:500]

    # Feature rows: every model's, from both routes, equal to the batch path's.
    assert len(captured) == 2
    checked = set()
    for rows in captured:
        for kind, blocks in rows.items():
            want = batch_features[kind].loc[ids]
            got = blocks.to_frame()
            assert list(got.columns) == list(want.columns)
            numeric = list(blocks.numeric_columns)
            np.testing.assert_allclose(
                got[numeric].to_numpy(float), want[numeric].to_numpy(float), rtol=1e-9, atol=1e-9
            )
            for col in blocks.categorical_columns:
                assert list(got[col]) == list(want[col]), col
            checked.add(kind)
    assert checked == {"conversion", "churn", "clv"}

    batch = batch_scores.set_index("customer_id").loc[ids]
    got = pd.DataFrame(leads.json()["scores"]).set_index("customer_id")
    assert list(got.index) == ids
    open_lead = batch["conversion_probability"].notna()
    assert open_lead.sum() > 100
    want = batch[open_lead]
    np.testing.assert_allclose(got.loc[open_lead, "conversion_probability"], want["conversion_probability"], atol=1e-9)
    assert list(got.loc[open_lead, "conversion_tier"]) == list(want["conversion_tier"])
    assert list(got.loc[open_lead, "conversion_score"]) == [int(s) for s in want["conversion_score"]]
    valued = batch["expected_clv"].notna()  # the CLV model's population (the API values anyone it is sent)
    assert valued.sum() > 200
    np.testing.assert_allclose(got.loc[valued, "expected_value"], batch.loc[valued, "expected_value"], rtol=1e-9)
    for cid, reasons in got.loc[open_lead, "reasons"].items():
        expect = json.loads(batch.at[cid, "top_reasons"])["conversion"]
        assert [(r["feature"], r["contribution"]) for r in reasons] == [
            (r["feature"], r["contribution"]) for r in expect
        ], cid

    got = pd.DataFrame(custs.json()["scores"]).set_index("customer_id")
    buyer = batch["churn_probability"].notna()
    assert buyer.sum() > 100
    np.testing.assert_allclose(got.loc[buyer, "churn_probability"], batch.loc[buyer, "churn_probability"], atol=1e-9)
    assert got.loc[~buyer, "churn_probability"].isna().all()
    assert list(got.loc[buyer, "churn_risk"]) == list(batch.loc[buyer, "churn_risk"])
    np.testing.assert_allclose(got.loc[valued, "expected_clv"], batch.loc[valued, "expected_clv"], rtol=1e-9)
    assert list(got.loc[valued, "value_decile"]) == [int(d) for d in batch.loc[valued, "value_decile"]]


def test_reasons_per_request_and_threadpool(use_store, champions, prospects_db):
    """`?top_reasons=` overrides the setting (0: none); with `inline_max=0` every request goes to the threadpool."""
    with api_client(api_settings(prospects_db, inline_max=0), champions) as c:
        full = c.post("/v1/leads/score", json=LEAD, headers=READ).json()
        none = c.post("/v1/leads/score", params={"top_reasons": 0}, json=LEAD, headers=READ).json()
        one = c.post("/v1/customers/score", params={"top_reasons": 1}, json=CUSTOMER, headers=READ).json()
        bad = c.post("/v1/leads/score", params={"top_reasons": 11}, json=LEAD, headers=READ)
    assert 0 < len(full["reasons"]) <= 6 and none["reasons"] == []
    assert none["conversion_probability"] == full["conversion_probability"]
    assert all(len(r) <= 2 for r in one["reasons"].values()) and one["reasons"]["clv"]
    assert bad.status_code == 422 and "top_reasons" in bad.text


def test_load_champions_is_the_registry_api(use_store):
    bundles, missing = load_champions()
    assert not missing and set(bundles) == {"conversion", "churn", "clv"}


# --------------------------------------------------------------------------------------------- fuzzing


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_server_errors(client, mode):
    """Requests generated from the OpenAPI schema (valid and invalid) never get a 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 11  # the what-if route joined on 2026-12-02
    failures: list[str] = []
    for operation in operations:
        headers = ADMIN if operation.path == "/v1/models/reload" else READ
        _fuzz(operation.as_strategy(generation_mode=GenerationMode(mode)), headers, failures)
    assert not failures, "\n".join(failures[:10])


def _fuzz(strategy, headers: dict, failures: list[str]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable

    @given(case=strategy)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        response = case.call(headers=headers)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}")

    with contextlib.suppress(Unsatisfiable):  # negative mode on a route without inputs: nothing to break
        run()
