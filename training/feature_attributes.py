"""The attribute family: what the customers table says about each account, and its age at the cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.feature_arrays import DAY_NS, ArrayTable, as_floats, column_strings

CATEGORICAL = ("source_channel", "industry", "region")
NUMERIC = ("employees", "annual_revenue")


def build_attribute_features(
    customers: pd.DataFrame | ArrayTable, rows: np.ndarray, as_of: int, created: np.ndarray
) -> dict[str, np.ndarray]:
    """Source channel, industry, region, company size (employees, annual revenue) and account age."""
    out: dict[str, np.ndarray] = {}
    for col in CATEGORICAL:
        if col in customers.columns:
            out[col] = column_strings(customers[col], rows)
        else:
            out[col] = np.full(len(rows), None, dtype=object)
    for col in NUMERIC:
        out[col] = as_floats(customers[col])[rows] if col in customers.columns else np.full(len(rows), np.nan)
    out["account_age_days"] = (as_of - created) / DAY_NS
    return out
