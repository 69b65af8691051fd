"""Reallocate paid spend per period across channels to maximise the total expected value under fitted curves.

The optimiser maximises the total expected value per period under the fitted response curves for the same
(or a given) total budget, with per-channel bounds, a maximum shift per channel and locked channels; a channel
with insufficient evidence is kept where it is. The result is never below the current allocation's value.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from marketing.response_curves import FITTED, INSUFFICIENT, LOCKED, ChannelCurve, ResponseCurves

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """Spend per period per channel (sorted by name): now and advised, the total, and why a channel is frozen."""

    fits: list[ChannelCurve]
    current: np.ndarray
    recommended: np.ndarray
    total: float
    frozen: dict[str, str]  # channel -> LOCKED or INSUFFICIENT


def allocate_budget(
    curves: ResponseCurves,
    total_budget: float | None,
    max_shift: float,
    min_spend: Mapping[str, float] | None,
    max_spend: Mapping[str, float] | None,
    locked: Collection[str],
    extrapolate: bool,
    seed: int,
) -> Allocation:
    """The best allocation within the bounds, or the current mix (scaled to the total) when nothing beats it.

    Raises ValueError when the bounds cannot meet the total (see `marketing.advice.recommend_budget`).
    """
    if max_shift < 0.0:
        raise ValueError("max_shift must be non-negative")
    unknown = set(locked) - set(curves.curves)
    if unknown:
        log.warning("locked channels without a fitted curve are ignored: %s", sorted(unknown))
    names = sorted(curves.curves)
    fits = [curves.curves[n] for n in names]
    current = np.array([c.current_spend for c in fits], dtype=float)
    total = float(current.sum() if total_budget is None else total_budget)
    lo, hi, frozen = _bounds(curves, names, max_shift, min_spend, max_spend, set(locked), extrapolate)
    if not lo.sum() - 1e-6 * total <= total <= hi.sum() + 1e-6 * total:
        raise ValueError(
            f"a total of {total:,.2f} per period cannot be reached within the channels' bounds "
            f"({lo.sum():,.2f} to {hi.sum():,.2f}); widen max_shift or the min/max spend"
        )
    baseline = _baseline(current, lo, hi, total)
    recommended = _optimise(fits, lo, hi, total, seed) if names else current
    baseline_value = _total_value(fits, baseline)
    if _total_value(fits, recommended) <= baseline_value + 1e-9 * abs(baseline_value):
        recommended = baseline  # no real gain: keep the current mix exactly
    return Allocation(fits=fits, current=current, recommended=recommended, total=total, frozen=frozen)


def _bounds(
    curves: ResponseCurves,
    names: list[str],
    max_shift: float,
    min_spend: Mapping[str, float] | None,
    max_spend: Mapping[str, float] | None,
    locked: Collection[str],
    extrapolate: bool,
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Per-channel lower and upper spend and why a channel cannot move (locked or insufficient evidence)."""
    lo, hi, frozen = [], [], {}
    for name in names:
        curve = curves.curves[name]
        cur = curve.current_spend
        low, high = cur * (1.0 - max_shift), cur * (1.0 + max_shift)
        if not extrapolate:
            # Do not bet on a part of the curve no period ever tried.
            low, high = max(low, min(curve.spend_min, cur)), min(high, max(curve.spend_max, cur))
        low = max(low, (min_spend or {}).get(name, 0.0))
        high = min(high, (max_spend or {}).get(name, np.inf))
        if name in locked:
            frozen[name] = LOCKED
        elif curve.status != FITTED:
            frozen[name] = INSUFFICIENT
        if name in frozen:
            low = high = cur
        if low > high + 1e-9:
            raise ValueError(f"{name}: the minimum spend {low:.2f} exceeds the maximum {high:.2f}")
        lo.append(low)
        hi.append(high)
    return np.array(lo), np.array(hi), frozen


def _total_value(curves: list[ChannelCurve], spend: np.ndarray) -> float:
    """Expected value per period of an allocation under the point fits (channels without a fit add nothing)."""
    return float(sum(c.value(s) for c, s in zip(curves, spend, strict=True) if c.fitted))


def _baseline(current: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float) -> np.ndarray:
    """The current allocation scaled to `total` within the bounds: what the advice must not fall below."""
    if abs(current.sum() - total) <= 1e-9 * max(total, 1.0):
        return current.copy()
    return _project(current * total / max(current.sum(), 1e-12), lo, hi, total)


def _project(spend: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float) -> np.ndarray:
    """The allocation within [lo, hi] summing to `total` closest to `spend` (bisection on a common shift)."""
    low, high = (lo - spend).min() - 1.0, (hi - spend).max() + 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if np.clip(spend + mid, lo, hi).sum() < total:
            low = mid
        else:
            high = mid
    return np.clip(spend + 0.5 * (low + high), lo, hi)


def _optimise(curves: list[ChannelCurve], lo: np.ndarray, hi: np.ndarray, total: float, seed: int) -> np.ndarray:
    """Maximise the fitted total value per period over [lo, hi] with the given total (SLSQP, several starts)."""
    scale = np.maximum(hi, 1e-9)  # optimise spend / upper bound: every variable in [0, 1]
    norm = max(_total_value(curves, (lo + hi) / 2), 1e-9)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        spend = x * scale
        value = _total_value(curves, spend)
        grad = np.array([float(c.marginal_roi(s)) if c.fitted else 0.0 for c, s in zip(curves, spend, strict=True)])
        grad = grad * scale
        return -value / norm, -grad / norm

    rng = np.random.default_rng(seed)
    starts = [_project((lo + hi) / 2, lo, hi, total)]
    starts += [_project(rng.uniform(lo, hi), lo, hi, total) for _ in range(6)]
    best, best_value = starts[0], _total_value(curves, starts[0])
    for start in starts:
        fit = minimize(
            objective,
            start / scale,
            jac=True,
            method="SLSQP",
            bounds=list(zip(lo / scale, hi / scale, strict=True)),
            constraints=[{"type": "eq", "fun": lambda x: x @ scale - total, "jac": lambda x: scale}],
            options={"maxiter": 200, "ftol": 1e-12},
        )
        spend = _project(np.clip(fit.x * scale, lo, hi), lo, hi, total)
        value = _total_value(curves, spend)
        if value > best_value:
            best, best_value = spend, value
    return best
