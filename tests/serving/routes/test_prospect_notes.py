"""The prospect list's evidence and model kind per lead, a store written before they existed, and an empty list
that says why it is empty."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3

import numpy as np

from serving import store
from tests.conftest import AS_OF
from tests.servers import api_client
from tests.serving.conftest import READ, api_settings
from training.scoring import score_customers


def test_prospects_carry_evidence_and_model_kind_in_json_and_csv(client, batch_scores):
    leads = batch_scores[batch_scores["conversion_probability"].notna()].set_index("customer_id")
    items = client.get("/v1/prospects", params={"limit": 200}, headers=READ).json()["items"]
    assert [i["evidence"] for i in items] == list(leads.loc[[i["customer_id"] for i in items], "evidence"])
    assert {i["model_kind"] for i in items} == {"lightgbm"}
    r = client.get("/v1/prospects", params={"format": "csv", "limit": 5}, headers=READ)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["evidence"] in ("none", "thin", "normal") and rows[0]["model_kind"] == "lightgbm"


def test_a_store_written_before_evidence_still_reads(use_store, champions, prospects_db, tmp_path):
    """A store of the previous version (no evidence, no model_kind columns): pages and `/ready` as before."""
    old = tmp_path / "prospects.db"
    shutil.copy(prospects_db, old)
    con = sqlite3.connect(old)
    for column in store.LATER_COLUMNS:
        con.execute(f"ALTER TABLE prospects DROP COLUMN {column}")
    con.commit()
    con.close()
    with api_client(api_settings(old), champions) as c:
        page = c.get("/v1/prospects", params={"limit": 3}, headers=READ)
        assert page.status_code == 200, page.text
        assert [(i["evidence"], i["model_kind"]) for i in page.json()["items"]] == [(None, None)] * 3
        assert c.get("/v1/prospects", params={"format": "csv", "limit": 3}, headers=READ).status_code == 200
        assert c.get("/ready").json()["parts"]["prospects"] == "ok"


def test_an_empty_list_says_the_conversion_model_was_missing(use_store, champions, tables, tmp_path):
    without = {k: b for k, b in champions.bundles.items() if k != "conversion"}
    db = store.write_prospects(score_customers(tables, AS_OF, without, reasons=False), tmp_path / "p.db")
    with api_client(api_settings(db), champions) as c:
        page = c.get("/v1/prospects", headers=READ)
        sheet = c.get("/v1/prospects", params={"format": "csv"}, headers=READ)
    assert page.status_code == 200 and page.json()["items"] == []
    assert "the conversion model was not loaded" in page.json()["note"]
    assert "conversion model was not loaded" in sheet.headers["x-note"]


def test_an_empty_list_says_there_was_no_open_lead(use_store, champions, batch_scores, tmp_path):
    closed = batch_scores.copy()  # every lead won or lost: nothing the conversion model scores
    closed["conversion_probability"] = np.nan
    db = store.write_prospects(closed, tmp_path / "p.db")
    with api_client(api_settings(db), champions) as c:
        note = c.get("/v1/prospects", headers=READ).json()["note"]
    assert note.startswith("no prospect: no open lead") and str(AS_OF) in note


def test_a_page_the_filters_empty_says_so_and_a_full_page_has_no_note(client):
    empty = client.get("/v1/prospects", params={"region": "atlantis"}, headers=READ).json()
    assert empty["items"] == [] and empty["note"] == "no prospect matches these filters"
    assert client.get("/v1/prospects", params={"limit": 1}, headers=READ).json()["note"] is None
