"""The rules that turn a score into a word a marketer acts on: conversion tier, churn risk, value decile.

Shared by batch scoring and the API; the thresholds are learnt on the holdout and stored in the model metadata.
"""

from __future__ import annotations

import numpy as np

TIERS = np.array(["A", "B", "C", "D"], dtype=object)
RISKS = np.array(["low", "medium", "high"], dtype=object)


def conversion_tier(probability: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """A/B/C/D by the holdout's top-share probability thresholds (A: the best leads)."""
    a, b, c = thresholds
    return TIERS[np.select([probability >= a, probability >= b, probability >= c], [0, 1, 2], 3)]


def churn_risk(probability: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """low / medium / high churn risk by probability thresholds."""
    medium, high = thresholds
    return RISKS[np.select([probability >= high, probability >= medium], [2, 1], 0)]


def value_decile(value: np.ndarray, cutpoints: list[float]) -> np.ndarray:
    """1 (lowest) to 10 (highest) value decile by the holdout's cut points."""
    return np.searchsorted(np.asarray(cutpoints), value, side="right") + 1
