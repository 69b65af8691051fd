"""The ranked prospect list of the latest `crm-score score` run, filtered, in keyset pages, as JSON or CSV.

A plain `def` route: SQLite reads block, so FastAPI runs it in the threadpool. No store yet is a 404, a store
that cannot be read a 503 (only this route is unavailable); the bodies say why and what to run, the log where.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import Query
from fastapi.responses import Response

from serving import store
from serving.auth import ReadScope
from serving.deps import SettingsDep, StoreDep
from serving.routes.responses import FastJSONResponse, invalid, new_router, problem
from serving.schemas import ProspectPage
from serving.settings import CSV_PAGE_MAX

router = new_router(tags=["prospects"])
log = logging.getLogger(__name__)


@router.get(
    "/v1/prospects",
    summary="The ranked prospect list of the latest batch scoring run",
    response_model=ProspectPage,
    responses={
        404: {"description": "No prospect list written yet"},
        503: {"description": "The prospect list cannot be read; the body says why"},
        200: {"content": {"text/csv": {}}, "description": "A page of prospects (JSON or CSV)"},
    },
)
def prospects(
    _: ReadScope,
    settings: SettingsDep,
    db_path: StoreDep,
    order: Literal["expected_value", "probability"] = "expected_value",
    tier: Literal["A", "B", "C", "D"] | None = None,
    min_score: Annotated[int | None, Query(ge=0, le=100)] = None,
    source_channel: Annotated[str | None, Query(max_length=128)] = None,
    current_stage: Annotated[str | None, Query(max_length=128)] = None,
    industry: Annotated[str | None, Query(max_length=128)] = None,
    region: Annotated[str | None, Query(max_length=128)] = None,
    stalled: Annotated[bool | None, Query(description="stall_ratio >= 2: twice the typical stage time")] = None,
    limit: Annotated[int, Query(ge=1, le=CSV_PAGE_MAX, description="JSON pages: at most 1,000")] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
    format: Literal["json", "csv"] = "json",
):
    """Open leads ranked by expected value (default) or probability, ties by customer id; keyset pages.

    A lead is *stalled* when it has spent at least twice the typical time of its current stage there.
    Each item says how much its score rests on (`evidence`) and the conversion model's kind (`model_kind`).
    A page without items says why in `note` (for instance: no conversion model when the list was written).
    With `format=csv` the page comes as a spreadsheet; the next page's cursor is in `X-Next-Cursor`, the note in
    `X-Note`.
    """
    if format == "json" and limit > settings.max_page_size:
        raise invalid(("query", "limit"), f"JSON pages hold at most {settings.max_page_size}", "less_than_equal")
    q = store.ProspectQuery(
        order, tier, min_score, source_channel, current_stage, industry, region, stalled, limit, cursor
    )
    try:
        page = store.query_prospects(db_path, q)
    except store.BadCursor as exc:
        raise invalid(("query", "cursor"), str(exc)) from None
    except store.StoreMissing as exc:
        log.info("no prospect list at %s", db_path)
        return problem(404, str(exc))
    except store.StoreUnreadable as exc:
        log.warning("the prospect list at %s cannot be read: %s", db_path, exc.why)
        return problem(503, str(exc))
    if format == "csv":
        return _csv(page)
    return FastJSONResponse(page)


def _csv(page: dict) -> Response:
    """A page as a CSV attachment, the next page's cursor in `X-Next-Cursor`."""
    headers = {"Content-Disposition": 'attachment; filename="prospects.csv"'}
    if page["next_cursor"]:
        headers["X-Next-Cursor"] = page["next_cursor"]
    if page.get("note"):
        headers["X-Note"] = page["note"]
    return Response(store.to_csv(page["items"]), media_type="text/csv; charset=utf-8", headers=headers)
