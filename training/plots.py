"""Evaluation plots as PNG files: ROC, reliability, cumulative gains, SHAP importance, CLV by decile."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=100)
    return plt, fig, ax


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def roc_plot(y, curves: dict[str, np.ndarray], path: Path) -> Path:
    """ROC curves of the model and its baseline."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt, fig, ax = _figure()
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the temporal holdout")
    ax.legend(loc="lower right")
    return _save(plt, fig, path)


def reliability_plot(y, p, path: Path, bins: int = 10) -> Path:
    """Observed rate against mean predicted probability per probability bin."""
    plt, fig, ax = _figure()
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    pts = [(p[idx == b].mean(), y[idx == b].mean(), (idx == b).sum()) for b in range(bins) if (idx == b).any()]
    xs, ys, ns = zip(*pts, strict=True)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.scatter(xs, ys, s=np.sqrt(ns) * 4)
    ax.plot(xs, ys)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title="Reliability (holdout)")
    return _save(plt, fig, path)


def gains_plot(y, curves: dict[str, np.ndarray], path: Path) -> Path:
    """Cumulative share of positives (or value) captured against the share of rows contacted."""
    plt, fig, ax = _figure()
    y = np.asarray(y, dtype=float)
    for name, p in curves.items():
        order = np.argsort(-p, kind="stable")
        gained = np.cumsum(y[order]) / max(y.sum(), 1e-12)
        ax.plot(np.arange(1, len(y) + 1) / len(y), gained, label=name)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="random")
    ax.set(xlabel="share of rows, best first", ylabel="share captured", title="Cumulative gains (holdout)")
    ax.legend(loc="lower right")
    return _save(plt, fig, path)


def importance_plot(names: list[str], mean_abs_shap: np.ndarray, path: Path, top: int = 20) -> Path:
    """The features with the largest mean |SHAP| contribution."""
    plt, fig, ax = _figure()
    order = np.argsort(mean_abs_shap)[-top:]
    ax.barh([names[i] for i in order], mean_abs_shap[order])
    ax.set(xlabel="mean |SHAP| (raw score)", title="Feature importance")
    ax.tick_params(axis="y", labelsize=7)
    return _save(plt, fig, path)


def clv_decile_plot(y, pred, path: Path) -> Path:
    """Mean predicted and actual value per decile of predicted value."""
    plt, fig, ax = _figure()
    order = np.argsort(pred, kind="stable")
    deciles = np.array_split(order, 10)
    ax.bar(np.arange(1, 11) - 0.2, [pred[d].mean() for d in deciles], width=0.4, label="predicted")
    ax.bar(np.arange(1, 11) + 0.2, [np.asarray(y)[d].mean() for d in deciles], width=0.4, label="actual")
    ax.set(xlabel="decile of predicted value", ylabel="mean value", title="CLV by decile (holdout)")
    ax.legend()
    return _save(plt, fig, path)
