"""Evidence per score: how much each score rests on (none, thin, normal) and which kind of model made it, in
the API's answers, the batch score file and the prospect list, by one rule (`training.scoring.evidence_levels`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.conftest import AS_OF
from tests.serving.conftest import CUSTOMER, LEAD, READ
from training.scoring import THIN_DAYS, THIN_EVENTS, evidence_levels, write_scores


def test_the_rule_none_without_events_thin_when_few_or_young():
    events = np.array([0, 0, THIN_EVENTS - 1, THIN_EVENTS, THIN_EVENTS, 50])
    age = np.array([400, np.nan, 400, THIN_DAYS - 0.5, THIN_DAYS, np.nan])
    assert list(evidence_levels(events, age)) == ["none", "none", "thin", "thin", "normal", "thin"]


def test_a_lead_without_history_is_marked_none(client):
    r = client.post("/v1/leads/score", json={"customer_id": "x"}, headers=READ)
    assert r.status_code == 200, r.text
    assert r.json()["evidence"] == "none" and r.json()["model_kind"] == "lightgbm"
    assert r.json()["clv_model_kind"] == "lightgbm"


def test_lead_evidence_counts_history_before_as_of_only(client):
    one = {**LEAD, "customer_id": "one", "touchpoints": LEAD["touchpoints"][:1], "funnel_events": []}
    later = {**LEAD, "customer_id": "later", "as_of": "2024-11-01T00:00:00", "created_at": "2024-10-01T00:00:00"}
    young = {**LEAD, "customer_id": "young", "created_at": "2024-12-25T00:00:00"}
    young["touchpoints"] = [{**t, "timestamp": "2024-12-26T00:00:00"} for t in LEAD["touchpoints"]]
    young["funnel_events"] = [{**e, "timestamp": "2024-12-27T00:00:00"} for e in LEAD["funnel_events"]]
    r = client.post("/v1/leads/score", json={"leads": [LEAD, one, later, young]}, headers=READ)
    assert r.status_code == 200, r.text
    got = {s["customer_id"]: s["evidence"] for s in r.json()["scores"]}
    # LEAD: 4 events over 59 days; one: a single touchpoint; later: all history after its as_of; young: 6 days old.
    assert got == {"L-1": "normal", "one": "thin", "later": "none", "young": "thin"}


def test_customer_scores_carry_evidence_and_model_kinds(client):
    r = client.post("/v1/customers/score", json={"customers": [CUSTOMER, {"customer_id": "x"}]}, headers=READ)
    assert r.status_code == 200, r.text
    buyer, empty = r.json()["scores"]
    assert buyer["evidence"] == "thin" and empty["evidence"] == "none"  # two orders are fewer than THIN_EVENTS
    assert buyer["model_kinds"] == {"churn": "lightgbm", "clv": "lightgbm"}


def _expected_evidence(tables: dict, ids: pd.Index) -> list[str]:
    """The rule computed row by row from the export, independently of `evidence_of`'s vectorised counts."""
    created = tables["customers"].set_index("customer_id")["created_at"]
    out = []
    for cid in ids:
        n = sum(
            int(((t["customer_id"] == cid) & (t["timestamp"] < AS_OF)).sum())
            for t in (tables.get(name) for name in ("touchpoints", "funnel_events", "orders"))
            if t is not None
        )
        age = (AS_OF - created[cid]).total_seconds() / 86400
        out.append("none" if n == 0 else "thin" if n < THIN_EVENTS or age < THIN_DAYS else "normal")
    return out


def test_batch_scores_carry_evidence_and_the_kind_of_each_model(batch_scores, tables, tmp_path):
    assert set(batch_scores["evidence"]) <= {"none", "thin", "normal"}
    assert {"thin", "normal"} <= set(batch_scores["evidence"])
    sample = batch_scores.sample(60, random_state=0)
    assert list(sample["evidence"]) == _expected_evidence(tables, sample["customer_id"])
    for kind, scored in (("conversion", "conversion_probability"), ("churn", "churn_probability")):
        column = batch_scores[f"{kind}_model_kind"]
        assert (column[batch_scores[scored].notna()] == "lightgbm").all() and column[
            batch_scores[scored].isna()
        ].isna().all()
    write_scores(batch_scores, tmp_path / "scores.csv")
    written = pd.read_csv(tmp_path / "scores.csv")
    assert list(written["evidence"]) == list(batch_scores["evidence"])
    assert written["clv_model_kind"].dropna().eq("lightgbm").all()


def test_api_and_batch_say_the_same_evidence(client, tables, batch_scores):
    """Customers sent with their export history (events after AS_OF too) get the batch file's evidence."""
    from tests.serving.test_scoring import _requests

    ids = list(batch_scores.sample(200, random_state=1)["customer_id"].astype(str))
    r = client.post("/v1/customers/score", json={"customers": _requests(tables, ids)}, headers=READ)
    assert r.status_code == 200, r.text[:300]
    want = batch_scores.set_index("customer_id").loc[ids, "evidence"]
    assert [s["evidence"] for s in r.json()["scores"]] == list(want)
