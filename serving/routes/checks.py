"""Checks of scoring requests beyond their schema: the settings' limits, the clock, the trained funnel.

These depend on the server (its settings and the model set loaded now), so they run in the route, after the
schema, and answer 422 like a schema error, each error at its field's location.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from fastapi.exceptions import RequestValidationError

from crmdata.funnel import Funnel
from crmdata.timeutil import naive_utc
from serving.schemas import Record
from serving.settings import Settings

HISTORY_LISTS = ("touchpoints", "funnel_events", "orders")


def check_records(records: Sequence[Record], settings: Settings, funnel: Funnel | None, batch: str | None) -> None:
    """422 for records over the settings' limits (batch size, distinct cutoffs, history), created after their
    cutoff or with stages not in `funnel`.

    `batch` names the body's list field (`leads`, `customers`), or is None for a single record; `funnel` is
    the loaded models' (None when no model is loaded: scoring answers 503 then).
    """
    errors = []
    if batch and len(records) > settings.max_batch:
        errors.append({"type": "too_long", "loc": ("body", batch), "msg": f"at most {settings.max_batch} per request"})
    if batch and len(records) > settings.max_cutoffs:
        errors += _cutoff_errors(records, settings.max_cutoffs, batch)
    now = datetime.now(UTC).replace(tzinfo=None)
    allowed = funnel.allowed if funnel is not None else None
    for i, rec in enumerate(records):
        loc = ("body", batch, i) if batch else ("body",)
        for name in HISTORY_LISTS:
            if len(getattr(rec, name)) > settings.max_history_events:
                msg = f"at most {settings.max_history_events} events per lead"
                errors.append({"type": "too_long", "loc": (*loc, name), "msg": msg})
        if rec.created_at is not None and rec.as_of is None and naive_utc(rec.created_at) >= now:
            errors.append({"type": "value_error", "loc": (*loc, "created_at"), "msg": "created_at is in the future"})
        if allowed is not None:
            errors += _stage_errors(rec, funnel, allowed, loc)
    if errors:
        raise RequestValidationError(errors)


def _cutoff_errors(records: Sequence[Record], limit: int, batch: str) -> list[dict]:
    """An error when the records hold more than `limit` distinct cutoffs (the same instant in any zone is one;
    no `as_of`, meaning now, is one more): each cutoff is a feature build of its own."""
    cutoffs = {naive_utc(rec.as_of) if rec.as_of is not None else None for rec in records}
    if len(cutoffs) <= limit:
        return []
    msg = f"at most {limit} distinct as_of cutoffs per request (this one has {len(cutoffs)}): split the batch"
    return [{"type": "too_long", "loc": ("body", batch), "msg": msg}]


def _stage_errors(rec: Record, funnel: Funnel, allowed: tuple[str, ...], loc: tuple) -> list[dict]:
    """An error per funnel event whose stage the models were not trained with (they would ignore it)."""
    return [
        {
            "type": "value_error",
            "loc": (*loc, "funnel_events", j, "stage"),
            "msg": f"stage {event.stage!r} is not a stage of the trained funnel: {funnel.describe()}",
        }
        for j, event in enumerate(rec.funnel_events)
        if event.stage not in allowed
    ]
