"""Carryover of spend into later periods: geometric adstock, and the rule that picks its rate per channel.

`A_w = (1 - lambda) * sum_k lambda^k s_(w-k)`: a share lambda of a period's effect carries into the next one.
The weights sum to one, so a spend held at s for a while gives A = s: a curve of A keeps the meaning
"leads per period once spend has been s for a while". Spend before the first period is taken to equal it.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

CARRYOVER_GRID = tuple(round(0.1 * i, 1) for i in range(10))  # lambda = 0, 0.1, ..., 0.9
# Carryover is one more parameter fitted to noise: a rate above 0 is kept only when it lowers the penalised
# sum of squares by more than a BIC-like margin, n * log(SSE_0 / SSE_lambda) > log(n); otherwise lambda = 0.
# This keeps a channel without carryover at 0 instead of drifting to whatever rate the noise favours.


def adstock(spend: np.ndarray, rates: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Adstocked spend (len(rates), n) of a spend sequence in time order, one row per carryover rate."""
    spend = np.asarray(spend, dtype=float)
    out = np.empty((len(rates), len(spend)))
    for i, rate in enumerate(rates):
        if rate == 0 or len(spend) == 0:
            out[i] = spend
            continue
        # A_0 = (1 - rate) s_0 + rate * A_(-1) with A_(-1) = s_0: the state before the first period.
        out[i], _ = lfilter([1.0 - rate], [1.0, -rate], spend, zi=[rate * spend[0]])
    return out


def select_carryover(costs: np.ndarray, periods: int) -> np.ndarray:
    """Index on the grid of the chosen rate per row of penalised costs (..., len(grid)); grid[0] must be 0."""
    best = np.argmin(costs, axis=-1)
    lowest = np.take_along_axis(costs, best[..., None], axis=-1)[..., 0]
    gain = periods * np.log(np.maximum(costs[..., 0], 1e-12) / np.maximum(lowest, 1e-12))
    return np.where(gain > np.log(max(periods, 2)), best, 0)
