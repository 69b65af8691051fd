"""Batch scoring: every lead and customer as of a cutoff, with tiers, risk, value and reasons.

The same bundle methods serve the API; this module adds the batch shape (one row per customer) written by
`crm-score score` and read by the prospect list. Every row says how much its scores rest on (`evidence`, the
rule of `evidence_levels`, shared with the API) and which kind of model made each (`*_model_kind`: "lightgbm", or
"fallback" for the small model trained when the data was too thin for the full one).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from crmdata.populations import eligible_ids
from training.bundle import ModelBundle
from training.features import build_features
from training.tiers import churn_risk, conversion_tier, value_decile

SCORE_COLUMNS = [
    "customer_id",
    "conversion_probability",
    "conversion_score",
    "conversion_tier",
    "churn_probability",
    "churn_risk",
    "expected_clv",
    "expected_value",
    "top_reasons",
]
CONTEXT_COLUMNS = ["source_channel", "current_stage", "industry", "region", "stall_ratio", "value_decile"]
EVIDENCE_COLUMNS = ["evidence", "conversion_model_kind", "churn_model_kind", "clv_model_kind"]
# Evidence: "none" without any touchpoint, funnel event or order before the cutoff; "thin" with fewer than
# THIN_EVENTS of them or a record younger than THIN_DAYS days at the cutoff; "normal" otherwise.
THIN_EVENTS, THIN_DAYS = 3, 14
REASON_CHUNK = 5_000  # rows per reasons batch: the slow, per-row part of scoring, reported chunk by chunk
EVENT_TABLES = ("touchpoints", "funnel_events", "orders")


def evidence_levels(events: np.ndarray, age_days: np.ndarray) -> np.ndarray:
    """How much each record's scores rest on, from its events before the cutoff and its age there (days)."""
    events, age = np.asarray(events), np.asarray(age_days, dtype=float)
    thin = (events < THIN_EVENTS) | ~(age >= THIN_DAYS)  # an unknown age counts as young
    return np.where(events == 0, "none", np.where(thin, "thin", "normal")).astype(object)


def evidence_of(tables: dict, as_of: pd.Timestamp, ids: pd.Index) -> np.ndarray:
    """`evidence_levels` of the customers `ids`, from the export's event tables and `created_at`."""
    events = pd.Series(0, index=ids, dtype=np.int64)
    for name in EVENT_TABLES:
        frame = tables.get(name)
        if frame is not None and len(frame):
            before = frame.loc[frame["timestamp"] < as_of, "customer_id"]
            events = events.add(before.value_counts().reindex(ids, fill_value=0), fill_value=0)
    created = tables["customers"].drop_duplicates("customer_id").set_index("customer_id")["created_at"]
    age = (as_of - created.reindex(ids)).dt.total_seconds() / 86400
    return evidence_levels(events.to_numpy(), age.to_numpy(dtype=float, na_value=np.nan))


def score_customers(
    tables: dict,
    as_of: pd.Timestamp,
    bundles: dict[str, ModelBundle],
    reasons: bool = True,
    top: int = 3,
    progress=None,
) -> pd.DataFrame:
    """One row per customer created before `as_of` with every available model's score and reasons.

    `progress(step, done, total)`, when given, hears the feature build, each model and each chunk of reasons.
    """
    say = progress or _silent
    say("building the features")
    features = _features_by_spec(tables, as_of, bundles)
    any_spec = next(iter(bundles.values())).spec
    base = features[id(any_spec)]
    out = pd.DataFrame(index=base.index)
    for col in CONTEXT_COLUMNS[:4]:
        out[col] = base[col] if col in base.columns else None
    out["stall_ratio"] = base["stall_ratio"] if "stall_ratio" in base.columns else np.nan
    reason_map: dict[str, dict] = {cid: {} for cid in out.index}
    for i, (kind, bundle) in enumerate(bundles.items()):
        say(f"scoring {kind} ({i + 1} of {len(bundles)})", i, len(bundles))
        ids = eligible_ids(kind, tables, as_of, bundle.spec.funnel).intersection(out.index)
        frame = features[id(bundle.spec)].loc[ids]
        if frame.empty:
            continue
        x = bundle.matrix(frame)
        pred = bundle.predict_matrix(x)
        out.loc[ids, f"{kind}_model_kind"] = bundle.metadata.model_kind
        if kind == "conversion":
            out.loc[ids, "conversion_probability"] = pred
            out.loc[ids, "conversion_score"] = np.round(pred * 100).astype(int)
            out.loc[ids, "conversion_tier"] = conversion_tier(pred, bundle.metadata.tier_thresholds)
        elif kind == "churn":
            out.loc[ids, "churn_probability"] = pred
            out.loc[ids, "churn_risk"] = churn_risk(pred, bundle.metadata.risk_thresholds)
        else:
            out.loc[ids, "expected_clv"] = pred
            out.loc[ids, "value_decile"] = value_decile(pred, bundle.metadata.value_deciles)
        if reasons:
            for cid, items in zip(ids, _reasons(kind, bundle, frame, x, top, say), strict=True):
                reason_map[cid][kind] = items
    for col in [*SCORE_COLUMNS[1:-1], "value_decile", *EVIDENCE_COLUMNS[1:]]:
        if col not in out.columns:
            out[col] = np.nan
    say("weighing the evidence", len(bundles), len(bundles))
    out["evidence"] = evidence_of(tables, as_of, out.index)
    # A lead's expected value is its expected revenue over the CLV horizon, which the CLV model predicts
    # directly for open leads (P(conversion) x value once won, by total expectation); a buyer's is its CLV.
    out["expected_value"] = out["expected_clv"]
    out["top_reasons"] = [json.dumps(reason_map[cid]) for cid in out.index]
    out = out.reset_index()[SCORE_COLUMNS + CONTEXT_COLUMNS + EVIDENCE_COLUMNS]
    # Which models made the scores, for the prospect list to say why it is empty (`serving.store`).
    out.attrs["models"] = {kind: bundle.metadata.model_kind for kind, bundle in bundles.items()}
    out.attrs["as_of"] = str(as_of)
    return out


