"""The prospects route: ranking, filters, pages over the store's indexes, CSV, and errors."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest

from serving import store
from tests.servers import api_client
from tests.serving.conftest import READ, api_settings


def _all_pages(client, **params):
    items, cursor = [], None
    while True:
        page = client.get("/v1/prospects", params={**params, **({"cursor": cursor} if cursor else {})}, headers=READ)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def test_prospects_order_and_pagination(client, batch_scores):
    leads = batch_scores[batch_scores["conversion_probability"].notna()]
    items = _all_pages(client, limit=97)
    assert len(items) == len(leads)
    assert len({i["customer_id"] for i in items}) == len(items)
    keys = [(-i["expected_value"], i["customer_id"]) for i in items]
    assert keys == sorted(keys)
    by_p = _all_pages(client, order="probability", limit=500)
    probs = [i["conversion_probability"] for i in by_p]
    assert probs == sorted(probs, reverse=True)
    assert isinstance(items[0]["top_reasons"], dict)


def test_prospects_filters(client, batch_scores):
    leads = batch_scores[batch_scores["conversion_probability"].notna()]
    channel, stage = leads["source_channel"].mode()[0], leads["current_stage"].mode()[0]
    items = _all_pages(client, tier="A", source_channel=channel, limit=1000)
    expect = leads[(leads["conversion_tier"] == "A") & (leads["source_channel"] == channel)]
    assert sorted(i["customer_id"] for i in items) == sorted(expect["customer_id"])
    items = _all_pages(client, min_score=30, current_stage=stage, limit=1000)
    expect = leads[(leads["conversion_score"] >= 30) & (leads["current_stage"] == stage)]
    assert sorted(i["customer_id"] for i in items) == sorted(expect["customer_id"])
    stalled = _all_pages(client, stalled=True, limit=1000)
    assert len(stalled) == int((leads["stall_ratio"] >= 2).sum()) and all(i["stall_ratio"] >= 2 for i in stalled)
    region, industry = leads["region"].mode()[0], leads["industry"].mode()[0]
    items = _all_pages(client, region=region, industry=industry, stalled=False, limit=1000)
    expect = leads[(leads["region"] == region) & (leads["industry"] == industry) & ~(leads["stall_ratio"] >= 2)]
    assert len(items) == len(expect)


def test_prospects_csv_and_errors(client):
    r = client.get("/v1/prospects", params={"format": "csv", "limit": 10}, headers=READ)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 10 and "conversion_probability" in rows[0] and r.headers["x-next-cursor"]
    bad = client.get("/v1/prospects", params={"cursor": "garbage"}, headers=READ)
    assert bad.status_code == 422 and "cursor" in bad.text
    other = client.get("/v1/prospects", params={"limit": 1}, headers=READ).json()["next_cursor"]
    mixed = client.get("/v1/prospects", params={"cursor": other, "order": "probability"}, headers=READ)
    assert mixed.status_code == 422
    assert client.get("/v1/prospects", params={"tier": "Z"}, headers=READ).status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"order": "probability"},
        {"tier": "A"},
        {"source_channel": "event", "stalled": True},
        {"current_stage": "sql"},
        {"region": "west", "industry": "software"},
        {"stalled": False, "order": "probability"},
    ],
    ids=["first", "by-probability", "tier", "channel-stalled", "stage", "region-industry", "not-stalled"],
)
def test_prospect_pages_read_an_index_in_order(prospects_db, query):
    """Every page shape walks a ranking index in order (no full scan, no sort), first pages and deep ones alike."""
    con = sqlite3.connect(prospects_db)
    try:
        first = store.ProspectQuery(**query, limit=20)
        page = store.query_prospects(prospects_db, first)
        assert page["next_cursor"]
        for q in (first, store.ProspectQuery(**query, limit=20, cursor=page["next_cursor"])):
            sql, args = store.page_sql(con, q)
            steps = [row[-1] for row in con.execute("EXPLAIN QUERY PLAN " + sql, args)]
            assert len(steps) == 1 and "USING INDEX ix_" in steps[0], steps
            assert "TEMP B-TREE" not in steps[0], steps
            filters = [{"tier": "conversion_tier"}.get(k, k) for k in query if k != "order"]
            if filters:  # an equality on a filter column leads the index: only matching rows are read
                assert steps[0].startswith("SEARCH") and any(f"({c}=?" in steps[0] for c in filters), steps
            if q.cursor:  # and the cursor starts a range of the ranking key within it
                assert "_key<?" in steps[0], steps
    finally:
        con.close()


def test_few_high_scores_page_through_the_covering_score_index(prospects_db, batch_scores):
    """`min_score` reached by few leads: candidates are ranked inside the score index, the page read by id."""
    leads = batch_scores[batch_scores["conversion_probability"].notna()]
    score = int(leads["conversion_score"].quantile(0.9))
    con = sqlite3.connect(prospects_db)
    try:
        sql, args = store.page_sql(con, store.ProspectQuery(min_score=score, limit=10))
        steps = " | ".join(row[-1] for row in con.execute("EXPLAIN QUERY PLAN " + sql, args))
    finally:
        con.close()
    assert "COVERING INDEX ix_min_score" in steps and "(customer_id=?)" in steps, steps
    items = store.query_prospects(prospects_db, store.ProspectQuery(min_score=score, limit=1000))["items"]
    expect = leads[leads["conversion_score"] >= score].sort_values(["expected_value", "customer_id"], ascending=[0, 1])
    assert [i["customer_id"] for i in items] == list(expect["customer_id"])[:1000]


def test_prospects_missing_store(use_store, champions, tmp_path):
    with api_client(api_settings(tmp_path / "none.db"), champions) as c:
        r = c.get("/v1/prospects", headers=READ)
    assert r.status_code == 404 and "crm-score score" in r.json()["detail"]
