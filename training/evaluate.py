"""Evaluation figures for the classifiers and the CLV regressor, plus the simple baselines beside them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

# The headline figure of each model, compared by promotion and by the oracle check.
HEADLINE = {"conversion": "roc_auc", "churn": "roc_auc", "clv": "normalized_gini"}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-width probability bins, weighted by bin size."""
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        hit = idx == b
        if hit.any():
            total += abs(y[hit].mean() - p[hit].mean()) * hit.mean()
    return float(total)


def top_decile(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """(lift, capture) of the top 10% by score: its positive rate over the base rate, its share of all positives."""
    n_top = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-score, kind="stable")[:n_top]
    base = y.mean()
    lift = float(y[top].mean() / base) if base > 0 else float("nan")
    capture = float(y[top].sum() / y.sum()) if y.sum() > 0 else float("nan")
    return lift, capture


def classification_metrics(y, p) -> dict[str, float]:
    """ROC AUC, PR AUC, log loss, Brier, ECE, top-decile lift and capture, rates."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    both = len(np.unique(y)) == 2
    lift, capture = top_decile(y, p)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": lift,
        "top_decile_capture": capture,
        "positive_rate": float(y.mean()),
        "mean_prediction": float(p.mean()),
        "rows": float(len(y)),
    }


def normalized_gini(y: np.ndarray, pred: np.ndarray) -> float:
    """Gini of the ranking by `pred` over the Gini of the perfect ranking (1 = perfect, 0 = random)."""
    y = np.asarray(y, dtype=float)

    def area(order: np.ndarray) -> float:
        # The area under the cumulative share less that of a random order, (n + 1) / 2n for n rows.
        cum = np.cumsum(y[order]) / y.sum()
        return cum.mean() - (len(y) + 1) / (2 * len(y))

    if y.sum() == 0:
        return float("nan")
    return float(area(np.argsort(-pred, kind="stable")) / area(np.argsort(-y, kind="stable")))


def regression_metrics(y, pred) -> dict[str, float]:
    """MAE, RMSE, Spearman, normalised Gini, top-decile revenue capture, predicted/actual total."""
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    n_top = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-pred, kind="stable")[:n_top]
    return {
        "mae": float(np.mean(np.abs(y - pred))),
        "rmse": float(np.sqrt(np.mean((y - pred) ** 2))),
        "spearman": float(spearmanr(y, pred).statistic) if len(y) > 2 else float("nan"),
        "normalized_gini": normalized_gini(y, pred),
        "top_decile_capture": float(y[top].sum() / y.sum()) if y.sum() > 0 else float("nan"),
        "pred_actual_ratio": float(pred.sum() / y.sum()) if y.sum() > 0 else float("nan"),
        "rows": float(len(y)),
    }


def rate_baseline(train: pd.DataFrame, target: pd.Series, test: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Historical positive rate by `keys` (e.g. current stage x source channel), shrunk to the overall rate."""
    prior = float(target.mean())
    frame = train[keys].astype(str).assign(_y=target.to_numpy())
    grouped = frame.groupby(keys)["_y"].agg(["sum", "count"])
    rate = (grouped["sum"] + 20 * prior) / (grouped["count"] + 20)
    looked_up = test[keys].astype(str).merge(rate.rename("rate").reset_index(), on=keys, how="left")["rate"]
    return looked_up.fillna(prior).to_numpy()


def recency_frequency_baseline(train: pd.DataFrame, target: pd.Series, test: pd.DataFrame) -> np.ndarray:
    """Target mean by recency band x frequency band of the training rows (an RFM-style heuristic)."""

    def bands(frame: pd.DataFrame) -> pd.DataFrame:
        recency = pd.cut(frame["days_since_last_order"].fillna(1e6), [-1, 30, 90, 180, 365, np.inf], labels=False)
        frequency = pd.cut(frame["orders_total"].fillna(0), [-1, 0, 1, 3, 7, np.inf], labels=False)
        return pd.DataFrame({"r": recency.astype(int), "f": frequency.astype(int)}, index=frame.index)

    return rate_baseline(bands(train), target, bands(test), ["r", "f"])
