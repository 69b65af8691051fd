"""Score with the champions as of a past cutoff and measure against what really happened after it.

When the data directory holds the simulator's `truth/` for the same cutoff, the oracle's figures on the
same customers are shown beside the model's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from crmdata.populations import buyers
from training.dataset import labels_at
from training.evaluate import classification_metrics, regression_metrics
from training.scoring import score_customers

PREDICTION = {"conversion": "conversion_probability", "churn": "churn_probability", "clv": "expected_clv"}
ORACLE = {"conversion": "p_conversion", "churn": "p_churn", "clv": "expected_clv"}


def _before(tables: dict, as_of: pd.Timestamp) -> dict:
    """The tables as they were before `as_of` (rows strictly earlier)."""
    from crmdata.contract import TIME_COLUMN

    return {name: None if frame is None else frame[frame[TIME_COLUMN[name]] < as_of] for name, frame in tables.items()}


def read_truth(data_dir: Path, as_of: pd.Timestamp) -> pd.DataFrame | None:
    """The simulator's truth per customer when `truth/` exists for this very cutoff, else None."""
    meta_file = Path(data_dir) / "truth" / "meta.json"
    if not meta_file.exists() or pd.Timestamp(json.loads(meta_file.read_text())["as_of"]) != as_of:
        return None
    for ext, reader in (("parquet", pd.read_parquet), ("csv", pd.read_csv)):
        path = Path(data_dir) / "truth" / f"customers.{ext}"
        if path.exists():
            truth = reader(path)
            truth["customer_id"] = truth["customer_id"].astype(str)
            return truth.set_index("customer_id")
    return None


def backtest(
    tables: dict, as_of: pd.Timestamp, bundles: dict, truth: pd.DataFrame | None = None, progress=None
) -> dict:
    """Figures per model: model (and oracle) against realised outcomes after `as_of`, with the row counts.

    `progress(step, done, total)`, when given, hears the scoring's steps, then each model's measuring.
    """
    scores = score_customers(_before(tables, as_of), as_of, bundles, reasons=False, progress=progress)
    scores = scores.set_index("customer_id")
    out: dict[str, dict] = {}
    for i, (kind, bundle) in enumerate(bundles.items()):
        if progress:
            progress(f"measuring {kind} against what happened ({i + 1} of {len(bundles)})", i, len(bundles))
        horizon = int(bundle.metadata.horizon_days)
        labels = labels_at(kind, tables, as_of, horizon, funnel=bundle.spec.funnel)
        if kind == "clv":  # judged on customers with a purchase history, as the oracle's CLV is
            labels = labels.reindex(buyers(tables.get("orders"), as_of))
        pred = scores[PREDICTION[kind]].reindex(labels.index)
        keep = pred.notna().to_numpy()
        y, p = labels.to_numpy(dtype=float)[keep], pred.to_numpy(dtype=float)[keep]
        measure = regression_metrics if kind == "clv" else classification_metrics
        entry = {"horizon_days": horizon, "version": bundle.metadata.version, "model": measure(y, p)}
        if truth is not None:
            oracle = truth[ORACLE[kind]].reindex(labels.index[keep]).to_numpy(dtype=float)
            both = ~np.isnan(oracle)
            if both.sum() >= 50:
                entry["oracle"] = measure(y[both], oracle[both])
                entry["model_on_oracle_rows"] = measure(y[both], p[both])
        out[kind] = entry
    return out