def _silent(step: str, done: int | None = None, total: int | None = None) -> None:
    """The progress callback when nobody listens."""


def _reasons(kind: str, bundle: ModelBundle, frame: pd.DataFrame, x: np.ndarray, top: int, say) -> list:
    """`bundle.reasons` of every row, in chunks of `REASON_CHUNK` rows so that `say` can tell how far it is."""
    out: list = []
    for start in range(0, len(frame), REASON_CHUNK):
        say(f"{kind} reasons", start, len(frame))
        stop = start + REASON_CHUNK
        out.extend(bundle.reasons(frame.iloc[start:stop], x[start:stop], top=top))
    say(f"{kind} reasons", len(frame), len(frame))
    return out


def _features_by_spec(tables: dict, as_of: pd.Timestamp, bundles: dict[str, ModelBundle]) -> dict[int, pd.DataFrame]:
    """Feature frames per distinct feature spec of the bundles (one build when they share a spec)."""
    built: dict[int, pd.DataFrame] = {}
    by_value: list[tuple] = []
    for bundle in bundles.values():
        for spec, frame in by_value:
            if spec == bundle.spec:
                built[id(bundle.spec)] = frame
                break
        else:
            frame = build_features(tables, as_of, bundle.spec)
            by_value.append((bundle.spec, frame))
            built[id(bundle.spec)] = frame
    return built


def write_scores(scores: pd.DataFrame, path) -> None:
    """Write the score file as CSV or Parquet by the file's extension."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        scores.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        scores.to_csv(path, index=False)
    else:
        raise ValueError(f"{path}: the score file must end in .csv or .parquet")


def model_lead_values(
    tables: dict, as_of: pd.Timestamp, clv_bundle: ModelBundle | None, horizon_days: int = 365, progress=None
) -> pd.Series:
    """Value of each lead over its first `horizon_days`: realised revenue so far plus the model's forecast.

    A lead created at c is worth its net revenue in [c, c + horizon). The part before `as_of` is known; the
    part after is the CLV model's expected value over its horizon from `as_of`, prorated to the days of the
    lead's first year still to come (0 for leads the model does not score, e.g. lost ones).
    """
    customers = tables["customers"]
    created = customers.set_index("customer_id")["created_at"]
    created = created[created < as_of]
    orders = tables.get("orders")
    realised = pd.Series(0.0, index=created.index)
    if orders is not None and len(orders):
        o = orders[orders["timestamp"] < as_of].merge(
            created.rename("created_at"), left_on="customer_id", right_index=True
        )
        first_year = o[o["timestamp"] < o["created_at"] + pd.Timedelta(days=horizon_days)]
        realised = realised.add(first_year.groupby("customer_id")["amount"].sum(), fill_value=0.0)
    remaining = (created + pd.Timedelta(days=horizon_days) - as_of).dt.days.clip(lower=0) / horizon_days
    forecast = pd.Series(0.0, index=created.index)
    if clv_bundle is not None and (remaining > 0).any():
        scores = score_customers(tables, as_of, {"clv": clv_bundle}, reasons=False, progress=progress)
        scores = scores.set_index("customer_id")
        clv_horizon = clv_bundle.metadata.horizon_days
        per_day = scores["expected_clv"].reindex(created.index).fillna(0.0) / clv_horizon
        forecast = per_day * remaining * horizon_days
    return (realised + forecast).rename("lead_value")
