"""Small literal tables for unit tests of pure functions: timestamps in the contract's dtype, and funnel events and
orders written as rows."""

from __future__ import annotations

import pandas as pd

FUNNEL_COLUMNS = ["customer_id", "timestamp", "stage"]
ORDER_COLUMNS = ["customer_id", "order_id", "timestamp", "amount"]


def ts(*values: str) -> pd.Series:
    """Naive UTC timestamps in the contract's dtype."""
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"), dtype="datetime64[ns]")


def funnel_frame(rows: list[tuple]) -> pd.DataFrame:
    """Funnel events from rows of (customer_id, timestamp, stage), the timestamps ISO 8601 text."""
    return _parsed(pd.DataFrame(rows, columns=FUNNEL_COLUMNS))


def orders_frame(rows: list[tuple]) -> pd.DataFrame:
    """Orders from rows of (customer_id, order_id, timestamp, amount), the timestamps ISO 8601 text."""
    return _parsed(pd.DataFrame(rows, columns=ORDER_COLUMNS))


def _parsed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(timestamp=lambda d: pd.to_datetime(d.timestamp, format="ISO8601"))


def point_mlflow_at(patch, models) -> None:
    """Point MLflow and the embedded-store default (`CRM_SCORING_MODELS_DIR`) at the store in folder `models`."""
    import mlflow

    uri = f"sqlite:///{models / 'mlflow.db'}"
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    patch.setenv("CRM_SCORING_MODELS_DIR", str(models))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
