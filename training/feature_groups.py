"""Vectorised per-group reductions: groups are customer codes 0..n-1 or cells of a customer x category grid.

Ages are int64 nanoseconds before the cutoff (`NEVER` where a group has none); days are float days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.feature_arrays import DAY_NS, NEVER


def count(group: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Rows (or the sum of `weights`) per group, as float."""
    return np.bincount(group, weights, minlength=n).astype(float)


def min_age(group: np.ndarray, age: np.ndarray, n: int) -> np.ndarray:
    """Smallest age (int64 ns) per group, `NEVER` where none."""
    out = np.full(n, NEVER, np.int64)
    np.minimum.at(out, group, age)
    return out


def age_days(age: np.ndarray) -> np.ndarray:
    """Int64 ns ages as float days, NaN where `NEVER`."""
    return np.where(age == NEVER, np.nan, age / DAY_NS)


def first_hit(group: np.ndarray, key: np.ndarray, best: np.ndarray, n: int) -> np.ndarray:
    """Per group, the first row (input order) whose key equals the group's best key; -1 if none."""
    rows = np.flatnonzero(key == best[group])
    groups, first = np.unique(group[rows], return_index=True)
    out = np.full(n, -1, np.int64)
    out[groups] = rows[first]
    return out


def distinct(group: np.ndarray, codes: np.ndarray, n_codes: int, n: int) -> np.ndarray:
    """Number of distinct non-missing codes per group."""
    ok = codes >= 0
    if not n_codes or not ok.any():
        return np.zeros(n)
    pairs = group[ok] * n_codes + codes[ok]
    # Hashing wins on large inputs, sorting on small ones (less fixed cost).
    pairs = pd.unique(pairs) if len(pairs) > 50_000 else np.unique(pairs)
    return count(pairs // n_codes, n)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den != 0)


def buckets(age: np.ndarray, edges: tuple[int, ...]) -> np.ndarray:
    """Index of the smallest window (days) holding each age; len(edges) for older rows."""
    return np.searchsorted(np.asarray(edges, np.int64) * DAY_NS, age, side="left")
