"""The fast scoring path of the API: request records -> feature rows -> scores of the loaded champions.

A request's leads become tiny versions of the input tables (numpy columns, `ArrayTable`), and
`training.features.build_feature_blocks` turns them into feature rows: the very definitions training used,
so that the API and `crm-score score` agree to the last bit, without a pandas DataFrame on the way.
Prediction runs on numpy arrays with LightGBM at one thread (see `ModelBundle.predict_matrix`).
Loading and reloading the models is `serving.runtime`'s job.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter

import numpy as np
import pandas as pd

from crmdata.timeutil import naive_utc
from serving.runtime import ModelSet
from serving.schemas import Record
from training.features import ArrayTable, FeatureBlocks, build_feature_blocks
from training.scoring import EVENT_TABLES, evidence_levels
from training.tiers import churn_risk, conversion_tier, value_decile

log = logging.getLogger(__name__)
_EPOCH, _MICROSECOND = datetime(1970, 1, 1), timedelta(microseconds=1)
_FIELDS = {
    "touchpoints": ("timestamp", "channel", "interaction", "campaign_id", "cost", "satisfaction"),
    "funnel_events": ("timestamp", "stage"),
    "orders": ("timestamp", "amount", "order_id", "channel", "product_category"),
}
_STR_COLUMNS = {
    "customers": ("source_channel", "industry", "region"),
    "touchpoints": ("channel", "interaction", "campaign_id"),
    "funnel_events": ("stage",),
    "orders": ("order_id", "channel", "product_category"),
}


# ---------------------------------------------------------------------------------------------- request -> rows


def _nanos(values: list[datetime]) -> np.ndarray:
    """Int64 nanoseconds since the epoch, naive UTC (aware datetimes converted), as `ArrayTable` wants them."""
    micros = [((v if v.tzinfo is None else naive_utc(v)) - _EPOCH) // _MICROSECOND for v in values]
    return np.array(micros, dtype=np.int64) * 1000


def _column(values: list, text: bool) -> np.ndarray:
    if text:
        return np.array(values, dtype=object)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


_CUSTOMER_FIELDS = ("created_at", "source_channel", "industry", "region", "employees", "annual_revenue")
_GET = {table: attrgetter(*fields) for table, fields in (("customers", _CUSTOMER_FIELDS), *_FIELDS.items())}


def records_to_arrays(records: Sequence[Record], as_of: datetime) -> dict[str, ArrayTable | None]:
    """The input tables of `records` (all with the same cutoff) as `ArrayTable`s: row i is `records[i]`.

    `training.features.build_feature_blocks` reads them with the very feature definitions training used,
    without pandas' fixed costs (which are most of the time on a request's few rows).
    """
    floor = as_of - timedelta(seconds=1)
    customers = []
    owners: dict[str, list[int]] = {table: [] for table in _FIELDS}
    rows: dict[str, list[tuple]] = {table: [] for table in _FIELDS}
    for i, rec in enumerate(records):
        row = _GET["customers"](rec)
        if row[0] is None:  # created_at: the earliest history event, else one second before the cutoff
            stamps = [e.timestamp for e in (*rec.touchpoints, *rec.funnel_events, *rec.orders)]
            row = (min([floor, *(naive_utc(s) for s in stamps)]), *row[1:])
        customers.append(row)
        for table, events in (
            ("touchpoints", rec.touchpoints),
            ("funnel_events", rec.funnel_events),
            ("orders", rec.orders),
        ):
            if events:
                owners[table].extend([i] * len(events))
                rows[table].extend(map(_GET[table], events))
    tables: dict[str, ArrayTable | None] = {"customers": ArrayTable(_columns("customers", customers))}
    for table in _FIELDS:
        if rows[table]:
            columns = _columns(table, rows[table])
            columns["customer_id"] = np.array(owners[table], dtype=np.int64)  # row positions in `customers`
            tables[table] = ArrayTable(columns)
        else:
            tables[table] = None
    return tables


def _columns(table: str, rows: list[tuple]) -> dict[str, np.ndarray]:
    """Rows of field tuples (`_GET[table]`, the time first) as numpy columns."""
    fields = _CUSTOMER_FIELDS if table == "customers" else _FIELDS[table]
    values = list(zip(*rows, strict=True))
    out = {fields[0]: _nanos(values[0])}
    for name, column in zip(fields[1:], values[1:], strict=True):
        out[name] = _column(column, name in _STR_COLUMNS[table])
    return out


def _groups(records: Sequence[Record], now: datetime) -> dict[datetime, list[int]]:
    """Record positions by cutoff (`as_of`, default `now`), naive UTC."""
    out: dict[datetime, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        out[naive_utc(rec.as_of) if rec.as_of is not None else now].append(i)
    return out


def evidence(tables: dict[str, ArrayTable | None], as_of: datetime) -> np.ndarray:
    """`training.scoring.evidence_levels` of the records of `records_to_arrays` (history at or after `as_of`
    does not count), as the batch file says it."""
    cutoff = int(_nanos([as_of])[0])
    n = len(tables["customers"])
    events = np.zeros(n, dtype=np.int64)
    for name in EVENT_TABLES:
        table = tables[name]
        if table is not None:
            events += np.bincount(table["customer_id"][table["timestamp"] < cutoff], minlength=n)
    age_days = (cutoff - tables["customers"]["created_at"]) / (86400 * 1e9)
    return evidence_levels(events, age_days)


def feature_rows(
    models: ModelSet,
    kinds: Sequence[str],
    records: Sequence[Record],
    as_of: datetime,
    tables: dict[str, ArrayTable | None] | None = None,
) -> dict[str, FeatureBlocks]:
    """The feature rows of `records` at `as_of` for each loaded model of `kinds`, in request order.

    One build per distinct feature spec (the models usually share one); `tables`: `records_to_arrays`'s, if
    already built.
    """
    tables = tables or records_to_arrays(records, as_of)
    cutoff = pd.Timestamp(as_of)
    out: dict[str, FeatureBlocks] = {}
    built: list[tuple] = []
    for kind in kinds:
        bundle = models.bundles.get(kind)
        if bundle is None:
            continue
        for spec, blocks in built:
            if spec is bundle.spec or spec == bundle.spec:
                out[kind] = blocks
                break
        else:
            out[kind] = build_feature_blocks(tables, cutoff, bundle.spec)
            built.append((bundle.spec, out[kind]))
    return out


def _clean(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def score_leads(models: ModelSet, leads: Sequence[Record], top: int = 3) -> list[dict]:
    """Conversion probability, 0-100 score, tier, expected value and reasons of each lead, in request order."""
    conv = models.need("conversion")
    clv = models.bundles.get("clv")
    now = datetime.now(UTC).replace(tzinfo=None)
    out: list[dict | None] = [None] * len(leads)
    for as_of, positions in _groups(leads, now).items():
        group = [leads[i] for i in positions]
        tables = records_to_arrays(group, as_of)
        rows = feature_rows(models, ("conversion", "clv"), group, as_of, tables)
        levels = evidence(tables, as_of)
        x = conv.matrix(rows["conversion"])
        prob = conv.predict_matrix(x)
        tiers = conversion_tier(prob, conv.metadata.tier_thresholds)
        reasons = conv.reasons(rows["conversion"], x, top) if top else [[] for _ in group]
        value = clv.predict_matrix(clv.matrix(rows["clv"])) if clv is not None else np.full(len(group), np.nan)
        for j, i in enumerate(positions):
            out[i] = {
                "customer_id": leads[i].customer_id,
                "as_of": as_of,
                "conversion_probability": float(prob[j]),
                "conversion_score": int(np.round(prob[j] * 100)),
                "conversion_tier": str(tiers[j]),
                "expected_value": _clean(value[j]),
                "reasons": reasons[j],
                "model_version": str(conv.metadata.version),
                "clv_model_version": None if clv is None else str(clv.metadata.version),
                "evidence": levels[j],
                "model_kind": conv.metadata.model_kind,
                "clv_model_kind": None if clv is None else clv.metadata.model_kind,
            }
    return out


def score_existing_customers(models: ModelSet, customers: Sequence[Record], top: int = 3) -> list[dict]:
    """Churn probability and risk (customers with an order before `as_of`), expected CLV and value decile."""
    churn = models.need("churn")
    clv = models.need("clv")
    versions = {"churn": str(churn.metadata.version), "clv": str(clv.metadata.version)}
    kinds = {"churn": churn.metadata.model_kind, "clv": clv.metadata.model_kind}
    now = datetime.now(UTC).replace(tzinfo=None)
    out: list[dict | None] = [None] * len(customers)
    for as_of, positions in _groups(customers, now).items():
        group = [customers[i] for i in positions]
        tables = records_to_arrays(group, as_of)
        rows = feature_rows(models, ("churn", "clv"), group, as_of, tables)
        levels = evidence(tables, as_of)
        results = {}
        for kind, bundle in (("churn", churn), ("clv", clv)):
            x = bundle.matrix(rows[kind])
            reasons = bundle.reasons(rows[kind], x, top) if top else None
            results[kind] = (bundle.predict_matrix(x), reasons)
        # Churn is defined for buyers only (at least one order before as_of), as in training.
        buyer = [any(naive_utc(o.timestamp) < as_of for o in rec.orders) for rec in group]
        p_churn, r_churn = results["churn"]
        v_clv, r_clv = results["clv"]
        risks = churn_risk(p_churn, churn.metadata.risk_thresholds)
        deciles = value_decile(v_clv, clv.metadata.value_deciles)
        for j, i in enumerate(positions):
            is_buyer = buyer[j]
            out[i] = {
                "customer_id": customers[i].customer_id,
                "as_of": as_of,
                "churn_probability": float(p_churn[j]) if is_buyer else None,
                "churn_risk": str(risks[j]) if is_buyer else None,
                "expected_clv": _clean(v_clv[j]),
                "value_decile": int(deciles[j]),
                "reasons": {
                    "churn": (r_churn[j] if r_churn and is_buyer else []),
                    "clv": (r_clv[j] if r_clv else []),
                },
                "model_versions": versions,
                "evidence": levels[j],
                "model_kinds": kinds,
            }
    return out
